"""Every flow loads from its entrypoint and validates parameters, as a served or deployed run does."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import cloudpickle
import pytest
from prefect.flows import load_flow_from_entrypoint

FLOW_FILES = sorted(p for p in Path("flows").glob("*.py") if p.name != "__init__.py")


def flow_entrypoints() -> list[str]:
    """'flows/x.py:name' for every function decorated with @flow in flows/."""
    found = []
    for path in FLOW_FILES:
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                for dec in node.decorator_list:
                    target = dec.func if isinstance(dec, ast.Call) else dec
                    if isinstance(target, ast.Name) and target.id == "flow":
                        found.append(f"{path.as_posix()}:{node.name}")
    return found


def test_every_flow_module_is_found() -> None:
    assert "flows/onboard.py:onboard" in flow_entrypoints()


@pytest.mark.parametrize("entrypoint", flow_entrypoints())
def test_flow_parameters_resolve_when_shipped_to_a_served_run(entrypoint: str) -> None:
    """A served run receives the flow pickled by value; names used only in string annotations are lost then.

    That is what `from __future__ import annotations` in a flow module does: the run fails with
    "`<Flow>Model` is not fully defined" before it starts.
    """
    path, name = entrypoint.split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    cloudpickle.register_pickle_by_value(module)
    try:
        flow = cloudpickle.loads(cloudpickle.dumps(load_flow_from_entrypoint(entrypoint)))
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    defaults = {
        name: prop["default"] for name, prop in flow.parameters.properties.items() if "default" in prop
    }
    required = {name: "x" for name in flow.parameters.required or []}
    try:
        flow.validate_parameters({**defaults, **required})
    except Exception as exc:  # a type mismatch on the dummy values is fine; an undefined model is not
        assert "not fully defined" not in str(exc), f"{entrypoint}: {exc}"
        assert "is not defined" not in str(exc), f"{entrypoint}: {exc}"


@pytest.mark.parametrize("entrypoint", flow_entrypoints())
def test_no_parameter_renders_as_a_type_chooser_in_the_ui(entrypoint: str) -> None:
    """`X | None` parameters show a 'X / None' switch in the run form; empty defaults read better."""
    flow = load_flow_from_entrypoint(entrypoint)
    unions = [name for name, prop in flow.parameters.properties.items() if "anyOf" in prop]
    assert unions == [], f"{entrypoint}: use an empty default instead of None for {unions}"


def test_flow_modules_do_not_postpone_annotations() -> None:
    """The pickle test above only fails for annotation names the code never uses; this catches the rest."""
    modules = {entrypoint.split(":")[0] for entrypoint in flow_entrypoints()}
    offenders = [m for m in sorted(modules) if "from __future__ import annotations" in Path(m).read_text()]
    assert offenders == [], f"remove `from __future__ import annotations` from {offenders}"


@pytest.mark.parametrize("entrypoint", flow_entrypoints())
def test_no_parameter_description_has_a_placeholder_the_ui_would_swallow(entrypoint: str) -> None:
    """The run form renders descriptions as HTML: "rotate-<mode>-<date>" showed as "rotate--"."""
    flow = load_flow_from_entrypoint(entrypoint)
    swallowed = {
        name: prop["description"]
        for name, prop in flow.parameters.properties.items()
        if re.search(r"<[A-Za-z][^>]*>", prop.get("description", ""))
    }
    assert swallowed == {}
