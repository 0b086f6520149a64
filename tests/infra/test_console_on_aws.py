"""The operator console on AWS (infra/constructs/console.py): a private bucket behind CloudFront with OAC, a
Cognito user pool with its hosted UI and console client, the API's Cognito authorizer on /console-api only,
and config.json telling the console where all of that is. The local stack leaves these out (they are AWS's)."""

from __future__ import annotations

import json
from typing import Any

from infra.constructs.console import CONSOLE_API_PREFIX, CONSOLE_FILES, CONSOLE_ORIGIN_ENV
from orderflow_local import cloudformation
from tests.infra.conftest import Synth, _list


def one(synth: Synth, cfn_type: str) -> tuple[str, dict[str, Any]]:
    [(lid, resource)] = synth.of_type(cfn_type).items()
    return lid, resource["Properties"]


def console_url(synth: Synth) -> dict:
    distribution = synth.lid(synth.stack.console.distribution)
    return {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution, "DomainName"]}]]}


def test_the_bucket_is_private_and_only_cloudfront_reads_it(synth: Synth) -> None:
    bucket = synth.lid(synth.stack.console.bucket)
    props = synth.resources[bucket]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert "WebsiteConfiguration" not in props  # never an S3 website: CloudFront is the only door
    [policy] = [p["Properties"] for p in synth.of_type("AWS::S3::BucketPolicy").values()
                if p["Properties"]["Bucket"] == {"Ref": bucket}]
    statements = policy["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert len(allows) == 1
    [allow] = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    source = json.dumps(allow["Condition"]["StringEquals"]["AWS:SourceArn"])
    assert synth.lid(synth.stack.console.distribution) in source  # this distribution only


def test_the_distribution_reads_through_origin_access_control_over_https_only(synth: Synth) -> None:
    _, oac = one(synth, "AWS::CloudFront::OriginAccessControl")
    assert oac["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    assert oac["OriginAccessControlConfig"]["SigningProtocol"] == "sigv4"
    assert oac["OriginAccessControlConfig"]["OriginAccessControlOriginType"] == "s3"
    oac_lid = synth.lid(synth.stack.console.distribution.node.find_child("Origin1").node.find_child(
        "S3OriginAccessControl"))
    _, props = one(synth, "AWS::CloudFront::Distribution")
    config = props["DistributionConfig"]
    [origin] = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_lid, "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy OAI
    assert origin["DomainName"] == {"Fn::GetAtt": [synth.lid(synth.stack.console.bucket), "RegionalDomainName"]}
    assert config["DefaultRootObject"] == "index.html"
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "https-only"
    assert config["DefaultCacheBehavior"]["AllowedMethods"] == ["GET", "HEAD"]
    _, headers = one(synth, "AWS::CloudFront::ResponseHeadersPolicy")
    csp = json.dumps(headers["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]["ContentSecurityPolicy"])
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert ".execute-api." in csp and ".amazoncognito.com" in csp  # the console may call the API and Cognito


def test_the_user_pool_takes_admin_created_users_with_strong_passwords_and_mfa(synth: Synth) -> None:
    _, pool = one(synth, "AWS::Cognito::UserPool")
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True  # no self sign-up
    policy = pool["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12
    assert all(policy[k] is True for k in ("RequireLowercase", "RequireUppercase", "RequireNumbers", "RequireSymbols"))
    assert pool["MfaConfiguration"] == "ON" and pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert pool["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}
    assert pool["UserPoolTier"] == "PLUS"
    assert pool["UsernameAttributes"] == ["email"]
    assert pool["DeletionProtection"] == "ACTIVE"


def test_the_console_client_is_a_public_code_flow_client_for_the_distribution_only(synth: Synth) -> None:
    _, client = one(synth, "AWS::Cognito::UserPoolClient")
    assert client["GenerateSecret"] is False  # a browser app: PKCE, no secret
    assert client["AllowedOAuthFlows"] == ["code"]  # authorization code only, never implicit
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert "openid" in client["AllowedOAuthScopes"]
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    home = {"Fn::Join": ["", [*console_url(synth)["Fn::Join"][1], "/"]]}
    assert client["CallbackURLs"] == [home]
    assert client["LogoutURLs"] == [home]
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    assert client["EnableTokenRevocation"] is True
    _, domain = one(synth, "AWS::Cognito::UserPoolDomain")
    assert domain["UserPoolId"] == {"Ref": synth.lid(synth.stack.console.user_pool)}
    assert "orderflow-dev-" in json.dumps(domain["Domain"])


def test_the_domain_prefix_comes_from_context(tmp_path) -> None:
    from infra.stack import build_app

    app, stack = build_app(outdir=str(tmp_path), context={"console_domain_prefix": "acme-orders"})
    assert stack.resolve(stack.console.domain.node.default_child.domain) == "acme-orders"
    assert "acme-orders.auth." in json.dumps(stack.resolve(stack.console.auth_origin))


def test_the_cognito_authorizer_is_on_the_console_routes_only_and_iam_on_the_others(synth: Synth) -> None:
    authorizer, props = one(synth, "AWS::ApiGateway::Authorizer")
    assert props["Type"] == "COGNITO_USER_POOLS"
    assert props["ProviderARNs"] == [{"Fn::GetAtt": [synth.lid(synth.stack.console.user_pool), "Arn"]}]
    assert props["IdentitySource"] == "method.request.header.Authorization"
    resources = synth.of_type("AWS::ApiGateway::Resource")

    def path(ref: Any) -> str:
        if isinstance(ref, dict) and "Ref" in ref:
            r = resources[ref["Ref"]]["Properties"]
            return path(r["ParentId"]).rstrip("/") + "/" + r["PathPart"]
        return "/"

    for method in synth.of_type("AWS::ApiGateway::Method").values():
        m = method["Properties"]
        where = path(m["ResourceId"])
        console = where == f"/{CONSOLE_API_PREFIX}" or where.startswith(f"/{CONSOLE_API_PREFIX}/")
        if m["HttpMethod"] == "OPTIONS":
            assert console and m["AuthorizationType"] == "NONE" and m["Integration"]["Type"] == "MOCK", where
        elif console:
            assert (m["AuthorizationType"], m["AuthorizerId"]) == ("COGNITO_USER_POOLS", {"Ref": authorizer}), where
        else:
            assert "AuthorizerId" not in m, where
            assert m["AuthorizationType"] in ("AWS_IAM", "NONE"), where
            if where not in ("/health", "/webhooks/{channel_id}"):
                assert m["AuthorizationType"] == "AWS_IAM", where


def test_cors_answers_the_distribution_only(synth: Synth) -> None:
    origin = console_url(synth)
    quoted = {"Fn::Join": ["", ["'https://", origin["Fn::Join"][1][1], "'"]]}
    preflights = [m["Properties"] for m in synth.of_type("AWS::ApiGateway::Method").values()
                  if m["Properties"]["HttpMethod"] == "OPTIONS"]
    assert len(preflights) == 2
    for preflight in preflights:
        [response] = preflight["Integration"]["IntegrationResponses"]
        headers = response["ResponseParameters"]
        assert headers["method.response.header.Access-Control-Allow-Origin"] == quoted
        assert "Authorization" in headers["method.response.header.Access-Control-Allow-Headers"]
    responses = synth.of_type("AWS::ApiGateway::GatewayResponse")
    assert {r["Properties"]["ResponseType"] for r in responses.values()} >= {"UNAUTHORIZED", "ACCESS_DENIED"}
    for response in responses.values():
        assert response["Properties"]["ResponseParameters"][
            "gatewayresponse.header.Access-Control-Allow-Origin"] == quoted
    api = synth.resources[synth.lid(synth.stack.functions.functions["api"])]["Properties"]
    assert api["Environment"]["Variables"][CONSOLE_ORIGIN_ENV] == origin
    from orderflow.api.app import CONSOLE_ORIGIN_ENV as read_by_the_function
    from orderflow.api.app import CONSOLE_PREFIX

    assert read_by_the_function == CONSOLE_ORIGIN_ENV and CONSOLE_PREFIX == f"/{CONSOLE_API_PREFIX}"


def test_the_deployment_copies_the_console_and_a_config_json_naming_api_pool_client_and_domain(synth: Synth) -> None:
    [deployment] = synth.of_type("Custom::CDKBucketDeployment").values()
    props = deployment["Properties"]
    assert props["DestinationBucketName"] == {"Ref": synth.lid(synth.stack.console.bucket)}
    assert props["DistributionId"] == {"Ref": synth.lid(synth.stack.console.distribution)}
    assert props["DistributionPaths"] == ["/*"]  # a deploy invalidates CloudFront's copies
    files, config = props["SourceObjectKeys"]
    # the console's own files
    staged = synth.outdir / f"asset.{files.removesuffix('.zip')}"
    assert sorted(p.name for p in staged.iterdir()) == sorted(CONSOLE_FILES)
    # config.json: deploy-time values stand as markers, filled by the handler from SourceMarkers
    text = (synth.outdir / f"asset.{config.removesuffix('.zip')}" / "config.json").read_text()
    markers = props["SourceMarkers"][1]
    for marker, value in markers.items():
        text = text.replace(marker, json.dumps(value))
    config_json = json.loads(text)
    assert config_json["auth"] == "cognito"

    def refs(value: Any) -> str:
        return json.dumps(value)

    pool, client = synth.lid(synth.stack.console.user_pool), synth.lid(synth.stack.console.client)
    domain = synth.lid(synth.stack.console.domain)
    rest_api = synth.lid(synth.stack.api.rest_api)
    assert f'"Ref": "{pool}"' in refs(config_json["userPoolId"])
    assert f'"Ref": "{client}"' in refs(config_json["clientId"])
    assert f'"Ref": "{domain}"' in refs(config_json["cognitoDomain"])
    assert ".amazoncognito.com" in refs(config_json["cognitoDomain"])
    assert "AWS::Region" in refs(config_json["region"])
    assert f'"Ref": "{rest_api}"' in refs(config_json["api"]) and '/console-api\\""' in refs(config_json["api"])


def test_the_cdk_deployment_handler_touches_only_the_asset_bucket_the_console_bucket_and_cloudfront(
        synth: Synth) -> None:
    [role] = [lid for lid in synth.of_type("AWS::IAM::Role") if lid.startswith("CustomCDKBucketDeployment")]
    console_bucket = synth.lid(synth.stack.console.bucket)
    for statement in synth.statements(role):
        actions = set(_list(statement["Action"]))
        resources = json.dumps(statement["Resource"])
        if all(a.startswith("s3:") for a in actions):
            assert "cdk-hnb659fds-assets" in resources or console_bucket in resources, statement
        else:
            assert actions <= {"cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"}, statement


def test_outputs_name_the_console_and_how_to_add_users(synth: Synth) -> None:
    assert synth.outputs["ConsoleUrl"]["Value"] == console_url(synth)
    assert synth.outputs["ConsoleUserPoolId"]["Value"] == {"Ref": synth.lid(synth.stack.console.user_pool)}
    assert "admin-create-user" in synth.outputs["ConsoleUserPoolId"]["Description"]


def test_the_local_deploy_leaves_out_the_consoles_aws_side_and_what_serves_only_it(synth: Synth) -> None:
    """orderflow_local deploys the same template into moto: CloudFront, Cognito, the authorizer and the
    Lambda-backed BucketDeployment (and its function, role, policy, layer, log group) stay out."""
    template = synth.template.to_json()
    local, left_out = cloudformation.local_template(template)
    left_types = {template["Resources"][lid]["Type"] for lid in left_out}
    assert set(cloudformation.LEFT_OUT_TYPES) <= left_types
    assert left_types - set(cloudformation.LEFT_OUT_TYPES) == {
        "AWS::Lambda::Function", "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::Lambda::LayerVersion",
        "AWS::Logs::LogGroup"}
    functions = [r for r in local["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert all(f["Properties"]["Handler"].startswith("functions.") for f in functions)
    assert len(functions) == len(synth.stack.functions.functions)
    # nothing kept names a left-out resource; the outputs that did are gone
    assert not cloudformation._references(local) & left_out
    assert not {"ConsoleUrl", "ConsoleUserPoolId"} & set(local["Outputs"])
    assert "ApiUrl" in local["Outputs"]
    # the console's methods stay (locally they need the stack's bearer token like every non-public method)
    authorizations = {m["Properties"]["AuthorizationType"] for m in local["Resources"].values()
                      if m["Type"] == "AWS::ApiGateway::Method"}
    assert "COGNITO_USER_POOLS" in authorizations
