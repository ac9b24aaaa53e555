"""The model catalogue: one row of facts per model, beside every result row of a model-zoo study.

vlbias ships one row per ``open_clip.list_pretrained()`` pair (``data/models/openclip_pretrained.csv``): the
architecture and its family, image and text parameter counts and GFLOPs (computed from the architecture config on
PyTorch's meta device, see :mod:`vlbias.models.openclip_profile`), the pretraining dataset, its family and size and
the samples seen (parsed from the tag, with the published values of ``data/models/pretraining.yaml`` where a tag
does not encode them), whether the model is a fine-tune, and whether the pair duplicates another one (the
``-quickgelu`` architecture names load the same weights as their plain names). Unknown facts are empty, never
guessed.

Users add rows for their own models (``hf:``, ``st:``, checkpoints, or facts the shipped rows lack) in CSV files
with the same columns, named with ``--catalogue FILE`` or in ``$VLBIAS_CATALOGUE`` (paths separated by
``os.pathsep``). Only ``spec`` is required; a user row's non-empty values override the shipped row of the same spec.

``vlbias models --write-catalogue PATH`` regenerates the shipped file from the installed open_clip
(:func:`vlbias.models.backends.openclip.write_openclip_catalogue`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlbias.errors import VlbiasError
from vlbias.models.openclip_profile import architecture_facts
from vlbias.models.spec import ModelSpec
from vlbias.utils.io import check_columns, csv_header, load_yaml
from vlbias.utils.where import column_kinds, parse_filter

if TYPE_CHECKING:
    import pandas as pd

SHIPPED = "openclip_pretrained.csv"

#: column -> (pandas dtype, description). The order is the file's column order.
COLUMNS: dict[str, tuple[str, str]] = {
    "spec": ("string", "the model spec, e.g. openclip:ViT-B-32/laion2b_s34b_b79k"),
    "backend": ("string", "the spec's backend prefix"),
    "architecture": ("string", "open_clip architecture name (or the user's name for other backends)"),
    "tag": ("string", "open_clip pretrained tag"),
    "architecture_family": ("string", "ViT-B/L/H/g/bigG, ConvNeXt, ResNet, EVA, SigLIP, CoCa, MobileCLIP, ..."),
    "image_tower": ("string", "vit, modified_resnet, or timm:<model>"),
    "text_tower": ("string", "transformer, or hf:<model>"),
    "image_size": ("Int64", "input resolution in pixels"),
    "patch_size": ("Int64", "ViT patch size in pixels"),
    "embed_dim": ("Int64", "joint embedding dimension"),
    "n_params": ("Int64", "all parameters"),
    "n_params_image": ("Int64", "image tower parameters"),
    "n_params_text": ("Int64", "text tower parameters (without the logit scale and CoCa's decoder)"),
    "gflops": ("Float64", "GFLOPs to encode one image and one text"),
    "gflops_image": ("Float64", "GFLOPs to encode one image at the model's resolution"),
    "gflops_text": ("Float64", "GFLOPs to encode one text of the model's context length"),
    "pretraining_dataset": ("string", "pretraining dataset"),
    "dataset_family": ("string", "openai, laion, datacomp, commonpool, dfn, metaclip, webli, ..."),
    "dataset_size": ("Int64", "image-text pairs in the pretraining dataset"),
    "dataset_size_basis": ("string", "paper (stated in the source) or name (the nominal size in its name)"),
    "dataset_source": ("string", "citation for the dataset facts"),
    "samples_seen": ("Int64", "training samples seen"),
    "samples_seen_source": ("string", "tag (parsed from it) or a citation"),
    "epochs": ("Int64", "epochs, where the tag gives them (laion400m_e32)"),
    "fine_tuned": ("boolean", "a fine-tune of another pretrained model"),
    "fine_tuned_on": ("string", "what it was fine-tuned on"),
    "quick_gelu": ("boolean", "the weights use QuickGELU activations"),
    "duplicate_of": ("string", "spec of the pair with the same weights and model (quickgelu duplicates)"),
    "hf_hub": ("string", "Hugging Face hub location of the weights"),
    "url": ("string", "download URL of the weights"),
}
#: the short view of `vlbias models --details`
DETAIL_COLUMNS = (
    "spec",
    "architecture_family",
    "n_params",
    "gflops",
    "pretraining_dataset",
    "dataset_family",
    "dataset_size",
    "samples_seen",
    "fine_tuned",
    "duplicate_of",
)
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


# ---------------------------------------------------------------------------------------------- reading
def _data(name: str) -> str:
    return resources.files("vlbias.data.models").joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=4)
def _yaml(name: str) -> Any:
    return load_yaml(_data(name), f"vlbias/data/models/{name}")


def coerce(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """Typed columns; a value that does not parse is a user error naming file, row and column."""
    import pandas as pd

    for col in df.columns:
        kind = COLUMNS.get(col, ("string", ""))[0]
        raw = df[col]
        if kind == "string":
            df[col] = raw.astype("string").str.strip().replace("", pd.NA)
            continue
        values = raw.astype("string").str.strip().replace("", pd.NA)
        if kind == "boolean":
            lowered = values.str.lower()
            bad = values.notna() & ~lowered.isin(_TRUE | _FALSE)
            out = pd.array([pd.NA if pd.isna(v) else v in _TRUE for v in lowered], dtype="boolean")
        else:
            num = pd.to_numeric(values, errors="coerce")
            bad = values.notna() & num.isna()
            if kind == "Int64":
                frac = num.notna() & (num.round() != num)
                bad |= frac
                out = num.round().astype("Int64")
            else:
                out = num.astype("Float64")
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise VlbiasError(
                f"{where}: row {i + 2}, column {col!r}: {values.iloc[i]!r} is not "
                f"{'true/false' if kind == 'boolean' else 'a whole number' if kind == 'Int64' else 'a number'}; "
                f"fix the value or leave it empty"
            )
        df[col] = out
    return df


def read_catalogue_file(path: str | os.PathLike) -> pd.DataFrame:
    """A user catalogue CSV: ``spec`` plus any of the catalogue's columns; checked and typed."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise VlbiasError(f"catalogue file not found: {path}; check the path")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise VlbiasError(f"{path}: not a readable CSV file ({str(e).splitlines()[0]}); fix the file") from None
    check_columns(csv_header(path), str(path))
    if "spec" not in df.columns:
        raise VlbiasError(f"{path}: no 'spec' column; a catalogue file needs a spec column (e.g. hf:org/model)")
    df = coerce(df, str(path))
    if df["spec"].isna().any():
        raise VlbiasError(f"{path}: row {int(df['spec'].isna().to_numpy().nonzero()[0][0]) + 2} has no spec")
    df["spec"] = [str(ModelSpec.parse(spec)) for spec in df["spec"]]  # one spelling (open_clip: -> openclip:)
    dup = df["spec"][df["spec"].duplicated()]
    if len(dup):
        raise VlbiasError(f"{path}: spec {dup.iloc[0]!r} appears twice; keep one row per model")
    if "backend" not in df.columns or df["backend"].isna().any():
        backends = df["spec"].str.partition(":")[0]
        df["backend"] = df["backend"].fillna(backends) if "backend" in df.columns else backends
    return df


