"""The layers stay where the design puts them: checked on the source, so a slip fails the suite, not a review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLIENTS = {"arm", "keyvault", "powerplatform"}
FLOW_LINE_LIMIT = 300


def modules(package: str) -> list[Path]:
    """Every Python file of a top-level package."""
    return sorted(Path(package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """The top-level and dotted names a module imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def service_client_calls(path: Path) -> list[str]:
    """`services.arm.x`, `services.keyvault.x`, `services.powerplatform.x` (any object named *services)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            owner = node.value
            if owner.attr in CLIENTS:
                base = owner.value
                name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
                if name.endswith("services"):
                    found.append(f"{path}:{node.lineno}: {name}.{owner.attr}.{node.attr}")
    return found


@pytest.mark.parametrize("path", modules("flows"), ids=str)
def test_flows_call_tasks_never_service_clients(path: Path) -> None:
    assert service_client_calls(path) == []


@pytest.mark.parametrize("path", modules("flows"), ids=str)
def test_flows_never_speak_http_or_build_clients(path: Path) -> None:
    forbidden = {
        "httpx",
        "requests",
        "azure",
        "cmk.clients.arm",
        "cmk.clients.keyvault",
        "cmk.clients.powerplatform",
        "cmk.clients.sdk",
    }
    hits = {n for n in imported(path) if n in forbidden or n.split(".")[0] in {"httpx", "requests", "azure"}}
    assert hits == set()


def defines_a_flow(path: Path) -> bool:
    """Whether the module holds a @flow procedure (shared flow machinery such as the approval gate does not)."""
    return "@flow(" in path.read_text()


@pytest.mark.parametrize("path", [p for p in modules("flows") if defines_a_flow(p)], ids=str)
def test_no_flow_module_is_over_the_line_limit(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= FLOW_LINE_LIMIT


@pytest.mark.parametrize("path", modules("cmk"), ids=str)
def test_cmk_never_imports_prefect(path: Path) -> None:
    assert {n for n in imported(path) if n.split(".")[0] == "prefect"} == set()


@pytest.mark.parametrize("path", modules("simulator"), ids=str)
def test_the_simulator_never_imports_cmk(path: Path) -> None:
    assert {n for n in imported(path) if n.split(".")[0] in {"cmk", "flows", "tasks", "blocks"}} == set()


def test_the_guard_sees_a_service_client_call(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f(services):\n    return services.arm.list_policies()\n")
    assert service_client_calls(sample) == [f"{sample}:2: services.arm.list_policies"]


# cmk/'s sub-packages, lowest first: a module may import its own sub-package and the ones before it, never after.
CMK_LAYERS = ["errors", "domain", "state", "clients", "preflight", "moves", "plans", "inventory"]


def cmk_layer_violations(root: Path = Path(".")) -> list[str]:
    """`a -> b` for every cmk/ import that climbs from a lower sub-package to a higher one."""
    found = []
    for path in sorted((root / "cmk").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if len(parts) < 2 or parts[1] == "__init__":
            continue
        own = parts[1]
        for name in imported(path):
            bits = name.split(".")
            if bits[0] == "cmk" and len(bits) > 1 and bits[1] in CMK_LAYERS and own in CMK_LAYERS:
                if CMK_LAYERS.index(bits[1]) > CMK_LAYERS.index(own):
                    found.append(f"{'.'.join(parts)} -> {name}")
    return found


def test_cmk_sub_packages_import_only_downwards() -> None:
    assert cmk_layer_violations() == []


def test_every_cmk_module_lives_in_a_known_sub_package() -> None:
    tops = {p.relative_to("cmk").parts[0].removesuffix(".py") for p in Path("cmk").glob("*")} - {
        "__pycache__"
    }
    assert tops - {"__init__"} == set(CMK_LAYERS)


def test_the_layer_guard_sees_a_climb(tmp_path: Path) -> None:
    (tmp_path / "cmk" / "domain").mkdir(parents=True)
    (tmp_path / "cmk" / "domain" / "models.py").write_text("from cmk.moves.engine import EnvironmentMover\n")
    assert cmk_layer_violations(tmp_path) == ["cmk.domain.models -> cmk.moves.engine"]
