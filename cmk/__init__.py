"""cmk: domain models, preflight rules, service clients, credentials, errors, the audit journal.

Nothing here imports Prefect: flows and tasks build on this layer, never the other way round.
"""
