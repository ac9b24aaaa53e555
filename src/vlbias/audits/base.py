"""What every audit returns: named result tables plus the record of how they were made.

An audit (association tests, zero-shot misclassification, social perception) takes an encoder and stimuli and
returns an :class:`AuditResult`. Its tables are pandas DataFrames; the main one is ``tables["results"]``. Every
row of every table is stamped with the model spec and identity, the audit, the vlbias version, the run's config
hash and seed, so a row found later in a results database can be traced to the run that made it and re-run.

``AuditResult.write(DIR)`` writes ``<table>.parquet`` and ``<table>.csv`` per table, ``skipped.csv`` and
``record.json``, atomically: the folder appears complete or not at all (``extras`` adds files such as plots inside
the same atomic write); it replaces an earlier audit output only when asked (``overwrite``), never anything else.
``AuditResult.read(DIR)`` reads it back (``lazy=True``: each table when first used, see :class:`Tables`). A result
whose stimuli are offensive by design carries a
``content_warning``: it heads ``record.json``, is stored in every Parquet file's metadata (``vlbias.content_warning``)
and is written to ``CONTENT_WARNING.txt``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vlbias import __version__
from vlbias.datasets.base import image_refs
from vlbias.errors import MissingKeysError, VlbiasError, plural
from vlbias.utils.io import atomic_dir, load_json, stable_hash


@dataclass
class RunRecord:
    """Provenance of one audit run: enough to re-run it."""

    audit: str
    model: dict[str, Any]  # ModelInfo.to_dict() (at least spec and identity)
    options: dict[str, Any]  # the audit's options, JSON-serialisable
    seed: int | None = None
    stimuli: list[dict[str, Any]] = field(default_factory=list)  # [{"name", "version", "sha256", ...}]
    #: what the options resolved to for this model and these stimuli (zero-shot: the logit scale of scale=model,
    #: the protocol's name): told in reports, not part of the config hash (the model identity already is)
    resolved: dict[str, Any] = field(default_factory=dict)
    #: the mitigation the encoder applied (:mod:`vlbias.mitigation`; its method, options, fit set and hashes, what
    #: it held out), empty for a raw model; part of the config hash when present
    mitigation: dict[str, Any] = field(default_factory=dict)
    vlbias_version: str = __version__
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    @property
    def config_hash(self) -> str:
        """Hash of what determines the results: audit, model identity, options, seed, stimuli and the mitigation's
        transform and fit set (absent for a raw model, so raw runs keep their hashes)."""
        payload = {
            "audit": self.audit,
            "model": self.model.get("identity") or self.model.get("spec"),
            "options": self.options,
            "seed": self.seed,
            "stimuli": self.stimuli,
        }
        if self.mitigation:
            payload["mitigation"] = {k: self.mitigation.get(k) for k in ("transform_hash", "fit_hash", "method")}
        return stable_hash(payload, n=16)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "config_hash": self.config_hash}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunRecord:
        d = {k: v for k, v in d.items() if k != "config_hash"}
        return cls(**d)


class Tables(Mapping[str, pd.DataFrame]):
    """A finished run's tables, each read when first used (then kept): ``names`` are known up front, ``read(name)``
    reads one. A report of a large sweep reads only the tables it shows, from a run's folder or from the database
    rows of its task."""

    def __init__(self, names: Iterable[str], read: Callable[[str], pd.DataFrame]):
        self._names = list(names)
        self._read = read
        self._read_already: dict[str, pd.DataFrame] = {}

    @classmethod
    def in_folder(cls, folder: str | os.PathLike) -> Tables:
        """The ``<name>.parquet`` tables of an audit output folder."""
        folder = Path(folder)
        return cls(
            sorted(p.stem for p in folder.glob("*.parquet")), lambda name: pd.read_parquet(folder / f"{name}.parquet")
        )

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._read_already:
            self._read_already[name] = self._read(name)
        return self._read_already[name]

    def __contains__(self, name: object) -> bool:  # without reading it (Mapping's own would)
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"Tables({self._names!r}, read: {sorted(self._read_already)!r})"


@dataclass
class AuditResult:
    audit: str
    tables: Mapping[str, pd.DataFrame]  # a dict, or Tables read when first used
    record: RunRecord
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["item", "reason"]))
    content_warning: str | None = None

    @property
    def results(self) -> pd.DataFrame:
        return self.tables["results"]

    def stamp(self) -> dict[str, Any]:
        """The provenance columns' values (model, model_identity, audit, vlbias_version, config_hash, seed; with
        mitigation and mitigation_hash for a run through a mitigated encoder)."""
        return {
            "model": self.record.model.get("spec"),
            "model_identity": self.record.model.get("identity"),
            "audit": self.audit,
            "vlbias_version": self.record.vlbias_version,
            "config_hash": self.record.config_hash,
            "seed": self.record.seed,
        } | (
            {  # a mitigated encoder: which transform every row was measured through
                "mitigation": self.record.mitigation.get("label"),
                "mitigation_hash": self.record.mitigation.get("transform_hash"),
            }
            if self.record.mitigation
            else {}
        )

    @property
    def layer(self) -> int | None:
        """The layer this run read (:mod:`vlbias.models.layers`), or None for the model's own embedding."""
        layer = self.record.model.get("layer")
        return layer if isinstance(layer, int) and not isinstance(layer, bool) else None

    def stamped(self, name: str = "results") -> pd.DataFrame:
        """A table with the provenance columns added in front."""
        df = self.tables[name].copy()
        for i, (col, value) in enumerate(self.stamp().items()):
            if col not in df.columns:
                df.insert(i, col, value)
        layer = self.layer
        if layer is not None:  # a run on one layer of the model
            at = list(df.columns).index("model_identity") + 1
            for j, (col, value, dtype) in enumerate(
                (("layer", layer, "Int64"), ("reading", self.record.model.get("reading"), "string"))
            ):
                if col not in df.columns:
                    df.insert(at + j, col, pd.array([value] * len(df), dtype=dtype))
        return df

    def arrow_table(self, name: str = "results", columns: dict[str, str | None] | None = None):
        """:meth:`stamped` as an Arrow table, with ``columns`` (constant strings, pandas ``string`` dtype) added at the
        end where the table lacks them: the same schema, values and pandas metadata as converting the stamped frame
        with those columns, made without copying the frame or inserting into it (a part of a sweep is written per
        task, and pandas inserts cost milliseconds each)."""
        import pyarrow as pa

        if self.layer is not None:  # a run on one layer: stamped() adds layer and reading (rare; no fast path)
            frame = self.stamped(name)
            for col, value in (columns or {}).items():
                if col not in frame.columns:
                    frame[col] = pd.Series([value] * len(frame), index=frame.index, dtype="string")
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.content_warning:
                meta = dict(table.schema.metadata) | {b"vlbias.content_warning": self.content_warning.encode()}
                table = table.replace_schema_metadata(meta)
            return table
        df = self.tables[name]
        stamp = self.stamp()
        order = list(df.columns)
        for i, col in enumerate(stamp):  # where stamped() inserts them
            if col not in df.columns:
                order.insert(i, col)
        constants = {c: (v, False) for c, v in stamp.items() if c not in df.columns}
        constants |= {c: (v, True) for c, v in (columns or {}).items() if c not in df.columns}
        order += [c for c in constants if c not in order]
        own = pa.Table.from_pandas(df, preserve_index=False)
        found = dict(zip(own.column_names, zip(own.columns, json.loads(own.schema.metadata[b"pandas"])["columns"])))
        for col, (value, string) in constants.items():
            kind, described = _constant_column(col, value, string)
            found[col] = (pa.nulls(len(df)) if pa.types.is_null(kind) else pa.array([value] * len(df), kind), described)
        names = [str(c) for c in order]
        arrays = [found[c][0] for c in names]
        meta = json.loads(own.schema.metadata[b"pandas"])
        meta["columns"] = [found[c][1] for c in names]
        table = pa.Table.from_arrays(arrays, names=names)
        metadata = {b"pandas": json.dumps(meta).encode()}
        if self.content_warning:
            metadata[b"vlbias.content_warning"] = self.content_warning.encode()
        return table.replace_schema_metadata(metadata)

    @property
    def layers(self) -> list[int]:
        """The layers of the model this result holds (:mod:`vlbias.models.layers`): one for a run on one layer, each
        layer of a result of :func:`combine_layers`, none for a run on the model's own embedding."""
        if self.layer is not None:
            return [self.layer]
        return [int(e["layer"]) for e in self.record.model.get("layers") or []]

    def write(
        self,
        out_dir: str | os.PathLike,
        csv: bool = True,
        extras: Callable[[Path], None] | None = None,
        overwrite: bool = False,
        columns: dict[str, str | None] | None = None,
    ) -> Path:
        """Write the folder atomically; ``extras(tmp)`` may add files (plots) to it before it appears, ``columns``
        constant columns to every table (see :meth:`arrow_table`). An existing folder is replaced only if it is an
        audit output vlbias wrote, and only with ``overwrite`` (the output rule of :mod:`vlbias.utils.io`)."""
        import pyarrow.parquet as pq

        out_dir = Path(out_dir)
        with atomic_dir(out_dir, "audit", overwrite) as tmp:
            for name in self.tables:
                pq.write_table(self.arrow_table(name, columns), tmp / f"{name}.parquet")
                if csv:
                    df = self.stamped(name)
                    for col, value in (columns or {}).items():
                        if col not in df.columns:
                            df[col] = pd.Series([value] * len(df), index=df.index, dtype="string")
                    df.to_csv(tmp / f"{name}.csv", index=False)
            if self.skipped.empty and all(isinstance(c, str) and c.isidentifier() for c in self.skipped.columns):
                (tmp / "skipped.csv").write_text(",".join(self.skipped.columns) + "\n")  # what to_csv writes, faster
            else:
                self.skipped.to_csv(tmp / "skipped.csv", index=False)
            record = self.record.to_dict()
            if self.content_warning:
                record = {"content_warning": self.content_warning, **record}
                (tmp / "CONTENT_WARNING.txt").write_text(self.content_warning + "\n", encoding="utf-8")
            (tmp / "record.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
            if extras is not None:
                extras(tmp)
        return out_dir

    @classmethod
    def read(cls, out_dir: str | os.PathLike, lazy: bool = False) -> AuditResult:
        """The result an audit output folder holds; ``lazy``: its tables are read when first used."""
        out_dir = Path(out_dir)
        rec_path = out_dir / "record.json"
        if not rec_path.is_file():
            raise VlbiasError(f"{out_dir} is not an audit output folder (no record.json)")
        raw = load_json(rec_path.read_text(encoding="utf-8"), str(rec_path))
        warning = raw.pop("content_warning", None)
        record = RunRecord.from_dict(raw)
        tables = Tables.in_folder(out_dir)
        if not lazy:
            tables = dict(tables)
        skipped_path = out_dir / "skipped.csv"
        skipped = pd.read_csv(skipped_path) if skipped_path.is_file() else pd.DataFrame(columns=["item", "reason"])
        return cls(audit=record.audit, tables=tables, record=record, skipped=skipped, content_warning=warning)


_CONSTANT_COLUMNS: dict[tuple[str, type, bool], tuple[Any, dict[str, Any]]] = {}


def _constant_column(name: str, value: Any, string: bool) -> tuple[Any, dict[str, Any]]:
    """The Arrow type and pandas metadata that pandas gives a column holding only ``value`` (as its own type, or as
    the ``string`` dtype): asked of pandas once per column name and type of value (str, bool, float, None, int64),
    on which alone they depend."""
    fixed = type(value) in (str, bool, float, type(None)) or (type(value) is int and -(2**63) <= value < 2**63)
    if not fixed:
        return _pandas_constant(name, value, string)
    key = (name, type(value), string)
    if key not in _CONSTANT_COLUMNS:
        _CONSTANT_COLUMNS[key] = _pandas_constant(name, value, string)
    return _CONSTANT_COLUMNS[key]


def _pandas_constant(name: str, value: Any, string: bool) -> tuple[Any, dict[str, Any]]:
    import pyarrow as pa

    column = pd.array([value], dtype="string") if string else [value]
    table = pa.Table.from_pandas(pd.DataFrame({name: column}), preserve_index=False)
    return table.schema.field(0).type, json.loads(table.schema.metadata[b"pandas"])["columns"][0]

# ---------------------------------------------------------------------------------------------------- images
def encode_dataset_images(encoder, dataset, table: pd.DataFrame, skip_bad: bool):
    """The embeddings of a dataset table's images (their crops where the table has them), from the cache where
    possible: ``(ok, vectors, skipped)``, ``ok`` a mask over the table's rows, ``vectors`` float64 for the rows
    that are ok, ``skipped`` a frame (item, reason) of the images left out with ``skip_bad``. A ``vectors:`` file
    lacking images is one line that says how its keys are read."""
    try:
        enc = encoder.try_encode_images(image_refs(table), root=dataset.root, skip_bad=skip_bad)
    except MissingKeysError as e:
        shown = ", ".join(repr(m) for m in e.missing[:3])
        raise VlbiasError(
            f"{e.source} has no vector for {plural(len(e.missing), 'image')} of {dataset.spec} ({shown}…); image keys "
            f"are paths relative to {dataset.root}; add them, or pass --skip-bad-images to leave them out"
        ) from None
    skipped = pd.DataFrame(
        [{"item": table["key"].iloc[i], "reason": f"image skipped: {why}"} for i, _, why in enc.skipped],
        columns=["item", "reason"],
    )
    return enc.ok, np.asarray(enc.vectors, dtype=np.float64), skipped


# ---------------------------------------------------------------------------------------------------- layers
def combine_layers(results: list[AuditResult], notes: Iterable[tuple[str, str, int | None]] = ()) -> AuditResult:
    """One result of the runs of one audit on several layers of one model (:mod:`vlbias.models.layers`): each table
    holds every layer's rows, stamped with their own layer, reading, identity and config hash, so one table gives
    the audit's numbers over depth; the record is the model's, listing each layer's identity and config hash;
    ``notes``: (item, reason, layer) of layers the audit could not run on. :func:`split_layers` gives the runs
    back."""
    first = results[0]
    names = list(dict.fromkeys(n for r in results for n in r.tables))
    tables = {n: pd.concat([r.stamped(n) for r in results if n in r.tables], ignore_index=True) for n in names}
    skipped = [r.skipped.assign(layer=pd.array([r.layers[0]] * len(r.skipped), dtype="Int64")) for r in results]
    notes = list(notes)
    if notes:
        frame = pd.DataFrame(notes, columns=["item", "reason", "layer"])
        skipped.append(frame.astype({"layer": "Int64"}))
    model = {k: v for k, v in first.record.model.items() if k not in ("layer", "identity")}
    model["identity"] = first.record.model.get("base_identity") or first.record.model.get("identity")
    model["layers"] = [
        {"layer": r.layers[0], "identity": r.record.model.get("identity"), "config_hash": r.record.config_hash}
        for r in results
    ]
    record = dataclasses.replace(first.record, model=model)
    return AuditResult(
        audit=first.audit,
        tables=tables,
        record=record,
        skipped=pd.concat([s for s in skipped if len(s)] or skipped, ignore_index=True),
        content_warning=first.content_warning,
    )


def split_layers(result: AuditResult) -> list[AuditResult]:
    """The runs of each layer in a result of :func:`combine_layers` (``[result]`` for any other result), in order;
    each table read when first used if the result's are."""
    entries = result.record.model.get("layers") or []
    if not entries or "layer" in result.record.model:
        return [result]
    out = []
    base = {k: v for k, v in result.record.model.items() if k != "layers"}
    for e in entries:
        layer = int(e["layer"])
        model = {**base, "identity": e["identity"], "layer": layer, "base_identity": base.get("identity")}
        record = dataclasses.replace(result.record, model=model)

        def read(name: str, layer: int = layer) -> pd.DataFrame:
            df = result.tables[name]
            return df[df["layer"] == layer].reset_index(drop=True) if "layer" in df.columns else df

        skipped = result.skipped
        if "layer" in skipped.columns:
            skipped = skipped[skipped["layer"] == layer].drop(columns="layer").reset_index(drop=True)
        out.append(
            AuditResult(
                audit=result.audit,
                tables=Tables(list(result.tables), read),
                record=record,
                skipped=skipped,
                content_warning=result.content_warning,
            )
        )
    return out
