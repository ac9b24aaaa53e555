"""Model backends: one module per spec prefix (the module's name is the prefix)."""
