"""One declaration of every ORDERFLOW_* variable (orderflow/config.py): no other module of the product,
the handlers or the CDK app spells one, the local runtime lets through exactly the non-CDK ones, and
docs/configuration.md is the table the module writes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from orderflow import config
from orderflow_local import function_env

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"ORDERFLOW_[A-Z0-9_]*")


def spelled_names(path: Path) -> list[str]:
    """The ORDERFLOW_* names a module writes as a string of its own (a message that mentions one is not)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.fullmatch(node.value):
            found.append(node.value)
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant) \
                and NAME.fullmatch(str(node.values[0].value)):
            found.append(f"{node.values[0].value}{{...}}")
    return found


def test_no_module_but_config_spells_a_variable_name():
    spelled = {}
    for folder in ("orderflow", "functions", "infra"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "orderflow" / "config.py":
                continue
            names = spelled_names(path)
            if names:
                spelled[str(path.relative_to(ROOT))] = names
    assert spelled == {}, "declare these in orderflow/config.py and use the declaration"


def test_variables_are_declared_once_with_a_meaning():
    names = [v.name for v in config.VARIABLES]
    assert len(names) == len(set(names))
    assert all(v.name.startswith(config.PREFIX) and v.meaning for v in config.VARIABLES)


def test_the_local_runtime_lets_through_what_is_not_the_templates():
    for variable in config.VARIABLES:
        if "<" in variable.name:
            continue
        assert function_env.template_only(variable.name) is (variable.set_by is config.SetBy.CDK), variable.name
    assert function_env.template_only(config.table_variable("orders"))
    assert function_env.template_only(config.function_variable("poll_tracking"))
    assert not function_env.template_only(config.CARRIER_KEY_PREFIX + "EASYPOST")
    assert not function_env.template_only(config.SANDBOX_PREFIX + "FBA_STEP_SECONDS")
    assert not function_env.template_only("AWS_REGION")


def test_docs_configuration_is_the_modules_table():
    assert (ROOT / "docs" / "configuration.md").read_text() == config.markdown(), (
        "regenerate: python -c \"from orderflow import config; print(config.markdown(), end='')\" "
        "> docs/configuration.md")
