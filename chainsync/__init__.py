"""Chain types, sync, tipset execution and chain-backed Externs."""
