"""Key Vault routes (STUB)."""

from simulator.core.routing import Router

router = Router("keyvault", ignore_case=False)
