"""The CDK app, synthesized once in-process (offline), checked against the definitions it is built from."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Acknowledgment, App, Stack, Validations
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from infra import FUNCTION_NAMES, LAMBDA_PYTHON_VERSION, LAYER_DIR, build_assets, handler_for, nag
from infra.constructs.functions import FUNCTION_SPECS, STATE_MACHINE_ARN_ENV
from infra.stack import build_app
from orderflow import asl, config
from orderflow.tables import TABLES
from tests.infra.conftest import Synth, _list

XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
#: What the state machine's role may do on "*": vended logs delivery and X-Ray (no resource-level support).
WORKFLOW_STAR_ACTIONS = XRAY_ACTIONS | {
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


def cdk_deployment_handler(synth: Synth) -> set[str]:
    """The logical ids of CDK's BucketDeployment handler (function, role, policy): aws-cdk-lib's, not ours."""
    found = {lid for lid in synth.resources if lid.startswith("CustomCDKBucketDeployment")}
    assert len(found) == 3, found
    return found


# -- assets ------------------------------------------------------------------------------------


def test_build_code_copies_only_code_and_its_data(tmp_path: Path) -> None:
    count = build_assets.build_code(tmp_path / "code")
    files = [p for p in (tmp_path / "code").rglob("*") if p.is_file()]
    assert len(files) == count > 0
    assert all(p.suffix in {".py", ".json"} and "__pycache__" not in p.parts for p in files)
    assert (tmp_path / "code" / "orderflow" / "rules" / "data" / "us_zip3.json").exists()  # the geo rule's data
    for name in FUNCTION_NAMES:
        handler = tmp_path / "code" / "functions" / name / "handler.py"
        assert "def lambda_handler(" in handler.read_text(), handler
    assert (tmp_path / "code" / "orderflow" / "__init__.py").exists()
    # the local runtime and the sandboxes never ship in a Lambda bundle
    assert {p.relative_to(tmp_path / "code").parts[0] for p in files} == {"orderflow", "functions"}
    assert not [p for p in files if p.parts[-2] in ("local", "sandbox") or "sandbox" in p.name]


def test_the_shipped_package_never_imports_the_local_runtime() -> None:
    """orderflow/ and functions/ ship in every Lambda; orderflow_local (moto, the sandboxes) must stay out.
    The one reference is the CLI's optional `local` command, found with importlib when installed."""
    import ast

    from infra import ROOT

    offenders = []
    for package in ("orderflow", "functions"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "orderflow_local"]
    assert not offenders


def test_layer_is_built_for_the_function_runtime(synth: Synth) -> None:
    compiled = list((LAYER_DIR / "python").glob("pydantic_core/_pydantic_core.cpython-*.so"))
    assert compiled, "pydantic-core's compiled module is missing from the layer"
    tag = "cpython-" + LAMBDA_PYTHON_VERSION.replace(".", "")
    assert all(tag in p.name and "x86_64" in p.name for p in compiled), [p.name for p in compiled]


# -- functions ---------------------------------------------------------------------------------


