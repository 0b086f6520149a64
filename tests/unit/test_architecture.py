"""The walls between the layers hold (docs/architecture.md): no module imports another that imports it
back (counting imports inside functions), and the [tool.importlinter] contracts in pyproject.toml are kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def import_cycles(*packages: str) -> list[list[str]]:
    """Strongly connected groups of modules (of more than one) in the import graph."""
    graph = grimp.build_graph(*packages)
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & set(modules)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in modules:  # Tarjan, iteratively
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(edges[node]):
                work.append((node, i + 1))
                nxt = edges[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return groups


def test_no_import_cycles():
    sys.path.insert(0, str(ROOT))
    assert import_cycles("orderflow", "functions", "orderflow_local") == []


def test_the_import_contracts_are_kept():
    run = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def test_test_modules_have_unique_names():
    """Test folders are not packages, so pytest imports each test file by its bare name: two files with one
    name make the run that collects both (`make test`'s slow phase collects every folder) stop with an
    import-mismatch error."""
    seen: dict[str, Path] = {}
    clashes = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        if (path.parent / "__init__.py").exists():
            continue
        if path.name in seen:
            clashes.append((str(seen[path.name].relative_to(ROOT)), str(path.relative_to(ROOT))))
        seen.setdefault(path.name, path)
    assert clashes == []


def test_the_handler_independence_contract_names_every_function():
    """The import-linter contract "A handler imports no other handler" lists the handlers by hand
    (import-linter reads no code): it must name exactly the functions of the app (infra.FUNCTION_NAMES, which
    tests/infra holds to the functions/ folders and the template), or a new handler would escape the wall."""
    import tomllib

    from infra import FUNCTION_NAMES

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    independence = [c for c in contracts if c["type"] == "independence"]
    assert len(independence) == 1
    assert sorted(independence[0]["modules"]) == sorted(f"functions.{name}" for name in FUNCTION_NAMES)


def test_wiring_the_ports_imports_no_fulfilment_route_until_a_cancel_asks_it():
    """Every function builds its ports at a cold start; the FBA and supplier code loads only on a cancel."""
    code = ("import sys, orderflow.wiring as w; "
            "assert not {'orderflow.fba.cancellation', 'orderflow.suppliers.cancellation'} & set(sys.modules), "
            "sorted(m for m in sys.modules if m.startswith('orderflow.'));"
            "routes = [w.LazyRoute(m, n)._loaded() for m, n in w.ROUTES];"
            "print([type(r).__name__ for r in routes])")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "['FbaRoute', 'SupplierRoute']"
