"""Backend registry.

A backend is one module in :mod:`vlbias.models.backends` whose file name is its spec prefix and which defines
``Backend`` (an :class:`~vlbias.models.base.Encoder` subclass) and ``DESCRIPTION``. Adding a backend is adding
that one file. Third-party packages can add backends through the ``vlbias.backends`` entry-point group
(``prefix = "package.module:Class"``).

Backend modules import their deep-learning libraries lazily, so listing and parsing stay fast.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from vlbias.models import backends

if TYPE_CHECKING:
    from vlbias.models.base import Encoder


@lru_cache(maxsize=1)
def _builtin() -> tuple[str, ...]:
    return tuple(m.name for m in pkgutil.iter_modules(backends.__path__) if not m.name.startswith("_"))


@lru_cache(maxsize=1)
def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="vlbias.backends")}


def backend_names() -> list[str]:
    return list(_builtin()) + [p for p in _plugins() if p not in _builtin()]


def backend_class(prefix: str) -> type[Encoder]:
    if prefix in _builtin():
        module = importlib.import_module(f"vlbias.models.backends.{prefix}")
        return module.Backend
    target = _plugins()[prefix]
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr or "Backend")


def backend_description(prefix: str) -> str:
    if prefix in _builtin():
        return importlib.import_module(f"vlbias.models.backends.{prefix}").DESCRIPTION
    return f"plugin backend ({_plugins()[prefix]})"
