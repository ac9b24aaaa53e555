"""Audit registry: how sweeps, reports and the CLI find audits by name.

An audit is one module in :mod:`vlbias.audits` that defines ``AUDIT = AuditSpec(...)``. Adding an audit is adding
that module (modules whose names start with ``_`` and the modules ``base`` and ``registry`` are not audits).
Other packages add audits through the ``vlbias.audits`` entry-point group (``name = "package.module"`` for a module
defining ``AUDIT``, or ``"package.module:ATTR"`` for an ``AuditSpec``), and code can add one at run time with
:func:`register` (tests use this for small audits of their own).

``AuditSpec.run(encoder, options)`` takes a loaded-or-lazy :class:`~vlbias.models.base.Encoder` and the audit's
options — a mapping as a sweep config gives it, or the audit's typed :class:`~vlbias.utils.options.Options` — parses
them with the one parser every entry point uses, and returns an :class:`~vlbias.audits.base.AuditResult`. It must
not print; long work reports through :func:`vlbias.utils.progress.progress`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from vlbias.errors import LayerError, VlbiasError
from vlbias.utils.options import Options

if TYPE_CHECKING:
    import pandas as pd

    from vlbias.audits.base import AuditResult
    from vlbias.models.base import Encoder

_NOT_AUDITS = {"base", "registry"}


@dataclass(frozen=True)
class AuditSpec:
    name: str
    description: str
    #: the audit's typed options (one declaration for Python, sweep configs and the command line's flags)
    options: type[Options]
    #: runs the audit on an encoder with parsed options; must not print (long work reports through progress). A
    #: ``"module:function"`` string is imported on first use, so naming an audit (and its options, for --help)
    #: imports none of the libraries its run needs
    execute: Callable[[Encoder, Options], AuditResult] | str
    #: modalities the model must have for the audit to run at all
    modalities: tuple[str, ...] = ("text",)
    #: optional model-zoo analysis for `vlbias analyze`: takes this audit's runs in a sweep (each task's part read
    #: back as an AuditResult), every swept model's catalogue facts (spec -> {fact: value}) and the analysis options
    #: (``by``, ``baseline``, ``pair_by``), and returns named result tables
    zoo_analysis: (
        Callable[[list[AuditResult], dict[str, dict[str, Any]], dict[str, Any]], dict[str, pd.DataFrame]] | str | None
    ) = None
    #: the module that presents this audit's runs in reports (of the report layer, ``vlbias.report.audits.<name>``,
    #: or a plugin's own; a name, as audits never import the report): it defines ``TITLE``, ``section(ctx, runs)``
    #: and optionally ``methods(ctx, runs)`` (see vlbias.report.presentation); None: the generic section, each run's
    #: tables as CSV files
    presentation: str | None = None

    @property
    def takes_dataset(self) -> bool:
        """Whether the audit runs on a face dataset (it has a ``dataset`` option); sweeps cross it with datasets."""
        return "dataset" in self.options.names()

    def parse_options(self, raw: Mapping[str, Any] | Options | None = None, **kwargs: Any) -> Options:
        """The audit's typed options from any raw mapping (see :meth:`vlbias.utils.options.Options.parse`)."""
        return self.options.parse(raw, **kwargs)

    def run(self, encoder: Encoder, options: Mapping[str, Any] | Options | None = None, **overrides: Any):
        """Run the audit: ``options`` parsed (a mapping, as in a sweep config, or typed options), then executed. On
        one layer of a model (:mod:`vlbias.models.layers`) the record names the layer and the reading, so every
        row carries them. A mitigated encoder (:class:`vlbias.mitigation.Mitigated`) adds its record to the run's
        (so to every row)."""
        result = resolve(self.execute)(encoder, self.options.parse(options, **overrides))
        facts = getattr(encoder, "layer_facts", None)
        if callable(facts) and hasattr(result, "record"):
            result.record.model = {**result.record.model, **facts()}
        mitigation = getattr(encoder, "mitigation_record", None)
        if mitigation:
            result.record.mitigation = dict(mitigation)
        return result

    def run_layers(
        self, encoders: Sequence[Encoder], options: Mapping[str, Any] | Options | None = None, **overrides: Any
    ):
        """Run the audit on each encoder of :func:`vlbias.models.load_layers` (layers of one model, filled from one
        pass) and give one result whose tables hold every layer's rows (:func:`vlbias.audits.base.combine_layers`);
        the one run itself for one encoder. A layer the audit cannot use (a tower too shallow for it) is noted in
        the result's skipped table; if no layer can be used, that layer's error is raised."""
        from vlbias.audits.base import combine_layers

        opts = self.options.parse(options, **overrides)
        if len(encoders) == 1:
            return self.run(encoders[0], opts)
        results, notes, first_error = [], [], None
        for enc in encoders:
            try:
                missing = [m for m in self.modalities if m not in enc.modalities]
                if missing:
                    enc._require(missing[0])  # the encoder's own one-line reason
                results.append(self.run(enc, opts))
            except LayerError as e:
                first_error = first_error or e
                layer = getattr(enc, "layer", None)
                notes.append((f"layer {layer}", f"not run: {e}", layer))
        if not results:
            raise first_error
        return combine_layers(results, notes)

    def analyse_zoo(self, runs: list[AuditResult], facts: dict[str, dict[str, Any]], options: dict[str, Any]):
        """The audit's model-zoo analysis (``zoo_analysis``) of a sweep's runs."""
        return resolve(self.zoo_analysis)(runs, facts, options)


def resolve(target: Callable | str) -> Callable:
    """A callable, or the one a ``"module:attribute"`` string names (imported now)."""
    if callable(target):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


_REGISTERED: dict[str, AuditSpec] = {}


def register(spec: AuditSpec, *, replace: bool = False) -> AuditSpec:
    """Make an audit known by name at run time (plugins and tests); returns the spec."""
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
    if name in _REGISTERED:
        return _REGISTERED[name]
    for module_name in _modules():
        spec = _builtin(module_name)
        if spec is not None and (spec.name == name or module_name == name):
            return spec
    if name in _plugins():
        return _plugin(name)
    raise VlbiasError(f"unknown audit {name!r}; known audits: {', '.join(audit_names()) or 'none'}")