def test_one_function_per_functions_folder_with_handlers_tracing_and_runtime(synth: Synth) -> None:
    functions = {k: f for k, f in synth.of_type("AWS::Lambda::Function").items() if k not in cdk_deployment_handler(synth)}
    folders = {p.parent.name for p in (Path(__file__).resolve().parents[2] / "functions").glob("*/handler.py")}
    assert set(FUNCTION_NAMES) == folders
    assert len(functions) == len(FUNCTION_NAMES)
    assert {f["Properties"]["Handler"] for f in functions.values()} == {
        handler_for(n) for n in FUNCTION_NAMES
    }
    layers = {lid for f in functions.values() for layer in f["Properties"]["Layers"] for lid in layer.values()}
    assert len(layers) == 1
    for function in functions.values():
        props = function["Properties"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["Runtime"] == f"python{LAMBDA_PYTHON_VERSION}"
        assert props["Architectures"] == ["x86_64"]
        assert props["Layers"] == [{"Ref": next(iter(layers))}]
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == "orderflow"
        assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
        assert env["POWERTOOLS_TRACE_DISABLED"] == "true"  # the X-Ray SDK stays unloaded unless -c xray_sdk=true
        log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert synth.resources[log_group]["Properties"]["RetentionInDays"] > 0


def test_every_variable_the_template_sets_is_declared_in_config(synth: Synth) -> None:
    """The CDK app sets only ORDERFLOW_* variables orderflow/config.py declares as the template's (or one of
    its families: a table, a queue, an invoked function), so the code and the template name them alike."""
    declared = {v.name for v in config.VARIABLES if v.set_by is config.SetBy.CDK}
    families = re.compile("|".join(re.escape(f(k)).replace("KEY", "[A-Z0-9_]+") for f, k in (
        (config.table_variable, "key"), (config.queue_variable, "key"), (config.function_variable, "key"))))
    set_by_template = {name for function in synth.of_type("AWS::Lambda::Function").values()
                       for name in function["Properties"].get("Environment", {}).get("Variables", {})
                       if name.startswith(config.PREFIX)}
    assert set_by_template, "the functions get their configuration from the template"
    undeclared = {name for name in set_by_template if name not in declared and not families.fullmatch(name)}
    assert undeclared == set()
    assert {config.STATE_MACHINE_ARN.name, config.LABEL_BUCKET.name, config.CONSOLE_ORIGIN.name,
            config.POLL_TRACKING_FUNCTION.name} <= set_by_template


def test_each_function_gets_its_tables_and_only_its_grants(synth: Synth) -> None:
    sm_arn = synth.stack.resolve(synth.stack.state_machine_arn)
    table_lids = {key: synth.lid(t) for key, t in synth.stack.data.tables.items()}
    key_of = {lid: key for key, lid in table_lids.items()}
    for spec in FUNCTION_SPECS:
        props = synth.resources[synth.lid(synth.stack.functions.functions[spec.name])]["Properties"]
        env = props["Environment"]["Variables"]
        assert {k for k in env if k.endswith("_TABLE")} == {synth.stack.data.env_var(k) for k in spec.tables}
        for key in spec.tables:
            assert env[synth.stack.data.env_var(key)] == {"Ref": table_lids[key]}
        if spec.needs_state_machine_arn:
            assert env[STATE_MACHINE_ARN_ENV] == sm_arn
        else:
            assert STATE_MACHINE_ARN_ENV not in env

        reads: set[str] = set()
        writes: set[str] = set()
        states: set[str] = set()
        for statement in synth.statements(props["Role"]["Fn::GetAtt"][0]):
            actions = set(_list(statement["Action"]))
            for resource in _list(statement["Resource"]):
                table = (
                    key_of.get(resource.get("Fn::GetAtt", [None])[0]) if isinstance(resource, dict) else None
                )
                if table and "dynamodb:GetItem" in actions:
                    reads.add(table)
                if table and "dynamodb:PutItem" in actions:
                    writes.add(table)
                if resource == sm_arn:
                    states |= actions
        assert reads == set(spec.tables), spec.name
        assert writes == set(spec.writes), spec.name
        assert states == set(spec.states_actions), spec.name


def test_roles_have_no_wildcard_actions_and_no_managed_policies(synth: Synth) -> None:
    function_roles = {synth.lid(role) for role in synth.stack.functions.roles.values()}
    workflow_role = synth.resources[synth.lid(synth.stack.workflow.state_machine)]["Properties"]["RoleArn"]
    workflow_role_lid = workflow_role["Fn::GetAtt"][0]
    assert len(function_roles) == len(FUNCTION_NAMES)
    for role_lid in [*function_roles, workflow_role_lid]:
        assert "ManagedPolicyArns" not in synth.resources[role_lid]["Properties"], role_lid
        statements = synth.statements(role_lid)
        assert statements, role_lid
        for statement in statements:
            assert statement["Effect"] == "Allow"
            actions = set(_list(statement["Action"]))
            assert not {a for a in actions if "*" in a}, (role_lid, actions)  # no "*", no "dynamodb:*"
            if "*" in _list(statement["Resource"]):
                allowed = XRAY_ACTIONS if role_lid in function_roles else WORKFLOW_STAR_ACTIONS
                assert actions <= allowed, (role_lid, actions - allowed)


# -- tables ------------------------------------------------------------------------------------


def test_tables_are_built_from_orderflow_tables(synth: Synth) -> None:
    assert len(synth.of_type("AWS::DynamoDB::Table")) == len(TABLES) == 4

    def by_name(items: list[dict]) -> dict[str, dict]:
        return {i.get("IndexName") or i["AttributeName"]: i for i in items}

    for definition in TABLES:
        resource = synth.resources[synth.lid(synth.stack.data.tables[definition.key])]
        props = resource["Properties"]
        expected = definition.create_table_kwargs("unused")
        assert props["KeySchema"] == expected["KeySchema"]
        assert by_name(props["AttributeDefinitions"]) == by_name(expected["AttributeDefinitions"])
        assert by_name(props.get("GlobalSecondaryIndexes", [])) == by_name(
            expected.get("GlobalSecondaryIndexes", [])
        )
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True}  # AWS managed key
        if definition.key in ("orders", "ledger"):
            assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"


