"""Small verb_noun Prefect tasks, one side effect each, idempotent (read, then write only if needed)."""
