"""BAP routes (STUB)."""

from simulator.core.routing import Router

router = Router("bap", ignore_case=True)
