"""cmk: the domain, its rules and the service clients, in sub-packages imported only downwards.

errors -> domain -> state -> clients -> preflight -> moves -> plans -> inventory (tests/test_layering.py guards it).
Nothing here imports Prefect: flows and tasks build on this layer, never the other way round.
"""
