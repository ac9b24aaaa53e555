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
        if self.record.mitigation:  # a mitigated encoder: which transform every row was measured through
            stamp["mitigation"] = self.record.mitigation.get("label")
            stamp["mitigation_hash"] = self.record.mitigation.get("transform_hash")
        for i, (col, value) in enumerate(stamp.items()):
            if col not in df.columns:
                df.insert(i, col, value)
        return df

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
