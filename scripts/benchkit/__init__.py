"""What scripts/bench uses beside its shell: the report it writes."""
