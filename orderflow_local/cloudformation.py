"""Deploy the synthesized template into the embedded AWS with CloudFormation, and read back what it made.

What moto's CloudFormation leaves out, and what this module adds (:func:`fill_moto_gaps`), each the way
CloudFormation does it on AWS:

- ``AWS::StepFunctions::StateMachine`` with ``DefinitionS3Location`` and ``DefinitionSubstitutions`` (how CDK
  ships a definition file): the definition is read from the asset bucket and its ``${placeholders}`` filled;
- ``AWS::SQS::Queue`` with ``FifoQueue`` and no name: the generated name ends in ``.fifo``;
- ``AWS::DynamoDB::Table``'s ``TimeToLiveSpecification``;
- ``AWS::Scheduler::ScheduleGroup`` and ``AWS::Scheduler::Schedule``: created in moto's EventBridge Scheduler
  (moto stores schedules but never fires them: :mod:`orderflow_local.schedules` fires them);
- the types served by the local stack itself or not needed locally (:data:`RESOURCE_TYPES`) are acknowledged so
  they do not warn;
- ``AWS::ApiGateway::Method`` with a ``MOCK`` integration (CDK's CORS preflights): moto wants an HTTP method and
  URI for every integration.

The operator console's AWS side (CloudFront, the Cognito user pool, the API's Cognito authorizer and the
``Custom::CDKBucketDeployment`` that copies ``console/`` to S3) is *left out* of the local deploy
(:func:`local_template`): the local stack serves the console itself at ``/console/`` with its token sign-in,
and a Lambda-backed custom resource would leave moto's CloudFormation waiting for an answer that never comes.

:data:`RESOURCE_TYPES` says, for every resource type the template uses, how it is served locally; a test
fails on a type nobody handled.
"""

from __future__ import annotations

import io
import json
import re
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orderflow_local.template import stack_template

ACCOUNT = "123456789012"
REGION = "us-east-1"

