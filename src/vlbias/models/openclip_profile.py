"""Architecture facts of open_clip models computed from their configs, without weights.

The model is built on PyTorch's ``meta`` device: every parameter has a shape but no storage, so even a
5-billion-parameter model builds in about a second and in no memory, and nothing is downloaded. Parameter counts
are exact. FLOPs are counted with :class:`torch.utils.flop_counter.FlopCounterMode` on a forward pass of meta
tensors (one image at the model's input size; one text of the model's context length), the same counter and inputs
as open_clip's own profiler (``open_clip_train/profiler.py``), so the figures match open_clip's published model
profile (``docs/model_profile.csv``): e.g. ViT-B-32 has 151.28M parameters (87.85M image, 63.43M text) and 8.82
image and 5.96 text GFLOPs.

Definitions: image parameters are the visual tower's; text parameters are everything else except the logit
scale and bias and CoCa's caption decoder (which embedding audits never run); ``gflops`` is the sum of one image
and one text encoding.

Text towers from Hugging Face (roberta, xlm-roberta, NLLB, mT5) need their config from the hub; offline they cannot
be built, and their text facts stay empty (the image facts are still computed from the vision tower alone).
"""

from __future__ import annotations

import contextlib
import logging
from functools import cache
from typing import Any

#: parameters that belong to neither tower
_NEITHER = ("logit_scale", "logit_bias", "text_decoder.")


@contextlib.contextmanager
def quiet_root_logging():
    """open_clip logs 'initialized randomly' on the root logger; that is the point of a random spec."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def tower_param_counts(model) -> tuple[int, int | None, int | None]:
    """(total, image, text) parameter counts of an open_clip model (loaded or on the meta device)."""
    total = image = text = 0
    has_visual = hasattr(model, "visual")
    for name, p in model.named_parameters():
        n = p.numel()
        total += n
        if name.startswith("visual."):
            image += n
        elif not name.startswith(_NEITHER):
            text += n
    if not has_visual:
        return total, None, None
    return total, image, text


def _describe(cfg: dict[str, Any]) -> dict[str, Any]:
    vision = cfg.get("vision_cfg", {}) or {}
    text = cfg.get("text_cfg", {}) or {}
    if vision.get("timm_model_name"):
        image_tower = f"timm:{vision['timm_model_name']}"
    elif isinstance(vision.get("layers"), (list, tuple)):
        image_tower = "modified_resnet"
    else:
        image_tower = "vit"
    size = vision.get("image_size")
    if isinstance(size, (list, tuple)):
        size = size[0]
    return {
        "image_tower": image_tower,
        "text_tower": f"hf:{text['hf_model_name']}" if text.get("hf_model_name") else "transformer",
        "image_size": size,
        "patch_size": vision.get("patch_size") if image_tower == "vit" else None,
        "embed_dim": cfg.get("embed_dim"),
    }


def _flops(fn, *args) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn(*args)
    return counter.get_total_flops() / 1e9


@cache
def architecture_facts(arch: str) -> dict[str, Any]:
    """Parameter counts, GFLOPs and tower descriptions of an open_clip architecture; unknown facts are None."""
    import open_clip
    import torch

    cfg = open_clip.get_model_config(arch)
    if cfg is None:
        raise KeyError(arch)
    facts: dict[str, Any] = {
        **_describe(cfg),
        "n_params": None,
        "n_params_image": None,
        "n_params_text": None,
        "gflops": None,
        "gflops_image": None,
        "gflops_text": None,
    }
    image_size = facts["image_size"] or 224
    with quiet_root_logging(), torch.device("meta"):
        try:
            model = open_clip.create_model(arch, pretrained=None, pretrained_text=False, device="meta")
        except Exception:  # noqa: BLE001 - e.g. a Hugging Face text tower whose config is not reachable
            model = None
        if model is not None:
            total, image, text = tower_param_counts(model)
            facts.update(n_params=total, n_params_image=image, n_params_text=text)
            visual = model.visual
            size = getattr(visual, "image_size", image_size)
            size = tuple(size[-2:]) if isinstance(size, (list, tuple)) else (size, size)
            facts["gflops_image"] = _flops(model.encode_image, torch.empty(1, 3, *size))
            ctx = getattr(model, "context_length", None) or (cfg.get("text_cfg") or {}).get("context_length", 77)
            facts["gflops_text"] = _flops(model.encode_text, torch.zeros(1, ctx, dtype=torch.long))
            facts["gflops"] = facts["gflops_image"] + facts["gflops_text"]
        else:
            visual = _vision_tower(cfg)
            if visual is not None:
                facts["n_params_image"] = sum(p.numel() for p in visual.parameters())
                size = getattr(visual, "image_size", image_size)
                size = tuple(size[-2:]) if isinstance(size, (list, tuple)) else (size, size)
                facts["gflops_image"] = _flops(visual, torch.empty(1, 3, *size))
    for k in ("gflops", "gflops_image", "gflops_text"):
        if facts[k] is not None:
            facts[k] = round(facts[k], 6)
    return facts


def _vision_tower(cfg: dict[str, Any]):
    """The vision tower alone (for models whose text tower cannot be built offline), or None."""
    try:
        from open_clip.model import _build_vision_tower

        return _build_vision_tower(cfg["embed_dim"], cfg["vision_cfg"], quick_gelu=cfg.get("quick_gelu", False))
    except Exception:  # noqa: BLE001 - a private open_clip helper; without it the image facts stay empty
        return None
