"""Frozen models of what the services hold, with the state questions as methods; ids, roles, report rows."""
