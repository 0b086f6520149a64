"""The local stack is the template's stack: deployed with CloudFormation, and what runs is what it lists."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from orderflow.adapters.aws import client
from orderflow.queues import QUEUES, STOCK_SYNC
from orderflow.tables import TABLES
from orderflow_local import cloudformation, function_env, lambda_binding
from orderflow_local.template import stack_template, synthesized


@pytest.fixture(scope="module")
def template():
    return stack_template(synthesized())[1]


def test_every_resource_type_of_the_template_says_how_it_is_served_locally(template):
    types = {resource["Type"] for resource in template["Resources"].values()}
    unhandled = types - set(cloudformation.RESOURCE_TYPES)
    assert not unhandled, f"resource type(s) nobody handled locally: {sorted(unhandled)} (see RESOURCE_TYPES)"
    stale = set(cloudformation.RESOURCE_TYPES) - types
    assert not stale, f"RESOURCE_TYPES lists type(s) the template no longer has: {sorted(stale)}"
    for how in cloudformation.RESOURCE_TYPES.values():
        assert how.strip(), "each type says how it is served, or why it is not needed"


def test_cloudformation_shows_the_stack_and_the_system_uses_its_resources(stack, template):
    # what the local stack deploys: the template without the console's AWS side (cloudformation.local_template)
    template, left_out = cloudformation.local_template(template)
    assert left_out == stack.deployment.left_out
    cfn = client("cloudformation")
    described = cfn.describe_stacks(StackName=stack.deployment.stack_name)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    summaries = cfn.list_stack_resources(StackName=stack.deployment.stack_name)["StackResourceSummaries"]
    physical = {s["LogicalResourceId"]: s["PhysicalResourceId"] for s in summaries if s["LogicalResourceId"]}
    assert set(physical) == {k for k, r in template["Resources"].items()
                             if r["Type"] not in cloudformation.NOT_NEEDED}
    listed_tables = {physical[k] for k, r in template["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"}
    assert listed_tables == set(stack.deployment.tables.values()) == set(client("dynamodb").list_tables()["TableNames"])
    listed_queues = {physical[k] for k, r in template["Resources"].items() if r["Type"] == "AWS::SQS::Queue"}
    assert {u.rsplit("/", 1)[-1] for u in listed_queues} == {u.rsplit("/", 1)[-1] for u in stack.queue_urls.values()}
    listed_functions = {physical[k] for k, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert listed_functions == {f.physical_name for f in stack.deployment.functions.values()}
    assert all(lambda_binding.bound(name) is not None for name in listed_functions)
    machine = next(physical[k] for k, r in template["Resources"].items()
                   if r["Type"] == "AWS::StepFunctions::StateMachine")
    assert machine == stack.state_machine_arn
    # the definition the state machine runs is the ASL file, filled with the deployed resources
    definition = client("stepfunctions").describe_state_machine(stateMachineArn=machine)["definition"]
    assert "${" not in definition
    assert stack.deployment.functions["prepare"].arn in definition
    # the running system's configuration names these resources
    assert {stack.environment()[t.env_var] for t in TABLES} == listed_tables
    assert len(TABLES) == 4 and len(stack.deployment.queues) == 2 * len(QUEUES)


def test_fifo_queue_ttl_and_event_source_mappings_come_from_the_template(stack):
    attributes = client("sqs").get_queue_attributes(QueueUrl=stack.queue_urls[STOCK_SYNC.key],
                                                    AttributeNames=["All"])["Attributes"]
    assert attributes["FifoQueue"] == "true" and stack.queue_urls[STOCK_SYNC.key].endswith(".fifo")
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].endswith(".fifo")
    for table in TABLES:
        ttl = client("dynamodb").describe_time_to_live(TableName=stack.deployment.tables[table.key])[
            "TimeToLiveDescription"]
        if table.ttl_attribute:
            assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": table.ttl_attribute}
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED"
    served = {(p.function, p.queue_url) for p in stack.pollers if getattr(p, "function", None)}
    mapped = {(m.function, m.queue_url) for m in stack.deployment.event_source_mappings}
    assert mapped == {(q.consumer, stack.queue_urls[q.key]) for q in QUEUES}
    assert mapped <= served  # each mapping has its poller (tests swap a poller's handler, never stop it)
    for mapping in stack.deployment.event_source_mappings:
        assert mapping.batch_size == 10 and mapping.report_batch_item_failures


def test_a_function_sees_only_its_template_variables(stack):
    """A variable CDK does not give a function is missing inside it, though the process has it."""
    seen: dict[str, dict] = {}

    def spy(name):
        def handler(event, context):
            import os

            seen[name] = {k: os.environ.get(k) for k in ("ORDERFLOW_STATE_MACHINE_ARN", "ORDERFLOW_LEDGER_TABLE",
                                                         "AWS_LAMBDA_FUNCTION_NAME", "AWS_ENDPOINT_URL")}
            return {}
        return handler

    originals = {}
    try:
        for name in ("tell_channel", "api"):
            physical = stack.deployment.functions[name].physical_name
            originals[name] = lambda_binding.bound(physical).handler
            lambda_binding.bind(physical, spy(name))
            lambda_binding.invoke(physical, {})
    finally:
        for name, handler in originals.items():
            lambda_binding.bind(stack.deployment.functions[name].physical_name, handler)
    import os

    assert os.environ["ORDERFLOW_STATE_MACHINE_ARN"] and os.environ["ORDERFLOW_LEDGER_TABLE"]  # the process has both
    # tell_channel neither starts executions nor touches the ledger (infra/constructs/functions.py)
    assert seen["tell_channel"]["ORDERFLOW_STATE_MACHINE_ARN"] is None
    assert seen["tell_channel"]["ORDERFLOW_LEDGER_TABLE"] is None
    assert seen["tell_channel"]["AWS_LAMBDA_FUNCTION_NAME"] == stack.deployment.functions["tell_channel"].physical_name
    assert seen["api"]["ORDERFLOW_STATE_MACHINE_ARN"] == stack.state_machine_arn
    assert seen["api"]["ORDERFLOW_LEDGER_TABLE"] == stack.deployment.tables["ledger"]
    assert seen["tell_channel"]["AWS_ENDPOINT_URL"] == stack.endpoint


def test_the_environment_view_hides_only_template_variables():
    assert function_env.template_only("ORDERFLOW_POLL_TRACKING_FUNCTION")
    assert function_env.template_only("ORDERFLOW_ORDERS_TABLE")
    assert not function_env.template_only("ORDERFLOW_CHANNEL_CREDENTIALS_FILE")
    assert not function_env.template_only("ORDERFLOW_SUPPLIER_RETRY_SECONDS")
    assert not function_env.template_only("AWS_ENDPOINT_URL")


def test_routes_need_auth_where_the_template_says(stack):
    public = {(r.method, r.path) for r in stack.deployment.routes if r.authorization == "NONE"}
    # and the console's CORS preflights (a mock integration on AWS: no data)
    assert public == {("GET", "/health"), ("POST", "/webhooks/{channel_id}"),
                      ("OPTIONS", "/console-api"), ("OPTIONS", "/console-api/{proxy+}")}
    assert httpx.get(f"{stack.api_url}/health").status_code == 200
    assert httpx.get(f"{stack.api_url}/openapi.json").status_code == 401  # AWS_IAM on AWS: the token here
    assert httpx.get(f"{stack.api_url}/openapi.json", headers={"Authorization": "Bearer test-token"}).status_code == 200
    # the console's routes (Cognito on AWS) need the token here too, and answer like the plain paths
    assert httpx.get(f"{stack.api_url}/console-api/warehouses").status_code == 401
    token = {"Authorization": "Bearer test-token"}
    assert httpx.get(f"{stack.api_url}/console-api/warehouses", headers=token).json() == httpx.get(
        f"{stack.api_url}/warehouses", headers=token).json()
    assert httpx.options(f"{stack.api_url}/console-api/warehouses").status_code == 405  # no preflight locally (same origin): the API answers 405


def test_a_burst_of_connections_is_queued_not_reset(stack):
    results: list[object] = []

    def call():
        try:
            results.append(httpx.get(f"{stack.api_url}/health", timeout=60).status_code)
        except Exception as exc:  # noqa: BLE001 - a reset is what this test looks for
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(300)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(200) == 300, [r for r in results if r != 200][:3]


def test_template_schedules_are_fired_locally(stack):
    functions = {lambda_binding.function_name_of(sig[1]) for sig in stack.schedules.running.values()}
    scheduled = {stack.deployment.functions[n].physical_name for n in ("sync_stock", "reconcile", "poll_tracking",
                                                                       "poll_fba")}
    assert scheduled <= functions
    job = stack.schedules.job_name("reconcile")
    assert stack.scheduler.jobs[job].every_seconds == 300
    assert "redriven" in stack.scheduler.run_now(job)  # through the reconcile function, with its input


def test_concurrent_requests_do_not_cross(stack):
    """Each API request is handled as in its own container: none sees another's path (Powertools keeps the
    request on the resolver; orderflow_local.api_containers makes that per thread)."""
    results: dict[int, object] = {}

    def call(i: int) -> None:
        try:
            response = httpx.get(f"{stack.api_url}/orders/missing-{i:04d}",
                                 headers={"Authorization": "Bearer test-token"}, timeout=60)
            results[i] = (response.status_code, f"missing-{i:04d}" in response.text)
        except Exception as exc:  # noqa: BLE001
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(120)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r == (404, True) for r in results.values()), [r for r in results.values() if r != (404, True)][:3]
