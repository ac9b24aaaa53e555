"""Mitigation methods: one module each, defining ``METHOD`` (a :class:`~vlbias.mitigation.registry.MethodSpec`)."""
