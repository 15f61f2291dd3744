"""The simulator's layers: a service never imports another service or the World; core/ imports no service."""

from __future__ import annotations

from pathlib import Path

from tests.test_import_cycles import import_graph

SERVICES = ("simulator.arm", "simulator.bap", "simulator.keyvault")
TOP = ("simulator.world", "simulator.server", "simulator.core.world")
NOT_CORE = (
    *SERVICES,
    "simulator.identity",
    "simulator.control",
    "simulator.scenarios",
    "simulator.health",
    *TOP,
)


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import that crosses a layer the wrong way, as 'importer -> imported'."""
    found = []
    for module, targets in sorted(graph.items()):
        own = next((s for s in SERVICES if _within(module, s)), None)
        for target in sorted(targets):
            if own is not None:
                other_service = any(_within(target, s) for s in SERVICES if s != own)
                if other_service or any(_within(target, t) for t in TOP):
                    found.append(f"{module} -> {target}")
            elif _within(module, "simulator.core") and any(_within(target, p) for p in NOT_CORE):
                found.append(f"{module} -> {target}")
    return found


def test_services_and_core_keep_to_their_layer() -> None:
    assert violations(import_graph(("simulator",))) == []


def test_the_check_sees_a_service_importing_another_and_core_importing_a_service(tmp_path: Path) -> None:
    for package in ("simulator", "simulator/arm", "simulator/bap", "simulator/keyvault", "simulator/core"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "simulator/arm/models.py").write_text("x = 1\n")
    (tmp_path / "simulator/world.py").write_text("from simulator.arm.models import x\n")
    (tmp_path / "simulator/bap/models.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from simulator.arm.models import x\n"
    )
    (tmp_path / "simulator/keyvault/models.py").write_text("def f():\n    from simulator import world\n")
    (tmp_path / "simulator/core/app.py").write_text("def g():\n    from simulator.bap import models\n")
    assert violations(import_graph(("simulator",), tmp_path)) == [
        "simulator.bap.models -> simulator.arm.models",
        "simulator.core.app -> simulator.bap",
        "simulator.core.app -> simulator.bap.models",
        "simulator.keyvault.models -> simulator.world",
    ]
