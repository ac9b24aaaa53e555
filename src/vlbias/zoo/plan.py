"""Sweep configs and the task grid.

A sweep config (YAML) names models, audits with their options, and face datasets::

    out: zoo-results                 # output folder (--out overrides); default: the config's name beside it
    models:
      - openclip:ViT-B-32/laion2b_s34b_b79k            # a spec
      - openclip:ViT-B-*/laion*                         # a pattern over the catalogue's specs
      - where: "dataset_family == 'laion'"              # a catalogue filter (vlbias.utils.where: data, not code)
      - all                                             # every catalogue model
    exclude: ["openclip:*/commonpool_*"]                # patterns taken out again
    include_duplicates: false                           # patterns/filters skip quickgelu duplicates
    catalogue: [my_models.csv]                          # extra catalogue rows (relative to the config)
    audits:
      eat: {}                                           # the audit's default options
      zeroshot: [{protocol: birhane2024}, {protocol: datacomp-fairface}]   # one task per options set
    datasets: [cfd:/data/CFD]                           # crossed with audits that take a dataset
    seed: 0                                             # given to audits with a seed option
    encoder: {device: auto, batch_size: 64, precision: fp32, workers: null, cache_dir: null}
    accuracy: openclip                                  # downstream accuracy into the database (or a file)
    layers: [null, all]                                 # the embedding (null) and every block; or [6, -1]; or all
    reading: lens                                       # with layers: lens or raw (vlbias.models.layers)
    mitigations: [none, projection, "clipclip:dataset=fairface:/data/FairFace,m=50"]   # each task once per item

One task is one (model, audit, options) triple, the options including the dataset and seed, and the mitigation the
encoder applies (``mitigations:``, :mod:`vlbias.mitigation`; ``none`` is the raw model, and a task without one has
the id it had before mitigations existed); its id is a hash of these, so the same task in a later run is recognised
and not run again. With ``layers:``, each task also has a layer (``all`` becomes each model's own blocks), and its
id the layer and reading; the tasks of one model, every layer included, run on one loaded model whose forward
passes fill all their layers. A mitigation transforms the model's embedding: layer tasks run on the raw model.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlbias.audits.registry import get_audit
from vlbias.datasets.spec import DatasetSpec
from vlbias.errors import VlbiasError
from vlbias.mitigation.registry import label as mitigation_label
from vlbias.mitigation.registry import parse_mitigation
from vlbias.models import load_layers
from vlbias.models.base import check_encoder_options
from vlbias.models.catalogue import load_catalogue, select
from vlbias.models.layers import ALL, Layers, layer_identity
from vlbias.models.registry import backend_class
from vlbias.models.spec import ModelSpec, canonical_prefix
from vlbias.utils.io import load_yaml, stable_hash
from vlbias.utils.options import whole_number

KEYS = {
    "out",
    "models",
    "exclude",
    "include_duplicates",
    "catalogue",
    "audits",
    "datasets",
    "seed",
    "encoder",
    "accuracy",
    "layers",
    "reading",
    "mitigations",
}
ENCODER_KEYS = {"device", "batch_size", "precision", "workers", "cache_dir"}
_GLOB = set("*?[")
_TASK_ID = re.compile(r"[0-9a-f]{16}")  # what make_task makes: 16 hex digits


@dataclass(frozen=True)
class Task:
    model: str
    audit: str
    options: tuple[tuple[str, Any], ...]  # sorted (key, value) pairs, JSON-serialisable values
    dataset: str | None
    task_id: str
    #: the layer of the model the task reads (None: the model's embedding) and how (vlbias.models.layers)
    layer: int | None = None
    reading: str | None = None
    mitigation: str | None = None  # NAME[:KEY=VALUE,...] in canonical form; None: the raw model

    @property
    def options_dict(self) -> dict[str, Any]:
        return dict(self.options)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "task_id": self.task_id,
            "model": self.model,
            "audit": self.audit,
            "dataset": self.dataset,
            "options": self.options_dict,
            **({"mitigation": self.mitigation} if self.mitigation else {}),
        }
        if self.layer is not None:
            out.update(layer=self.layer, reading=self.reading)
        return out

    def label(self) -> str:
        at = f" · layer {self.layer} ({self.reading})" if self.layer is not None else ""
        return (
            f"{self.model}{at} · {self.audit}"
            + (f" · {self.dataset}" if self.dataset else "")
            + (f" · {self.mitigation}" if self.mitigation else "")
        )


def make_task(
    model: str,
    audit: str,
    options: dict[str, Any],
    layer: int | None = None,
    reading: str | None = None,
    mitigation: str | None = None,
) -> Task:
    import json

    try:
        json.dumps(options, sort_keys=True)
    except TypeError as e:
        raise VlbiasError(f"options of audit {audit!r} must be plain values (text, numbers, lists): {e}") from None
    payload: dict[str, Any] = {"model": model, "audit": audit, "options": options}
    if layer is not None:  # a task on the model's embedding keeps the id it always had
        payload.update(layer=int(layer), reading=reading)
    if mitigation:  # so does a task on the raw model
        payload["mitigation"] = mitigation
    task_id = stable_hash(payload, n=16)
    return Task(
        model, audit, tuple(sorted(options.items())), options.get("dataset"), task_id, layer, reading, mitigation
    )


def task_identity(task: Task, model_identity: str | None) -> str | None:
    """The identity of the encoder a task runs on: its model's, or that of its layer of the model."""
    if task.layer is None or model_identity is None:
        return model_identity
    return layer_identity(ModelSpec.parse(task.model).backend, model_identity, task.layer, task.reading or "lens")


