"""Provenance entries: what a run was made from, one typed entry per stimulus set, in every run record.

Each entry is a JSON object with a ``kind`` (what it is: ``dataset``, ``protocol``, ``test``, ``battery``,
``images``, ``lexicon``, ``control``, ``templates``), a ``name`` (which one: ``cfd``, ``birhane2024``,
``weat1``) and what identifies its content (``version``, ``sha256``, and details of the kind: a dataset's
``spec``, ``n_images`` and loader ``options``; a protocol's ``tasks``). Readers ask for entries by kind
(:func:`of_kind`), never by the spelling of a name. Records written before entries had a kind spelt it as a
prefix of the name (``dataset:cfd``); :func:`of_kind` reads those too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

KINDS = ("dataset", "protocol", "test", "battery", "images", "lexicon", "control", "templates")


def entry(kind: str, name: str, **details: Any) -> dict[str, Any]:
    """One provenance entry (details with a None value are left out)."""
    if kind not in KINDS:
        raise ValueError(f"unknown provenance kind {kind!r}")  # a bug in vlbias, not a user error
    return {"kind": kind, "name": name, **{k: v for k, v in details.items() if v is not None}}


def kind_of(e: dict[str, Any]) -> str | None:
    if e.get("kind"):
        return e["kind"]
    prefix, sep, _ = str(e.get("name", "")).partition(":")
    return prefix if sep and prefix in KINDS else None


def name_of(e: dict[str, Any]) -> str:
    name = str(e.get("name", ""))
    return name if e.get("kind") else name.partition(":")[2] or name


def of_kind(entries: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The entries of one kind, each with its plain ``name`` (also from records that wrote ``kind:name``)."""
    return [{**e, "kind": kind, "name": name_of(e)} for e in entries or () if kind_of(e) == kind]


def label(e: dict[str, Any]) -> str:
    """``name@version`` (or the first 12 hex digits of its sha256), for tables."""
    version = e.get("version") or str(e.get("sha256", ""))[:12] or "?"
    return f"{name_of(e) or '?'}@{version}"
