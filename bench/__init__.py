"""Benchmarks: print figures against the limit the simulator's settings imply."""
