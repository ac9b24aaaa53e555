"""Audits: each takes an encoder and stimuli and returns an :class:`~vlbias.audits.base.AuditResult`."""

from vlbias.audits.base import AuditResult, RunRecord

__all__ = ["AuditResult", "RunRecord"]