@lru_cache(maxsize=1)
def shipped_catalogue() -> pd.DataFrame:
    import io

    import pandas as pd

    df = pd.read_csv(io.StringIO(_data(SHIPPED)), dtype=str, keep_default_na=False)
    return coerce(df, SHIPPED)


def user_catalogue_paths(extra: Iterable[str | os.PathLike] = ()) -> list[Path]:
    env = os.environ.get("VLBIAS_CATALOGUE", "")
    paths = [Path(p) for p in env.split(os.pathsep) if p.strip()]
    return paths + [Path(p) for p in extra]


def load_catalogue(extra: Iterable[str | os.PathLike] = ()) -> pd.DataFrame:
    """The shipped catalogue with user rows merged in (``$VLBIAS_CATALOGUE`` and ``extra`` files, in order)."""
    import pandas as pd

    df = shipped_catalogue().copy()
    for path in user_catalogue_paths(extra):
        user = read_catalogue_file(path)
        for col in user.columns:
            if col not in df.columns:
                df[col] = pd.Series(pd.NA, index=df.index, dtype=user[col].dtype)
        df = df.set_index("spec")
        user = user.set_index("spec")
        new = user.index.difference(df.index)
        df = pd.concat([df, user.loc[new].reindex(columns=df.columns)]) if len(new) else df
        common = user.index.intersection(df.index)
        for col in user.columns:
            vals = user.loc[common, col]
            vals = vals[vals.notna()]
            if len(vals):
                df.loc[vals.index, col] = vals
        df = df.reset_index()
    ordered = [c for c in COLUMNS if c in df.columns] + [c for c in df.columns if c not in COLUMNS]
    return df[ordered].reset_index(drop=True)


