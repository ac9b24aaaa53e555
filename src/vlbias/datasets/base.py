"""The face-dataset contract shared by the zero-shot and social-perception audits.

A dataset spec is ``NAME:PATH`` (``cfd:/data/CFD``, ``fairface:/data/fairface``, ``utkface:/data/UTKFace``,
``causalface:/data/causalface``, ``manifest:/data/faces.csv``), parsed once into a
:class:`~vlbias.datasets.spec.DatasetSpec`. Each loader is one module in :mod:`vlbias.datasets` named after its
prefix, defining ``DESCRIPTION``, its typed ``Options`` (:mod:`vlbias.utils.options`), ``load(path, **options) ->
FaceDataset`` and, where the release has a known top folder, ``find_root(path)``. Adding a dataset is adding that
module (and its test with a fixture folder in the real layout).

Every loader yields one table, one row per image, with at least these columns (common vocabulary):

============  ==============================================================================================
path          absolute image path (str)
key           path relative to the dataset root, ``/``-separated (the ``vectors:`` image key)
identity      the person (CFD model id, CausalFace seed, …; the file stem when a dataset has no person ids)
race          lower-case common label: white, black, latino_hispanic, east_asian, southeast_asian, asian,
              indian, middle_eastern, multiracial, other
race_label    the dataset's own label, unchanged
gender        female | male
age           numeric age in years where the dataset has one (NaN otherwise)
age_group     the dataset's age bin where it has bins (FairFace "20-29"), else derived or empty
============  ==============================================================================================

plus any dataset-specific columns (CFD's rated traits, CausalFace's varied attribute and level, …). Bootstrap
intervals resample ``identity``, never images, so several images of one person count once. A release that ships
texts with its images (PATA's positive and negative captions per scene) gives them as ``captions``, a second table
read from the release at load time (never packaged with vlbias).

The loader also returns a :class:`LoadReport` of what it could not match: images without metadata, metadata
without images, labels outside the vocabulary, malformed file names. Nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vlbias.utils.provenance import entry

if TYPE_CHECKING:
    import pandas as pd

    from vlbias.datasets.spec import DatasetSpec
    from vlbias.models.images import ImageRef

REQUIRED_COLUMNS = ("path", "key", "identity", "race", "race_label", "gender", "age", "age_group")
RACES = (
    "white",
    "black",
    "latino_hispanic",
    "east_asian",
    "southeast_asian",
    "asian",
    "indian",
    "middle_eastern",
    "multiracial",
    "other",
)
GENDERS = ("female", "male")


def image_refs(table: pd.DataFrame) -> list[ImageRef]:
    """The images of a dataset's rows as the encoder takes them: each path with its ``crop`` box where the table has
    one (CausalFace's study crops, FACET's people), so a crop is encoded, and cached, as its own image."""
    from vlbias.models.images import ImageRef  # here, not at the top: naming a dataset imports no models package

    crops = table["crop"] if "crop" in table.columns else [None] * len(table)
    return [
        ImageRef(Path(p), tuple(int(v) for v in c) if c is not None and not _is_na(c) else None)
        for p, c in zip(table["path"], crops)
    ]


def crop_text(crop) -> str:
    """A crop box as written in output tables: ``left,upper,right,lower`` ('' for none)."""
    return "" if crop is None or _is_na(crop) else ",".join(str(int(v)) for v in crop)


def _is_na(value) -> bool:
    return isinstance(value, float) and value != value


@dataclass
class LoadReport:
    images_without_metadata: list[str] = field(default_factory=list)
    metadata_without_images: list[str] = field(default_factory=list)
    unknown_labels: list[str] = field(default_factory=list)  # "column=value (n rows)"
    malformed: list[str] = field(default_factory=list)  # file names that do not parse
    notes: list[str] = field(default_factory=list)

    def as_frame(self) -> pd.DataFrame:
        import pandas as pd  # here, not at the top: naming a dataset (vlbias zeroshot --help) imports no pandas

        rows = []
        for kind in ("images_without_metadata", "metadata_without_images", "unknown_labels", "malformed", "notes"):
            rows += [{"item": item, "reason": kind} for item in getattr(self, kind)]
        return pd.DataFrame(rows, columns=["item", "reason"])

    def summary(self) -> str:
        parts = [
            f"{len(getattr(self, k))} {k.replace('_', ' ')}"
            for k in ("images_without_metadata", "metadata_without_images", "unknown_labels", "malformed")
            if getattr(self, k)
        ]
        return "; ".join(parts) if parts else "everything matched"


@dataclass
class FaceDataset:
    name: str  # loader prefix, e.g. "cfd"
    root: Path
    table: pd.DataFrame
    report: LoadReport = field(default_factory=LoadReport)
    version: str = ""  # dataset release, e.g. "CFD 3.0"
    options: dict = field(default_factory=dict)
    source: DatasetSpec | None = None  # the spec it was loaded from (set by DatasetSpec.load)
    #: texts the release ships beside its images, one row per text (PATA: scene, attribute, polarity, caption)
    captions: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        missing = [c for c in REQUIRED_COLUMNS if c not in self.table.columns]
        if missing:
            raise ValueError(f"{self.name} loader produced no column(s) {missing}")  # a loader bug, not user error

    @property
    def spec(self) -> str:
        """The dataset's one recorded spelling: its spec's, or ``NAME:ROOT`` for a table made by hand."""
        return str(self.source) if self.source is not None else f"{self.name}:{self.root}"

    def load(self) -> FaceDataset:
        """Itself: a dataset given to an audit already loaded (a :class:`DatasetSpec` loads on this call)."""
        return self

    def to_option(self) -> str:
        """How options record a dataset given already loaded: its spec."""
        return self.spec

    def provenance(self, n_images: int | None = None) -> dict:
        """The dataset's provenance entry: its spec, release, loader options, and the fingerprint of its table;
        ``n_images``: how many of its images the run used (all, if None)."""
        return entry(
            "dataset",
            self.name,
            spec=self.spec,
            version=self.version,
            options=self.options,
            n_images=int(len(self.table) if n_images is None else n_images),
            sha256=self.fingerprint(),
        )

    def fingerprint(self) -> str:
        """sha256 of the table as loaded: relative keys and every attribute, in key order, without absolute paths.

        The same dataset gives the same fingerprint for every model and on every machine, so result rows of many
        models can be traced to one stimulus set; a changed label, an added or removed image changes it.
        """
        import hashlib

        cols = sorted(c for c in self.table.columns if c != "path")
        frame = self.table[cols].sort_values("key", kind="stable")
        h = hashlib.sha256(frame.to_csv(index=False, lineterminator="\n").encode())
        if self.captions is not None:  # a release's texts are part of it (datasets without them hash as before)
            h.update(self.captions.to_csv(index=False, lineterminator="\n").encode())
        return h.hexdigest()
