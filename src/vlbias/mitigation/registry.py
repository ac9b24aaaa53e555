"""Mitigation registry: how the CLI, sweeps and Python find a debiasing method by name.

A method is one module in :mod:`vlbias.mitigation.methods` that defines ``METHOD = MethodSpec(...)``: its name, one
line of description, its citation, its typed options (:mod:`vlbias.utils.options`) and ``fit(data, options)``, which
turns the fit data (:class:`vlbias.mitigation.fit.FitData`) into per-tower operations. Adding a method is adding
that module and its test. ``NAME[:KEY=VALUE,...]`` (the ``--mitigation`` flag, a sweep's ``mitigations:`` item) is
parsed by :func:`parse_mitigation` through the method's one options parser.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from vlbias.errors import OptionError
from vlbias.mitigation import methods
from vlbias.utils.options import Options


@dataclass(frozen=True)
class MethodSpec:
    name: str
    description: str
    citation: str
    options: type[Options]
    #: fit(data: FitData, options) -> (ops: {tower: Linear | Impute}, details: dict)
    fit: Callable[[Any, Options], tuple[dict[str, Any], dict[str, Any]]]


@lru_cache(maxsize=1)
def _modules() -> tuple[str, ...]:
    return tuple(m.name for m in pkgutil.iter_modules(methods.__path__) if not m.name.startswith("_"))


def method_names() -> list[str]:
    return [get_method(m).name for m in _modules()]


def get_method(name: str) -> MethodSpec:
    module = name.replace("-", "_")
    if module not in _modules():
        raise OptionError(f"unknown mitigation {name!r}; known mitigations: {', '.join(_modules())}")
    return importlib.import_module(f"vlbias.mitigation.methods.{module}").METHOD


def split_spec(text: str) -> tuple[str, dict[str, str]]:
    """``NAME[:KEY=VALUE,...]`` as the name and the raw options (a part without ``=`` continues the value before
    it, so ``towers=text,image`` is one value)."""
    name, _, rest = str(text).strip().partition(":")
    raw: dict[str, str] = {}
    last = None
    for part in rest.split(",") if rest else []:
        key, eq, value = part.partition("=")
        if eq:
            last = key.strip()
            raw[last] = value.strip()
        elif last is not None:
            raw[last] += "," + part.strip()
        else:
            raise OptionError(f"mitigation {text!r}: write NAME:KEY=VALUE,... (e.g. projection:lam=500)")
    return name.strip(), raw


def parse_mitigation(
    spec: str | Mapping[str, Any], *, base: str | None = None, where: str = ""
) -> tuple[MethodSpec, Options]:
    """A method and its typed options from ``NAME[:KEY=VALUE,...]`` or ``{method: NAME, KEY: VALUE}``."""
    if isinstance(spec, Mapping):
        raw = dict(spec)
        name = str(raw.pop("method", ""))
    else:
        name, raw = split_spec(spec)
    method = get_method(name)
    return method, method.options.parse(raw, base=base, where=where)


def label(method: MethodSpec, options: Options) -> str:
    """``NAME[:KEY=VALUE,...]`` with only the options that differ from the method's defaults."""
    changed = options.changed()
    if not changed:
        return method.name
    text = ",".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in sorted(changed.items()))
    return f"{method.name}:{text}"