# -- workflow ----------------------------------------------------------------------------------


def test_state_machine_fills_exactly_the_asl_placeholders(synth: Synth) -> None:
    machines = synth.of_type("AWS::StepFunctions::StateMachine")
    assert len(machines) == 1
    props = next(iter(machines.values()))["Properties"]
    substitutions = props["DefinitionSubstitutions"]
    assert set(substitutions) == asl.placeholders(asl.read())
    for placeholder, name in asl.FUNCTION_PLACEHOLDERS.items():
        function_lid = synth.lid(synth.stack.functions.functions[name])
        assert substitutions[placeholder] == {"Fn::GetAtt": [function_lid, "Arn"]}
    for placeholder, key in asl.TABLE_PLACEHOLDERS.items():
        assert substitutions[placeholder] == {"Ref": synth.lid(synth.stack.data.tables[key])}

    assert props["StateMachineType"] == "STANDARD"
    assert props["StateMachineName"] == synth.stack.state_machine_name
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
    # The definition shipped is the ASL file itself (as an asset or inline).
    if "DefinitionS3Location" in props:
        key = props["DefinitionS3Location"]["Key"]
        shipped = (synth.outdir / f"asset.{key}").read_text()
    else:
        shipped = props["DefinitionString"]
    assert json.loads(shipped) == json.loads(asl.read())
    json.loads(asl.substitute(shipped, dict.fromkeys(substitutions, "x")))


def test_state_machine_role_invokes_the_workflow_functions_and_updates_orders(synth: Synth) -> None:
    props = next(iter(synth.of_type("AWS::StepFunctions::StateMachine").values()))["Properties"]
    invoke: list[Any] = []
    update: list[Any] = []
    for statement in synth.statements(props["RoleArn"]["Fn::GetAtt"][0]):
        actions = _list(statement["Action"])
        if "lambda:InvokeFunction" in actions:
            invoke += _list(statement["Resource"])
        if "dynamodb:UpdateItem" in actions:
            update += _list(statement["Resource"])
    workflow_functions = set(asl.FUNCTION_PLACEHOLDERS.values())
    arns = [
        {"Fn::GetAtt": [synth.lid(synth.stack.functions.functions[n]), "Arn"]} for n in workflow_functions
    ]
    assert sorted(map(json.dumps, invoke)) == sorted(
        map(json.dumps, arns + [{"Fn::Join": ["", [arn, ":*"]]} for arn in arns])
    )
    assert update == [{"Fn::GetAtt": [synth.lid(synth.stack.data.tables["orders"]), "Arn"]}]


