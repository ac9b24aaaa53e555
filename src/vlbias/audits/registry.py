"""Audit registry: how sweeps, reports and the CLI find audits by name.

An audit is one module in :mod:`vlbias.audits` that defines ``AUDIT = AuditSpec(...)``. Adding an audit is adding
that module (modules whose names start with ``_`` and the modules ``base`` and ``registry`` are not audits).
Other packages add audits through the ``vlbias.audits`` entry-point group (``name = "package.module"`` for a module
defining ``AUDIT``, or ``"package.module:ATTR"`` for an ``AuditSpec``), and code can add one at run time with
:func:`register` (tests use this for small audits of their own).

``AuditSpec.run(encoder, options)`` takes a loaded-or-lazy :class:`~vlbias.models.base.Encoder` and a dict of
options (as they appear in a sweep config) and returns an :class:`~vlbias.audits.base.AuditResult`. It must not
print; long work reports through :func:`vlbias.utils.progress.progress`.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

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
    #: optional model-zoo analysis for `vlbias analyze`: takes this audit's runs in a sweep (each task's part read
    #: back as an AuditResult), every swept model's catalogue facts (spec -> {fact: value}) and the analysis options
    #: (``by``, ``baseline``, ``pair_by``), and returns named result tables
    zoo_analysis: (
        Callable[[list[AuditResult], dict[str, dict[str, Any]], dict[str, Any]], dict[str, pd.DataFrame]] | None
    ) = None

    @property
    def takes_dataset(self) -> bool:
        """Whether the audit runs on a face dataset (it has a ``dataset`` option); sweeps cross it with datasets."""
        return "dataset" in self.defaults

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Defaults merged with the given options; unknown option names are a user error."""
        from vlbias.errors import VlbiasError

        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise VlbiasError(
                f"audit {self.name!r} has no option {', '.join(map(repr, unknown))}; its options: {known}"
            )
        return {**copy.deepcopy(self.defaults), **options}  # a run may mutate its options, never the defaults


_REGISTERED: dict[str, AuditSpec] = {}


def register(spec: AuditSpec, *, replace: bool = False) -> AuditSpec:
    """Make an audit known by name at run time (plugins and tests); returns the spec."""
    from vlbias.errors import VlbiasError

    if not replace and spec.name in _REGISTERED and _REGISTERED[spec.name] is not spec:
        raise VlbiasError(f"an audit named {spec.name!r} is already registered")
    _REGISTERED[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    _REGISTERED.pop(name, None)


@lru_cache(maxsize=1)
def _modules() -> tuple[str, ...]:
    import vlbias.audits as pkg

    return tuple(
        m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_") and m.name not in _NOT_AUDITS
    )


@lru_cache(maxsize=1)
def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="vlbias.audits")}


def _plugin(name: str) -> AuditSpec:
    module_name, _, attr = _plugins()[name].partition(":")
    obj = importlib.import_module(module_name)
    return getattr(obj, attr) if attr else obj.AUDIT


def _builtin(module_name: str) -> AuditSpec | None:
    return getattr(importlib.import_module(f"vlbias.audits.{module_name}"), "AUDIT", None)


def audit_names() -> list[str]:
    names = [spec.name for m in _modules() if (spec := _builtin(m)) is not None]
    names += [p for p in _plugins() if p not in names]
    return names + [n for n in _REGISTERED if n not in names]


def get_audit(name: str) -> AuditSpec:
    from vlbias.errors import VlbiasError

    if name in _REGISTERED:
        return _REGISTERED[name]
    for module_name in _modules():
        spec = _builtin(module_name)
        if spec is not None and (spec.name == name or module_name == name):
            return spec
    if name in _plugins():
        return _plugin(name)
    raise VlbiasError(f"unknown audit {name!r}; known audits: {', '.join(audit_names()) or 'none'}")
