#!/usr/bin/env python3
"""CDK app: ``cdk synth`` or, offline, ``python app.py`` (``make synth``). ``-c stage=<name>`` picks the stage."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# jsii prints a large banner on every run for the Node 20 on this machine (it is past jsii's support
# date); this only silences it for Node 20, and only if the caller has not chosen otherwise.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from infra import nag  # noqa: E402
from infra.stack import build_app  # noqa: E402


def main() -> int:
    app, stack = build_app()
    try:
        assembly = app.synth()
    except RuntimeError as err:
        # CDK refuses to synthesize when a validation plugin (cdk-nag) reports a finding; it has
        # already printed the findings, so one line is enough here.
        if "ValidationFailed" not in str(err):
            raise
        print(f"synth: FAILED for {stack.stack_name}: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    # Also fail on what CDK would let through (in `cdk synth`'s process mode it only sets node's exit code).
    left = nag.unacknowledged(app)
    if left:
        for finding in left:
            print(finding, file=sys.stderr)
        print(
            f"synth: FAILED, {len(left)} unacknowledged cdk-nag finding(s): fix them or acknowledge them "
            "with a written reason (infra.nag.acknowledge)",
            file=sys.stderr,
        )
        return 1
    template = Path(assembly.directory) / stack.template_file
    resources = len(json.loads(template.read_text())["Resources"])
    print(
        f"synth: stack {stack.stack_name} -> {os.path.relpath(template)} ({resources} resources); "
        f"cdk-nag AwsSolutions clean, {len(nag.acknowledged(app))} finding(s) acknowledged with reasons"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
