"""ARM routes (STUB)."""

from simulator.core.routing import Router

router = Router("arm", ignore_case=True)
