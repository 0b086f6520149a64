"""The CDK app, synthesized once per test session in-process (offline, cdk-nag included)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# jsii's end-of-life banner for the Node 20 on this machine (only Node 20, only if not set already).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from infra import CODE_DIR, LAYER_DIR, build_assets  # noqa: E402
from infra.stack import OrderflowStack, build_app  # noqa: E402


@dataclass
class Synth:
    app: App
    stack: OrderflowStack
    outdir: Path
    template: Template
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, Any]

    def lid(self, construct) -> str:  # noqa: ANN001 - an L2 construct or a CfnResource
        """The logical id of an L2 construct's resource (or of a CfnResource)."""
        element = getattr(construct.node, "default_child", None) or construct
        return self.stack.resolve(self.stack.get_logical_id(element))

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == cfn_type}

    def statements(self, role_lid: str) -> list[dict[str, Any]]:
        """Every policy statement attached to the role (its inline policies and AWS::IAM::Policy)."""
        found: list[dict[str, Any]] = []
        role = self.resources[role_lid]["Properties"]
        for policy in role.get("Policies", []):
            found += policy["PolicyDocument"]["Statement"]
        for policy in self.of_type("AWS::IAM::Policy").values():
            if {"Ref": role_lid} in policy["Properties"].get("Roles", []):
                found += policy["Properties"]["PolicyDocument"]["Statement"]
        return found


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    if not (CODE_DIR.is_dir() and (LAYER_DIR / "python").is_dir()):
        build_assets.main([])  # `make test` builds first; this is for a bare `pytest tests/infra`
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = build_app(outdir=str(outdir))
    try:
        app.synth()  # runs cdk-nag; under pytest CDK raises with the whole report on any finding
    except RuntimeError as err:
        pytest.fail(f"synth failed:\n{err}")
    template = Template.from_stack(stack)
    data = template.to_json()
    return Synth(app, stack, outdir, template, data["Resources"], data.get("Outputs", {}))