def select(df: pd.DataFrame, where: str, label: str = "--where") -> pd.DataFrame:
    """Rows matching a filter over the columns, e.g. ``dataset_family == 'laion' and n_params > 2e8``.

    The filter language is :mod:`vlbias.utils.where`: data, never run as code. Empty facts never match a
    comparison. ``label`` names the filter in error messages (``--where``, or where a config gives it).
    """
    keep = parse_filter(where, column_kinds(df), label).mask(df)
    return df[keep].reset_index(drop=True)


def catalogue_key(spec: str) -> str:
    """The catalogue row a spec's facts come from: ``openclip:ARCH/TAG@PATH`` has the facts of ARCH/TAG."""
    if spec.startswith("openclip:") and "@" in spec:
        return spec.split("@", 1)[0]
    return spec


def lookup(spec: str, catalogue: pd.DataFrame | None = None) -> dict[str, Any] | None:
    """The catalogue row of a spec as a dict (missing facts as None), or None if the catalogue has no row."""
    df = catalogue if catalogue is not None else load_catalogue()
    hit = df[df["spec"] == catalogue_key(spec)]
    if hit.empty:
        return None
    row = hit.iloc[0].to_dict()
    return {k: _py(v) for k, v in row.items()}


def _py(v: Any) -> Any:
    import pandas as pd

    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    if hasattr(v, "item"):
        return v.item()
    return v


# ---------------------------------------------------------------------------------------------- facts from names
def architecture_family(arch: str) -> str | None:
    for rule in _yaml("architecture_families.yaml"):
        m = re.search(rule["match"], arch)
        if m:
            return rule["family"].format(**m.groupdict())
    return None


_SAMPLES = re.compile(r"^s(\d+(?:\.\d+)?)([kmb])$")
_EPOCHS = re.compile(r"^e(\d+)$")
_SCALE = {"k": 10**3, "m": 10**6, "b": 10**9}


def tag_facts(arch: str, tag: str) -> dict[str, Any]:
    """Pretraining facts of an open_clip tag: dataset, family, size, samples seen, epochs, fine-tuning."""
    info = _yaml("pretraining.yaml")
    facts: dict[str, Any] = {k: None for k in _PRETRAINING_COLUMNS}
    facts["fine_tuned"] = False
    rest = tag
    if tag.startswith("mscoco_finetuned_"):
        facts.update(fine_tuned=True, fine_tuned_on="MSCOCO")
        rest = tag[len("mscoco_finetuned_") :]
    tokens = rest.split("_")
    if tokens[-1] == "ft" or tokens[-2:] == ["ft", "soup"]:
        facts.update(fine_tuned=True, fine_tuned_on="the same pretraining data at a higher resolution")
    for tok in tokens:
        m = _SAMPLES.match(tok)
        if m:
            facts.update(samples_seen=int(float(m.group(1)) * _SCALE[m.group(2)]), samples_seen_source="tag")
        m = _EPOCHS.match(tok)
        if m:
            facts["epochs"] = int(m.group(1))
    for rule in info["tags"]:
        m = re.search(rule["match"], rest)
        if not m:
            continue
        ds = info["datasets"][rule["dataset"]]
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        groups.update({k.upper(): v.upper() for k, v in groups.items()})
        facts.update(
            pretraining_dataset=ds["name"].format(**groups),
            dataset_family=ds.get("family"),
            dataset_size=ds.get("size"),
            dataset_size_basis=ds.get("size_basis") if ds.get("size") else None,
            dataset_source=info["sources"][ds["source"]],
        )
        _apply_samples(facts, rule, info["sources"])
        break
    for rule in info.get("pairs", []):
        if rule["architecture"] == arch and rule["tag"] == tag:
            _apply_samples(facts, rule, info["sources"])
    return facts