def test_functions_get_the_state_machine_arn_without_a_dependency_cycle(synth: Synth) -> None:
    """The functions carry the state machine's ARN as a string; the state machine references them."""
    graph: dict[str, set[str]] = {}

    def refs(value: Any) -> set[str]:
        if isinstance(value, dict):
            found = set()
            if "Ref" in value and value["Ref"] in synth.resources:
                found.add(value["Ref"])
            if "Fn::GetAtt" in value:
                found.add(value["Fn::GetAtt"][0])
            for item in value.values():
                found |= refs(item)
            return found
        if isinstance(value, list):
            return set().union(*map(refs, value)) if value else set()
        return set()

    for lid, resource in synth.resources.items():
        graph[lid] = refs(resource.get("Properties", {})) | set(_list(resource.get("DependsOn", [])))
    state, cycle = {}, []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                cycle.append(path + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for lid in graph:
        if lid not in state:
            visit(lid, [lid])
    assert not cycle, cycle
    sm_arn = synth.stack.resolve(synth.stack.state_machine_arn)
    assert sm_arn["Fn::Join"][1][-1] == f":stateMachine:{synth.stack.state_machine_name}"


# -- API -----------------------------------------------------------------------------------------


def test_rest_api_requires_iam_auth_on_every_method_but_health_webhooks_and_the_console(synth: Synth) -> None:
    assert len(synth.of_type("AWS::ApiGateway::RestApi")) == 1
    validators = synth.of_type("AWS::ApiGateway::RequestValidator")
    assert len(validators) == 1
    api_function = synth.lid(synth.stack.functions.functions["api"])
    methods = synth.of_type("AWS::ApiGateway::Method")
    # ANY / and ANY /{proxy+} (SigV4); GET /health and POST /webhooks/{channel_id} (public by contract);
    # ANY /console-api and ANY /console-api/{proxy+} (Cognito), with their two CORS preflights (OPTIONS, mock)
    assert len(methods) == 8
    resources = {lid: r["Properties"].get("PathPart") for lid, r in synth.of_type("AWS::ApiGateway::Resource").items()}
    public, by_auth = set(), {}
    for method in methods.values():
        props = method["Properties"]
        where = (props["HttpMethod"], resources.get(props["ResourceId"].get("Ref")) or "/")
        by_auth.setdefault(props["AuthorizationType"], set()).add(where)
        if props["AuthorizationType"] == "NONE":
            public.add(where)
            continue
        assert props["AuthorizationType"] in ("AWS_IAM", "COGNITO_USER_POOLS")
        assert props["RequestValidatorId"] == {"Ref": next(iter(validators))}
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert api_function in json.dumps(props["Integration"]["Uri"])
    assert public == {("GET", "health"), ("POST", "{channel_id}"), ("OPTIONS", "console-api"), ("OPTIONS", "{proxy+}")}
    assert by_auth["AWS_IAM"] == {("ANY", "/"), ("ANY", "{proxy+}")}
    assert by_auth["COGNITO_USER_POOLS"] == {("ANY", "console-api"), ("ANY", "{proxy+}")}
    (stage,) = synth.of_type("AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["TracingEnabled"] is True
    assert "DestinationArn" in stage["Properties"]["AccessLogSetting"]
    (settings,) = stage["Properties"]["MethodSettings"]
    assert settings["LoggingLevel"] in ("ERROR", "INFO")
    assert settings["DataTraceEnabled"] is False


def test_outputs(synth: Synth) -> None:
    wanted = {"ApiUrl", "StateMachineArn", "AlarmTopicArn", "DashboardName", "ConsoleUrl", "ConsoleUserPoolId",
              "ConsoleClientId", "ConsoleSignInDomain"} | {
        f"{t.key.capitalize()}TableName" for t in TABLES}
    assert wanted <= set(synth.outputs)


# -- cdk-nag -------------------------------------------------------------------------------------

#: Every acknowledged finding. A new one must be added here on purpose, with its reason in the code.
EXPECTED_ACKNOWLEDGMENTS = {
    "AwsSolutions-IAM5[Resource::*]",
    "AwsSolutions-COG4",
    "AwsSolutions-APIG3",
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
    "AwsSolutions-SQS3",  # on the dead-letter queues themselves
    "AwsSolutions-S1",  # label bucket without server access logs
    "AwsSolutions-APIG4",  # GET /health and POST /webhooks/{channel_id}: public by contract
    "Serverless-LambdaDLQ",  # no function is invoked asynchronously by an event we could lose
    "Serverless-LambdaEventSourceMappingDestination",  # SQS sources: failures go to the queue's DLQ
    "Serverless-SQSRedrivePolicy",  # on the dead-letter queues themselves
    "AwsSolutions-SNS2",  # the alarm topic: alarm state changes only, CloudWatch cannot use the AWS managed key
    # the console (infra/constructs/console.py): CloudFront without geo restriction, WAF, access logs or a custom
    # certificate's TLS policy; CDK's own BucketDeployment handler (runtime, tracing, managed policy, its grants)
    "AwsSolutions-CFR1", "AwsSolutions-CFR2", "AwsSolutions-CFR3", "AwsSolutions-CFR4",
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
    "AwsSolutions-IAM5[Action::s3:GetBucket*]", "AwsSolutions-IAM5[Action::s3:GetObject*]",
    "AwsSolutions-IAM5[Action::s3:List*]", "AwsSolutions-IAM5[Action::s3:DeleteObject*]",
    "AwsSolutions-IAM5[Action::s3:Abort*]",
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]",
    "AwsSolutions-L1", "Serverless-LambdaTracing", "Serverless-LambdaLatestVersion",
}
#: Runtime-named resources under a fixed prefix: secrets per channel/carrier/supplier, labels, executions,
#: import schedules. Each acknowledged with its reason where the grant is made (infra/constructs/functions.py).
PREFIX_ACKS = re.compile(r"AwsSolutions-IAM5\[Resource::(arn:<AWS::Partition>:secretsmanager:.*:secret:orderflow/"
                         r"(channels|carriers|suppliers)/\*|<FunctionsLabels\w+\.Arn>/labels/\*|"
                         r"arn:<AWS::Partition>:states:.*:execution:orderflow-dev-order-workflow:\*|"
                         r"arn:<AWS::Partition>:scheduler:.*:schedule/<FunctionsImportSchedules\w+>/\*)\]")
CONSOLE_BUCKET_ACK = re.compile(r"AwsSolutions-IAM5\[Resource::<ConsoleFiles\w+\.Arn>/\*\]")
FUNCTION_VERSIONS_ACK = re.compile(r"AwsSolutions-IAM5\[Resource::<Functions\w+Function\w+\.Arn>:\*\]")


def test_cdk_nag_has_no_unacknowledged_findings(synth: Synth) -> None:
    assert nag.unacknowledged(synth.app) == []
    acknowledged = nag.acknowledged(synth.app)
    ids = {rule for _, rule, _ in acknowledged}
    versions = {i for i in ids if FUNCTION_VERSIONS_ACK.fullmatch(i)}
    prefixes = {i for i in ids if PREFIX_ACKS.fullmatch(i)}
    console_bucket = {i for i in ids if CONSOLE_BUCKET_ACK.fullmatch(i)}
    assert len(console_bucket) == 1
    assert ids - versions - prefixes - console_bucket == EXPECTED_ACKNOWLEDGMENTS
    assert len(prefixes) == 6
    assert len(versions) == len(asl.FUNCTION_PLACEHOLDERS)
    for path, rule, reason in acknowledged:
        assert len(reason) >= 80, (path, rule, reason)


def test_an_unacknowledged_finding_fails_synth(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Probe")
    # AwsSolutions-SQS3 and Serverless-SQSRedrivePolicy (no DLQ), AwsSolutions-SQS4 (no TLS)
    queue = sqs.Queue(stack, "Queue", enforce_ssl=False)
    Validations.of(queue).acknowledge(Acknowledgment(id="AwsSolutions-SQS3", reason="probe: acknowledged"))
    nag.add_checks(app)
    assert sorted(f.rule for f in nag.unacknowledged(app)) == ["AwsSolutions-SQS4", "Serverless-SQSRedrivePolicy"]
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()


def test_every_queue_has_a_dead_letter_queue_and_the_workflow_may_send_to_it(synth: Synth) -> None:
    from orderflow.queues import QUEUES

    queues = synth.template.find_resources("AWS::SQS::Queue")
    with_dlq = [q for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    assert len(with_dlq) == len(QUEUES) and len(queues) == 2 * len(QUEUES)
    for q in with_dlq:
        assert q["Properties"]["RedrivePolicy"]["maxReceiveCount"] in {queue.max_receives for queue in QUEUES}
    substitutions = next(iter(synth.template.find_resources("AWS::StepFunctions::StateMachine").values()))[
        "Properties"]["DefinitionSubstitutions"]
    assert set(asl.QUEUE_PLACEHOLDERS) <= set(substitutions)


def test_cfn_lint_finds_nothing_in_the_synthesized_template(synth: Synth) -> None:
    import subprocess
    import sys

    template = synth.outdir / synth.stack.template_file
    assert template.exists()
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    # W3005: CDK itself writes DependsOn on a function's role that it also GetAtt's (harmless, not ours).
    lint = subprocess.run([str(cfn_lint), "--format", "parseable", "--ignore-checks", "W3005", "--", str(template)],
                          capture_output=True, text=True, timeout=600)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_data_services_are_never_granted_a_wildcard_action(synth: Synth) -> None:
    data_services = ("dynamodb:", "sqs:", "states:", "secretsmanager:", "s3:", "scheduler:", "lambda:")
    cdk_handler = cdk_deployment_handler(synth)
    for lid, policy in [*synth.of_type("AWS::IAM::Policy").items(), *synth.of_type("AWS::IAM::Role").items()]:
        if lid in cdk_handler:
            continue  # CDK's BucketDeployment grants: tests/infra/test_console_on_aws.py holds them to its two buckets
        documents = [policy["Properties"].get("PolicyDocument")] + [
            p["PolicyDocument"] for p in policy["Properties"].get("Policies", [])]
        for document in filter(None, documents):
            for statement in document["Statement"]:
                for action in _list(statement.get("Action", [])):
                    if isinstance(action, str) and action.startswith(data_services):
                        assert "*" not in action, (action, statement)


def test_fifo_queues_are_fifo_with_their_delay_and_a_fifo_dead_letter_queue(synth: Synth) -> None:
    """The stock-sync consumer sends with MessageGroupId/MessageDeduplicationId: on a standard queue every
    send is refused (it was, on AWS, until this test)."""
    from orderflow.queues import QUEUES

    for queue in QUEUES:
        props = synth.resources[synth.lid(synth.stack.queues.queues[queue.key])]["Properties"]
        dlq = synth.resources[synth.lid(synth.stack.queues.dlqs[queue.key])]["Properties"]
        assert bool(props.get("FifoQueue")) is queue.fifo, queue.key
        assert bool(dlq.get("FifoQueue")) is queue.fifo, queue.key
        assert props.get("DelaySeconds", 0) == queue.delay_seconds, queue.key
    assert any(q.fifo for q in QUEUES)


def test_tables_whose_items_expire_have_ttl_on_that_attribute(synth: Synth) -> None:
    assert any(t.ttl_attribute for t in TABLES)
    for definition in TABLES:
        props = synth.resources[synth.lid(synth.stack.data.tables[definition.key])]["Properties"]
        if definition.ttl_attribute:
            assert props["TimeToLiveSpecification"] == {"AttributeName": definition.ttl_attribute, "Enabled": True}
        else:
            assert "TimeToLiveSpecification" not in props


def test_a_function_that_invokes_another_is_told_its_name_and_may_invoke_it(synth: Synth) -> None:
    from infra.constructs.functions import function_env_var
    from orderflow.api.suppliers import POLL_FUNCTION_ENV

    api = synth.stack.functions
    assert function_env_var("poll_tracking") == POLL_FUNCTION_ENV
    for spec in FUNCTION_SPECS:
        env = synth.resources[synth.lid(api.functions[spec.name])]["Properties"]["Environment"]["Variables"]
        for target in spec.invokes:
            assert env[function_env_var(target)] == {"Ref": synth.lid(api.functions[target])}
            statements = synth.statements(synth.lid(api.roles[spec.name]))
            invoke = [s for s in statements if "lambda:InvokeFunction" in _list(s["Action"])]
            assert any({"Fn::GetAtt": [synth.lid(api.functions[target]), "Arn"]} in _list(s["Resource"])
                       for s in invoke)
    assert any(spec.invokes for spec in FUNCTION_SPECS)


def test_tables_are_protected_from_deletion(synth: Synth) -> None:
    """Issue 11: no stack delete, replacement or console click removes the seller's data."""
    tables = synth.of_type("AWS::DynamoDB::Table")
    assert len(tables) == len(TABLES)
    for resource in tables.values():
        assert resource["Properties"]["DeletionProtectionEnabled"] is True
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"


def test_state_machine_logs_keep_task_tokens_and_personal_data_out(synth: Synth) -> None:
    """Execution data (inputs, outputs, task parameters: task tokens, names and addresses) never reaches the log."""
    props = next(iter(synth.of_type("AWS::StepFunctions::StateMachine").values()))["Properties"]
    logging = props["LoggingConfiguration"]
    assert logging["IncludeExecutionData"] is False
    assert logging["Level"] in ("ALL", "ERROR")
    [destination] = logging["Destinations"]
    log_group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert synth.resources[log_group]["Type"] == "AWS::Logs::LogGroup"
    assert synth.resources[log_group]["Properties"]["RetentionInDays"] > 0


# -- operations: alarms, their topic, the dashboard ---------------------------------------------


def _alarms(synth: Synth, namespace: str, metric: str) -> list[dict[str, Any]]:
    return [a["Properties"] for a in synth.of_type("AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("Namespace") == namespace and a["Properties"].get("MetricName") == metric]


def _dimension(alarm: dict[str, Any], name: str) -> Any:
    return next(d["Value"] for d in alarm["Dimensions"] if d["Name"] == name)


def test_every_alarm_notifies_the_alarm_topic(synth: Synth) -> None:
    [topic] = synth.of_type("AWS::SNS::Topic")
    alarms = synth.of_type("AWS::CloudWatch::Alarm")
    assert alarms
    for alarm in alarms.values():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": topic}]
        assert props["OKActions"] == [{"Ref": topic}]
        assert props.get("ActionsEnabled", True) is True
        assert len(props["AlarmDescription"]) > 20
    assert not synth.of_type("AWS::SNS::Subscription")  # no email unless the context names one
    # The topic's policy (TLS only) must still let CloudWatch alarms publish.
    [policy] = synth.of_type("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
               and s["Action"] == "sns:Publish" for s in statements)


def test_every_dead_letter_queue_has_a_depth_alarm(synth: Synth) -> None:
    alarms = _alarms(synth, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    watched = {_dimension(a, "QueueName")["Fn::GetAtt"][0] for a in alarms}
    assert watched == {synth.lid(dlq) for dlq in synth.stack.queues.dlqs.values()}
    for alarm in alarms:
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
        assert alarm["EvaluationPeriods"] == 1


def test_failed_timed_out_and_aborted_executions_raise_alarms(synth: Synth) -> None:
    machine = synth.lid(synth.stack.workflow.state_machine)
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"):
        [alarm] = _alarms(synth, "AWS/States", metric)
        assert _dimension(alarm, "StateMachineArn") == {"Ref": machine}
        assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["Statistic"]) == (
            "GreaterThanThreshold", 0, "Sum")


def test_orders_needing_attention_raise_an_alarm_on_the_emitted_metric(synth: Synth) -> None:
    from orderflow import observability

    [alarm] = _alarms(synth, observability.NAMESPACE, observability.ATTENTION_BACKLOG)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": observability.SERVICE}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["Statistic"]) == (
        "GreaterThanThreshold", 0, "Maximum")
    # the reconciler (every 5 minutes) reports it: its grant covers the by_status index it counts
    reconcile = next(s for s in FUNCTION_SPECS if s.name == "reconcile")
    assert reconcile.schedule_minutes and alarm["Period"] >= 60 * reconcile.schedule_minutes
    assert "orders" in reconcile.tables


def test_every_function_has_throttle_and_error_alarms(synth: Synth) -> None:
    functions = {synth.lid(f) for f in synth.stack.functions.functions.values()}
    for metric, threshold in (("Throttles", 0), ("Errors", None)):
        alarms = _alarms(synth, "AWS/Lambda", metric)
        assert {_dimension(a, "FunctionName")["Ref"] for a in alarms} == functions
        for alarm in alarms:
            assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Statistic"] == "Sum"
            if threshold is not None:
                assert alarm["Threshold"] == threshold


def test_dashboard_shows_the_order_metrics_and_every_alarm(synth: Synth) -> None:
    from orderflow import observability

    [dashboard] = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = "".join(p if isinstance(p, str) else json.dumps(p) for p in parts)
    for name in observability.METRIC_NAMES:
        assert f'"{name}"' in text, name
    for step in ("prepare", "fulfill"):
        assert f'"step","{step}"' in text, step
    for metric in ("ExecutionsFailed", "ApproximateNumberOfMessagesVisible", "Throttles", "Errors"):
        assert f'"{metric}"' in text, metric
    alarm_refs = {p["Fn::GetAtt"][0] for p in parts if isinstance(p, dict) and "Fn::GetAtt" in p
                  and synth.resources[p["Fn::GetAtt"][0]]["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarm_refs == set(synth.of_type("AWS::CloudWatch::Alarm"))


def test_xray_sdk_context_lets_the_handlers_trace(tmp_path: Path) -> None:
    _, stack = build_app(outdir=str(tmp_path), context={"xray_sdk": "true"})
    functions = Template.from_stack(stack).find_resources("AWS::Lambda::Function")
    ours = [f for f in functions.values() if f["Properties"].get("Handler", "").startswith("functions.")]
    assert len(ours) == len(FUNCTION_NAMES)
    for function in ours:
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}
        assert "POWERTOOLS_TRACE_DISABLED" not in function["Properties"]["Environment"]["Variables"]


def test_alarm_email_context_subscribes_the_address(tmp_path: Path) -> None:
    app, stack = build_app(outdir=str(tmp_path), context={"alarm_email": "ops@example.com"})
    app.synth()  # cdk-nag stays clean with the subscription too
    assert nag.unacknowledged(app) == []
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::SNS::Subscription", 1)
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"})
