"""How flows are served, scheduled and demonstrated."""
