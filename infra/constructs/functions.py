"""The Lambda functions: one spec per ``functions/<name>/``, one factory, one shared dependency layer.

Each function has its own role (no AWS managed policies), its own log group, X-Ray tracing, the
Powertools settings, and only the table and Step Functions permissions its spec lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from infra import CODE_DIR, FUNCTION_NAMES, LAMBDA_PYTHON_VERSION, LAYER_DIR, handler_for
from infra.constructs.data import Data
from infra.constructs.queues import Queues
from infra.nag import acknowledge, wildcard_resource
from orderflow import config
from orderflow.queues import QUEUES

QUEUE_BY_KEY = {q.key: q for q in QUEUES}
LABEL_BUCKET_ENV = config.LABEL_BUCKET.name

RUNTIME: lambda_.Runtime = getattr(lambda_.Runtime, "PYTHON_" + LAMBDA_PYTHON_VERSION.replace(".", "_"))
ARCHITECTURE = lambda_.Architecture.X86_64  # the layer holds manylinux2014_x86_64 wheels
STATE_MACHINE_ARN_ENV = config.STATE_MACHINE_ARN.name
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
#: ``cdk deploy -c xray_sdk=true``: the handlers load the X-Ray SDK and add their own subsegments (each
#: AWS call, the handler's annotations) to the traces Lambda's active tracing records anyway; off by
#: default, since loading the SDK is about a third of a handler's cold start.
XRAY_SDK_CONTEXT = "xray_sdk"


def xray_sdk_on(scope: Construct) -> bool:
    return str(scope.node.try_get_context(XRAY_SDK_CONTEXT) or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # functions/<name>/handler.py
    reads: tuple[str, ...] = ()  # table keys (orderflow.tables) it only reads
    writes: tuple[str, ...] = ()  # table keys it reads and writes
    scans: tuple[str, ...] = ()  # tables it may Scan (a sweep, never a request path)
    states_actions: tuple[str, ...] = ()  # on the order workflow state machine (task tokens included)
    describes_executions: bool = False  # states:DescribeExecution on the workflow's executions
    stops_executions: bool = False  # states:StopExecution on them (a fulfiller rejected a shipment)
    reads_history: bool = False  # states:GetExecutionHistory on them (GET /orders/{id}/trace)
    consumes: str | None = None  # the queue (orderflow.queues key) it is the event source mapping of
    sends: tuple[str, ...] = ()  # queues it sends to
    schedule_minutes: int | None = None  # EventBridge Scheduler rate
    secrets_read: tuple[str, ...] = ()  # Secrets Manager name prefixes it reads (orderflow/<kind>/)
    secrets_write: tuple[str, ...] = ()  # ... and creates/updates (configuration API)
    labels: bool = False  # reads and writes the label bucket
    manages_import_schedules: bool = False  # creates each channel's import schedule (POST /channels)
    invokes: tuple[str, ...] = ()  # functions it invokes synchronously (env ORDERFLOW_<NAME>_FUNCTION)
    memory_mb: int = 512
    timeout_s: int = 30

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.writes + self.reads))

    @property
    def needs_state_machine_arn(self) -> bool:
        return "states:StartExecution" in self.states_actions or self.stops_executions

    @property
    def construct_id(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))


def function_env_var(name: str) -> str:
    """The variable that names function ``name`` to a function that invokes it."""
    return config.function_variable(name)


SECRET_KINDS = ("channels", "carriers", "suppliers")
STOCK_WRITERS = {"writes": ("orders", "inventory", "ledger", "settings"), "sends": ("stock-sync",)}
#: What a function that records a shipment as shipped needs (orderflow.orders.settle): the last one completes
#: the order (the ledger, a stock change) and resumes or fails the execution's wait; each one is sent to the
#: channel-updates queue, for an order from a connected channel (read from settings).
SHIPMENT_RECORDERS = {"writes": STOCK_WRITERS["writes"], "sends": ("stock-sync", "channel-updates")}
TASK_TOKENS = ("states:SendTaskSuccess", "states:SendTaskFailure")

FUNCTION_SPECS: tuple[FunctionSpec, ...] = (
    # The workflow's Prepare: allocates (drafts purchase orders for backorders in settings), reserves the plan's
    # stock (every stock change asks for a channel sync: a marker in settings and a stock-sync message) and routes.
    FunctionSpec("prepare", **STOCK_WRITERS),
    # The workflow's one wait: keeps the task token, hands shipments to the forwarders' queues; tracking that
    # arrived before the token settles the order here (completes it: the ledger; tells the channel; resumes
    # the execution, or sends it back to planning with SendTaskFailure PlanAgain).
    FunctionSpec("fulfill", writes=SHIPMENT_RECORDERS["writes"],
                 sends=(*SHIPMENT_RECORDERS["sends"], "supplier-orders", "fba-orders"), states_actions=TASK_TOKENS),
    # Each channel's import (its schedule is created at runtime by POST /channels in the import schedule
    # group): orders stored once and started; an order cancelled on its channel is cancelled here, which
    # releases its stock through the ledger (and asks for a stock sync) and fails its waiting task.
    FunctionSpec(
        "import_orders", **SHIPMENT_RECORDERS, states_actions=("states:StartExecution", *TASK_TOKENS),
        secrets_read=("channels",), timeout_s=300,
    ),
    # API Gateway REST integrations time out at 29 s. Cancelling fails waiting tasks; labels are bought here.
    FunctionSpec(
        "api", **SHIPMENT_RECORDERS, scans=("inventory",), states_actions=("states:StartExecution", *TASK_TOKENS),
        describes_executions=True, reads_history=True, secrets_read=SECRET_KINDS, secrets_write=SECRET_KINDS,
        labels=True,
        # POST /suppliers/{id}/poll runs the supplier's tracking poll in its own function (300 s), not in
        # the API's 29 s.
        manages_import_schedules=True, invokes=("poll_tracking",), timeout_s=29,
    ),
    # Stock auto-sync (stock-sync FIFO queue) and its hourly sweep (which scans the stocked SKUs).
    FunctionSpec("sync_stock", reads=("inventory",), writes=("settings",), scans=("inventory",),
                 consumes="stock-sync", secrets_read=("channels",), schedule_minutes=60, timeout_s=120),
    # Redrives orders whose workflow stopped: reads execution status, starts a new attempt; settles one whose
    # last shipment was recorded but whose workflow was never resumed.
    FunctionSpec("reconcile", **SHIPMENT_RECORDERS, states_actions=("states:StartExecution", *TASK_TOKENS),
                 describes_executions=True, schedule_minutes=5, timeout_s=300),
    # Dropship / 3PL: writes the supplier's order file over SFTP (supplier-orders queue) ...
    FunctionSpec("forward_supplier", writes=("orders", "settings"), consumes="supplier-orders",
                 states_actions=TASK_TOKENS, describes_executions=True,
                 secrets_read=("suppliers",), timeout_s=90),
    # ... and reads their tracking files back (a shipment that left is recorded: orderflow.orders.settle).
    FunctionSpec("poll_tracking", **SHIPMENT_RECORDERS, secrets_read=("suppliers",),
                 states_actions=TASK_TOKENS, schedule_minutes=5,
                 timeout_s=300),
    # Amazon FBA: Multi-Channel Fulfillment orders (fba-orders queue) and their tracking.
    FunctionSpec("forward_fba", writes=("orders", "settings"), consumes="fba-orders",
                 states_actions=TASK_TOKENS, stops_executions=True,
                 secrets_read=("channels",), timeout_s=90),
    FunctionSpec("poll_fba", **SHIPMENT_RECORDERS, secrets_read=("channels",), stops_executions=True,
                 states_actions=TASK_TOKENS, schedule_minutes=10,
                 timeout_s=300),
    # Tracking told to the sales channel an order came from (channel-updates queue).
    FunctionSpec("tell_channel", writes=("orders",), reads=("settings",), consumes="channel-updates",
                 secrets_read=("channels",), timeout_s=60),
)
assert tuple(s.name for s in FUNCTION_SPECS) == FUNCTION_NAMES, "one spec per functions/<name>/"


class Functions(Construct):
    """All functions, by name (``self.functions["allocate"]``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data: Data,
        queues: Queues,
        state_machine_arn: str,
        executions_arn: str,
        code_dir: Path = CODE_DIR,
        layer_dir: Path = LAYER_DIR,
    ) -> None:
        super().__init__(scope, construct_id)
        self._queues = queues
        self._executions_arn = executions_arn
        self.labels = s3.Bucket(
            self, "Labels", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30))],
        )
        acknowledge(self.labels, "AwsSolutions-S1",
                    "Shipping-label PDFs are written and read only by the orderflow api function through its "
                    "role (CloudTrail data events cover object access if a seller needs an audit trail); "
                    "server access logs would need a second bucket per stage for little value.")
        for path in (code_dir, layer_dir / "python"):
            if not path.is_dir():
                raise FileNotFoundError(
                    f"{path} is missing: run `make build` (python -m infra.build_assets) first"
                )
        self._data = data
        self._state_machine_arn = state_machine_arn
        self._code = lambda_.Code.from_asset(str(code_dir))
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(str(layer_dir)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="orderflow runtime dependencies (requirements/lambda.txt)",
        )
        #: EventBridge Scheduler invokes the scheduled functions (and each channel's import) with this role.
        self.scheduler_role = iam.Role(self, "SchedulerRole", assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
                                       description="orderflow schedules: invoke the scheduled functions")
        #: Each connected channel's import schedule lives here (created at runtime by the api function).
        self.import_schedules = scheduler.CfnScheduleGroup(self, "ImportSchedules")
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        for spec in FUNCTION_SPECS:
            self.functions[spec.name] = self._function(spec)
        self.scheduler_role.add_to_principal_policy(iam.PolicyStatement(
            actions=["lambda:InvokeFunction"], resources=[self.functions["import_orders"].function_arn]))
        for spec in FUNCTION_SPECS:
            if spec.manages_import_schedules:
                self._manage_import_schedules(spec)
            for target in spec.invokes:
                # The unqualified function only (grant_invoke would add every version and alias: `<arn>:*`).
                self.roles[spec.name].add_to_principal_policy(iam.PolicyStatement(
                    actions=["lambda:InvokeFunction"], resources=[self.functions[target].function_arn]))
                self.functions[spec.name].add_environment(function_env_var(target),
                                                          self.functions[target].function_name)

    def _manage_import_schedules(self, spec: FunctionSpec) -> None:
        role, function = self.roles[spec.name], self.functions[spec.name]
        schedules = Stack.of(self).format_arn(service="scheduler", resource="schedule",
                                              resource_name=f"{self.import_schedules.ref}/*",
                                              arn_format=ArnFormat.SLASH_RESOURCE_NAME)
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule",
                     "scheduler:GetSchedule"], resources=[schedules]))
        role.add_to_principal_policy(iam.PolicyStatement(actions=["iam:PassRole"],
                                                         resources=[self.scheduler_role.role_arn]))
        acknowledge(role, wildcard_resource(role, schedules),
                    "EventBridge Scheduler: one import schedule per connected channel, named after the channel "
                    "and created when the seller connects it, inside orderflow's own import schedule group only.")
        function.add_environment(config.IMPORT_SCHEDULE_GROUP.name, self.import_schedules.ref)
        function.add_environment(config.IMPORT_SCHEDULER_ROLE_ARN.name, self.scheduler_role.role_arn)
        function.add_environment(config.IMPORT_FUNCTION_ARN.name, self.functions["import_orders"].function_arn)

    def _function(self, spec: FunctionSpec) -> lambda_.Function:
        scope = Construct(self, spec.construct_id)
        log_group = logs.LogGroup(scope, "Logs", retention=LOG_RETENTION)
        role = iam.Role(
            scope,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"orderflow {spec.name} function",
        )
        # Logs only into its own group (the group exists, so no CreateLogGroup).
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        for key in spec.tables:
            self._data.grant(role, key, write=key in spec.writes, scan=key in spec.scans)
        for key in spec.sends:
            self._queues.queues[key].grant_send_messages(role)
        if spec.describes_executions or spec.stops_executions:
            actions = ["states:DescribeExecution"] if spec.describes_executions else []
            actions += ["states:GetExecutionHistory"] if spec.reads_history else []
            actions += ["states:StopExecution"] if spec.stops_executions else []
            role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=[self._executions_arn]))
            acknowledge(role, wildcard_resource(role, self._executions_arn),
                        f"{' and '.join(actions)} on the order workflow's executions: they are named after the "
                        "orders (<order id>, <order id>-r2...) and created at runtime, so the ARN ends in a "
                        "wildcard; no other state machine's executions are covered.")
        secrets = {"read": spec.secrets_read, "write": spec.secrets_write}
        for mode, kinds in secrets.items():
            if not kinds:
                continue
            actions = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"] if mode == "read" else [
                "secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecret",
                "secretsmanager:TagResource", "secretsmanager:DeleteSecret"]  # DELETE /channels/{id}
            resources = [Stack.of(self).format_arn(service="secretsmanager", resource="secret",
                                                   resource_name=f"orderflow/{kind}/*",
                                                   arn_format=ArnFormat.COLON_RESOURCE_NAME) for kind in kinds]
            role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=resources))
            for resource in resources:
                acknowledge(role, wildcard_resource(role, resource),
                            "Secrets Manager: the seller's credentials for each channel, carrier or supplier are "
                            "one secret each, named orderflow/<kind>/<id> and created at runtime when the seller "
                            "connects one, so the grant names the prefix of that kind only.")
        if spec.states_actions:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=list(spec.states_actions),
                    resources=[self._state_machine_arn],
                )
            )
        environment = {
            "POWERTOOLS_SERVICE_NAME": "orderflow",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_METRICS_NAMESPACE": "orderflow",
            **{self._data.env_var(key): self._data.table_name(key) for key in spec.tables},
        }
        if not xray_sdk_on(scope):
            # Lambda's active tracing still records every invocation (and the state machine's and API's
            # traces): only the handler's own subsegments, which need the X-Ray SDK loaded, are left out.
            environment["POWERTOOLS_TRACE_DISABLED"] = "true"
        if spec.needs_state_machine_arn:
            environment[STATE_MACHINE_ARN_ENV] = self._state_machine_arn
        for key in {*spec.sends, *([spec.consumes] if spec.consumes else [])}:
            environment[QUEUE_BY_KEY[key].env_var] = self._queues.url(key)
        if spec.labels:
            objects = self.labels.arn_for_objects("labels/*")
            role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"],
                                                             resources=[objects]))
            acknowledge(role, wildcard_resource(role, objects),
                        "s3:GetObject/PutObject on the label bucket's labels/ prefix: one object per shipment "
                        "(labels/<order id>/<shipment id>.pdf|zpl), named at runtime; nothing else in the bucket.")
            environment[LABEL_BUCKET_ENV] = self.labels.bucket_name

        function = lambda_.Function(
            scope,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler_for(spec.name),
            code=self._code,
            layers=[self.layer],
            role=role,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            memory_size=spec.memory_mb,
            timeout=Duration.seconds(spec.timeout_s),
            environment=environment,
            description=f"orderflow {spec.name}",
        )
        if spec.consumes:
            queue = self._queues.queues[spec.consumes]
            function.add_event_source(event_sources.SqsEventSource(
                queue, batch_size=10, report_batch_item_failures=True,
                max_batching_window=None if QUEUE_BY_KEY[spec.consumes].fifo else Duration.seconds(1)))
        if spec.schedule_minutes:
            self.scheduler_role.add_to_principal_policy(
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[function.function_arn]))
            unit = "minute" if spec.schedule_minutes == 1 else "minutes"
            scheduler.CfnSchedule(
                scope, "Schedule", schedule_expression=f"rate({spec.schedule_minutes} {unit})",
                description=f"orderflow {spec.name} every {spec.schedule_minutes} {unit}",
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=function.function_arn, role_arn=self.scheduler_role.role_arn,
                    input='{"source": "schedule"}',
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(maximum_retry_attempts=2)))
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing (tracing=ACTIVE): xray:PutTraceSegments and xray:PutTelemetryRecords do not "
            "support resource-level permissions, so their resource must be '*'. Every other statement in "
            "this role names its table, index, log group or state machine (tests/infra checks this).",
        )
        self.roles[spec.name] = role
        return function

    def arn(self, name: str) -> str:
        return self.functions[name].function_arn
