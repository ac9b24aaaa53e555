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

import pandas as pd

from vlbias import __version__
from vlbias.errors import VlbiasError
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
    vlbias_version: str = __version__
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    @property
    def config_hash(self) -> str:
        """Hash of what determines the results: audit, model identity, options, seed and stimuli."""
        return stable_hash(
            {
                "audit": self.audit,
                "model": self.model.get("identity") or self.model.get("spec"),
                "options": self.options,
                "seed": self.seed,
                "stimuli": self.stimuli,
            },
            n=16,
        )

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

    def stamped(self, name: str = "results") -> pd.DataFrame:
        """A table with the provenance columns added in front."""
        df = self.tables[name].copy()
        stamp = {
            "model": self.record.model.get("spec"),
            "model_identity": self.record.model.get("identity"),
            "audit": self.audit,
            "vlbias_version": self.record.vlbias_version,
            "config_hash": self.record.config_hash,
            "seed": self.record.seed,
        }
        for i, (col, value) in enumerate(stamp.items()):
            if col not in df.columns:
                df.insert(i, col, value)
        layer = self.record.model.get("layer")
        if isinstance(layer, int) and not isinstance(layer, bool):  # a run on one layer of the model
            at = list(df.columns).index("model_identity") + 1
            for j, (col, value, dtype) in enumerate(
                (("layer", layer, "Int64"), ("reading", self.record.model.get("reading"), "string"))
            ):
                if col not in df.columns:
                    df.insert(at + j, col, pd.array([value] * len(df), dtype=dtype))
        return df

    @property
    def layers(self) -> list[int]:
        """The layers of the model this result holds (:mod:`vlbias.models.layers`): one for a run on one layer, each
        layer of a result of :func:`combine_layers`, none for a run on the model's own embedding."""
        layer = self.record.model.get("layer")
        if isinstance(layer, int) and not isinstance(layer, bool):
            return [layer]
        return [int(e["layer"]) for e in self.record.model.get("layers") or []]

    def write(
        self,
        out_dir: str | os.PathLike,
        csv: bool = True,
        extras: Callable[[Path], None] | None = None,
        overwrite: bool = False,
    ) -> Path:
        """Write the folder atomically; ``extras(tmp)`` may add files (plots) to it before it appears. An existing
        folder is replaced only if it is an audit output vlbias wrote, and only with ``overwrite`` (the output rule
        of :mod:`vlbias.utils.io`)."""
        out_dir = Path(out_dir)
        with atomic_dir(out_dir, "audit", overwrite) as tmp:
            for name in self.tables:
                df = self.stamped(name)
                if self.content_warning:
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    table = pa.Table.from_pandas(df, preserve_index=False)
                    meta = {**(table.schema.metadata or {}), b"vlbias.content_warning": self.content_warning.encode()}
                    pq.write_table(table.replace_schema_metadata(meta), tmp / f"{name}.parquet")
                else:
                    df.to_parquet(tmp / f"{name}.parquet", index=False)
                if csv:
                    df.to_csv(tmp / f"{name}.csv", index=False)
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
