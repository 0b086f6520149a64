"""The HTTP API: API Gateway REST, every method AWS_IAM-authorized, proxied to the ``api`` function.

Routing and body validation happen in the function (Powertools ``APIGatewayRestResolver`` with pydantic);
API Gateway adds SigV4 authentication, a request validator, access logs, execution logs and X-Ray.

The operator console's routes (:meth:`Api.add_console_routes`) are the same API under ``/console-api/``,
authorized with the console's Cognito user pool instead of SigV4 (a REST method has one authorizer); the
function strips the prefix and routes them like the plain paths.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.functions import LOG_RETENTION
from infra.nag import acknowledge


class Api(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, handler: lambda_.IFunction, stage_name: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=LOG_RETENTION)
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            description="orderflow HTTP API (SigV4 / AWS_IAM)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # label downloads (GET /orders/{id}/labels/{shipment id}) are binary
            binary_media_types=["application/pdf", "application/zpl"],
            # Also the default for anything added later: no method without SigV4.
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
            # Access and execution logging need the account's API Gateway CloudWatch role; this creates it.
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies carry addresses: never in execution logs
                # Our own limits instead of the account's default (10,000 rps): the API function's
                # concurrency and DynamoDB on-demand absorb this comfortably; raise it with the seller's volume.
                throttling_rate_limit=200,
                throttling_burst_limit=400,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
        )
        self.validator = self.rest_api.add_request_validator(
            "RequestValidator",
            validate_request_parameters=True,
            validate_request_body=True,
        )
        integration = apigw.LambdaIntegration(handler)
        self.handler = handler
        self.integration = integration
        # `/` and `/{proxy+}`, any verb: the function routes. Methods are added one by one (not through a
        # resource's default method options, which did not carry the validator over to `{proxy+}`).
        proxy = self.rest_api.root.add_proxy(any_method=False)
        for resource in (self.rest_api.root, proxy):
            resource.add_method(
                "ANY",
                integration,
                authorization_type=apigw.AuthorizationType.IAM,
                request_validator=self.validator,
            )

        # The two public doors of the contract: GET /health, and the channels' webhooks, which carry the
        # channel's own signature (Shopify HMAC, WooCommerce signature) that the function verifies.
        # API Gateway prefers the more specific resource, so these two skip SigV4 and nothing else does.
        health = self.rest_api.root.add_resource("health")
        health.add_method("GET", integration, authorization_type=apigw.AuthorizationType.NONE,
                          request_validator=self.validator)
        webhooks = self.rest_api.root.add_resource("webhooks").add_resource("{channel_id}")
        webhooks.add_method("POST", integration, authorization_type=apigw.AuthorizationType.NONE,
                            request_validator=self.validator,
                            request_parameters={"method.request.path.channel_id": True})
        for resource in (health, webhooks):
            acknowledge(resource, "AwsSolutions-APIG4",
                        "Deliberately public by the API contract: /health is a liveness probe with no data, and "
                        "/webhooks/{channel_id} is called by Shopify and WooCommerce, which cannot sign with SigV4; "
                        "the function refuses any webhook whose HMAC signature does not verify.")
            acknowledge(resource, "AwsSolutions-COG4",
                        "Public by the API contract (see AwsSolutions-APIG4 on this resource): a liveness probe and "
                        "signature-verified channel webhooks; every other method requires AWS_IAM (SigV4).")

        acknowledge(
            self.rest_api,
            "AwsSolutions-COG4",
            "Machine callers use AWS_IAM (SigV4) on every plain method, the contract's auth on AWS; the "
            "operator console's routes (/console-api/...) use the Cognito user pool authorizer instead.",
        )
        acknowledge(
            self.rest_api,
            "AwsSolutions-APIG3",
            "WAF is a seller-optional add-on (cost per web ACL and per request); with AWS_IAM auth on every "
            "method, unsigned requests are refused before they reach the function.",
        )
        acknowledge(
            self.rest_api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
            "The account-level API Gateway CloudWatch role (needed for the access and execution logs "
            "AwsSolutions-APIG1/APIG6 ask for) uses the AWS managed policy API Gateway documents for it; it "
            "is assumable only by apigateway.amazonaws.com and shared by every API in the account and region.",
        )

    def add_console_routes(self, prefix: str, *, user_pool: cognito.IUserPool, origin: str) -> apigw.Resource:
        """``/<prefix>`` and ``/<prefix>/{proxy+}``, any verb, to the same function, authorized by the user
        pool's ID tokens (``Authorization: <token>``). CORS preflights answer for ``origin`` only (a mock
        integration, no Lambda call); the function adds the CORS headers to its own answers."""
        self.console_origin = origin
        self.authorizer = apigw.CognitoUserPoolsAuthorizer(
            self, "ConsoleAuthorizer", cognito_user_pools=[user_pool],
            identity_source=apigw.IdentitySource.header("Authorization"),
            results_cache_ttl=Duration.minutes(5))
        cors = apigw.CorsOptions(
            allow_origins=[origin],
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            max_age=Duration.hours(1),
        )
        console = self.rest_api.root.add_resource(prefix, default_cors_preflight_options=cors)
        proxy = console.add_proxy(any_method=False)
        for resource in (console, proxy):
            resource.add_method(
                "ANY", self.integration,
                authorization_type=apigw.AuthorizationType.COGNITO,
                authorizer=self.authorizer,
                request_validator=self.validator,
            )
        # The authorizer's own refusals (401/403) and API Gateway's other errors carry the CORS header too,
        # or the browser would see a network error instead of "sign in again".
        for key, kind in (("Unauthorized", apigw.ResponseType.UNAUTHORIZED),
                          ("AccessDenied", apigw.ResponseType.ACCESS_DENIED),
                          ("Default4xx", apigw.ResponseType.DEFAULT_4_XX),
                          ("Default5xx", apigw.ResponseType.DEFAULT_5_XX)):
            self.rest_api.add_gateway_response(
                key, type=kind,
                response_headers={"Access-Control-Allow-Origin": f"'{origin}'", "Vary": "'Origin'"})
        self.console_resource = console
        # The OPTIONS preflights CDK adds have no authorizer: cdk-nag's APIG4 passes OPTIONS methods, and
        # COG4 is acknowledged on the whole API (machine callers use AWS_IAM).
        return console

    @property
    def url(self) -> str:
        return self.rest_api.url
