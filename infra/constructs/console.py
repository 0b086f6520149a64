"""The operator console on AWS: ``console/`` in a private S3 bucket behind CloudFront, and a Cognito user pool.

- The bucket is private (every public access blocked, TLS only, no ACLs); CloudFront reads it through an
  Origin Access Control (the bucket policy names the distribution), viewers get HTTPS only, ``/`` is
  ``index.html``.
- ``config.json`` is written next to the files at deploy time (``s3deploy.Source.json_data``): it tells the
  console the console API's URL (``<ApiUrl>console-api``), the region, the user pool, the app client and the
  hosted UI's domain, so the same static files work on every stage and locally (where the local stack serves
  its own ``config.json``: ``orderflow_local.console``).
- Users are created by an administrator (``aws cognito-idp admin-create-user``), never by sign-up; they sign in
  on the Cognito hosted UI (authorization code + PKCE, a public client without a secret), with a strong
  password and a TOTP authenticator (MFA required), and threat protection enforced.
- API Gateway accepts the pool's ID tokens on ``/console-api/...`` only (:meth:`infra.constructs.api.Api.
  add_console_routes`); every other route keeps AWS_IAM for machine callers.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra import ROOT, nag
from infra.constructs.api import Api
from infra.constructs.functions import LOG_RETENTION
from infra.nag import acknowledge
from orderflow import config

CONSOLE_DIR = ROOT / "console"
#: The API function's variable naming the console's origin (orderflow.api.app answers it with CORS headers).
CONSOLE_ORIGIN_ENV = config.CONSOLE_ORIGIN.name
#: The path of the console's API routes on the REST API (the API function strips it before routing).
CONSOLE_API_PREFIX = "console-api"
#: The console's files; anything else in console/ (editor leftovers) is not published.
CONSOLE_FILES = ("index.html", "app.js", "style.css")
#: The same policy the local stack sends (orderflow_local.console.HEADERS), plus the API and the hosted UI.
CSP = ("default-src 'self'; img-src 'self' data: blob:; frame-src blob:; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'; connect-src 'self' {api} {auth}")


def _default_domain_prefix(stage: str) -> str:
    """Cognito hosted-UI prefixes are global per region: the stage and the account keep it unique."""
    return f"orderflow-{stage}-{Aws.ACCOUNT_ID}"


class Console(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, api: Api, stage: str,
                 domain_prefix: str | None = None) -> None:
        super().__init__(scope, construct_id)

        # -- the files: a private bucket, CloudFront with OAC -----------------------------------------------
        self.bucket = s3.Bucket(
            self, "Files", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # Kept if the stack is deleted (CloudFormation cannot delete a bucket with objects, and emptying it
            # would take one more Lambda-backed custom resource); it holds only copies of console/.
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(self.bucket, "AwsSolutions-S1",
                    "The bucket holds only the console's public static files (HTML, JS, CSS and config.json, no "
                    "data), written by the CDK deployment and read only by CloudFront through its Origin Access "
                    "Control; viewer requests are what matters and CloudFront serves those.")

        self.api_origin = f"https://{api.rest_api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}"
        self.domain_prefix = domain_prefix or _default_domain_prefix(stage)
        self.auth_origin = f"https://{self.domain_prefix}.auth.{Aws.REGION}.amazoncognito.com"
        headers = cloudfront.ResponseHeadersPolicy(
            self, "Headers",
            comment="orderflow console: CSP (only the API and the hosted UI besides itself), no framing, HSTS",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=CSP.format(api=self.api_origin, auth=self.auth_origin), override=True),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365), include_subdomains=True, override=True),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self, "Distribution",
            comment=f"orderflow console ({stage})",
            default_root_object="index.html",
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
                compress=True,
            ),
        )
        self.url = f"https://{self.distribution.distribution_domain_name}"
        acknowledge(self.distribution, "AwsSolutions-CFR1",
                    "Sellers and their staff sign in from wherever they work; the console's files are public "
                    "static assets and every API call needs a Cognito token, so there is no country to block.")
        acknowledge(self.distribution, "AwsSolutions-CFR2",
                    "WAF is a seller-optional add-on (a web ACL costs per month and per request): the distribution "
                    "serves only static files, and the data behind them needs a Cognito token at API Gateway.")
        acknowledge(self.distribution, "AwsSolutions-CFR3",
                    "Access logs of static files (HTML, JS, CSS, config.json) say little; the API's access logs "
                    "(API Gateway) record every call the console makes, with the caller.")
        acknowledge(self.distribution, "AwsSolutions-CFR4",
                    "The distribution uses CloudFront's default *.cloudfront.net certificate, whose TLS policy "
                    "CloudFront sets (a minimum protocol version needs a custom domain and ACM certificate); "
                    "viewers are HTTPS only. A seller with a custom domain sets TLSv1.2_2021 there.")

        # -- users: admin-created, strong passwords, TOTP required, threat protection ---------------------
        self.user_pool = cognito.UserPool(
            self, "Users",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)),
            password_policy=cognito.PasswordPolicy(
                min_length=14, require_lowercase=True, require_uppercase=True, require_digits=True,
                require_symbols=True, temp_password_validity=Duration.days(3)),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            user_invitation=cognito.UserInvitationConfig(
                email_subject="Your orderflow console account",
                email_body="An orderflow console account was made for you. User name: {username}, temporary "
                           "password: {####}. Sign in at the console's address; you will choose a new password "
                           "and set up an authenticator app."),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.domain = self.user_pool.add_domain(
            "HostedUi", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=self.domain_prefix))
        self.client = self.user_pool.add_client(
            "ConsoleClient",
            generate_secret=False,  # a browser app is a public client: PKCE instead of a secret
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=[f"{self.url}/"],
                logout_urls=[f"{self.url}/"],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.hours(12),
        )

        # -- the API's console routes: the pool's tokens, CORS for this distribution only ------------------
        api.add_console_routes(CONSOLE_API_PREFIX, user_pool=self.user_pool, origin=self.url)

        # -- the files and config.json, copied at deploy time; CloudFront's cache invalidated ---------------
        self.config = {
            "auth": "cognito",
            "api": f"{api.url}{CONSOLE_API_PREFIX}",
            "region": Aws.REGION,
            "userPoolId": self.user_pool.user_pool_id,
            "clientId": self.client.user_pool_client_id,
            "cognitoDomain": self.domain.base_url(),
        }
        self.deployment = s3deploy.BucketDeployment(
            self, "Deploy",
            destination_bucket=self.bucket,
            sources=[
                s3deploy.Source.asset(str(CONSOLE_DIR), exclude=["*", *(f"!{name}" for name in CONSOLE_FILES)]),
                s3deploy.Source.json_data("config.json", self.config),
            ],
            distribution=self.distribution,
            distribution_paths=["/*"],
            prune=True,
            memory_limit=256,
            log_group=logs.LogGroup(self, "DeployLogs", retention=LOG_RETENTION),
        )
        self._acknowledge_deployment_handler()

    def _acknowledge_deployment_handler(self) -> None:
        """The BucketDeployment's handler is a CDK singleton function at the stack's root, with its own role."""
        stack = Stack.of(self)
        handlers = [c for c in stack.node.children if c.node.id.startswith("Custom::CDKBucketDeployment")]
        reasons = {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]":
                "CDK's BucketDeployment handler (aws-cdk-lib, runs only during a deploy) uses the AWS managed "
                "basic execution role for its own log group; it is not orderflow's code and has no data access.",
            "AwsSolutions-IAM5[Action::s3:GetBucket*]":
                "CDK's BucketDeployment grants (grantRead on the CDK asset bucket, grantReadWrite on the console "
                "bucket): object actions on those two buckets only, as aws-cdk-lib writes them.",
            "AwsSolutions-IAM5[Action::s3:GetObject*]":
                "CDK's BucketDeployment grants (grantRead on the CDK asset bucket, grantReadWrite on the console "
                "bucket): object actions on those two buckets only, as aws-cdk-lib writes them.",
            "AwsSolutions-IAM5[Action::s3:List*]":
                "CDK's BucketDeployment grants (grantRead on the CDK asset bucket, grantReadWrite on the console "
                "bucket): object actions on those two buckets only, as aws-cdk-lib writes them.",
            "AwsSolutions-IAM5[Action::s3:DeleteObject*]":
                "CDK's BucketDeployment prunes files that left console/ (grantReadWrite on the console bucket "
                "only, as aws-cdk-lib writes it).",
            "AwsSolutions-IAM5[Action::s3:Abort*]":
                "CDK's BucketDeployment writes the console files with multipart uploads (grantReadWrite on the "
                "console bucket only, as aws-cdk-lib writes it).",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-"
            "<AWS::Region>/*]":
                "CDK's BucketDeployment reads the console's zipped files from the CDK bootstrap asset bucket, "
                "whose object keys are asset hashes that change with every edit of console/.",
            nag.wildcard_resource(self, f"{self.bucket.bucket_arn}/*"):
                "CDK's BucketDeployment writes and prunes the console's files: every object of the console "
                "bucket (which holds nothing else) is one of them.",
            "AwsSolutions-IAM5[Resource::*]":
                "CDK's BucketDeployment invalidates the distribution's cache after a deploy: CloudFront's "
                "CreateInvalidation/GetInvalidation have no resource-level permissions.",
            "AwsSolutions-L1":
                "CDK's BucketDeployment handler runtime is chosen by aws-cdk-lib (it ships the handler code); it "
                "runs only while CloudFormation deploys the console and handles no orderflow data.",
            "Serverless-LambdaTracing":
                "CDK's BucketDeployment handler runs once per deploy to copy static files; X-Ray traces of it "
                "would show only S3 copies.",
            "Serverless-LambdaDLQ":
                "CDK's BucketDeployment handler is invoked by CloudFormation as a custom resource, which waits "
                "for its answer and fails the deploy on an error: there is no asynchronous event to lose.",
            "Serverless-LambdaLatestVersion":
                "CDK's BucketDeployment handler runtime is chosen by aws-cdk-lib, which ships its code.",
        }
        for handler in handlers:
            for rule, reason in reasons.items():
                acknowledge(handler, rule, reason)
