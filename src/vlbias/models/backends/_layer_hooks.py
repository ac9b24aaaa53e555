"""Reading the output of chosen transformer blocks while a tower runs (forward hooks), for
:mod:`vlbias.models.layers`.

The backend runs its own text or image path unchanged (tokenisation, padding, batching: whatever it does for the
model's embedding) inside :class:`BlockReader`; hooks on the chosen blocks read, from each block's output, the token
the tower pools and, for the ``lens`` reading, pass it through the tower's head. Only the pooled token of each
chosen block is kept, never a block's whole output. The pooled position is taken from the token ids of the same
forward pass (a hook on the text tower's input), so padding to any length reads the same token.

Towers (checked before the first pass; anything else is refused in one line):

- open_clip ``VisionTransformer``: raw is the class token, or the mean of the patch tokens where the tower pools by
  average (``_global_pool``); lens is the tower's ``_pool`` (final norm, and its attentional pooler if it has one)
  and projection. A tower with an attentional pooler has no raw token.
- open_clip text (``CLIP``'s, or a ``CustomTextCLIP``'s ``TextTransformer``): the token ``text_global_pool`` reads
  (``argmax``: end of text, ``eos``, ``first``, ``last``; an appended class token where there is one); lens adds
  ``ln_final`` and the text projection.
- Hugging Face ``clip``: text at the end-of-text token as ``CLIPTextTransformer`` finds it, image at the class token;
  lens adds ``final_layer_norm``/``post_layernorm`` and the projection. ``siglip``: text at the last position, lens
  through ``final_layer_norm`` and ``head``; image lens through ``post_layernorm`` and the attention-pooling
  ``head`` (no raw token: the tower has no class token).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlbias.errors import LayerError


@dataclass
class Tower:
    """What a reader needs of one tower: its blocks, how to turn a block's output into the vector read, and where
    a forward pass starts (the module whose forward or pre-forward hook sees the token ids)."""

    blocks: Any  # a sequence of modules (the transformer blocks, in order)
    read: Callable[[Any, Any], Any]  # (block output in batch-first layout, token ids or None) -> (n, d)
    start: Any  # a module whose call starts one forward pass of the tower
    start_ids: Callable[[tuple, dict], Any] | None = None  # (args, kwargs) of that call -> token ids
    batch_first: bool = True


class BlockReader:
    """Hooks that read ``blocks`` (layer -> 1-based block number) of ``tower`` while the backend runs it; use as
    a context manager around one batch of the backend's own forward, then :meth:`vectors`. Each call of the tower's
    start module begins a pass; only the last pass over the whole batch counts (see :meth:`vectors`)."""

    def __init__(self, tower: Tower, blocks: dict[int, int]):
        self.tower = tower
        self.blocks = dict(blocks)
        self.calls: list[dict[str, Any]] = []
        self._handles: list[Any] = []

    def __enter__(self) -> BlockReader:
        t = self.tower

        def start(module, args, kwargs):
            ids = t.start_ids(args, kwargs) if t.start_ids is not None else None
            self.calls.append({"ids": ids, "out": {}, "n": None})

        self._handles.append(t.start.register_forward_pre_hook(start, with_kwargs=True))
        by_block: dict[int, list[int]] = {}
        for layer, block in self.blocks.items():
            by_block.setdefault(block, []).append(layer)
        for block, layers in by_block.items():
            self._handles.append(t.blocks[block - 1].register_forward_hook(self._hook(layers)))
        return self

    def _hook(self, layers: list[int]):
        def hook(module, args, output):
            if not self.calls:
                return
            x = output[0] if isinstance(output, (tuple, list)) else output
            if not self.tower.batch_first:
                x = x.transpose(0, 1)
            call = self.calls[-1]
            vec = self.tower.read(x, call["ids"]).float().cpu()
            call["n"] = vec.shape[0]
            for layer in layers:
                call["out"][layer] = vec

        return hook

    def __exit__(self, *exc) -> bool:
        for h in self._handles:
            h.remove()
        self._handles = []
        return False

    def vectors(self, n: int) -> dict[int, np.ndarray]:
        """Layer -> (n, d) vectors of the last forward pass over ``n`` rows (a backend may run a small probe pass
        first; it is not the batch's)."""
        for call in reversed(self.calls):
            if call["n"] == n and set(call["out"]) == set(self.blocks):
                return {k: v.numpy().astype(np.float32) for k, v in call["out"].items()}
        raise RuntimeError(f"the layer hooks saw no forward pass over the batch of {n} (passes: {len(self.calls)})")


def _project(x, proj):
    import torch

    if proj is None:
        return x
    return proj(x) if isinstance(proj, torch.nn.Module) else x @ proj


# ---------------------------------------------------------------------------------------------------- open_clip
def openclip_text_tower(model, reading: str, spec: str) -> Tower:
    from open_clip.model import CLIP, CustomTextCLIP
    from open_clip.transformer import TextTransformer, text_global_pool

    if isinstance(model, CLIP):
        t, pool, eos, cls = model, model.text_pool_type, getattr(model, "text_eos_id", None), False
        ln, proj = model.ln_final, model.text_projection
    elif isinstance(model, CustomTextCLIP) and isinstance(model.text, TextTransformer):
        t, pool, eos, cls = model.text, model.text.pool_type, model.text.eos_id, model.text.cls_emb is not None
        ln, proj = model.text.ln_final, model.text.text_projection
    else:
        kind = type(getattr(model, "text", model)).__name__
        raise LayerError(
            f"{spec}: its text tower ({kind}) is not open_clip's transformer, so vlbias reads no layers of it; run "
            f"it without --layer"
        )
    if pool == "none" and not cls:
        raise LayerError(f"{spec}: its text tower pools no token (pool_type none); run it without --layer")

    def read(x, ids):
        pooled = x[:, -1] if cls else text_global_pool(x, ids, pool, eos_token_id=eos)
        if reading == "lens":
            pooled = _project(ln(pooled), proj)
        return pooled

    return Tower(
        blocks=t.transformer.resblocks,
        read=read,
        start=t.token_embedding,
        start_ids=lambda args, kwargs: args[0] if args else kwargs.get("input"),
        batch_first=getattr(t.transformer, "batch_first", True),
    )


def openclip_image_tower(model, reading: str, spec: str) -> Tower:
    from open_clip.transformer import VisionTransformer

    v = getattr(model, "visual", None)
    if not isinstance(v, VisionTransformer):
        raise LayerError(
            f"{spec}: its image tower ({type(v).__name__}) is not a vision transformer (a ResNet, ConvNeXt or timm "
            f"tower has no transformer blocks to read); run it without --layer, or choose a ViT model"
        )
    if reading == "raw" and v.attn_pool is not None:
        raise LayerError(
            f"{spec}: its image tower pools with attention, so a block has no raw token to read; use --reading lens"
        )

    def read(x, ids):
        if reading == "raw":
            return v._global_pool(x)[0]
        pooled, _ = v._pool(x)
        return pooled @ v.proj if v.proj is not None else pooled

    return Tower(
        blocks=v.transformer.resblocks,
        read=read,
        start=v,
        batch_first=getattr(v.transformer, "batch_first", True),
    )


def openclip_depths(model_cfg: dict[str, Any], spec: str) -> dict[str, int]:
    """Blocks per tower from an open_clip model config (``open_clip.get_model_config``), without the weights."""
    vision, text = model_cfg.get("vision_cfg") or {}, model_cfg.get("text_cfg") or {}
    if vision.get("timm_model_name") or not isinstance(vision.get("layers"), int):
        kind = vision.get("timm_model_name") or "ResNet"
        raise LayerError(
            f"{spec}: its image tower ({kind}) is not an open_clip vision transformer (no transformer blocks to "
            f"read); run it without --layer, or choose a ViT model"
        )
    if text.get("hf_model_name"):
        raise LayerError(
            f"{spec}: its text tower ({text['hf_model_name']}) is not open_clip's transformer, so vlbias reads no "
            f"layers of it; run it without --layer"
        )
    return {"image": int(vision["layers"]), "text": int(text.get("layers", 12))}


# ---------------------------------------------------------------------------------------------------- transformers
HF_TYPES = ("clip", "siglip")


def _hf_type(model, spec: str) -> str:
    kind = getattr(model.config, "model_type", "")
    if kind not in HF_TYPES:
        raise LayerError(
            f"{spec}: vlbias reads layers of Hugging Face CLIP and SigLIP models, not {kind or type(model).__name__}; "
            f"run it without --layer"
        )
    return kind


def hf_text_tower(model, reading: str, spec: str) -> Tower:
    import torch

    kind = _hf_type(model, spec)
    tm = model.text_model

    if kind == "clip":
        eos = tm.eos_token_id

        def position(ids):
            ids = ids.to(dtype=torch.int)
            return ids.argmax(dim=-1) if eos == 2 else (ids == eos).int().argmax(dim=-1)

        def read(x, ids):
            pooled = x[torch.arange(x.shape[0], device=x.device), position(ids).to(x.device)]
            return model.text_projection(tm.final_layer_norm(pooled)) if reading == "lens" else pooled

    else:  # siglip: the last position, through final_layer_norm and head

        def read(x, ids):
            pooled = x[:, -1]
            return tm.head(tm.final_layer_norm(pooled)) if reading == "lens" else pooled

    return Tower(
        blocks=tm.encoder.layers,
        read=read,
        start=tm,
        start_ids=lambda args, kwargs: kwargs.get("input_ids", args[0] if args else None),
    )


def hf_image_tower(model, reading: str, spec: str) -> Tower:
    kind = _hf_type(model, spec)
    vm = model.vision_model
    if kind == "clip":

        def read(x, ids):
            pooled = x[:, 0]
            return model.visual_projection(vm.post_layernorm(pooled)) if reading == "lens" else pooled

    else:
        if reading == "raw" or not getattr(vm, "use_head", False):
            raise LayerError(
                f"{spec}: its image tower has no class token (it pools with attention), so a block has no raw token "
                f"to read; use --reading lens"
            )

        def read(x, ids):
            return vm.head(vm.post_layernorm(x))

    return Tower(blocks=vm.encoder.layers, read=read, start=vm)


def hf_depths(config: Any, spec: str) -> dict[str, int]:
    kind = getattr(config, "model_type", "")
    if kind not in HF_TYPES:
        raise LayerError(
            f"{spec}: vlbias reads layers of Hugging Face CLIP and SigLIP models, not {kind or 'this model'}; run it "
            f"without --layer"
        )
    out = {}
    for modality, part in (("text", "text_config"), ("image", "vision_config")):
        sub = getattr(config, part, None)
        if sub is not None and getattr(sub, "num_hidden_layers", None):
            out[modality] = int(sub.num_hidden_layers)
    return out


def read_layers(tower: Tower, blocks: dict[int, int], n: int, run: Callable[[], Any]) -> dict[int, np.ndarray]:
    """Run the backend's own forward pass (``run``) with hooks on ``blocks``; the layers' vectors of its ``n`` rows."""
    import torch

    if not blocks:
        return {}
    with torch.inference_mode(), BlockReader(tower, blocks) as reader:
        run()
    return reader.vectors(n)