EMULATED = "emulated by moto (created by its CloudFormation)"
LEFT_OUT = "left out of the local deploy"
CONSOLE_LOCALLY = "the local stack serves the console at /console/ with its own token sign-in (orderflow_local.console)"
#: Every resource type of the template -> how the local stack serves it.
RESOURCE_TYPES: dict[str, str] = {
    "AWS::DynamoDB::Table": EMULATED + "; TTL applied by orderflow_local.cloudformation",
    "AWS::SQS::Queue": EMULATED + "; FIFO names as CloudFormation generates them",
    "AWS::StepFunctions::StateMachine": EMULATED + " and run by moto's ASL interpreter; the definition is read "
                                                   "from the asset bucket (DefinitionS3Location)",
    "AWS::Lambda::Function": EMULATED + "; each runs its Handler in-process with its own environment "
                                        "(orderflow_local.functions)",
    "AWS::Lambda::LayerVersion": EMULATED + "; the dependencies are the local virtualenv's",
    "AWS::Lambda::EventSourceMapping": EMULATED + "; served by orderflow_local.queues (batch size, partial "
                                                  "batch responses, maximum concurrency)",
    "AWS::Lambda::Permission": EMULATED,
    "AWS::IAM::Role": EMULATED + " (not enforced locally)",
    "AWS::IAM::Policy": EMULATED + " (not enforced locally)",
    "AWS::Logs::LogGroup": EMULATED + "; the local stack logs to its console",
    "AWS::S3::Bucket": EMULATED + "; labels are kept in <state dir>/labels locally (they survive restarts)",
    "AWS::Scheduler::ScheduleGroup": "created in moto's EventBridge Scheduler by orderflow_local.cloudformation",
    "AWS::Scheduler::Schedule": "created in moto's EventBridge Scheduler by orderflow_local.cloudformation; fired "
                                "by orderflow_local.schedules",
    "AWS::ApiGateway::RestApi": EMULATED + "; served by orderflow_local.http_front from the template's methods",
    "AWS::ApiGateway::Resource": EMULATED + "; its methods decide which routes need auth locally",
    "AWS::ApiGateway::Method": EMULATED + "; AWS_IAM methods need the local bearer token, NONE are public",
    "AWS::ApiGateway::Deployment": EMULATED,
    "AWS::ApiGateway::Stage": "not needed locally: the local API is served at the root, without a stage name, "
                              "throttling or access logs",
    "AWS::ApiGateway::Account": "not needed locally: the account's CloudWatch role for API Gateway logs",
    "AWS::ApiGateway::RequestValidator": "not needed locally: the API function validates every body with pydantic",
    "AWS::SQS::QueuePolicy": "not needed locally: it refuses non-TLS requests on AWS (the local endpoint is "
                             "loopback HTTP)",
    "AWS::S3::BucketPolicy": "not needed locally: it refuses non-TLS requests on AWS",
    "AWS::SNS::Topic": EMULATED + "; the alarm topic: nothing publishes to it locally",
    "AWS::SNS::TopicPolicy": "not needed locally: it refuses non-TLS requests and lets CloudWatch alarms publish "
                             "on AWS (moto's CloudFormation cannot create it)",
    "AWS::CloudWatch::Alarm": "not needed locally: the alarms watch AWS's own metrics (DLQ depth, executions, "
                              "Lambda throttles and errors) and the EMF metrics, which the local stack does not "
                              "emit (POWERTOOLS_METRICS_DISABLED); moto's CloudFormation cannot create them",
    "AWS::CloudWatch::Dashboard": "not needed locally: nothing local fills its metrics, and it shows the alarms, "
                                  "which are not created locally",
    "AWS::ApiGateway::GatewayResponse": "not needed locally: it adds the console's CORS header to API Gateway's "
                                        "own errors on AWS; locally the console is on the API's origin",
    "AWS::ApiGateway::Authorizer": LEFT_OUT + ": the Cognito user pool authorizer of /console-api/...; locally "
                                              "every method that is not NONE needs the stack's bearer token",
    "AWS::Cognito::UserPool": LEFT_OUT + ": the console's users on AWS; " + CONSOLE_LOCALLY,
    "AWS::Cognito::UserPoolClient": LEFT_OUT + ": the console's hosted-UI client on AWS; " + CONSOLE_LOCALLY,
    "AWS::Cognito::UserPoolDomain": LEFT_OUT + ": the hosted UI's domain on AWS; " + CONSOLE_LOCALLY,
    "AWS::CloudFront::Distribution": LEFT_OUT + ": serves the console's bucket on AWS; " + CONSOLE_LOCALLY,
    "AWS::CloudFront::OriginAccessControl": LEFT_OUT + ": CloudFront's access to the console bucket; "
                                            + CONSOLE_LOCALLY,
    "AWS::CloudFront::ResponseHeadersPolicy": LEFT_OUT + ": the console's CSP on CloudFront; orderflow_local.console "
                                                         "sends its own",
    "Custom::CDKBucketDeployment": LEFT_OUT + ", with the Lambda function, role, policy, layer and log group that "
                                              "serve only it: it copies console/ and config.json to S3 on AWS; "
                                              "locally console/ is read from the checkout (and moto's "
                                              "CloudFormation would wait for the custom resource's answer)",
}
NOT_NEEDED = [t for t, how in RESOURCE_TYPES.items() if how.startswith("not needed locally")]
LEFT_OUT_TYPES = [t for t, how in RESOURCE_TYPES.items() if how.startswith(LEFT_OUT)]


@dataclass
class FunctionInfo:
    name: str  # functions/<name>/ (from its Handler)
    physical_name: str
    arn: str
    handler: str
    environment: dict[str, str]
    memory_mb: int = 512
    timeout_s: int = 30


@dataclass
class EventSourceMapping:
    function: str  # short name
    queue_url: str
    queue_arn: str
    batch_size: int = 10
    report_batch_item_failures: bool = False
    maximum_concurrency: int | None = None
    batching_window_s: int = 0


