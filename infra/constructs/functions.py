"""The Lambda functions: one spec per ``functions/<name>/``, one factory, one shared dependency layer.

Each function has its own role (no AWS managed policies), its own log group, X-Ray tracing, the
Powertools settings, and only the table and Step Functions permissions its spec lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import CODE_DIR, FUNCTION_NAMES, LAMBDA_PYTHON_VERSION, LAYER_DIR, handler_for
from infra.constructs.data import Data
from infra.nag import acknowledge

RUNTIME: lambda_.Runtime = getattr(lambda_.Runtime, "PYTHON_" + LAMBDA_PYTHON_VERSION.replace(".", "_"))
ARCHITECTURE = lambda_.Architecture.X86_64  # the layer holds manylinux2014_x86_64 wheels
STATE_MACHINE_ARN_ENV = "ORDERFLOW_STATE_MACHINE_ARN"
LOG_RETENTION = logs.RetentionDays.ONE_MONTH


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # functions/<name>/handler.py
    reads: tuple[str, ...] = ()  # table keys (orderflow.tables) it only reads
    writes: tuple[str, ...] = ()  # table keys it reads and writes
    states_actions: tuple[str, ...] = ()  # on the order workflow state machine (task tokens included)
    memory_mb: int = 512
    timeout_s: int = 30

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.writes + self.reads))

    @property
    def needs_state_machine_arn(self) -> bool:
        return "states:StartExecution" in self.states_actions

    @property
    def construct_id(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))


FUNCTION_SPECS: tuple[FunctionSpec, ...] = (
    FunctionSpec("allocate", reads=("inventory", "settings"), writes=("orders",)),
    # Reallocates when stock moved since allocation: reads the warehouses (settings) again.
    FunctionSpec("reduce_inventory", reads=("settings",), writes=("orders", "inventory", "ledger")),
    # ``await_shipment`` resumes the execution itself when tracking arrived before the task token.
    FunctionSpec(
        "fulfill", reads=("settings",), writes=("orders",), states_actions=("states:SendTaskSuccess",)
    ),
    FunctionSpec("complete", writes=("orders", "inventory", "ledger")),
    # Up to 1000 orders per batch, each a transaction and a StartExecution.
    FunctionSpec(
        "import_orders",
        reads=("inventory",),
        writes=("orders",),
        states_actions=("states:StartExecution",),
        timeout_s=300,
    ),
    # API Gateway REST integrations time out at 29 s. Cancelling an order fails its waiting shipment tasks.
    FunctionSpec(
        "api",
        writes=("orders", "settings", "inventory", "ledger"),
        states_actions=("states:StartExecution", "states:SendTaskSuccess", "states:SendTaskFailure"),
        timeout_s=29,
    ),
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
        state_machine_arn: str,
        code_dir: Path = CODE_DIR,
        layer_dir: Path = LAYER_DIR,
    ) -> None:
        super().__init__(scope, construct_id)
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
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        for spec in FUNCTION_SPECS:
            self.functions[spec.name] = self._function(spec)

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
            self._data.grant(role, key, write=key in spec.writes)
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
        if spec.needs_state_machine_arn:
            environment[STATE_MACHINE_ARN_ENV] = self._state_machine_arn

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
