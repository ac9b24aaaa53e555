"""SocialCounterfactuals (Howard, Madasu, Le, Lujan Moreno, Bhiwandiwalla & Lal, CVPR 2024), read from the Parquet
shards its authors publish on the Hugging Face hub. https://huggingface.co/datasets/Intel/SocialCounterfactuals

Layout of the release (not bundled; MIT licence), as ``huggingface-cli download Intel/SocialCounterfactuals
--repo-type dataset --local-dir DIR`` or ``git clone`` leaves it::

    DIR/data/train-000NN-of-00061-<hash>.parquet      61 shards, 170,832 rows in all (the dataset's one split)

One row per image-text pair, with the images embedded (Hugging Face's ``Image`` feature: a struct of ``bytes`` and
``path``). The columns this loader reads, as the published code that loads the release reads them (for example
``load_social_counterfactual_data`` in a public loader: ``caption``, ``a1_type``, ``a1``, ``a2_type``, ``a2``,
``counterfactual_set``; others name ``a1a2`` and ``dataset_segment`` too):

==================  ===========================================================================================
image               the generated image (PNG/JPEG bytes)
caption             its caption: the subject with both attributes, e.g. "... Asian woman chef"
counterfactual_set  the set of images that depict one subject and differ only in the two attributes
a1_type, a1         the first attribute and its value (``race``/Asian, ``physical``/obese, …)
a2_type, a2         the second attribute and its value (``gender``/woman, ``race``/Black, …); the subject
                    follows a2 in the caption
==================  ===========================================================================================

The three attribute-type pairs of the paper are race-gender, physical-gender and physical-race. Every other column
is kept as it is.

Images are embedded, so on first load each one is written once to ``images_dir`` (``<release>/vlbias-images/`` by
default) as ``<shard>/<row>.<png|jpg>``; later loads reuse the files (an image is rewritten only if its size
changed). The image key (the ``vectors:`` key, and the embedding cache's key is the sha256 of these same bytes) is
that file's path relative to the release folder.

Table: one row per image; ``identity`` is the counterfactual set (bootstrap intervals resample sets), ``subject``
the caption's text after a2 (the occupation), ``attribute_type`` ``<a1_type>-<a2_type>``, one column per attribute
type present (``race``, ``gender``, ``physical``) with the row's value, and ``race``/``gender`` mapped to the common
vocabulary (Latino -> latino_hispanic, man -> male, …) with the release's own labels in ``race_label`` and
``gender_label``. Rows without image bytes, captions that do not contain a2, and labels outside the vocabulary are
reported, never dropped silently.

Options: ``attribute_types`` (a list of pairs such as race-gender, or all), ``images_dir`` (where the embedded
images are written).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from vlbias.datasets._common import common_gender, common_race, finish_table, map_labels
from vlbias.datasets.base import FaceDataset, LoadReport
from vlbias.errors import StimulusError
from vlbias.utils.options import Options as _Options
from vlbias.utils.options import option

DESCRIPTION = "SocialCounterfactuals: the Hugging Face release's Parquet shards (data/train-*.parquet, images embedded)"

#: the attribute-type pairs of the paper (section 3)
ATTRIBUTE_TYPES = ("race-gender", "physical-gender", "physical-race")
#: columns the loader needs in every shard
COLUMNS = ("image", "caption", "counterfactual_set", "a1_type", "a1", "a2_type", "a2")
IMAGES_DIR = "vlbias-images"


def _shards(root: Path) -> list[Path]:
    for folder in (root / "data", root):
        found = sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))
        if found:
            return found
    return []


def find_root(path: Path) -> Path:
    """The release folder: the one holding ``data/*.parquet`` (or the shards themselves)."""
    path = path.expanduser()
    if not path.exists():
        raise StimulusError(f"SocialCounterfactuals folder not found: {path}; check the path")
    if path.is_dir() and path.name == "data" and _shards(path) and not (path / "data").is_dir():
        return path.parent
    if path.is_dir() and _shards(path):
        return path
    raise StimulusError(
        f"{path} holds no SocialCounterfactuals shards: expected data/train-*.parquet; download the release with "
        f"huggingface-cli download Intel/SocialCounterfactuals --repo-type dataset --local-dir {path}"
    )


def _attribute_types(value) -> tuple[str, ...]:
    items = [v.strip().lower() for v in value.split(",")] if isinstance(value, str) else [str(v).lower() for v in value]
    items = [v for v in items if v]
    if not items or any(v == "all" for v in items):
        return ()
    if any(not re.fullmatch(r"[a-z_ ]+-[a-z_ ]+", v) for v in items):
        raise StimulusError(f"attribute_types {value!r} must name pairs such as {', '.join(ATTRIBUTE_TYPES)}, or all")
    return tuple(dict.fromkeys(items))


class Options(_Options):
    OWNER = "dataset socialcounterfactuals"

    attribute_types: tuple[str, ...] = option(
        (),
        f"attribute-type pairs to load ({', '.join(ATTRIBUTE_TYPES)}; a list), or all [default: all]",
        normalise=_attribute_types,
    )
    images_dir: str | None = option(
        None,
        f"folder the embedded images are written to once [default: {IMAGES_DIR}/ in the release folder]",
        path=True,
    )


def _extension(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".img"  # not a format we recognise: written as is, reported when it fails to decode


def _write_once(path: Path, data: bytes) -> None:
    if path.is_file() and path.stat().st_size == len(data):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _image_bytes(value) -> bytes | None:
    if isinstance(value, dict):
        value = value.get("bytes")
    return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) and len(value) else None


def subject_of(caption: str, a2: str) -> str | None:
    """The subject of a caption: its text after the last whole-word occurrence of a2 (case-insensitive)."""
    if not isinstance(caption, str) or not isinstance(a2, str) or not a2.strip():
        return None
    hits = list(re.finditer(rf"(?<![\w-]){re.escape(a2.strip())}(?![\w-])", caption, flags=re.IGNORECASE))
    if not hits:
        return None
    rest = caption[hits[-1].end() :].strip().rstrip(".").strip()
    return rest or None


def load(path: str | Path, **options) -> FaceDataset:
    import pyarrow.parquet as pq

    o = Options.parse(options)
    root = find_root(Path(path))
    shards = _shards(root)
    images_dir = Path(o.images_dir) if o.images_dir else root / IMAGES_DIR
    wanted = set(o.attribute_types)
    report = LoadReport()
    rows: list[dict] = []
    for shard in shards:
        try:
            pf = pq.ParquetFile(shard)
        except Exception as e:  # noqa: BLE001 - any pyarrow failure means the shard is not readable Parquet
            raise StimulusError(f"cannot read the shard {shard} ({type(e).__name__}); download it again") from None
        names = pf.schema_arrow.names
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise StimulusError(
                f"{shard.name} lacks column(s) {', '.join(missing)}; SocialCounterfactuals shards have "
                f"{', '.join(COLUMNS)}"
            )
        extra = [c for c in names if c not in COLUMNS]
        folder = images_dir / shard.stem.split("-of-")[0]
        n = 0
        for batch in pf.iter_batches(batch_size=256):
            for rec in batch.to_pylist():
                i, n = n, n + 1
                pair = f"{str(rec['a1_type']).strip().lower()}-{str(rec['a2_type']).strip().lower()}"
                if wanted and pair not in wanted:
                    continue
                where = f"{shard.name} row {i}"
                data = _image_bytes(rec["image"])
                if data is None:
                    report.metadata_without_images.append(f"{where} (set {rec['counterfactual_set']}): no image bytes")
                    continue
                file = folder / f"{i:06d}{_extension(data)}"
                try:
                    _write_once(file, data)
                except OSError as e:
                    raise StimulusError(
                        f"cannot write the embedded images to {images_dir} ({e.strerror}); give a writable folder "
                        f"with --dataset-option images_dir=DIR"
                    ) from None
                rows.append(
                    {
                        "path": str(file),
                        "key": Path(os.path.relpath(file, root)).as_posix(),
                        "shard": shard.name,
                        "row": i,
                        **{c: rec[c] for c in COLUMNS if c != "image"},
                        **{c: rec[c] for c in extra},
                        "attribute_type": pair,
                    }
                )
    if not rows:
        what = f" of attribute types {', '.join(sorted(wanted))}" if wanted else ""
        raise StimulusError(f"no image{what} in the SocialCounterfactuals shards under {root}; check the folder")
    table = pd.DataFrame(rows)
    found = set(table["attribute_type"])
    for pair in sorted(wanted - found):
        report.notes.append(f"attribute type {pair}: no rows in the release")
    for col in ("a1_type", "a2_type", "a1", "a2", "caption", "counterfactual_set"):
        table[col] = table[col].astype(object).where(table[col].notna(), None)
        table[col] = [v.strip() if isinstance(v, str) else v for v in table[col]]
    table["a1_type"] = table["a1_type"].str.lower()
    table["a2_type"] = table["a2_type"].str.lower()
    table["subject"] = [subject_of(c, a2) for c, a2 in zip(table["caption"], table["a2"])]
    no_subject = table["subject"].isna()
    report.malformed += [
        f"{k}: caption {c!r} does not contain a2 {a2!r}"
        for k, c, a2 in zip(table.loc[no_subject, "key"], table.loc[no_subject, "caption"], table.loc[no_subject, "a2"])
    ]
    # one column per attribute type, holding the row's value of it (the release's own spelling)
    for kind in sorted(set(table["a1_type"].dropna()) | set(table["a2_type"].dropna())):
        table[kind] = [
            a1 if t1 == kind else a2 if t2 == kind else None
            for t1, a1, t2, a2 in zip(table["a1_type"], table["a1"], table["a2_type"], table["a2"])
        ]
    table["identity"] = table["counterfactual_set"].astype(str)
    race_label = table["race"] if "race" in table.columns else pd.Series([None] * len(table))
    gender_label = table["gender"] if "gender" in table.columns else pd.Series([None] * len(table))
    table["race_label"] = race_label
    table["gender_label"] = gender_label
    table["race"] = map_labels(race_label, common_race, "race", report)
    table["gender"] = map_labels(gender_label, common_gender, "gender", report)
    table["age"] = float("nan")
    table["age_group"] = ""
    # a set smaller than its attribute type's usual size lacks some attribute combinations: kept, and said
    for pair, part in table.groupby("attribute_type"):
        sizes = part.groupby("counterfactual_set").size()
        usual = Counter(sizes.tolist()).most_common(1)[0][0]
        small = sizes[sizes < usual]
        if len(small):
            report.notes.append(
                f"{len(small)} {pair} counterfactual set(s) have fewer than {usual} images: "
                + ", ".join(f"{k} ({v})" for k, v in small.head(5).items())
                + (" …" if len(small) > 5 else "")
            )
    table = finish_table(table, extra_first=("attribute_type", "subject", "counterfactual_set"))
    return FaceDataset(
        name="socialcounterfactuals",
        root=root,
        table=table,
        report=report,
        version=f"SocialCounterfactuals ({len(shards)} shards)",
        options={**o.to_dict(), "images_dir": str(images_dir)},
    )
