"""Scenarios: the tenant the simulator starts with ('demo', 'large:N' or a JSON file)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any


def load_scenario(spec: str | dict[str, Any]) -> dict[str, Any]:
    """Resolve 'demo', 'large:N', a path to a JSON file, or a dict, into a scenario dict."""
    if isinstance(spec, dict):
        return copy.deepcopy(spec)
    if spec == "demo":
        from simulator.scenarios.demo import build_demo

        return build_demo()
    if spec.startswith("large:"):
        from simulator.scenarios.large import build_large

        try:
            count = int(spec.split(":", 1)[1])
        except ValueError as exc:
            raise ValueError(f"'{spec}': use large:N with N a whole number of environments.") from exc
        if count < 1:
            raise ValueError(f"'{spec}': N must be at least 1.")
        return build_large(count)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"Unknown scenario '{spec}': use demo, large:N or the path of a scenario JSON file.")
    return json.loads(path.read_text())
