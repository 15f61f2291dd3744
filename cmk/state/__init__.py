"""What makes re-runs safe: per-change checkpoints, the audit journal, the retirement registers."""