def is_task_id(name: str) -> bool:
    """Whether ``name`` is a task id as :func:`make_task` makes it (so the name of a part's folder, never that of
    a writer's hidden temporary folder)."""
    return _TASK_ID.fullmatch(name) is not None


@dataclass
class SweepConfig:
    models: list[str]
    audits: list[tuple[str, dict[str, Any]]]  # (audit name, options as given), in config order
    datasets: list[str] = field(default_factory=list)
    seed: int | None = None
    encoder: dict[str, Any] = field(default_factory=dict)
    out: Path | None = None
    catalogue: list[Path] = field(default_factory=list)
    accuracy: str | None = None
    #: mitigations crossed with every task, canonical (None: the raw model); [None] when the config names none
    mitigations: list[str | None] = field(default_factory=lambda: [None])
    source: Path | None = None
    #: the folder relative paths in the config are taken against (the config's own folder)
    base: Path | None = None
    #: the layers of each model to audit: None (the model's embedding), block numbers, "all" (vlbias.models.layers)
    layers: list[int | str | None] = field(default_factory=lambda: [None])
    reading: str = "lens"

    def encoder_kwargs(self) -> dict[str, Any]:
        e = self.encoder
        return {
            "device": e.get("device", "auto"),
            "batch_size": e.get("batch_size"),
            "precision": e.get("precision", "fp32"),
            "num_workers": e.get("workers"),
            "cache": e.get("cache_dir"),
        }


def _where(path: Path | None) -> str:
    return f"{path}: " if path else ""


def load_config(path: str | os.PathLike) -> SweepConfig:
    path = Path(path)
    if not path.is_file():
        raise VlbiasError(f"sweep config not found: {path}; check the path")
    return parse_config(load_yaml(path.read_text(encoding="utf-8"), str(path)), source=path)


def parse_config(raw: Any, source: Path | None = None) -> SweepConfig:
    """Validate a config mapping and resolve its model selectors against the catalogue."""

    w = _where(source)
    if not isinstance(raw, dict):
        raise VlbiasError(f"{w}a sweep config is a mapping with models: and audits:")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise VlbiasError(f"{w}unknown key(s) {', '.join(unknown)}; a sweep config has {', '.join(sorted(KEYS))}")
    for key in ("models", "audits"):
        if not raw.get(key):
            raise VlbiasError(f"{w}no {key}: list them (see `vlbias sweep --help`)")
    base = source.parent if source else Path.cwd()
    encoder = raw.get("encoder") or {}
    if not isinstance(encoder, dict) or set(encoder) - ENCODER_KEYS:
        bad = sorted(set(encoder) - ENCODER_KEYS) if isinstance(encoder, dict) else [str(encoder)]
        raise VlbiasError(f"{w}unknown encoder option(s) {', '.join(bad)}; use {', '.join(sorted(ENCODER_KEYS))}")
    try:
        check_encoder_options(
            encoder.get("device", "auto"),
            encoder.get("batch_size"),
            encoder.get("precision", "fp32"),
            encoder.get("workers"),
        )
    except VlbiasError as e:
        raise VlbiasError(f"{w}{e}") from None
    if encoder.get("cache_dir"):
        encoder = {**encoder, "cache_dir": str(base / os.path.expanduser(encoder["cache_dir"]))}
    seed = raw.get("seed")
    if seed is not None:
        try:
            seed = whole_number("sweep", "seed", seed)
        except VlbiasError as e:
            raise VlbiasError(f"{w}{e}") from None
    catalogue_files = [base / p for p in _as_list(raw.get("catalogue"), "catalogue", w)]
    catalogue = load_catalogue(catalogue_files)
    models = resolve_models(
        _as_list(raw["models"], "models", w),
        catalogue,
        exclude=_as_list(raw.get("exclude"), "exclude", w),
        include_duplicates=bool(raw.get("include_duplicates", False)),
        where=w,
    )
    accuracy = raw.get("accuracy")
    if accuracy is not None and accuracy != "openclip":
        if not isinstance(accuracy, str) or not (base / accuracy).exists():
            raise VlbiasError(f"{w}accuracy: {accuracy!r} is neither openclip nor an existing file or folder")
        accuracy = str(base / accuracy)
    layers, reading = _parse_layers(raw.get("layers"), raw.get("reading"), w)
    out = raw.get("out")
    return SweepConfig(
        models=models,
        audits=_parse_audits(raw["audits"], w, base),
        datasets=_parse_datasets(_as_list(raw.get("datasets"), "datasets", w), w, base),
        seed=seed,
        encoder=encoder,
        out=(base / out) if out else ((base / source.stem) if source else None),
        catalogue=catalogue_files,
        accuracy=accuracy,
        mitigations=_parse_mitigations(_as_list(raw.get("mitigations"), "mitigations", w), w, base),
        source=source,
        base=base,
        layers=layers,
        reading=reading,
    )