def _apply_samples(facts: dict[str, Any], rule: dict[str, Any], sources: dict[str, str]) -> None:
    if rule.get("samples_seen") is not None:
        key, _, note = rule.get("samples_seen_source", "").partition(":")
        facts["samples_seen"] = int(rule["samples_seen"])
        facts["samples_seen_source"] = sources.get(key, key) + (f":{note}" if note else "")


_PRETRAINING_COLUMNS = (
    "pretraining_dataset",
    "dataset_family",
    "dataset_size",
    "dataset_size_basis",
    "dataset_source",
    "samples_seen",
    "samples_seen_source",
    "epochs",
    "fine_tuned",
    "fine_tuned_on",
)


def to_csv_text(df: pd.DataFrame) -> str:
    """The catalogue as CSV text: booleans as true/false, GFLOPs to 6 decimals, unknowns empty."""
    out = df.copy().astype(object)
    for col in out.columns:
        kind = COLUMNS.get(col, ("string", ""))[0]
        fmt = {"boolean": lambda v: str(bool(v)).lower(), "Float64": lambda v: f"{float(v):.10g}"}.get(kind, str)
        out[col] = [("" if _py(v) is None else fmt(v)) for v in out[col]]
    return out.to_csv(index=False, lineterminator="\n")


def model_facts(spec: str, catalogue: pd.DataFrame | None = None, profile: bool = False) -> dict[str, Any]:
    """Catalogue facts for any spec, for ModelInfo and the results database.

    A catalogue row if there is one. For other open_clip specs of an architecture (``ARCH/random``, a checkpoint)
    the architecture's facts: from a catalogue row of the same architecture, or with ``profile`` computed on the
    meta device (for architectures without pretrained tags); pretraining facts stay empty. Else only the backend.
    """
    df = catalogue if catalogue is not None else load_catalogue()
    row = lookup(spec, df)
    if row is not None:
        return row
    facts: dict[str, Any] = {"spec": spec, "backend": spec.partition(":")[0]}
    if (
        spec.startswith("openclip:")
        and "/" in spec
        and not spec.startswith(("openclip:hf-hub:", "openclip:local-dir:"))
    ):
        arch = spec.split(":", 1)[1].split("/", 1)[0]
        facts.update(architecture=arch, architecture_family=architecture_family(arch))
        same = df[df["architecture"] == arch] if "architecture" in df.columns else df.iloc[0:0]
        if len(same):
            first = {k: _py(v) for k, v in same.iloc[0].to_dict().items()}
            facts.update({k: first.get(k) for k in ARCHITECTURE_COLUMNS})
        elif profile:
            try:
                facts.update(architecture_facts(arch))
            except KeyError:
                pass
    return facts


#: facts that belong to the architecture (the same for every tag of it)
ARCHITECTURE_COLUMNS = (
    "architecture_family",
    "image_tower",
    "text_tower",
    "image_size",
    "patch_size",
    "embed_dim",
    "n_params",
    "n_params_image",
    "n_params_text",
    "gflops",
    "gflops_image",
    "gflops_text",
)
