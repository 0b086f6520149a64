"""Operations on AWS: the alarms that tell a seller of trouble before a customer does, the SNS topic they
notify, and one CloudWatch dashboard with the order metrics and every alarm.

Alarms (each notifies the topic when it goes into ALARM and when it is OK again):
- every dead-letter queue holds a message (``ApproximateNumberOfMessagesVisible > 0``);
- the order workflow has a failed, timed-out or aborted execution;
- orders are waiting in ``needs_attention`` (the reconciler's ``OrdersInNeedsAttention``, every 5 minutes);
- a function is throttled, or raises errors in a burst (the workflow steps raise business errors on
  purpose, caught into ``needs_attention``, so one error is no alarm).

The order metrics are the ones the handlers emit with Powertools (``orderflow.observability``).
An email address in the context value ``alarm_email`` (``cdk deploy -c alarm_email=ops@example.com``)
is subscribed to the topic; AWS sends it a confirmation mail first.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.constructs.functions import Functions
from infra.constructs.queues import Queues
from infra.constructs.workflow import Workflow
from infra.nag import acknowledge
from orderflow import observability

ALARM_EMAIL_CONTEXT = "alarm_email"
PERIOD = Duration.minutes(5)
#: Errors of one function within PERIOD that make an alarm (a business error is an error on purpose).
FUNCTION_ERRORS_THRESHOLD = 5
#: The reconciler reports the needs-attention backlog every 5 minutes; a longer period never sees a gap.
BACKLOG_PERIOD = Duration.minutes(15)


def order_metric(name: str, *, statistic: str = "Sum", period: Duration = PERIOD, label: str | None = None,
                 **dimensions: str) -> cw.Metric:
    """One of the metrics the handlers emit (namespace ``orderflow``, dimension ``service``)."""
    assert name in observability.METRIC_NAMES, name
    return cw.Metric(namespace=observability.NAMESPACE, metric_name=name, statistic=statistic, period=period,
                     label=label, dimensions_map={"service": observability.SERVICE, **dimensions})


class Monitoring(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, queues: Queues, functions: Functions,
                 workflow: Workflow) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.topic = sns.Topic(self, "AlarmTopic", display_name=f"orderflow alarms ({stack.stack_name})",
                               enforce_ssl=True)
        acknowledge(self.topic, "AwsSolutions-SNS2",
                    "The alarm topic carries CloudWatch alarm state changes only (alarm names, metric values, "
                    "no order or personal data). CloudWatch cannot publish to a topic encrypted with the AWS "
                    "managed SNS key, and a customer managed KMS key per stage would only guard these notices.")
        # The topic's policy (enforce_ssl) replaces SNS's default one: let CloudWatch publish this account's
        # alarms to it, nobody else.
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish", actions=["sns:Publish"], resources=[self.topic.topic_arn],
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account},
                        "ArnLike": {"aws:SourceArn": stack.format_arn(service="cloudwatch", resource="alarm",
                                                                      resource_name="*",
                                                                      arn_format=ArnFormat.COLON_RESOURCE_NAME)}},
        ))
        email = self.node.try_get_context(ALARM_EMAIL_CONTEXT)
        if email:
            subscription = self.topic.add_subscription(subscriptions.EmailSubscription(str(email)))
            acknowledge(subscription, "Serverless-SNSRedrivePolicy",
                        "An email subscription to the alarm topic: SNS retries the delivery itself, and a mail "
                        "that still fails would land in a queue nobody reads; the alarm's state stays on the "
                        "dashboard and in the CloudWatch console either way.")
        self._action = cw_actions.SnsAction(self.topic)
        self.alarms: dict[str, cw.Alarm] = {}

        # Dead-letter queues: a message here is work nobody did (a supplier file, a tracking push...).
        for key, dlq in queues.dlqs.items():
            self._alarm(
                f"Dlq-{key}", dlq.metric_approximate_number_of_messages_visible(statistic="Maximum", period=PERIOD),
                threshold=0, description=f"The {key} dead-letter queue holds messages: redrive them once the "
                                         "cause is fixed (SQS console, 'Start DLQ redrive').")

        # The order workflow: an execution that ends without reaching Complete or Cancelled.
        machine = workflow.state_machine
        for name, metric in (("ExecutionsFailed", machine.metric_failed(period=PERIOD)),
                             ("ExecutionsTimedOut", machine.metric_timed_out(period=PERIOD)),
                             ("ExecutionsAborted", machine.metric_aborted(period=PERIOD))):
            self._alarm(f"Workflow-{name}", metric, threshold=0,
                        description=f"Order workflow {name}: see the order's attention_reason and `orderflow "
                                    "trace ORDER_ID`; `orderflow redrive` once the cause is fixed.")

        # Orders waiting for a person, whatever put them there (the reconciler counts them).
        self._alarm("OrdersNeedAttention",
                    order_metric(observability.ATTENTION_BACKLOG, statistic="Maximum", period=BACKLOG_PERIOD),
                    threshold=0, missing=cw.TreatMissingData.IGNORE,
                    description="Orders are in needs_attention: GET /orders?status=needs_attention shows them with "
                                "the reason; fix it and redrive (POST /orders/{id}/redrive).")

        # Functions: throttled at all, or failing in a burst.
        for name, function in functions.functions.items():
            self._alarm(f"Throttles-{name}", function.metric_throttles(period=PERIOD, statistic="Sum"), threshold=0,
                        description=f"The {name} function was throttled (account or reserved concurrency).")
            self._alarm(f"Errors-{name}", function.metric_errors(period=PERIOD, statistic="Sum"),
                        threshold=FUNCTION_ERRORS_THRESHOLD - 1,
                        description=f"The {name} function failed {FUNCTION_ERRORS_THRESHOLD} or more times in 5 "
                                    "minutes: see its log group.")

        self.dashboard = self._dashboard(stack, queues, functions, workflow)

    def _alarm(self, name: str, metric: cw.IMetric, *, threshold: float, description: str,
               missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING) -> cw.Alarm:
        alarm = cw.Alarm(
            self, name, metric=metric, threshold=threshold, evaluation_periods=1, datapoints_to_alarm=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD, treat_missing_data=missing,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms[name] = alarm
        return alarm

    def _dashboard(self, stack: Stack, queues: Queues, functions: Functions, workflow: Workflow) -> cw.Dashboard:
        machine = workflow.state_machine
        orders = [order_metric(name, label=name) for name in
                  ("OrdersCreated", "OrdersPaid", "OrdersCompleted", "OrdersNeedingAttention")]
        steps = ("prepare", "fulfill")
        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{stack.stack_name}-operations",
                                 default_interval=Duration.hours(24))
        dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=6))
        dashboard.add_widgets(
            cw.GraphWidget(title="Orders (per 5 minutes)", left=orders, width=12),
            cw.GraphWidget(title="Orders in needs_attention",
                           left=[order_metric(observability.ATTENTION_BACKLOG, statistic="Maximum",
                                              period=BACKLOG_PERIOD, label="in needs_attention")],
                           left_annotations=[cw.HorizontalAnnotation(value=0.5, label="alarm")], width=12),
        )
        dashboard.add_widgets(
            cw.GraphWidget(title="Allocation latency (ms)", width=12, left=[
                order_metric(observability.ALLOCATION_LATENCY, statistic=s, label=s) for s in ("p50", "p95", "Maximum")]),
            cw.GraphWidget(title="Step latency, p95 (ms)", width=12, left=[
                order_metric(observability.STEP_LATENCY, statistic="p95", label=step, step=step) for step in steps]),
        )
        dashboard.add_widgets(
            cw.GraphWidget(title="Order workflow executions", width=12, left=[
                machine.metric_started(period=PERIOD, label="started"),
                machine.metric_succeeded(period=PERIOD, label="succeeded"),
                machine.metric_failed(period=PERIOD, label="failed"),
                machine.metric_timed_out(period=PERIOD, label="timed out"),
                machine.metric_aborted(period=PERIOD, label="aborted")]),
            cw.GraphWidget(title="Dead-letter queues (messages)", width=12, left=[
                dlq.metric_approximate_number_of_messages_visible(statistic="Maximum", period=PERIOD, label=key)
                for key, dlq in queues.dlqs.items()]),
        )
        dashboard.add_widgets(
            cw.GraphWidget(title="Function errors", width=12, left=[
                f.metric_errors(period=PERIOD, statistic="Sum", label=n) for n, f in functions.functions.items()]),
            cw.GraphWidget(title="Function throttles", width=12, left=[
                f.metric_throttles(period=PERIOD, statistic="Sum", label=n) for n, f in functions.functions.items()]),
        )
        return dashboard
