"""The simulator's control plane under /_sim/."""
