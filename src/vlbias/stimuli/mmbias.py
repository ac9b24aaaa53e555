"""MMBias (Janghorbani & de Melo, "Multi-Modal Bias: Introducing a Framework for Stereotypical Bias Assessment beyond
Gender and Race in Vision-Language Models", EACL 2023; arXiv:2303.12734): its association tests as EAT tests, read
from the user's copy of the release (github.com/sepehrjng92/MMBias at 3d6c3d898c4109f0628e5e95e3e1e3adf7b7b145).

Layout of the release (not bundled; MIT licence)::

    data/textual_phrases.txt       JSON: "pleasant_phrases", "unpleasant_phrases" (60 each) and "category_phrases":
                                   group -> phrases ("muslim": [...], "American": [...], "No disability": [...])
    data/Images/<Category>.zip     Religion, Nationality, Disability, Sexual Orientation: unzip in place (data/Images/
                                   <Category>/<Group>/<n>.jpg, 250 images a group)
    data/Images/Valence Images.zip unpacks to "Valence Images/Pleasant" and "Valence Images/Unpleasant" (50 each)
    data/URLs.txt                  JSON: the source of every image, by group (american, arab, chinese, christian,
                                   LGBT, disability, non-disabled, hindu, muslim, jewish, mental, mexican,
                                   heterosexual, buddhist, valence-pleasant, valence-unpleasant)

A group's images are the folder under ``data/Images`` whose name is one of the group's names in the battery file
(``vlbias/data/eat/mmbias.yaml``), compared without case, spaces, ``-`` and ``_``; its texts are its phrases in
``textual_phrases.txt``, as written. The battery's tests and their citation are in the battery file; a group whose
folder or phrases are missing makes the rows that need them skipped, with the reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from vlbias.errors import StimulusError
from vlbias.models.images import IMAGE_EXTENSIONS
from vlbias.stimuli.eat_tests import EATTest, ImageSide, StimulusSet
from vlbias.utils.io import load_yaml, sha256_file

PHRASES = "textual_phrases.txt"


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).casefold()


@lru_cache(maxsize=1)
def battery_spec() -> dict[str, Any]:
    text = resources.files("vlbias.data").joinpath("eat/mmbias.yaml").read_text(encoding="utf-8")
    return load_yaml(text, "vlbias/data/eat/mmbias.yaml", StimulusError)


@dataclass(frozen=True)
class Release:
    """A user's MMBias folder: its phrases and the folders of its image groups."""

    root: Path  # the release's data folder
    phrases: dict[str, Any]
    folders: dict[str, Path]  # normalised folder name -> folder holding images

    @property
    def phrases_sha256(self) -> str:
        return sha256_file(self.root / PHRASES)

    def images(self, names: list[str]) -> tuple[ImageSide | None, str]:
        """The image side of a group known by any of ``names``, or None and why not."""
        for name in names:
            folder = self.folders.get(_norm(name))
            if folder is not None:
                # absolute paths: the groups' files share names (1.jpg, ...), and a side is known by its files
                files = sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
                return ImageSide(files=tuple(files), root=folder), ""
        return None, (
            f"no MMBias image folder named {' or '.join(map(repr, names))} under {self.root / 'Images'}; unzip the "
            f"release's image archives there"
        )

    def texts(self, key: str | None) -> tuple[tuple[str, ...] | None, str]:
        if key is None:
            return None, ""
        if key in ("pleasant_phrases", "unpleasant_phrases"):
            found = self.phrases.get(key)
        else:
            found = (self.phrases.get("category_phrases") or {}).get(key)
        if not found:
            return None, f"{PHRASES} has no phrases for {key!r}"
        return tuple(" ".join(str(t).split()) for t in found if str(t).strip()), ""


def find_root(path: str | Path) -> Path:
    """The release's data folder (the one holding textual_phrases.txt) at or under ``path``."""
    p = Path(path).expanduser()
    for candidate in (p, p / "data", p.parent if p.name == "Images" else None):
        if candidate is not None and (candidate / PHRASES).is_file():
            return candidate
    raise StimulusError(
        f"{p} holds no MMBias release: expected data/{PHRASES} and data/Images/ (github.com/sepehrjng92/MMBias); "
        f"point --mmbias to the cloned repository"
    )


def read_release(path: str | Path) -> Release:
    root = find_root(path)
    try:
        phrases = json.loads((root / PHRASES).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StimulusError(
            f"cannot read {root / PHRASES} ({type(e).__name__}); it must be the release's JSON"
        ) from None
    if not isinstance(phrases, dict):
        raise StimulusError(f"{root / PHRASES} must be a JSON object with pleasant_phrases, unpleasant_phrases and "
                            f"category_phrases")  # fmt: skip
    folders: dict[str, Path] = {}
    images = root / "Images"
    if images.is_dir():
        for folder in sorted(p for p in images.rglob("*") if p.is_dir() and "__MACOSX" not in p.parts):
            if any(f.suffix.lower() in IMAGE_EXTENSIONS for f in folder.iterdir()):
                folders.setdefault(_norm(folder.name), folder)
    return Release(root=root, phrases=phrases, folders=folders)


def battery_tests(release: Release) -> list[tuple[str, EATTest, list[str]]]:
    """The battery's tests as (category, test, what the release lacks for it), every side the release provides."""
    spec = battery_spec()

    def side(entry: dict[str, Any], notes: list[str]) -> StimulusSet:
        texts, why_t = release.texts(entry.get("phrases"))
        images, why_i = release.images(list(entry.get("images") or []))
        notes += [w for w in (why_t, why_i) if w]
        if images is None:
            images = ImageSide(missing=why_i, key=f"mmbias/{entry['name']}")
        return StimulusSet(name=entry["name"], texts=texts, words=None, images=images)

    valence_notes: list[str] = []
    a, b = side(spec["valence"]["A"], valence_notes), side(spec["valence"]["B"], valence_notes)
    out = []
    for test in spec["tests"]:
        notes = list(valence_notes)
        x, y = side(test["X"], notes), side(test["Y"], notes)
        made = EATTest(name=test["name"], X=x, Y=y, A=a, B=b, title=test.get("title", ""), source=spec["citation"],
                       origin="vlbias/data/eat/mmbias.yaml")  # fmt: skip
        out.append((test["category"], made, list(dict.fromkeys(notes))))
    return out
