"""The one engine that moves environments (link, swap, unlink), its waves and its failure budget."""
