"""cdk-nag 3 (AwsSolutions and Serverless packs) wiring: register the checks, acknowledge findings, list what is left.

cdk-nag 3 is a CDK policy-validation plugin (``Validations.of(app).add_plugins``); findings are
acknowledged per finding id (``AwsSolutions-IAM5[Resource::*]``) with ``Validations.of(c).acknowledge``.
Any finding the pack reports (error or warning) makes ``app.synth()`` raise ``ValidationFailed`` when the
app runs on its own (``python app.py``, pytest). Under the CDK CLI's process mode CDK only prints the
report and sets the exit code of jsii's Node process, which Python never sees; so ``app.py`` also re-runs
the pack with :func:`unacknowledged` after synth and exits non-zero on anything left.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    paths: tuple[str, ...]
    description: str

    def __str__(self) -> str:
        where = ", ".join(self.paths)
        return f"[{self.severity}] {self.rule} at {where}: {self.description}"


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one finding on ``construct`` and its children, with the written reason."""
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def flatten(reference: Any) -> str:
    """A resolved CloudFormation value as cdk-nag writes it in finding ids (its ``flattenCfnReference``)."""
    if isinstance(reference, str):
        return reference.replace("${", "<").replace("}", ">")
    if isinstance(reference, dict):
        if "Fn::Join" in reference:
            delimiter, items = reference["Fn::Join"]
            return delimiter.join(flatten(item) for item in items)
        if "Fn::Sub" in reference:
            return flatten(reference["Fn::Sub"])
        if "Fn::GetAtt" in reference:
            resource, attribute = reference["Fn::GetAtt"]
            return f"<{flatten(resource)}.{flatten(attribute)}>"
        if "Fn::ImportValue" in reference:
            return flatten(reference["Fn::ImportValue"])
        if "Ref" in reference:
            return f"<{flatten(reference['Ref'])}>"
    return json.dumps(reference, separators=(",", ":"))


def wildcard_resource(scope: IConstruct, resource: str) -> str:
    """The AwsSolutions-IAM5 finding id for a wildcard ``resource`` (a string that may hold tokens)."""
    return f"AwsSolutions-IAM5[Resource::{flatten(Stack.of(scope).resolve(resource))}]"


def acknowledged(scope: IConstruct) -> list[tuple[str, str, str]]:
    """(construct path, finding id, reason) of every acknowledgment under ``scope``."""
    found = []
    for construct in scope.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY and entry.data:
                for rule_id, reason in dict(entry.data).items():
                    found.append((construct.node.path, rule_id.split("::", 1)[-1], reason))
    return found


PACKS = (AwsSolutionsChecks, ServerlessChecks)


def add_checks(app: IConstruct) -> None:
    Validations.of(app).add_plugins(*(pack(app, verbose=True) for pack in PACKS))


def unacknowledged(scope: IConstruct) -> list[Finding]:
    """Every AwsSolutions and Serverless finding under ``scope`` that no acknowledgment covers."""
    violations = [v for pack in PACKS for v in pack(verbose=True).validate_scope(scope).violations]
    return [
        Finding(
            rule=v.rule_name,
            severity=v.severity or "warning",
            paths=tuple(r.construct_path or "?" for r in v.violating_resources),
            description=v.description,
        )
        for v in violations
    ]
