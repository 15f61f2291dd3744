"""The tenant inventory: the snapshot read in bulk, the risks found in it, access drift, and the report."""
