"""The order workflow: a STANDARD state machine from ``statemachines/order_workflow.asl.json``.

The ASL's ``${Placeholders}`` are filled with ``DefinitionSubstitutions``; the placeholder names come from
:mod:`orderflow.asl`, the same map the local stack uses. The state machine has a fixed name so that the
functions that start or resume executions can be given its ARN without depending on it (which would be
a cycle: the state machine depends on the function ARNs).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.data import Data
from infra.constructs.functions import LOG_RETENTION, Functions
from infra.constructs.queues import Queues
from infra.nag import acknowledge, wildcard_resource
from orderflow import asl


def state_machine_arn(scope: Construct, name: str) -> str:
    """The ARN the state machine named ``name`` will have in ``scope``'s stack."""
    return Stack.of(scope).format_arn(
        service="states",
        resource="stateMachine",
        resource_name=name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def executions_arn(scope: Construct, name: str) -> str:
    """Every execution of the state machine named ``name`` (for states:DescribeExecution)."""
    return Stack.of(scope).format_arn(
        service="states", resource="execution", resource_name=f"{name}:*", arn_format=ArnFormat.COLON_RESOURCE_NAME)


def definition_substitutions(functions: Functions, data: Data, queues: Queues) -> dict[str, str]:
    """Placeholder -> value; every placeholder in the ASL file has exactly one value (checked here)."""
    values = {placeholder: functions.arn(name) for placeholder, name in asl.FUNCTION_PLACEHOLDERS.items()}
    values |= {placeholder: data.table_name(key) for placeholder, key in asl.TABLE_PLACEHOLDERS.items()}
    values |= {placeholder: queues.url(key) for placeholder, key in asl.QUEUE_PLACEHOLDERS.items()}
    wanted = asl.placeholders(asl.read())
    if missing := wanted - values.keys():
        raise ValueError(f"{asl.ORDER_WORKFLOW.name}: no value for placeholder(s) {sorted(missing)}")
    if unused := values.keys() - wanted:
        raise ValueError(f"{asl.ORDER_WORKFLOW.name}: no placeholder for value(s) {sorted(unused)}")
    return values


class Workflow(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, name: str, functions: Functions, data: Data, queues: Queues
    ) -> None:
        super().__init__(scope, construct_id)
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="orderflow order workflow",
        )
        workflow_functions = sorted(set(asl.FUNCTION_PLACEHOLDERS.values()))
        invoke_arns = [functions.arn(n) for n in workflow_functions]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[*invoke_arns, *(f"{arn}:*" for arn in invoke_arns)],
            )
        )
        # RecordNeedsAttention: the ASL's direct DynamoDB integration on the orders table.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:UpdateItem"],
                resources=[data.tables[k].table_arn for k in asl.TABLE_PLACEHOLDERS.values()],
            )
        )

        # Queues the ASL sends to itself (none today: the functions send to the forwarders' and the
        # channel-updates queues).
        for key in asl.QUEUE_PLACEHOLDERS.values():
            queues.queues[key].grant_send_messages(role)

        # Under /aws/vendedlogs/ so Step Functions need not add each log group to the account's
        # (size-limited) CloudWatch Logs resource policy.
        self.log_group = logs.LogGroup(
            self, "Logs", log_group_name=f"/aws/vendedlogs/states/{name}", retention=LOG_RETENTION
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(asl.ORDER_WORKFLOW)),
            definition_substitutions=definition_substitutions(functions, data, queues),
            role=role,
            # Every event (which state, when, which error: cdk-nag AwsSolutions-SF1) but never the execution
            # data: inputs, outputs and task parameters hold task tokens and the shopper's name and address.
            # `orderflow trace` reads the execution history (kept by Step Functions, behind IAM), not this log.
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
            tracing_enabled=True,
        )

        for arn in invoke_arns:
            acknowledge(
                role,
                wildcard_resource(role, f"{arn}:*"),
                "lambda:InvokeFunction on the function's versions and aliases (<function arn>:*) besides the "
                "unqualified ARN, so a workflow task can be pointed at a published version without a new "
                "grant; scoped to the workflow's functions, nothing else.",
            )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions vended logging (logs:CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, "
            "DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, "
            "DescribeLogGroups) and X-Ray tracing (xray:PutTraceSegments, PutTelemetryRecords, "
            "GetSamplingRules, GetSamplingTargets) do not support resource-level permissions.",
        )