@dataclass
class Route:
    path: str  # /health, /webhooks/{channel_id}, /{proxy+}
    method: str  # GET, POST, ANY
    authorization: str  # NONE, AWS_IAM, COGNITO_USER_POOLS...

    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\{[^}/]+\+\}", ".+", self.path)
        regex = re.sub(r"\{[^}/]+\}", "[^/]+", regex)
        return re.compile(f"^{regex}$")

    @property
    def specificity(self) -> tuple[int, int]:
        """API Gateway prefers literal segments over {param} over {proxy+}."""
        segments = [s for s in self.path.split("/") if s]
        greedy = any(s.endswith("+}") for s in segments)
        literal = sum(1 for s in segments if not s.startswith("{"))
        return (0 if greedy else 1, literal * 100 + len(segments))


@dataclass
class Deployment:
    """What the deployed stack is made of, read back from CloudFormation and the services."""

    stack_name: str
    resource_types: dict[str, str] = field(default_factory=dict)  # logical id -> type
    tables: dict[str, str] = field(default_factory=dict)  # orderflow.tables key -> table name
    queues: dict[str, str] = field(default_factory=dict)  # orderflow.queues key (and <key>-dlq) -> url
    state_machine_arn: str = ""
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    event_source_mappings: list[EventSourceMapping] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    left_out: set[str] = field(default_factory=set)  # logical ids of the template not deployed locally

    def function_by_arn(self, arn_or_name: str) -> FunctionInfo | None:
        name = arn_or_name.split(":")[6] if arn_or_name.startswith("arn:") else arn_or_name
        return next((f for f in self.functions.values() if f.physical_name == name), None)

    def route_for(self, method: str, path: str) -> Route | None:
        """The template's method that serves ``method path`` (the most specific resource that has it)."""
        candidates = [r for r in self.routes if r.pattern().match(path) and r.method in (method, "ANY")]
        return max(candidates, key=lambda r: r.specificity, default=None)


# -- what moto's CloudFormation leaves out ------------------------------------------------------------

_filled = False


