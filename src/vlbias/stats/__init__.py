"""Statistics on arrays: association tests and their permutation machinery. Nothing here knows about models."""
