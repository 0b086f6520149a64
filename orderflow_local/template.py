"""The CloudFormation template the local stack deploys: the CDK app's own, synthesized on demand and cached.

``synthesized()`` returns a folder holding ``<stack>.template.json``, ``<stack>.assets.json`` and the file
assets the template names (the state machine's definition). It synthesizes (``python app.py``, cdk-nag
included, exactly what ``make synth`` runs) only when the cache key changed: a hash of what the template is
made from (:data:`TEMPLATE_INPUTS`): the CDK app, the table, queue and ASL definitions, and the pinned
dependencies. Lambda *code* is not part of the key: the local stack runs handlers in-process from the
checkout, so editing a handler never needs a new synth.

A file lock keeps parallel test workers and stacks from synthesizing twice at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / ".build" / "local-template"
#: What the template is made from (globs under the repository root); a change to any of them re-synthesizes.
TEMPLATE_INPUTS = (
    "app.py",
    "cdk.json",
    "infra/**/*.py",
    "orderflow/tables.py",
    "orderflow/queues.py",
    "orderflow/asl.py",
    "statemachines/*.json",
    "pyproject.toml",
    "requirements/*.txt",
)


def cache_key() -> str:
    digest = hashlib.sha256()
    for pattern in TEMPLATE_INPUTS:
        for path in sorted(ROOT.glob(pattern)):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(f"python{sys.version_info.major}.{sys.version_info.minor}".encode())
    return digest.hexdigest()[:20]


def _template_files(outdir: Path) -> list[Path]:
    """The template, its asset manifest and its *file* assets (the directories are Lambda code: not copied)."""
    manifests = sorted(outdir.glob("*.assets.json"))
    files = [*outdir.glob("*.template.json"), *manifests]
    for manifest in manifests:
        for asset in json.loads(manifest.read_text()).get("files", {}).values():
            source = outdir / asset["source"]["path"]
            if asset["source"].get("packaging") == "file" and source.is_file() and source not in files:
                files.append(source)
    return files


def synthesized(*, say: Callable[[str], None] | None = None, force: bool = False) -> Path:
    """The cached template folder, synthesizing first if the inputs changed. ``say`` hears progress."""
    say = say or log.info
    key = cache_key()
    target = CACHE_DIR / key
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "key").is_file() and not force:
            return target
        started = time.monotonic()
        say(f"synthesizing the CDK app (cache key {key}: infra/, app.py, the table/queue/ASL definitions or "
            "the dependencies changed)…")
        _ensure_assets(say)
        with tempfile.TemporaryDirectory(prefix="cdk.out-", dir=CACHE_DIR) as outdir:
            env = {**os.environ, "CDK_OUTDIR": outdir, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
                   "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
            for name in [k for k in env if k.startswith(("AWS_", "ORDERFLOW_"))]:
                env.pop(name)  # synth is offline: nothing of a running stack leaks into it
            result = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"cdk synth failed (python app.py):\n{result.stdout}{result.stderr}")
            staging = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=CACHE_DIR))
            for path in _template_files(Path(outdir)):
                shutil.copyfile(path, staging / path.name)
        (staging / "key").write_text(key)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        for old in CACHE_DIR.iterdir():  # keep only the current template
            if old.is_dir() and old != target:
                shutil.rmtree(old, ignore_errors=True)
        say(f"synthesized in {time.monotonic() - started:.1f}s -> {target.relative_to(ROOT)}")
        return target


def _ensure_assets(say: Callable[[str], None]) -> None:
    """CDK packages ``.build/code`` and ``.build/layer``: build them if missing (``make build``)."""
    build = ROOT / ".build"  # infra.CODE_DIR and infra.LAYER_DIR
    if (build / "code").is_dir() and (build / "layer" / "python").is_dir():
        return
    say("building the Lambda assets first (python -m infra.build_assets)…")
    result = subprocess.run([sys.executable, "-m", "infra.build_assets"], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building the Lambda assets failed:\n{result.stdout}{result.stderr}")


def stack_template(folder: Path) -> tuple[str, dict, dict]:
    """(stack name, template, asset manifest) of a synthesized folder."""
    template_path = next(folder.glob("*.template.json"))
    stack_name = template_path.name.removesuffix(".template.json")
    manifest = folder / f"{stack_name}.assets.json"
    return stack_name, json.loads(template_path.read_text()), json.loads(manifest.read_text())