def fill_moto_gaps() -> None:
    global _filled
    if _filled:
        return
    from moto.apigateway.models import Method
    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.table import Table
    from moto.s3.models import s3_backends
    from moto.scheduler.models import scheduler_backends
    from moto.sqs.models import Queue
    from moto.stepfunctions.models import StateMachine

    for resource_type in NOT_NEEDED:
        if resource_type not in parsing.NULL_MODELS:
            parsing.NULL_MODELS.append(resource_type)
        # moto warns of each type it skips; RESOURCE_TYPES says why these are fine
        warnings.filterwarnings("ignore", message=f"Tried to parse {re.escape(resource_type)} ")

    def state_machine(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):  # noqa: ANN001, ANN202
        props = cloudformation_json["Properties"]
        location = props.get("DefinitionS3Location")
        if location and not props.get("DefinitionString"):
            key = s3_backends[account_id]["global"].get_object(location["Bucket"], location["Key"])
            definition = key.value.decode()
            for name, value in (props.get("DefinitionSubstitutions") or {}).items():
                definition = definition.replace("${" + name + "}", str(value))
            props["DefinitionString"] = definition
        # moto's CloudFormation creates it in the plain backend; the API (with execute_state_machine) serves
        # the ASL interpreter's backend: create it where StartExecution will look for it.
        from moto.stepfunctions.responses import get_backend
        from moto.utilities.tagging_service import TaggingService

        return get_backend(account_id, region_name).create_state_machine(
            props.get("StateMachineName", resource_name), props.get("DefinitionString", ""), props.get("RoleArn", ""),
            tags=TaggingService.convert_dict_to_tags_input(
                {t["Key"]: t["Value"] for t in props.get("Tags", [])}) if props.get("Tags") else None)

    StateMachine.create_from_cloudformation_json = classmethod(state_machine)

    original_method = Method.create_from_cloudformation_json.__func__

    def method(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):  # noqa: ANN001, ANN202
        integration = cloudformation_json["Properties"].get("Integration") or {}
        if integration.get("Type") == "MOCK":  # no backend: moto still wants a method and a URI
            integration.setdefault("IntegrationHttpMethod", cloudformation_json["Properties"]["HttpMethod"])
            integration.setdefault("Uri", "")
        return original_method(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    Method.create_from_cloudformation_json = classmethod(method)

    original_queue = Queue.create_from_cloudformation_json.__func__

    def queue(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):  # noqa: ANN001, ANN202
        props = cloudformation_json["Properties"]
        if str(props.get("FifoQueue")).lower() == "true" and not props.get("QueueName"):
            resource_name = str(resource_name)[:75] + ".fifo"  # CloudFormation's generated FIFO names
        return original_queue(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    Queue.create_from_cloudformation_json = classmethod(queue)

    original_table = Table.create_from_cloudformation_json.__func__

    def table(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):  # noqa: ANN001, ANN202
        created = original_table(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        ttl = cloudformation_json["Properties"].get("TimeToLiveSpecification")
        if ttl:
            dynamodb_backends[account_id][region_name].update_time_to_live(created.name, ttl)
        return created

    Table.create_from_cloudformation_json = classmethod(table)

    class _Scheduled:
        def __init__(self, name: str, arn: str) -> None:
            self.name, self.arn = name, arn

        @property
        def physical_resource_id(self) -> str:
            return self.name

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name: str) -> Any:
            if attribute_name == "Arn":
                return self.arn
            raise NotImplementedError(attribute_name)

        @classmethod
        def update_from_cloudformation_json(cls, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            raise NotImplementedError("the local stack deploys once; restart it for a new template")

    # moto finds models among CloudFormationModel's *direct* subclasses
    class ScheduleGroup(_Scheduled, CloudFormationModel):
        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Scheduler::ScheduleGroup"

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,  # noqa: ANN001
                                            **kwargs):  # noqa: ANN003, ANN206
            name = str(resource_name)[:64]
            group = scheduler_backends[account_id][region_name].create_schedule_group(name=name, tags=[])
            return cls(name, group.arn)

    class Schedule(_Scheduled, CloudFormationModel):
        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Scheduler::Schedule"

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,  # noqa: ANN001
                                            **kwargs):  # noqa: ANN003, ANN206
            props = cloudformation_json["Properties"]
            name = str(resource_name)[:64]
            created = scheduler_backends[account_id][region_name].create_schedule(
                description=props.get("Description"), end_date=props.get("EndDate"),
                flexible_time_window=props.get("FlexibleTimeWindow"), group_name=props.get("GroupName"),
                kms_key_arn=props.get("KmsKeyArn"), name=name, schedule_expression=props["ScheduleExpression"],
                schedule_expression_timezone=props.get("ScheduleExpressionTimezone"),
                start_date=props.get("StartDate"), state=props.get("State"), target=props["Target"],
                action_after_completion=None)
            return cls(name, created.arn)

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    _filled = True


# -- what is left out locally ---------------------------------------------------------------------------


def _references(value: Any) -> set[str]:
    """Logical ids ``value`` names: Ref, Fn::GetAtt and Fn::Sub's ``${Id}``/``${Id.Attr}``."""
    found: set[str] = set()
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else str(target).split(".")[0])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"][0] if isinstance(value["Fn::Sub"], list) else value["Fn::Sub"]
            found |= {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", str(text))}
        for item in value.values():
            found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def _stand_in(value: Any, left_out: set[str]) -> Any:
    """``value`` with every reference to a left-out resource replaced by a plain string saying so."""
    if isinstance(value, dict):
        if value.get("Ref") in left_out:
            return f"{value['Ref']}.not-deployed-locally.invalid"
        target = value.get("Fn::GetAtt")
        if isinstance(target, list) and target[0] in left_out:
            return f"{target[0]}-{target[1]}.not-deployed-locally.invalid".lower()
        return {k: _stand_in(v, left_out) for k, v in value.items()}
    if isinstance(value, list):
        return [_stand_in(item, left_out) for item in value]
    return value


def local_template(template: dict) -> tuple[dict, set[str]]:
    """The template the local stack deploys, and the logical ids it leaves out: the resources of the types
    :data:`RESOURCE_TYPES` says are left out, and those that only they use (the custom resource's Lambda
    function, then its role, policy, layer and log group). What is kept and names a left-out resource gets a
    plain stand-in string instead (the API function's console origin, the console methods' authorizer id);
    outputs naming one are dropped."""
    resources = template["Resources"]
    referrers: dict[str, set[str]] = {logical: set() for logical in resources}
    for logical, resource in resources.items():
        depends = resource.get("DependsOn", [])
        for target in _references(resource.get("Properties", {})) | set(
                [depends] if isinstance(depends, str) else depends):
            if target in referrers:
                referrers[target].add(logical)
    left_out = {logical for logical, r in resources.items() if r["Type"] in LEFT_OUT_TYPES}
    while True:
        serving = {logical for logical, users in referrers.items()
                   if logical not in left_out and users and users <= left_out}
        if not serving:
            break
        left_out |= serving
    kept: dict[str, Any] = {}
    for logical, resource in resources.items():
        if logical in left_out:
            continue
        resource = _stand_in(resource, left_out)
        depends = resource.get("DependsOn")
        if depends is not None:
            depends = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in left_out]
            if depends:
                resource["DependsOn"] = depends
            else:
                resource.pop("DependsOn")
        kept[logical] = resource
    outputs = {key: output for key, output in (template.get("Outputs") or {}).items()
               if not _references(output) & left_out}
    local = {**template, "Resources": kept}
    if "Outputs" in template:
        local["Outputs"] = outputs
    return local, left_out


