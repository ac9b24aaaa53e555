"""Dataset specs: one value names a face dataset everywhere (command line, sweep configs, result rows, records,
reports), as :class:`~vlbias.models.spec.ModelSpec` names a model.

``NAME:PATH`` is parsed once into a :class:`DatasetSpec`: the loader's name, the dataset's absolute root and the
loader's typed options (each loader module declares them as ``Options``, see :mod:`vlbias.utils.options`), their
defaults included. The root is made absolute against ``base`` (a sweep config's folder; the working directory
otherwise) and normalised, and where a loader knows its release folder (``find_root``: the CFD release sits in
``CFD Version 3.0/``) the root is that folder. So ``cfd:CFD``, ``cfd:CFD/`` and ``cfd:CFD/CFD Version 3.0`` typed in
a config two folders up are one spec: ``str(spec)`` is the one spelling that task ids, rows and reports hold.

A path that does not exist yet parses (it is checked when the dataset loads), so a config can be planned on a machine
that does not hold the data.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from vlbias.datasets.base import FaceDataset
from vlbias.errors import StimulusError, VlbiasError
from vlbias.utils.options import FrozenMap, Options, preset

_NOT_LOADERS = {"base", "spec", "demo"}  # demo: writes datasets (vlbias demo), reads none


@lru_cache(maxsize=1)
def loader_names() -> tuple[str, ...]:
    """The loader modules beside this one (found without importing the package, which imports this module)."""
    return tuple(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not m.name.startswith("_") and m.name not in _NOT_LOADERS
    )


def loader(name: str) -> ModuleType:
    """The loader module ``vlbias.datasets.<name>`` (``DESCRIPTION``, ``Options``, ``load``, maybe ``find_root``)."""
    if name not in loader_names():
        raise VlbiasError(f"unknown dataset {name!r}; known datasets: {', '.join(loader_names())}")
    return importlib.import_module(f"vlbias.datasets.{name}")


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed dataset spec: loader, absolute root, typed loader options."""

    loader: str
    root: str
    options: Options = field(compare=True)

    #: how utils.options describes a value of this type
    OPTION_WORDS = (
        "a dataset spec NAME:PATH (cfd:, fairface:, utkface:, causalface:, facet:, socialcounterfactuals:, pata:, "
        "manifest:)"
    )

    def __str__(self) -> str:
        return f"{self.loader}:{self.root}"

    @classmethod
    def parse(
        cls,
        text: str | DatasetSpec,
        *,
        options: Mapping[str, Any] | Options | None = None,
        base: str | os.PathLike | None = None,
    ) -> DatasetSpec:
        """``NAME:PATH`` (or a spec) with loader options merged over the spec's own; see the module docstring."""
        if isinstance(text, DatasetSpec):
            return text.with_options(options) if options else text
        if not isinstance(text, str) or not text.strip():
            raise VlbiasError(
                f"dataset spec {text!r} must be NAME:PATH with NAME one of {', '.join(loader_names())}, "
                f"e.g. cfd:/data/CFD"
            )
        name, sep, path = text.strip().partition(":")
        if not sep or not path.strip():
            raise VlbiasError(
                f"dataset spec {text!r} must be NAME:PATH with NAME one of {', '.join(loader_names())}, "
                f"e.g. cfd:/data/CFD"
            )
        module = loader(name)
        p = Path(os.path.expanduser(path.strip()))
        if not p.is_absolute():
            p = Path(base or Path.cwd()) / p
        p = Path(os.path.normpath(p))
        find_root = getattr(module, "find_root", None)
        if find_root is not None and p.exists():
            try:
                p = Path(os.path.normpath(find_root(p)))
            except StimulusError:
                pass  # not a release folder: the loader says so, with the details, when it loads
        opts = module.Options.parse(options, base=base)
        return cls(name, str(p), opts)

    def with_options(self, options: Mapping[str, Any] | Options | None) -> DatasetSpec:
        """The same dataset with some loader options changed (merged over the current ones)."""
        if not options:
            return self
        given = options.to_dict() if isinstance(options, Options) else dict(options)
        merged = type(self.options).parse({**self.options.to_dict(), **given})
        return DatasetSpec(self.loader, self.root, merged)

    # the protocol of vlbias.utils.options for option values of this type
    @classmethod
    def from_option(cls, value: Any, *, base: str | os.PathLike | None = None) -> DatasetSpec:
        if isinstance(value, FaceDataset):  # loaded already: by its spec, or (a table made in Python) as it is
            return value.source if value.source is not None else value
        return cls.parse(value, base=base)

    def to_option(self) -> str:
        return str(self)

    def load(self) -> FaceDataset:
        dataset = loader(self.loader).load(Path(self.root), **self.options.to_dict())
        dataset.source = self
        return dataset


def dataset_names() -> list[str]:
    return list(loader_names())


def load_dataset(spec: str | DatasetSpec, **options: Any) -> FaceDataset:
    """Load ``NAME:PATH`` (or a parsed spec) with the loader named NAME and the given loader options."""
    return DatasetSpec.parse(spec, options=options).load()


def fold_dataset_options(cls: type[Options], values: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """For options that declare ``dataset`` and ``dataset_options``: one typed value. The loader's options are
    parsed into the spec (by the loader's own declaration, so ``one_per_person=false`` is False everywhere), and
    ``dataset_options`` becomes their canonical, complete form. Without a dataset they wait, as given, for one.

    A preset may name loader options per loader (the study read FairFace's train split): they apply under the
    options set on the spec and those given in ``dataset_options``."""
    ds, given = values["dataset"], values["dataset_options"]
    if ds is None:  # no dataset yet (a sweep gives each task one from its datasets: list): checked once it has one
        return values
    if isinstance(ds, FaceDataset):
        if given:
            raise ctx.error(cls.field("dataset_options"), dict(given), "cannot change a dataset loaded already")
        return values
    ds = ds.with_options({**_preset_loader_options(cls, values.get("preset"), ds), **dict(given)})
    return {**values, "dataset": ds, "dataset_options": FrozenMap(ds.options.to_dict())}


def _preset_loader_options(cls: type[Options], name: str | None, ds: DatasetSpec) -> dict[str, Any]:
    """The loader options a preset names for ``ds``'s loader, less those the spec sets itself."""
    if not name or not cls.PRESETS:
        return {}
    wanted = preset(cls, name).dataset_options.get(ds.loader, {})
    explicit = ds.options.changed()
    return {k: v for k, v in wanted.items() if k not in explicit}
