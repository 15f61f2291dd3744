"""The pieces the procedures are built from: approval gate, fan-out, endings, plan and report text."""
