"""Audit registry: how sweeps, reports and the CLI find audits by name.

An audit is one module in :mod:`vlbias.audits` that defines ``AUDIT = AuditSpec(...)``. Adding an audit is adding
that module (modules whose names start with ``_`` and the modules ``base`` and ``registry`` are not audits).

``AuditSpec.run(encoder, options)`` takes a loaded-or-lazy :class:`~vlbias.models.base.Encoder` and a dict of
options (as they appear in a sweep config) and returns an :class:`~vlbias.audits.base.AuditResult`. It must not
print; long work reports through :func:`vlbias.utils.progress.progress`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vlbias.audits.base import AuditResult
    from vlbias.models.base import Encoder

_NOT_AUDITS = {"base", "registry"}


@dataclass(frozen=True)
class AuditSpec:
    name: str
    description: str
    run: Callable[[Encoder, dict[str, Any]], AuditResult]
    #: modalities the model must have for the audit to run at all
    modalities: tuple[str, ...] = ("text",)
    #: default options; a sweep config's options are merged over these
    defaults: dict[str, Any] = field(default_factory=dict)
    #: option -> one-line help, for `--help` and config validation
    options_help: dict[str, str] = field(default_factory=dict)

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Defaults merged with the given options; unknown option names are a user error."""
        from vlbias.errors import VlbiasError

        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise VlbiasError(
                f"audit {self.name!r} has no option {', '.join(map(repr, unknown))}; its options: {known}"
            )
        return {**self.defaults, **options}


@lru_cache(maxsize=1)
def _modules() -> tuple[str, ...]:
    import vlbias.audits as pkg

    return tuple(
        m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_") and m.name not in _NOT_AUDITS
    )


def audit_names() -> list[str]:
    return [get_audit(m).name for m in _modules() if hasattr(importlib.import_module(f"vlbias.audits.{m}"), "AUDIT")]


def get_audit(name: str) -> AuditSpec:
    from vlbias.errors import VlbiasError

    for module_name in _modules():
        spec = getattr(importlib.import_module(f"vlbias.audits.{module_name}"), "AUDIT", None)
        if spec is not None and (spec.name == name or module_name == name):
            return spec
    raise VlbiasError(f"unknown audit {name!r}; known audits: {', '.join(audit_names()) or 'none'}")