def _parse_layers(raw: Any, reading: Any, w: str) -> tuple[list[int | str | None], str]:
    """``layers:`` (a layer, ``all``, null for the model's embedding, or a list of them) and ``reading:``."""
    items = raw if isinstance(raw, list) else [raw]
    out: list[int | str | None] = []
    try:
        for item in items:
            parsed = Layers.parse(item, what="layers:")
            out += [None] if parsed.select is None else [parsed.select] if parsed.select == ALL else list(parsed.select)
        if reading is not None and all(x is None for x in out):
            raise VlbiasError("reading: applies to layers; add layers: (e.g. layers: all)")
        checked = Layers.parse(1, reading) if reading is not None else Layers.parse(1)
    except VlbiasError as e:
        raise VlbiasError(f"{w}{e}") from None
    return list(dict.fromkeys(out)), checked.reading or "lens"


def model_layers(model: str, config: SweepConfig) -> list[int | None]:
    """The layers of ``model`` the config's ``layers:`` name, ``all`` resolved to the model's own blocks (from its
    config, without its weights)."""
    out: list[int | None] = []
    for item in config.layers:
        if item == ALL:
            try:
                out += [e.layer for e in load_layers(model, layer=ALL, reading=config.reading, cache=False)]
            except VlbiasError as e:
                raise VlbiasError(f"{_where(config.source)}layers: all: {e}") from None
        else:
            out.append(item)
    return list(dict.fromkeys(out))


def _parse_mitigations(items: list, w: str, base: Path) -> list[str | None]:
    """Each mitigation parsed now (every option checked before any model loads), in its canonical spelling."""
    if not items:
        return [None]
    out: list[str | None] = []
    for item in items:
        if item is None or (isinstance(item, str) and item.strip() == "none"):
            out.append(None)
            continue
        if not isinstance(item, (str, dict)):
            raise VlbiasError(f"{w}mitigations: items are NAME[:KEY=VALUE,...] or none (got {item!r})")
        method, opts = parse_mitigation(item, base=str(base), where=w)
        out.append(mitigation_label(method, opts))
    return list(dict.fromkeys(out))


def _as_list(value: Any, key: str, w: str) -> list:
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        return [value]
    if isinstance(value, list):
        return value
    raise VlbiasError(f"{w}{key}: must be a list")


def resolve_models(
    selectors: list, catalogue, exclude: list[str] = (), include_duplicates: bool = False, where: str = ""
) -> list[str]:
    """Specs, in selector order, without repeats. Patterns and filters select catalogue rows."""

    specs: list[str] = []
    rows = catalogue
    if not include_duplicates and "duplicate_of" in rows.columns:
        rows = rows[rows["duplicate_of"].isna()]
    all_specs = rows["spec"].tolist()
    for sel in selectors:
        if isinstance(sel, dict):
            unknown = set(sel) - {"where", "pattern"}
            if unknown or not sel:
                raise VlbiasError(f"{where}a model selector is a spec, a pattern, 'all', or {{where: EXPR}}")
            chosen = all_specs
            if "pattern" in sel:
                chosen = [s for s in chosen if fnmatch.fnmatchcase(s, canonical_prefix(str(sel["pattern"])))]
            if "where" in sel:
                keep = set(select(rows, sel["where"], label=f"{where}models: where:")["spec"])
                chosen = [s for s in chosen if s in keep]
            if not chosen:
                raise VlbiasError(
                    f"{where}model selector {sel} matches no catalogue model; check it with `vlbias models --where`"
                )
            specs += chosen
        elif not isinstance(sel, str) or not sel.strip():
            raise VlbiasError(f"{where}model {sel!r} is not a spec; write e.g. openclip:ViT-B-32/laion2b_s34b_b79k")
        elif sel.strip() == "all":
            specs += all_specs
        elif _GLOB & set(sel):
            chosen = [s for s in all_specs if fnmatch.fnmatchcase(s, canonical_prefix(sel.strip()))]
            if not chosen:
                raise VlbiasError(
                    f"{where}pattern {sel!r} matches no catalogue model; list them with `vlbias models --details`"
                )
            specs += chosen
        else:
            spec = ModelSpec.parse(sel)
            backend_class(spec.backend)(spec, cache=False)  # validates the target cheaply (file exists, tag known)
            specs.append(str(spec))
    for pat in exclude:
        specs = [s for s in specs if not fnmatch.fnmatchcase(s, canonical_prefix(str(pat)))]
    specs = list(dict.fromkeys(specs))
    if not specs:
        raise VlbiasError(f"{where}no models left to sweep after exclude:")
    return specs


