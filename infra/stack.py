"""The orderflow stack: wires the data, functions, workflow and API constructs together."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import App, CfnOutput, Stack
from constructs import Construct

from infra import CODE_DIR, LAYER_DIR, ROOT, nag
from infra.constructs import Api, Data, Functions, Monitoring, Queues, Workflow
from infra.constructs.console import CONSOLE_ORIGIN_ENV, Console
from infra.constructs.workflow import executions_arn, state_machine_arn


class OrderflowStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str = "dev",
        code_dir: Path = CODE_DIR,
        layer_dir: Path = LAYER_DIR,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope, construct_id, description=f"orderflow sales-order backend ({stage})", **kwargs
        )
        self.stage = stage
        self.data = Data(self, "Data")
        self.queues = Queues(self, "Queues")
        # Named up front so its ARN can be handed to the functions before it exists (see workflow.py).
        self.state_machine_name = f"{self.stack_name}-order-workflow"
        self.state_machine_arn = state_machine_arn(self, self.state_machine_name)
        self.functions = Functions(
            self,
            "Functions",
            data=self.data,
            queues=self.queues,
            state_machine_arn=self.state_machine_arn,
            executions_arn=executions_arn(self, self.state_machine_name),
            code_dir=code_dir,
            layer_dir=layer_dir,
        )
        self.workflow = Workflow(
            self, "Workflow", name=self.state_machine_name, functions=self.functions, data=self.data,
            queues=self.queues,
        )
        self.api = Api(self, "Api", handler=self.functions.functions["api"], stage_name=stage)
        prefix = self.node.try_get_context("console_domain_prefix")
        self.console = Console(self, "Console", api=self.api, stage=stage,
                               domain_prefix=str(prefix) if prefix else None)
        # The API function answers the console's origin with CORS headers (on /console-api/... only).
        self.functions.functions["api"].add_environment(CONSOLE_ORIGIN_ENV, self.console.url)
        self.monitoring = Monitoring(self, "Monitoring", queues=self.queues, functions=self.functions,
                                     workflow=self.workflow)

        self._acknowledge_serverless_findings()

        CfnOutput(self, "ApiUrl", value=self.api.url, description="API Gateway stage URL (SigV4 / AWS_IAM)")
        CfnOutput(self, "ConsoleUrl", value=self.console.url,
                  description="The operator console (CloudFront); sign in with a user of ConsoleUserPoolId")
        CfnOutput(self, "ConsoleUserPoolId", value=self.console.user_pool.user_pool_id,
                  description="Create console users: aws cognito-idp admin-create-user --user-pool-id <this> ...")
        CfnOutput(self, "ConsoleClientId", value=self.console.client.user_pool_client_id)
        CfnOutput(self, "ConsoleSignInDomain", value=self.console.domain.base_url(),
                  description="The Cognito hosted UI the console signs in through")
        CfnOutput(self, "StateMachineArn", value=self.workflow.state_machine.state_machine_arn)
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn,
                  description="SNS topic of every alarm: subscribe to it (or deploy with -c alarm_email=...)")
        CfnOutput(self, "DashboardName", value=self.monitoring.dashboard.dashboard_name)
        for key, table in self.data.tables.items():
            CfnOutput(
                self,
                f"{key.capitalize()}TableName",
                value=table.table_name,
                description=f"env {self.data.env_var(key)}",
            )


    def _acknowledge_serverless_findings(self) -> None:
        nag.acknowledge(self.functions, "Serverless-LambdaDLQ",
                        "No function is invoked asynchronously by an event we could lose: Step Functions, API "
                        "Gateway and the SQS event source mappings invoke synchronously (a failed SQS record "
                        "goes to its queue's DLQ), and EventBridge Scheduler retries the scheduled ones; a "
                        "scheduled run that fails is simply the next run's work (cursors, sweeps).")
        nag.acknowledge(self.functions, "Serverless-LambdaEventSourceMappingDestination",
                        "The event sources are SQS queues: on-failure destinations apply to stream and Kafka "
                        "sources only; a record that keeps failing moves to its queue's DLQ (redrive policy).")


def cdk_json_context() -> dict[str, Any]:
    """``cdk.json``'s context (feature flags, default stage), so ``python app.py`` synthesizes what
    ``cdk synth`` does. Given as the App's default context: the CDK CLI's own context still wins."""
    return json.loads((ROOT / "cdk.json").read_text()).get("context", {})


def build_app(outdir: str | None = None, context: dict[str, Any] | None = None) -> tuple[App, OrderflowStack]:
    """The App with its one stack (``orderflow-<stage>``, stage from context, default ``dev``) and cdk-nag."""
    app = App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    stage = str(app.node.try_get_context("stage") or "dev")
    stack = OrderflowStack(app, f"orderflow-{stage}", stage=stage)
    nag.add_checks(app)
    return app, stack
