"""Build the Lambda assets CDK packages, without Docker: ``python -m infra.build_assets``.

- ``.build/code/``: our own code, the ``orderflow`` and ``functions`` packages (``*.py`` and data ``*.json``).
- ``.build/layer/python/``: the runtime dependencies of ``requirements/lambda.txt``, installed with pip's
  cross-platform flags for the Lambda runtime (Python ``LAMBDA_PYTHON_VERSION`` on x86_64). Skipped when
  ``.build/layer.stamp`` shows the same requirements, constraints and target as the last install.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from infra import BUILD_DIR, CODE_DIR, LAMBDA_PLATFORM, LAMBDA_PYTHON_VERSION, LAYER_DIR, ROOT

PACKAGES = ("orderflow", "functions")
REQUIREMENTS = ROOT / "requirements" / "lambda.txt"
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
LAYER_STAMP = BUILD_DIR / "layer.stamp"  # beside the layer, not in it: the asset hash stays the layer's own


def _say(message: str) -> None:
    print(f"build: {message}", flush=True)


def build_code(dest: Path = CODE_DIR) -> int:
    """Copy our packages' code and data (``*.py``, ``*.json``) into ``dest`` (recreated). Returns the
    number of files."""
    if dest.exists():
        shutil.rmtree(dest)
    count = 0
    for package in PACKAGES:
        for src in sorted(p for pattern in ("*.py", "*.json") for p in (ROOT / package).rglob(pattern)):
            rel = src.relative_to(ROOT)
            if "__pycache__" in rel.parts:
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
            count += 1
    return count


def _layer_key() -> str:
    digest = hashlib.sha256()
    for path in (REQUIREMENTS, CONSTRAINTS):
        digest.update(path.name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"") + b"\0")
    digest.update(f"{LAMBDA_PLATFORM} cp{LAMBDA_PYTHON_VERSION}".encode())
    return digest.hexdigest()


def _pip(target: Path, with_constraints: bool) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    cmd += [
        "--platform",
        LAMBDA_PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON_VERSION,
    ]
    cmd += ["--only-binary=:all:", "--target", str(target), "-r", str(REQUIREMENTS)]
    if with_constraints and CONSTRAINTS.exists():
        cmd += ["-c", str(CONSTRAINTS)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


def build_layer(dest: Path = LAYER_DIR, force: bool = False) -> bool:
    """Install the runtime dependencies into ``dest/python``. Returns False if the stamp said it was current."""
    key = _layer_key()
    site = dest / "python"
    if not force and site.is_dir() and LAYER_STAMP.exists():
        try:
            if json.loads(LAYER_STAMP.read_text()).get("key") == key:
                return False
        except ValueError:
            pass
    LAYER_STAMP.unlink(missing_ok=True)
    if dest.exists():
        shutil.rmtree(dest)
    site.mkdir(parents=True)
    result = _pip(site, with_constraints=True)
    if result.returncode != 0:
        _say("pip with requirements/constraints.txt failed for the Lambda platform; retrying without it")
        shutil.rmtree(site)
        site.mkdir(parents=True)
        result = _pip(site, with_constraints=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(
            f"build: pip could not install {REQUIREMENTS.relative_to(ROOT)} for the Lambda layer"
        )
    for cache in site.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    LAYER_STAMP.write_text(
        json.dumps({"key": key, "python": LAMBDA_PYTHON_VERSION, "platform": LAMBDA_PLATFORM})
    )
    return True


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.build_assets", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--force", action="store_true", help="reinstall the layer even if the stamp is current"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    files = build_code()
    _say(f"code  -> {CODE_DIR.relative_to(ROOT)}/ ({files} files from {', '.join(PACKAGES)})")
    t = time.perf_counter()
    if build_layer(force=args.force):
        _say(
            f"layer -> {LAYER_DIR.relative_to(ROOT)}/python/ (python{LAMBDA_PYTHON_VERSION} {LAMBDA_PLATFORM}, "
            f"{_size_mb(LAYER_DIR):.0f} MB, {time.perf_counter() - t:.1f}s)"
        )
    else:
        _say(
            f"layer -> {LAYER_DIR.relative_to(ROOT)}/python/ unchanged (requirements/lambda.txt same as last build)"
        )
    _say(f"done in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