# -- deploy ---------------------------------------------------------------------------------------------


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("LOCAL.txt", "The local stack runs this function's handler in-process from the checkout.\n")
    return buffer.getvalue()


def publish_assets(s3: Any, folder: Path, manifest: dict) -> None:
    """What ``cdk deploy`` does before the stack: the bootstrap bucket holds every asset the template names.
    File assets (the state machine's definition) are the real files; code bundles are a placeholder zip."""
    bucket = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
    s3.create_bucket(Bucket=bucket)
    placeholder = _placeholder_zip()
    for asset in manifest.get("files", {}).values():
        for destination in asset["destinations"].values():
            source = folder / Path(asset["source"]["path"]).name
            body = placeholder if asset["source"].get("packaging") == "zip" else source.read_bytes()
            s3.put_object(Bucket=bucket, Key=destination["objectKey"], Body=body)


def deploy(folder: Path, client: Any) -> Deployment:
    """Create the template's stack with CloudFormation and read back what it made. ``client(service)`` gives
    a boto3 client of the embedded AWS."""
    fill_moto_gaps()
    stack_name, template, manifest = stack_template(folder)
    template, left_out = local_template(template)
    for parameter in template.get("Parameters", {}).values():
        if parameter.get("Type", "").startswith("AWS::SSM::Parameter::Value"):
            # the CDK bootstrap version the template checks (cdk bootstrap writes it)
            client("ssm").put_parameter(Name=parameter["Default"], Value="30", Type="String", Overwrite=True)
    publish_assets(client("s3"), folder, manifest)
    cloudformation = client("cloudformation")
    cloudformation.create_stack(StackName=stack_name, TemplateBody=json.dumps(template),
                                Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"])
    deadline = time.monotonic() + 60
    while True:
        status = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        if status["StackStatus"].endswith("_COMPLETE") or status["StackStatus"].endswith("_FAILED"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"stack {stack_name} is still {status['StackStatus']}")
        time.sleep(0.1)
    if status["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"stack {stack_name}: {status['StackStatus']} {status.get('StackStatusReason') or ''}")
    deployment = read_deployment(stack_name, template, client)
    deployment.left_out = left_out
    return deployment


def read_deployment(stack_name: str, template: dict, client: Any) -> Deployment:
    from orderflow.queues import QUEUES
    from orderflow.tables import TABLES

    resources = template["Resources"]
    summaries: list[dict] = []
    paginator = client("cloudformation").get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack_name):
        summaries += page["StackResourceSummaries"]
    physical = {s["LogicalResourceId"]: s.get("PhysicalResourceId", "") for s in summaries}
    deployment = Deployment(stack_name, resource_types={k: r["Type"] for k, r in resources.items()})

    # Tables and queues are matched to their definitions by the logical id CDK gives them: the construct path
    # (Data/<id>, Queues/<id>) followed by a hash of it.
    def by_path(*parts: str) -> str | None:
        pattern = re.compile("^" + "".join(parts) + "[0-9A-F]{8}$")
        return next((logical for logical in resources if pattern.match(logical)), None)

    for table in TABLES:
        logical = by_path("Data", table.construct_id)
        if logical is None:
            raise RuntimeError(f"the template has no table for {table.key}")
        deployment.tables[table.key] = physical[logical]
    for queue in QUEUES:
        for key, construct in ((queue.key, queue.construct_id), (queue.dlq_key(), queue.construct_id + "Dlq")):
            logical = by_path("Queues", construct)
            if logical is None:
                raise RuntimeError(f"the template has no queue {key}")
            deployment.queues[key] = physical[logical]
    for logical, resource in resources.items():
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            deployment.state_machine_arn = physical[logical]

    lam = client("lambda")
    for logical, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        config = lam.get_function_configuration(FunctionName=physical[logical])
        handler = config["Handler"]
        name = handler.split(".")[1] if handler.startswith("functions.") else handler.rsplit(".", 1)[0]
        deployment.functions[name] = FunctionInfo(
            name=name, physical_name=config["FunctionName"], arn=config["FunctionArn"], handler=handler,
            environment=dict(config.get("Environment", {}).get("Variables", {})),
            memory_mb=config.get("MemorySize", 128), timeout_s=config.get("Timeout", 3))

    sqs = client("sqs")
    urls_by_arn = {}
    for url in deployment.queues.values():
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        urls_by_arn[arn] = url
    for mapping in lam.list_event_source_mappings()["EventSourceMappings"]:
        function = deployment.function_by_arn(mapping["FunctionArn"])
        if function is None or mapping["EventSourceArn"] not in urls_by_arn:
            continue
        deployment.event_source_mappings.append(EventSourceMapping(
            function=function.name, queue_url=urls_by_arn[mapping["EventSourceArn"]],
            queue_arn=mapping["EventSourceArn"], batch_size=mapping.get("BatchSize", 10),
            report_batch_item_failures="ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []),
            maximum_concurrency=(mapping.get("ScalingConfig") or {}).get("MaximumConcurrency"),
            batching_window_s=mapping.get("MaximumBatchingWindowInSeconds", 0)))

    deployment.routes = _routes(resources)
    return deployment


def _routes(resources: dict) -> list[Route]:
    """The REST API's methods with their resource paths (from the template: PathPart/ParentId chains)."""
    def path_of(ref: Any) -> str:
        if isinstance(ref, dict) and "Ref" in ref:
            resource = resources[ref["Ref"]]
            parent = resource["Properties"]["ParentId"]
            return path_of(parent).rstrip("/") + "/" + resource["Properties"]["PathPart"]
        return "/"  # Fn::GetAtt [RestApi, RootResourceId]

    routes = []
    for resource in resources.values():
        if resource["Type"] != "AWS::ApiGateway::Method":
            continue
        props = resource["Properties"]
        routes.append(Route(path=path_of(props["ResourceId"]), method=props["HttpMethod"],
                            authorization=props.get("AuthorizationType", "NONE")))
    return routes
