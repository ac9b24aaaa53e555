"""Model specs: one string names a model everywhere (CLI, configs, result rows).

``BACKEND:REST`` where BACKEND is a registered backend prefix (``openclip``, ``hf``, ``st``, ``vectors``, …).
Parsing here is pure string work: it imports no deep-learning library, so the CLI can validate a spec instantly.
Each backend interprets REST itself (see its module in :mod:`vlbias.models.backends`).

A backend prefix may be written in another common spelling (``open_clip:``, ``open-clip:``, the package's own name);
it is recorded in the backend's one spelling (``openclip:``), so task ids, cache identities and result rows never
split one model in two.
"""

from __future__ import annotations

from dataclasses import dataclass

from vlbias.errors import SpecError
from vlbias.models.registry import backend_names

#: other spellings of a backend prefix -> the backend's name, the one spelling specs are recorded in
PREFIX_ALIASES = {"open_clip": "openclip", "open-clip": "openclip"}


def canonical_prefix(text: str) -> str:
    """``text`` (a spec, or a pattern over specs) with an alias of its backend prefix written as the backend's
    name: ``open_clip:ViT-B-32/*`` -> ``openclip:ViT-B-32/*``. Anything else is returned as it is."""
    backend, sep, rest = text.partition(":")
    return f"{PREFIX_ALIASES[backend]}:{rest}" if sep and backend in PREFIX_ALIASES else text


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: the backend prefix and the backend-specific rest."""

    backend: str
    target: str

    def __str__(self) -> str:
        return f"{self.backend}:{self.target}"

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        if not isinstance(text, str) or not text.strip():
            raise SpecError("empty model spec; name a model like openclip:ViT-B-32/laion2b_s34b_b79k")
        text = canonical_prefix(text.strip())
        known = backend_names()
        backend, sep, target = text.partition(":")
        if not sep:
            raise SpecError(
                f"model spec {text!r} has no backend prefix; write BACKEND:NAME with BACKEND one of "
                f"{', '.join(known)} (e.g. openclip:ViT-B-32/laion2b_s34b_b79k)"
            )
        if backend not in known:
            raise SpecError(f"unknown backend {backend!r} in model spec {text!r}; known backends: {', '.join(known)}")
        if not target:
            raise SpecError(f"model spec {text!r} names no model after {backend}:")
        return cls(backend, target)
