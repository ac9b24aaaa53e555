"""Hugging Face transformers dual encoders: ``hf:ID_OR_PATH``.

Any model that ``AutoModel`` loads and that has ``get_text_features`` and/or ``get_image_features`` (CLIPModel,
SiglipModel, Siglip2, AltCLIP, ChineseCLIP, …), with the processor saved beside it.

Texts are padded to the batch's longest prompt where the padding cannot change a vector: the model takes an attention
mask, so no token attends to a pad token (its weight is exactly zero), and reads the embedding at a real token (CLIP:
causal attention, read at the end-of-text token; BERT and XLM-R towers such as ChineseCLIP and AltCLIP: read at the
first token). The vectors then equal the fully padded ones to float rounding (tested to 1e-6 in fp32). SigLIP-family
text towers attend to every position and read the last one, and were trained on fixed-length padding, so they and any
model whose ``get_text_features`` takes no attention mask run at the fixed length.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from vlbias.errors import ModalityError, WeightsUnavailableError
from vlbias.models.hub import HubModelEncoder, hub_source, quiet_transformers

DESCRIPTION = "Hugging Face transformers dual encoders (CLIPModel, SiglipModel, …): hf:ID_OR_PATH"
_FIXED_LENGTH_TYPES = {"siglip", "siglip2"}


def _features(out) -> Any:
    """transformers 4 returns a tensor; 5 returns a model output whose pooler_output is the embedding."""
    if hasattr(out, "pooler_output") and not hasattr(out, "shape"):
        return out.pooler_output
    if isinstance(out, tuple):
        return out[1]
    return out


class Backend(HubModelEncoder):
    def _load(self) -> None:
        import torch
        from transformers import AutoModel, AutoProcessor

        quiet_transformers()
        source = str(self.path) if self.path is not None else hub_source(self.spec, [self.model_id], "hf")
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.precision]
        try:
            model = AutoModel.from_pretrained(source, dtype=dtype)
            processor = AutoProcessor.from_pretrained(source)
        except Exception as e:  # noqa: BLE001
            msg = (str(e).splitlines() or [type(e).__name__])[0][:200]
            raise WeightsUnavailableError(
                f"cannot load {self.spec} ({msg}); on a machine with internet run `hf download {self.model_id} "
                f"--local-dir DIR`, copy DIR here and use hf:DIR"
            ) from None
        mods = tuple(
            m for m, fn in (("text", "get_text_features"), ("image", "get_image_features")) if hasattr(model, fn)
        )
        if not mods:
            raise ModalityError(
                f"{self.spec} ({type(model).__name__}) has neither get_text_features nor get_image_features; "
                f"use a dual encoder such as CLIPModel or SiglipModel"
            )
        self.modalities = mods
        self._model = model.to(self.device).eval()
        self._processor = processor
        cfg = model.config
        self._model_type = getattr(cfg, "model_type", "")
        text_cfg = getattr(cfg, "text_config", None)
        self._max_length = getattr(text_cfg, "max_position_embeddings", None) if text_cfg is not None else None
        self._dtype = dtype

    def _info(self) -> dict[str, Any]:
        model = self._model
        n = sum(p.numel() for p in model.parameters())
        n_img = None
        for part in ("vision_model", "visual_projection"):
            module = getattr(model, part, None)
            if module is not None:
                n_img = (n_img or 0) + sum(p.numel() for p in module.parameters())
        scale = getattr(model, "logit_scale", None)
        bias = getattr(model, "logit_bias", None)
        embed_dim = getattr(model.config, "projection_dim", None)
        if embed_dim is None:
            embed_dim = self._embed_texts(["a"]).shape[1] if "text" in self.modalities else None
        return {
            "architecture": (getattr(model.config, "architectures", None) or [type(model).__name__])[0],
            "pretrained": self.model_id,
            "embed_dim": int(embed_dim) if embed_dim is not None else None,
            "n_params": int(n),
            "n_params_image": int(n_img) if n_img is not None else None,
            "n_params_text": int(n - n_img) if n_img is not None else None,
            "logit_scale": float(scale.exp().item()) if scale is not None else None,
            "logit_bias": float(bias.item()) if bias is not None else None,
            "preprocessing": self._preprocessing_summary(),
            "extra": {"model_type": self._model_type},
        }

    def _preprocessing_summary(self) -> dict[str, Any] | None:
        processor = getattr(self._processor, "image_processor", None)
        if processor is None:
            return None
        keys = ("size", "crop_size", "image_mean", "image_std", "resample", "do_resize", "do_center_crop")
        cfg = processor.to_dict()
        return {k: cfg[k] for k in keys if k in cfg}

    def _call(self, fn, inputs: dict) -> np.ndarray:
        import torch

        accepted = set(inspect.signature(fn).parameters)
        kwargs = {k: v.to(self.device) for k, v in inputs.items() if k in accepted}
        with torch.inference_mode():
            out = _features(fn(**kwargs))
        return out.float().cpu().numpy()

    def _fixed_length(self) -> bool:
        """Whether texts run padded to the full length (see the module docstring)."""
        takes_mask = "attention_mask" in inspect.signature(self._model.get_text_features).parameters
        return self._model_type in _FIXED_LENGTH_TYPES or not takes_mask

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        tokenizer = getattr(self._processor, "tokenizer", self._processor)
        inputs = tokenizer(
            texts,
            padding="max_length" if self._fixed_length() else "longest",
            truncation=True,
            max_length=self._max_length,
            return_tensors="pt",
        )
        return self._call(self._model.get_text_features, dict(inputs))

    def _image_preprocess(self):
        processor = getattr(self._processor, "image_processor", self._processor)

        def preprocess(img):
            return processor(images=img, return_tensors="pt")["pixel_values"][0]

        return preprocess

    def _embed_images(self, batch) -> np.ndarray:
        return self._call(self._model.get_image_features, {"pixel_values": batch.to(self._dtype)})

    # -------------------------------------------------------------- layers (vlbias.models.layers)
    def tower_depths(self) -> dict[str, int]:
        from transformers import AutoConfig

        from vlbias.models.backends._layer_hooks import hf_depths

        if self._loaded:
            return hf_depths(self._model.config, str(self.spec))
        quiet_transformers()
        source = str(self.path) if self.path is not None else hub_source(self.spec, [self.model_id], "hf")
        return hf_depths(AutoConfig.from_pretrained(source), str(self.spec))

    def _embed_text_layers(self, texts: list[str], blocks: dict[int, int], reading: str) -> dict[int, np.ndarray]:
        from vlbias.models.backends._layer_hooks import hf_text_tower, read_layers

        tower = hf_text_tower(self._model, reading, str(self.spec))
        return read_layers(tower, blocks, len(texts), lambda: self._embed_texts(texts))

    def _embed_image_layers(self, batch, blocks: dict[int, int], reading: str) -> dict[int, np.ndarray]:
        from vlbias.models.backends._layer_hooks import hf_image_tower, read_layers

        tower = hf_image_tower(self._model, reading, str(self.spec))
        return read_layers(tower, blocks, len(batch), lambda: self._embed_images(batch))
