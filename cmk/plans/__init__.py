"""Change plans: pure functions from what was read and what was asked to every write a flow will make."""
