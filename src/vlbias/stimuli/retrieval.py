"""Retrieval protocols: package data in ``vlbias/data/retrieval/protocols/`` (sources cited in each file).

A retrieval protocol says which images compete for a text query and how the ranking is scored. Two kinds:

- ``counterfactual`` (SocialCounterfactuals): the images are split into *pools* by the dataset columns ``pools``
  (attribute type and subject); each pool is ranked by its cosine similarity to one query, the pool's neutral
  caption (``query: neutral-caption``: an image's caption without its two attribute words, the article fixed) or a
  template with ``{subject}``; each ranking is scored over the groups of each grouping (``a1``, ``a2`` name the
  pool's two attribute types, so ``[a1, a2]`` is their intersection).
- ``captions`` (PATA): the dataset ships captions per scene (its ``captions`` table: scene, attribute, polarity,
  caption); the pool of a caption is its scene's images; ``attributes`` maps each caption attribute to the dataset
  column whose groups it is scored over.

Both rank with ``k`` (MaxSkew@k, MinSkew@k and NDKL over the top k), against a ``target`` distribution over the
pool's groups (``uniform``, or the pool's own shares, ``pool``), and resample ``clusters`` (the dataset column of the
unit of resampling) for their intervals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from vlbias.errors import StimulusError
from vlbias.stimuli.prompts import indefinite_article
from vlbias.utils.io import load_yaml, stable_hash

KINDS = ("counterfactual", "captions")
TARGETS = ("uniform", "pool")
_KEYS = {
    "name", "title", "citation", "kind", "datasets", "pools", "query", "groupings", "k", "target", "ndkl_depth",
    "clusters", "attributes", "scale", "content_warning",
}  # fmt: skip


@dataclass(frozen=True)
class RetrievalProtocol:
    name: str
    kind: str
    pools: tuple[str, ...]
    k: int
    target: str = "uniform"
    ndkl_depth: str = "k"  # "k" or "all"
    clusters: str = "identity"
    query: str = "neutral-caption"  # counterfactual kind: neutral-caption or a template with {subject}
    groupings: tuple[tuple[str, ...], ...] = ()  # counterfactual kind: a1 / a2 / columns
    attributes: tuple[tuple[str, str], ...] = ()  # captions kind: caption attribute -> dataset column
    scale: float = 100.0  # captions kind: softmax scale of the caption association
    title: str = ""
    citation: str = ""
    datasets: tuple[str, ...] = ()
    content_warning: bool = False
    source: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "pools": list(self.pools),
            "k": self.k,
            "target": self.target,
            "ndkl_depth": self.ndkl_depth,
            "clusters": self.clusters,
            "query": self.query,
            "groupings": [list(g) for g in self.groupings],
            "attributes": dict(self.attributes),
            "scale": self.scale,
            "citation": self.citation,
        }

    @property
    def version(self) -> str:
        return stable_hash(self.describe(), n=12)


def _data_dir():
    return resources.files("vlbias.data").joinpath("retrieval")


def protocol_names() -> list[str]:
    folder = _data_dir().joinpath("protocols")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise StimulusError(f"{where} must be a non-empty list of strings")
    return tuple(v.strip() for v in value)


def parse_protocol(data: Any, source: str) -> RetrievalProtocol:
    """A protocol from its YAML mapping; every mistake is one line naming the source."""
    if not isinstance(data, dict) or "name" not in data or "kind" not in data:
        raise StimulusError(f"retrieval protocol {source} must be a mapping with 'name' and 'kind'")
    unknown = sorted(set(map(str, data)) - _KEYS)
    if unknown:
        raise StimulusError(f"retrieval protocol {source} has unknown key(s) {', '.join(unknown)}")
    kind = data["kind"]
    if kind not in KINDS:
        raise StimulusError(f"retrieval protocol {source}: kind must be {' or '.join(KINDS)} (got {kind!r})")
    k = data.get("k", 10)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise StimulusError(f"retrieval protocol {source}: k must be a whole number of at least 1")
    target = data.get("target", "uniform")
    if target not in TARGETS:
        raise StimulusError(f"retrieval protocol {source}: target must be {' or '.join(TARGETS)} (got {target!r})")
    depth = data.get("ndkl_depth", "k")
    if depth not in ("k", "all"):
        raise StimulusError(f"retrieval protocol {source}: ndkl_depth must be k or all (got {depth!r})")
    query = str(data.get("query", "neutral-caption"))
    if kind == "counterfactual" and query != "neutral-caption" and "{subject}" not in query:
        raise StimulusError(
            f"retrieval protocol {source}: query must be neutral-caption or a template with {{subject}}"
        )
    groupings = tuple(_strings(g, f"retrieval protocol {source}: a grouping") for g in data.get("groupings") or ())
    if kind == "counterfactual" and not groupings:
        raise StimulusError(
            f"retrieval protocol {source} (counterfactual) needs groupings, e.g. [[a1, a2], [a1], [a2]]"
        )
    attributes = data.get("attributes") or {}
    if kind == "captions" and (not isinstance(attributes, dict) or not attributes):
        raise StimulusError(f"retrieval protocol {source} (captions) needs attributes: caption attribute -> column")
    scale = data.get("scale", 100)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale <= 0:
        raise StimulusError(f"retrieval protocol {source}: scale must be a positive number")
    return RetrievalProtocol(
        name=str(data["name"]),
        kind=kind,
        pools=_strings(data.get("pools"), f"retrieval protocol {source}: pools"),
        k=k,
        target=target,
        ndkl_depth=depth,
        clusters=str(data.get("clusters", "identity")),
        query=query,
        groupings=groupings,
        attributes=tuple((str(a), str(c)) for a, c in attributes.items()),
        scale=float(scale),
        title=str(data.get("title", "")),
        citation=" ".join(str(data.get("citation", "")).split()),
        datasets=tuple(data.get("datasets") or ()),
        content_warning=bool(data.get("content_warning", False)),
        source=source,
    )


def load_protocol(name_or_path: str) -> RetrievalProtocol:
    """A packaged retrieval protocol by name, or a protocol YAML file by path."""
    if name_or_path in protocol_names():
        text = _data_dir().joinpath("protocols", f"{name_or_path}.yaml").read_text(encoding="utf-8")
        return parse_protocol(load_yaml(text, f"retrieval protocol {name_or_path}", StimulusError), name_or_path)
    path = Path(name_or_path).expanduser()
    if path.suffix.lower() in (".yaml", ".yml"):
        if not path.is_file():
            raise StimulusError(f"retrieval protocol file not found: {path}; check the path")
        return parse_protocol(load_yaml(path.read_text(encoding="utf-8"), str(path), StimulusError), str(path))
    raise StimulusError(
        f"unknown retrieval protocol {name_or_path!r}; use one of {', '.join(protocol_names())} or a protocol .yaml file"
    )


def protocol_for(dataset: str) -> str:
    """The packaged protocol published on a dataset (by its loader's name)."""
    found = [n for n in protocol_names() if dataset in load_protocol(n).datasets]
    if len(found) != 1:
        raise StimulusError(
            f"no retrieval protocol was published on {dataset} datasets; give one with --protocol "
            f"({', '.join(protocol_names())}, or a protocol .yaml file)"
        )
    return found[0]


def _word(text: str) -> re.Pattern:
    return re.compile(rf"(?<![\w-]){re.escape(text.strip())}(?![\w-])", flags=re.IGNORECASE)


def neutral_caption(caption: str, attributes: tuple[str, ...]) -> str:
    """A caption without its attribute words (each removed once, the last occurrence), spaces collapsed and the
    indefinite article before the word that now follows it fixed: "A photo of an obese Asian chef" without
    (obese, Asian) is "A photo of a chef"."""
    text = caption
    for attr in attributes:
        hits = list(_word(attr).finditer(text)) if attr and attr.strip() else []
        if hits:
            m = hits[-1]
            text = text[: m.start()] + text[m.end() :]
    text = " ".join(text.split())

    def article(m: re.Match) -> str:
        a = indefinite_article(m.group(3))
        return (a[0].upper() + a[1:] if m.group(1)[0].isupper() else a) + m.group(2) + m.group(3)

    return re.sub(r"\b([Aa]n?)(\s+)([\w'-]+)", article, text)
