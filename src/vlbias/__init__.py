"""vlbias: audit social bias in vision-language embedding models.

The package imports nothing heavy at start; ``load_model`` and friends import on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "load_model": "vlbias.models",
    "ModelSpec": "vlbias.models",
    "ModelInfo": "vlbias.models",
    "Encoder": "vlbias.models",
    "ImageRef": "vlbias.models",
    "EmbeddingCache": "vlbias.cache",
    "mitigate": "vlbias.mitigation",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vlbias' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
