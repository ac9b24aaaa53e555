"""Downstream accuracy: read published and home-made benchmark results into one long table.

Formats, recognised from the file:

- open_clip's results table (``docs/openclip_results.csv``): columns ``name`` (architecture), ``pretrained`` (tag),
  ``Average perf. on 38 datasets`` and one column per dataset (``ImageNet 1k``, ``CIFAR-10``, ...). Metric names are
  ``average`` and the dataset names made lower-case alphanumerics (``imagenet1k``, ``cifar10``), which are also
  CLIP_benchmark's dataset names for most datasets.
- CLIP_benchmark (LAION-AI/CLIP_benchmark): its per-run JSON files (``{"dataset", "model", "pretrained", "task",
  "metrics": {...}}``; a folder of them, or one file), or the CSV its ``build_csv.py`` makes from them (metric
  columns, then ``dataset``, ``model``, ``pretrained``, ``task``, ``model_fullname``). Metric names are
  ``<dataset>/<metric>``, e.g. ``imagenet1k/acc1`` or ``flickr30k/image_retrieval_recall@5``.
- Any CSV with model columns (``spec``; or ``model``/``architecture``/``name`` with ``pretrained``/``tag``) and
  numeric metric columns, which keep their names.

Rows are keyed by model spec (``openclip:ARCH/TAG`` for open_clip names), so they join the model catalogue and the
results database on (architecture, tag). Quickgelu duplicates (``ViT-B-32-quickgelu/openai``) join the pair they
duplicate (``ViT-B-32/openai``) through ``canonical_spec``.

``fetch_openclip_results()`` downloads open_clip's table at a pinned commit (on a machine with internet) into the
vlbias cache folder; every imported row records the file's sha256.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from vlbias.errors import VlbiasError
from vlbias.models.catalogue import lookup
from vlbias.models.spec import ModelSpec
from vlbias.utils.io import atomic_path, check_columns, csv_header, load_json, sha256_file

if TYPE_CHECKING:
    import pandas as pd

#: open_clip commit whose docs/openclip_results.csv `fetch_openclip_results` downloads
OPENCLIP_RESULTS_COMMIT = "f862f86cd92123615a8695ce8bcb6ecc066af452"
OPENCLIP_RESULTS_URL = (
    f"https://raw.githubusercontent.com/mlfoundations/open_clip/{OPENCLIP_RESULTS_COMMIT}/docs/openclip_results.csv"
)
OPENCLIP_AVERAGE = "Average perf. on 38 datasets"
COLUMNS = ["spec", "architecture", "tag", "metric", "value", "task", "source", "source_format", "source_sha256"]
_MODEL_COLS = ("model", "architecture", "name", "arch")
_TAG_COLS = ("pretrained", "tag")
_CLIPB_KEYS = ("dataset", "model", "pretrained", "task")
_CLIPB_META = {"dataset", "model", "pretrained", "task", "model_fullname", "language", "model_type"}


def canonical_metric(name: str) -> str:
    if name == OPENCLIP_AVERAGE:
        return "average"
    return re.sub(r"[^a-z0-9]", "", name.lower())


def openclip_spec(arch: str, tag: str | None) -> str:
    return f"openclip:{arch}/{tag}" if tag else f"openclip:{arch}"


def canonical_spec(spec: str, catalogue: pd.DataFrame | None = None) -> str:
    """The spec a quickgelu duplicate stands for (its ``duplicate_of``), else the spec itself."""

    row = lookup(spec, catalogue)
    return row["duplicate_of"] if row and row.get("duplicate_of") else spec


def read_accuracy(source: str | os.PathLike, metrics: list[str] | None = None) -> pd.DataFrame:
    """A long table (spec, architecture, tag, metric, value, task, source, source_format, source_sha256)."""
    import pandas as pd

    path = Path(source)
    if not path.exists():
        raise VlbiasError(
            f"accuracy file not found: {path}; give an openclip_results.csv, CLIP_benchmark JSON/CSV, or CSV"
        )
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise VlbiasError(f"{path}: no CLIP_benchmark .json result files in this folder")
        df = pd.concat([_clip_benchmark_json(f) for f in files], ignore_index=True)
        df["source_sha256"] = [sha256_file(path / s) for s in df["source"]]
        df["source"] = [str(path / s) for s in df["source"]]
    elif path.suffix.lower() == ".json":
        df = _clip_benchmark_json(path)
        df["source"] = str(path)
        df["source_sha256"] = sha256_file(path)
    else:
        df = _csv(path)
        df["source"] = str(path)
        df["source_sha256"] = sha256_file(path)
    if metrics:
        missing = [m for m in metrics if m not in set(df["metric"])]
        if missing:
            import difflib

            names = sorted(set(df["metric"]))
            prefix = [n for n in names if n.startswith(missing[0].lower())]
            close = list(dict.fromkeys(prefix + difflib.get_close_matches(missing[0], names, n=3, cutoff=0.5)))[:6]
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise VlbiasError(
                f"{path} has no metric {', '.join(map(repr, missing))}; {hint}its {len(names)} metrics include "
                f"{', '.join(names[:12])}"
            )
        df = df[df["metric"].isin(metrics)]
    dup = df.duplicated(["spec", "metric", "task"], keep=False)
    if dup.any():
        row = df[dup].iloc[0]
        raise VlbiasError(
            f"{path}: two values for {row['spec']} metric {row['metric']!r}; keep one result per model and metric"
        )
    return df[COLUMNS].reset_index(drop=True)


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise VlbiasError(f"{path}: not a readable CSV file ({str(e).splitlines()[0]}); fix the file") from None
    check_columns(csv_header(path), str(path))
    return df


def _numbers(df: pd.DataFrame, cols: list[str], path: Path) -> pd.DataFrame:
    import pandas as pd

    for col in cols:
        raw = df[col].astype(str).str.strip()
        num = pd.to_numeric(raw.replace("", None), errors="coerce")
        bad = (raw != "") & num.isna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise VlbiasError(f"{path}: row {i + 2}, column {col!r}: {raw.iloc[i]!r} is not a number; fix the value")
        df[col] = num
    return df


def _long(df: pd.DataFrame, id_cols: list[str], metric_cols: list[str], rename=None) -> pd.DataFrame:
    out = df.melt(id_vars=id_cols, value_vars=metric_cols, var_name="metric", value_name="value")
    out = out[out["value"].notna()]
    if rename is not None:
        out["metric"] = out["metric"].map(rename)
    return out


def _csv(path: Path) -> pd.DataFrame:
    df = _read_csv(path)
    cols = list(df.columns)
    if {"name", "pretrained", OPENCLIP_AVERAGE} <= set(cols):
        metric_cols = [c for c in cols if c not in ("name", "pretrained")]
        df = _numbers(df, metric_cols, path)
        out = _long(df, ["name", "pretrained"], metric_cols, canonical_metric)
        out = out.rename(columns={"name": "architecture", "pretrained": "tag"})
        out["task"] = "zeroshot"
        out["source_format"] = "openclip_results"
    elif set(_CLIPB_KEYS) <= set(cols):
        metric_cols = [c for c in cols if c not in _CLIPB_META]
        df = _numbers(df, metric_cols, path)
        df["dataset"] = df["dataset"].str.removeprefix("wds/")
        out = df.melt(id_vars=["dataset", "model", "pretrained", "task"], value_vars=metric_cols, var_name="key")
        out = out[out["value"].notna()]
        out["metric"] = out["dataset"] + "/" + out["key"]
        out = out.rename(columns={"model": "architecture", "pretrained": "tag"})
        out["source_format"] = "clip_benchmark_csv"
    else:
        return _generic(df, path)
    out["spec"] = [openclip_spec(a, t) for a, t in zip(out["architecture"], out["tag"])]
    return out


def _generic(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    cols = list(df.columns)
    lower = {c.lower(): c for c in cols}
    model_col = next((lower[c] for c in _MODEL_COLS if c in lower), None)
    tag_col = next((lower[c] for c in _TAG_COLS if c in lower), None)
    if "spec" in lower:
        keys = [lower["spec"]] + [c for c in (model_col, tag_col) if c]
    elif model_col:
        keys = [model_col] + ([tag_col] if tag_col else [])
    else:
        raise VlbiasError(
            f"{path}: no model column; name the model in a 'spec' column (e.g. openclip:ViT-B-32/openai) or in "
            f"'model' and 'pretrained' columns"
        )
    candidates = [c for c in cols if c not in keys and c.lower() not in {"task", "notes", "source"}]
    import pandas as pd

    metric_cols = [c for c in candidates if pd.to_numeric(df[c].replace("", None), errors="coerce").notna().any()]
    if not metric_cols:
        raise VlbiasError(f"{path}: no numeric metric column besides the model columns {', '.join(keys)}")
    df = _numbers(df, metric_cols, path)
    out = _long(df, keys, metric_cols)
    if "spec" in lower:
        out["spec"] = out[lower["spec"]].astype(str).str.strip()
        parts = out["spec"].str.partition(":")[2].str.partition("/")
        out["architecture"] = out[model_col] if model_col else parts[0]
        out["tag"] = out[tag_col] if tag_col else parts[2].replace("", None)
    else:
        out["architecture"] = out[model_col].astype(str).str.strip()
        out["tag"] = out[tag_col].astype(str).str.strip().replace("", None) if tag_col else None
        out["spec"] = [a if ":" in a else openclip_spec(a, t) for a, t in zip(out["architecture"], out["tag"])]

    for spec in out["spec"].unique():
        try:
            ModelSpec.parse(spec)
        except VlbiasError as e:
            raise VlbiasError(f"{path}: model {spec!r}: {e}") from None
    out["task"] = df[lower["task"]] if "task" in lower else None
    out["source_format"] = "csv"
    return out


def _clip_benchmark_json(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise VlbiasError(f"{path}: not a JSON file ({e}); give CLIP_benchmark's result JSON") from None
    data = load_json(text, str(path))
    runs = data if isinstance(data, list) else [data]
    rows = []
    for run in runs:
        if not isinstance(run, dict) or not {"dataset", "model", "pretrained", "metrics"} <= set(run):
            raise VlbiasError(
                f"{path}: not a CLIP_benchmark result (needs dataset, model, pretrained and metrics keys)"
            )
        dataset = str(run["dataset"]).removeprefix("wds/")
        for key, value in run["metrics"].items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue  # CLIP_benchmark also stores per-class lists and strings
            rows.append(
                {
                    "spec": openclip_spec(run["model"], run["pretrained"]),
                    "architecture": run["model"],
                    "tag": run["pretrained"],
                    "metric": f"{dataset}/{key}",
                    "value": float(value),
                    "task": run.get("task"),
                    "source": path.name,
                    "source_format": "clip_benchmark_json",
                }
            )
    if not rows:
        raise VlbiasError(f"{path}: no numeric metrics in this CLIP_benchmark result")
    return pd.DataFrame(rows)


def fetch_openclip_results(cache_dir: str | os.PathLike | None = None, timeout: float = 30.0) -> Path:
    """open_clip's results table at the pinned commit, downloaded once into the vlbias cache folder."""
    import urllib.error
    import urllib.request

    if cache_dir is None:
        import platformdirs

        cache_dir = Path(os.environ.get("VLBIAS_CACHE") or platformdirs.user_cache_dir("vlbias")) / "accuracy"
    dest = Path(cache_dir) / f"openclip_results-{OPENCLIP_RESULTS_COMMIT[:12]}.csv"
    if dest.is_file():
        return dest
    try:
        with urllib.request.urlopen(OPENCLIP_RESULTS_URL, timeout=timeout) as r:  # noqa: S310 - fixed https URL
            data = r.read()
    except (urllib.error.URLError, OSError) as e:
        raise VlbiasError(
            f"cannot download open_clip's results table from {OPENCLIP_RESULTS_URL} ({getattr(e, 'reason', e)}); "
            f"download it on a machine with internet and pass the file instead of 'openclip'"
        ) from None
    header = data.split(b"\n", 1)[0].decode("utf-8", "replace")
    if not header.startswith("name,pretrained,") or OPENCLIP_AVERAGE not in header:
        raise VlbiasError(f"{OPENCLIP_RESULTS_URL} did not return open_clip's results table (header {header[:80]!r})")
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return dest


def load_accuracy(source: str, metrics: list[str] | None = None) -> pd.DataFrame:
    """``read_accuracy`` of a file, or of open_clip's pinned table when ``source`` is ``openclip``."""
    if source == "openclip":
        return read_accuracy(fetch_openclip_results(), metrics)
    return read_accuracy(source, metrics)
