"""The embedded Filecoin Virtual Machine and the types it shares with the chain."""
