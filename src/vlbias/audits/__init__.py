"""Audits: each takes an encoder and stimuli and returns an :class:`~vlbias.audits.base.AuditResult`.

An audit is a package here (``eat``, ``zeroshot``, ``perception``) that owns its modules: ``options`` (its typed
options), ``run`` (the computation) and its ``AUDIT`` spec in ``__init__``, found by :mod:`vlbias.audits.registry`.
Naming an audit or its options imports nothing heavy, so ``vlbias COMMAND --help`` stays fast.
"""