def _parse_datasets(items: list, w: str, base: Path) -> list[str]:
    """Each dataset spec parsed (a path relative to the config's folder), in its one spelling."""

    out = []
    for item in items:
        if not isinstance(item, str):
            raise VlbiasError(f"{w}datasets: items are dataset specs NAME:PATH (got {item!r})")
        try:
            out.append(str(DatasetSpec.parse(item, base=base)))
        except VlbiasError as e:
            raise VlbiasError(f"{w}{e}") from None
    return list(dict.fromkeys(out))


def _parse_audits(raw: Any, w: str, base: Path) -> list[tuple[str, dict[str, Any]]]:
    items: list[tuple[str, Any]] = []
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list):
        for x in raw:
            if isinstance(x, str):
                items.append((x, None))
            elif isinstance(x, dict) and len(x) == 1:
                items.append(next(iter(x.items())))
            else:
                raise VlbiasError(f"{w}audits: items are audit names or {{name: options}}")
    else:
        raise VlbiasError(f"{w}audits: must map audit names to options")
    out = []
    for name, opts in items:
        spec = get_audit(str(name))
        for o in opts if isinstance(opts, list) else [opts]:
            o = o or {}
            if not isinstance(o, dict):
                raise VlbiasError(f"{w}options of audit {name!r} must be a mapping (got {o!r})")
            spec.parse_options(o, base=base, where=w)  # every value checked now, before any model loads
            out.append((spec.name, dict(o)))
    return out


def plan(config: SweepConfig) -> list[Task]:
    """The whole grid, in order: models as listed, then audits as listed, then datasets."""

    tasks: list[Task] = []
    w = _where(config.source)
    for model in config.models:
        layers = model_layers(model, config) if config.layers != [None] else [None]
        for name, given in config.audits:
            spec = get_audit(name)
            base = dict(given)
            if config.seed is not None and "seed" in spec.options.names() and "seed" not in base:
                base["seed"] = config.seed
            if spec.takes_dataset and "dataset" not in base:
                datasets = config.datasets
                if not datasets:
                    raise VlbiasError(
                        f"audit {name!r} runs on a face dataset; add datasets: [NAME:PATH] to the config "
                        f"(e.g. cfd:/data/CFD) or give it a dataset option"
                    )
                variants = [{**base, "dataset": d} for d in datasets]
            else:
                variants = [base]
            for options in variants:
                opts = spec.parse_options(options, base=config.base, where=w, warn=False)
                for layer in layers:
                    reading = config.reading if layer is not None else None
                    for mitigation in config.mitigations if layer is None else [None]:
                        tasks.append(make_task(model, name, opts.to_dict(), layer, reading, mitigation))
    seen: set[str] = set()
    unique = []
    for t in tasks:
        if t.task_id not in seen:
            seen.add(t.task_id)
            unique.append(t)
    return unique


def parse_shard(text: str) -> tuple[int, int]:
    """``i/n`` with 1 <= i <= n."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise VlbiasError(f"--shard {text!r}: write i/n, e.g. 1/4 for the first of four shards") from None
    if n < 1 or not 1 <= i <= n:
        raise VlbiasError(f"--shard {text!r}: i must be between 1 and n (e.g. 1/4 ... 4/4)")
    return i, n


def shard_tasks(tasks: list[Task], i: int, n: int) -> list[Task]:
    """Shard i of n: whole models (so each model loads in one shard only), dealt round-robin in grid order."""
    models = list(dict.fromkeys(t.model for t in tasks))
    mine = {m for k, m in enumerate(models) if k % n == i - 1}
    return [t for t in tasks if t.model in mine]
