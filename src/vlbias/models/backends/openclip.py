"""OpenCLIP backend.

Specs:

- ``openclip:ARCH/TAG``: a pretrained pair of ``open_clip.list_pretrained()``, e.g.
  ``openclip:ViT-B-32/laion2b_s34b_b79k``, with the preprocessing registered for that tag.
- ``openclip:ARCH/random`` (or ``random-SEED``): the architecture with seeded random weights. Same code path as a
  pretrained model; used by the tests and for calibrating audits against an untrained network.
- ``openclip:ARCH/PATH``: a checkpoint file, with the architecture's default preprocessing.
- ``openclip:ARCH/TAG@PATH``: a local copy of a tag's weights (for machines without internet), with the tag's
  preprocessing.
- ``openclip:hf-hub:ORG/REPO`` and ``openclip:local-dir:PATH``: a model with its own ``open_clip_config.json``.

The table of known pairs ships with vlbias (``data/models/openclip_pretrained.csv``, which is also the model
catalogue of :mod:`vlbias.models.catalogue`) so specs are validated without importing open_clip; pairs that a newer
installed open_clip knows are accepted too. :func:`write_openclip_catalogue` rebuilds that file from the installed
open_clip (``vlbias models --write-catalogue``).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vlbias.cache.fingerprints import file_fingerprint, tree_fingerprint
from vlbias.errors import SpecError, VlbiasError, WeightsUnavailableError, closest, did_you_mean
from vlbias.models import catalogue, hub
from vlbias.models.base import Encoder
from vlbias.models.openclip_profile import architecture_facts, quiet_root_logging, tower_param_counts
from vlbias.utils.io import atomic_path

if TYPE_CHECKING:
    import pandas as pd

DESCRIPTION = (
    "OpenCLIP dual encoders: openclip:ARCH/TAG (pretrained tag, random, checkpoint path or TAG@PATH), "
    "openclip:hf-hub:ORG/REPO, openclip:local-dir:PATH"
)
TABLE = "openclip_pretrained.csv"
_RANDOM = re.compile(r"^random(?:-(\d+))?$")
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


@lru_cache(maxsize=1)
def pretrained_table() -> list[dict[str, str]]:
    """The known (architecture, tag) pairs with their download locations, as shipped with vlbias."""
    text = resources.files("vlbias.data.models").joinpath(TABLE).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def known_pairs() -> dict[str, dict[str, dict[str, str]]]:
    pairs: dict[str, dict[str, dict[str, str]]] = {}
    for row in pretrained_table():
        pairs.setdefault(row["architecture"], {})[row["tag"]] = row
    return pairs


def weights_location(row: dict[str, str]) -> str:
    """Where a tag's weights are downloaded from (open_clip prefers the Hugging Face hub over the URL)."""
    if row.get("hf_hub"):
        repo, filename = os.path.split(row["hf_hub"])  # 'org/name/' means the default file name
        return f"https://huggingface.co/{repo}/resolve/main/{filename or 'open_clip_pytorch_model.bin'}"
    return row.get("url", "")


def _pkg_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "missing"


def _cached_weights(cfg: dict) -> Path | None:
    """A tag's weights file if it is already on this machine (hub cache or open_clip's URL cache)."""
    if cfg.get("hf_hub"):
        repo, filename = os.path.split(cfg["hf_hub"])
        filename = filename or "open_clip_pytorch_model.bin"
        stem = filename.rsplit(".", 1)[0]
        candidates = [filename, f"{stem}.safetensors"]
        if filename == "open_clip_pytorch_model.bin":
            candidates.append("open_clip_model.safetensors")
        for name in candidates:
            hit = hub.cached_file(repo, name)
            if hit is not None:
                return hit
    if cfg.get("url"):
        local = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(cfg["url"])
        if local.is_file():
            return local
    return None


def _installed_archs() -> list[str]:
    import open_clip

    return open_clip.list_models()


@lru_cache(maxsize=1)
def _config_file_archs() -> frozenset[str]:
    """Architectures of the installed open_clip's bundled config files, found without importing it (or torch)."""
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    folder = Path(list(spec.submodule_search_locations)[0]) / "model_configs"
    return frozenset(p.stem for p in folder.glob("*.json"))


class Backend(Encoder):
    def _parse(self) -> None:
        target = self.spec.target
        self.arch: str | None = None
        self.tag: str | None = None
        self.path: Path | None = None
        self.seed = 0
        if target.startswith(("hf-hub:", "local-dir:")):
            self.kind = target.split(":", 1)[0]
            self.model_name = target
            if self.kind == "local-dir":
                self.path = Path(target.split(":", 1)[1]).expanduser()
                if not (self.path / "open_clip_config.json").is_file():
                    raise SpecError(
                        f"{self.spec}: no open_clip_config.json in {self.path}; local-dir: needs a folder with "
                        f"open_clip_config.json and the weights"
                    )
            return
        arch, sep, tag = target.partition("/")
        if not sep or not tag:
            raise SpecError(
                f"model spec {self.spec} names no weights; write openclip:{arch}/TAG with TAG a pretrained tag "
                f"(see `vlbias models`), 'random', or a checkpoint path"
            )
        self.arch, self.model_name = arch, arch
        self._check_arch(arch, tag)
        m = _RANDOM.match(tag)
        if m:
            self.kind, self.seed = "random", int(m.group(1) or 0)
            return
        if tag.startswith(("hf-hub:", "local-dir:")):
            self.kind, self.model_name = tag.split(":", 1)[0], tag
            return
        if "@" in tag and not Path(tag).exists():
            tag, _, file = tag.partition("@")
            self._check_tag(arch, tag)
            self.kind, self.tag, self.path = "tag_file", tag, Path(file).expanduser()
            if not self.path.is_file():
                raise SpecError(f"{self.spec}: weights file not found: {self.path}")
            return
        if tag in known_pairs().get(arch, {}):
            self.kind, self.tag = "tag", tag
            return
        looks_like_path = "/" in tag or os.sep in tag or tag.lower().endswith(_WEIGHT_SUFFIXES)
        if looks_like_path or Path(tag).exists():
            self.kind, self.path = "file", Path(tag).expanduser()
            if not self.path.is_file():
                raise SpecError(f"{self.spec}: checkpoint file not found: {self.path}; check the path")
            return
        self._check_tag(arch, tag)
        self.kind, self.tag = "tag", tag

    def _check_arch(self, arch: str, tag: str) -> None:
        if arch in known_pairs() or arch in _config_file_archs():
            return
        archs = _installed_archs()
        if arch not in archs:
            close = closest(arch, archs)
            close.sort(key=lambda a: tag not in known_pairs().get(a, {}))  # those with the tag first
            hint = did_you_mean(close) or "see `vlbias models` for the known ones"
            raise SpecError(f"unknown open_clip architecture {arch!r} in {self.spec}; {hint}")

    def _check_tag(self, arch: str, tag: str) -> None:
        tags = set(known_pairs().get(arch, {}))
        if tag in tags:
            return
        import open_clip

        tags |= set(open_clip.list_pretrained_tags_by_model(arch))
        if tag in tags:
            return
        close = closest(tag, tags)
        if close:
            hint = did_you_mean([f"openclip:{arch}/{t}" for t in close])
        elif tags:
            hint = f"known tags: {', '.join(sorted(tags))}"
        else:
            hint = "it has none (use 'random' or a checkpoint path)"
        elsewhere = [a for a, t in known_pairs().items() if tag in t]
        if elsewhere:
            hint += f" ({tag} is a tag of {', '.join(elsewhere)})"
        raise SpecError(f"unknown pretrained tag {tag!r} for {arch} in {self.spec}; {hint}")

    def random_copies(self, n: int) -> list[str]:
        """``openclip:ARCH/random-1`` ... (seeds 1, 2, ..., this model's own seed left out) for a model named by its
        architecture; [] for hf-hub: and local-dir: models."""
        if not self.arch:
            return []
        own = self.seed if self.kind == "random" else None
        seeds = [k for k in range(1, n + 2) if k != own][:n]
        return [f"openclip:{self.arch}/random-{k}" for k in seeds]

    # -------------------------------------------------------------- identity
    def _identity_payload(self) -> dict[str, Any]:
        p: dict[str, Any] = {"kind": self.kind, "precision": self.precision}
        if self.kind == "tag":
            p.update(arch=self.arch, tag=self.tag)
        elif self.kind == "tag_file":
            p.update(arch=self.arch, tag=self.tag, weights=file_fingerprint(self.path, self.memo_root))
        elif self.kind == "random":
            # random weights depend on the library versions that initialise them
            p.update(
                arch=self.arch, seed=self.seed, open_clip=_pkg_version("open_clip_torch"), torch=_pkg_version("torch")
            )
        elif self.kind == "file":
            p.update(arch=self.arch, weights=file_fingerprint(self.path, self.memo_root))
        elif self.kind == "local-dir":
            p.update(folder=tree_fingerprint(self.path, self.memo_root))
        else:  # hf-hub
            p.update(model=self.model_name)
        return p

    # -------------------------------------------------------------- loading
    def _tag_row(self) -> dict[str, str]:
        row = known_pairs().get(self.arch, {}).get(self.tag)
        if row:
            return row
        import open_clip

        cfg = open_clip.get_pretrained_cfg(self.arch, self.tag)
        return {"hf_hub": cfg.get("hf_hub", ""), "url": cfg.get("url", "")}

    def _unavailable(self, reason: str) -> WeightsUnavailableError:
        where = weights_location(self._tag_row())
        filename = where.rsplit("/", 1)[-1] or "the checkpoint"
        return WeightsUnavailableError(
            f"cannot get the weights of {self.spec} from {where} ({reason}): download {filename} on a machine "
            f"with internet and use --model openclip:{self.arch}/{self.tag}@/path/to/{filename}, or copy a "
            f"Hugging Face cache that holds it to $HF_HOME"
        )

    def prefetch(self) -> Path | None:
        """Download a tag's weights if they are not local yet; returns the local weights file."""
        if self.kind != "tag":
            return self.path
        import open_clip

        cfg = open_clip.get_pretrained_cfg(self.arch, self.tag)
        if not cfg:
            raise SpecError(
                f"the installed open_clip ({_pkg_version('open_clip_torch')}) does not know {self.arch}/{self.tag}; "
                f"upgrade open_clip_torch"
            )
        hub.quiet()
        local = _cached_weights(cfg)
        if local is not None:
            return local
        source_up = hub.reachable() if cfg.get("hf_hub") else hub.url_reachable(cfg.get("url", ""))
        if not source_up:
            raise self._unavailable("offline: the download server cannot be reached")
        try:
            return Path(open_clip.download_pretrained(cfg))
        except Exception as e:  # noqa: BLE001 - any download failure means the weights are unreachable
            raise self._unavailable(f"download failed: {type(e).__name__}") from None

    def _load(self) -> None:
        import open_clip
        import torch

        kw: dict[str, Any] = {"precision": self.precision, "device": self.device}
        try:
            if self.kind in ("tag", "tag_file"):
                # a tag's weights always load from a local file, with the tag's preprocessing and activation
                weights = self.prefetch() if self.kind == "tag" else self.path
                cfg = open_clip.get_pretrained_cfg(self.arch, self.tag)
                model, _, preprocess = open_clip.create_model_and_transforms(
                    self.arch,
                    pretrained=str(weights),
                    force_quick_gelu=bool(cfg.get("quick_gelu", False)),
                    image_mean=cfg.get("mean"),
                    image_std=cfg.get("std"),
                    image_interpolation=cfg.get("interpolation"),
                    image_resize_mode=cfg.get("resize_mode"),
                    **kw,
                )
            elif self.kind == "random":
                with torch.random.fork_rng(devices=[]), quiet_root_logging():
                    torch.manual_seed(self.seed)
                    model, _, preprocess = open_clip.create_model_and_transforms(
                        self.arch, pretrained=None, pretrained_text=False, **kw
                    )
            elif self.kind == "file":
                model, _, preprocess = open_clip.create_model_and_transforms(self.arch, pretrained=str(self.path), **kw)
            else:
                if self.kind == "hf-hub" and not hub.reachable():
                    repo = self.model_name.split(":", 1)[1]
                    snapshot = hub.cached_snapshot(repo)
                    if snapshot is None:
                        raise WeightsUnavailableError(
                            f"cannot download {self.spec} (offline): download the repository {repo} on a machine "
                            f"with internet and use openclip:local-dir:PATH"
                        )
                    self.model_name = f"local-dir:{snapshot}"
                model, _, preprocess = open_clip.create_model_and_transforms(self.model_name, **kw)
            tokenizer = open_clip.get_tokenizer(self.model_name)
        except (WeightsUnavailableError, SpecError):
            raise
        except Exception as e:  # noqa: BLE001
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            if self.kind in ("file", "tag_file", "tag"):
                raise WeightsUnavailableError(
                    f"cannot load the weights of {self.spec} ({msg[:200]}); check that the file holds weights of "
                    f"this architecture"
                ) from None
            raise WeightsUnavailableError(f"cannot load {self.spec} ({msg[:200]})") from None
        model.eval()
        self._model = model
        self._preprocess = preprocess
        self._tokenizer = tokenizer
        self._input_dtype = open_clip.get_input_dtype(self.precision)

    def _info(self) -> dict[str, Any]:
        import open_clip

        model = self._model
        visual = getattr(model, "visual", None)
        n_total, n_image, n_text = tower_param_counts(model)
        scale = getattr(model, "logit_scale", None)
        bias = getattr(model, "logit_bias", None)
        pre = open_clip.get_model_preprocess_cfg(model)
        embed_dim = getattr(visual, "output_dim", None)
        if embed_dim is None:
            embed_dim = int(self._embed_texts(["a"]).shape[1])
        return {
            "architecture": self.arch or self.model_name,
            "pretrained": self.tag or (str(self.path) if self.path else ("random" if self.kind == "random" else None)),
            "embed_dim": int(embed_dim),
            "n_params": int(n_total),
            "n_params_image": int(n_image) if n_image is not None else None,
            "n_params_text": int(n_text) if n_text is not None else None,
            "preprocessing": {k: (list(v) if isinstance(v, tuple) else v) for k, v in pre.items()},
            "logit_scale": float(scale.exp().item()) if scale is not None else None,
            "logit_bias": float(bias.item()) if bias is not None else None,
            "extra": {
                "open_clip": _pkg_version("open_clip_torch"),
                "kind": self.kind,
                **({"seed": self.seed} if self.kind == "random" else {}),
            },
        }

    # -------------------------------------------------------------- encoding
    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        tokens = self._tokenizer(texts).to(self.device)
        with torch.inference_mode():
            if "_causal_text" not in self.__dict__:
                self._causal_text = checked_causal_text(self._model, tokens[:1])
            if self._causal_text is not None:
                feats = self._causal_text.encode(tokens)
            else:
                feats = self._model.encode_text(tokens)
        return feats.float().cpu().numpy()

    def _image_preprocess(self):
        return self._preprocess

    def _embed_images(self, batch) -> np.ndarray:
        import torch

        batch = batch.to(self.device, dtype=self._input_dtype, non_blocking=True)
        with torch.inference_mode():
            feats = self._model.encode_image(batch)
        return feats.float().cpu().numpy()

    # -------------------------------------------------------------- layers (vlbias.models.layers)
    def tower_depths(self) -> dict[str, int]:
        import json

        import open_clip

        from vlbias.models.backends._layer_hooks import openclip_depths

        if self.kind == "local-dir":
            cfg = json.loads((self.path / "open_clip_config.json").read_text(encoding="utf-8")).get("model_cfg", {})
        elif self.arch is not None:
            cfg = open_clip.get_model_config(self.arch) or {}
        else:  # an hf-hub model: its config comes with its weights
            self.load()
            visual, text = getattr(self._model, "visual", None), getattr(self._model, "text", self._model)
            cfg = {
                "vision_cfg": {"layers": len(visual.transformer.resblocks)} if hasattr(visual, "transformer") else {},
                "text_cfg": {"layers": len(text.transformer.resblocks)} if hasattr(text, "transformer") else {},
            }
        return openclip_depths(cfg, str(self.spec))

    def _embed_text_layers(self, texts: list[str], blocks: dict[int, int], reading: str) -> dict[int, np.ndarray]:
        from vlbias.models.backends._layer_hooks import openclip_text_tower, read_layers

        tower = openclip_text_tower(self._model, reading, str(self.spec))
        return read_layers(tower, blocks, len(texts), lambda: self._embed_texts(texts))

    def _embed_image_layers(self, batch, blocks: dict[int, int], reading: str) -> dict[int, np.ndarray]:
        from vlbias.models.backends._layer_hooks import openclip_image_tower, read_layers

        tower = openclip_image_tower(self._model, reading, str(self.spec))
        return read_layers(tower, blocks, len(batch), lambda: self._embed_images(batch))


# ---------------------------------------------------------------------------------------------- text padding
@dataclass(frozen=True)
class CausalText:
    """A causal open_clip text tower, run on token batches cut after their last pooled token.

    open_clip pads every prompt to the context length (77 tokens for most models; the standard battery's longest
    prompt has 12). In a tower with a causal attention mask the output at position ``p`` depends on tokens ``0..p``
    only, and with ``argmax`` or ``eos`` pooling the embedding is the output at the prompt's end-of-text token. So
    the tokens after the batch's last end-of-text token cannot change any row's embedding: :meth:`encode` cuts them
    off, which is mathematically the same model. In floating point, the matrix products of a shorter sequence may
    round differently; the vectors agree with the padded ones to about 1e-7 per coordinate in fp32 (tested to 1e-6).

    ``tower`` holds ``token_embedding``, ``positional_embedding``, ``transformer``, ``attn_mask``, ``ln_final`` and
    ``text_projection``: the model itself for ``open_clip.CLIP``, ``model.text`` for a ``CustomTextCLIP`` with an
    open_clip ``TextTransformer``. The forward pass is ``encode_text``'s, with the sequence cut.
    """

    tower: Any = field(repr=False)
    pool: str
    eos_id: int | None

    def cut_length(self, tokens) -> int:
        """One past the last position any row of the batch is pooled at."""
        if self.pool == "argmax":
            pooled = tokens.argmax(dim=-1)  # the end-of-text token has the highest id
        else:
            pooled = (tokens == self.eos_id).int().argmax(dim=-1)
        return int(pooled.max()) + 1

    def encode(self, tokens, length: int | None = None):
        import torch
        from open_clip.transformer import text_global_pool

        t = self.tower
        n = self.cut_length(tokens) if length is None else length
        tokens = tokens[:, :n]
        cast_dtype = t.transformer.get_cast_dtype()
        x = t.token_embedding(tokens).to(cast_dtype)
        x = x + t.positional_embedding[:n].to(cast_dtype)
        x = t.transformer(x, attn_mask=t.attn_mask[:n, :n])
        x = t.ln_final(x)
        x = text_global_pool(x, tokens, self.pool, eos_token_id=self.eos_id)
        if t.text_projection is not None:
            x = t.text_projection(x) if isinstance(t.text_projection, torch.nn.Linear) else x @ t.text_projection
        return x


def causal_text(model) -> CausalText | None:
    """The model's text tower as a :class:`CausalText` if cutting its padding leaves the embeddings unchanged.

    That holds for ``open_clip.CLIP`` and for a ``CustomTextCLIP`` whose text tower is open_clip's
    ``TextTransformer`` without an appended class token, when the attention is causal and the pooling reads the
    end-of-text token (``argmax`` or ``eos``): the ViT, ResNet, ConvNeXt, EVA and PE-Core models, and the MetaCLIP 2
    worldwide ones. It does not hold, and the text runs padded as the model was trained, for bidirectional towers
    (SigLIP, CLIPA, MobileCLIP: every output sees the padding, and SigLIP and CLIPA read the last position), CoCa
    (its class token is appended after the padding) and Hugging Face text towers (roberta, XLM-R, NLLB).
    """
    from open_clip.model import CLIP, CustomTextCLIP
    from open_clip.transformer import TextTransformer

    if isinstance(model, CLIP) and type(model).encode_text is CLIP.encode_text:
        tower, pool, eos_id = model, model.text_pool_type, getattr(model, "text_eos_id", None)
    elif (
        isinstance(model, CustomTextCLIP)
        and type(model).encode_text is CustomTextCLIP.encode_text
        and type(model.text) is TextTransformer
        and model.text.cls_emb is None
        and not model.text.use_pad_mask
        and not model.text.output_tokens
    ):
        tower, pool, eos_id = model.text, model.text.pool_type, model.text.eos_id
    else:
        return None
    if getattr(tower, "attn_mask", None) is None or pool not in ("argmax", "eos"):
        return None
    if pool == "eos" and eos_id is None:
        return None
    return CausalText(tower, pool, eos_id)


def checked_causal_text(model, probe) -> CausalText | None:
    """:func:`causal_text`, kept only if its forward pass at full length equals ``model.encode_text`` bit for bit on
    ``probe`` (a batch of tokens): a future open_clip whose ``encode_text`` does more than this one is run padded."""
    causal = causal_text(model)
    if causal is None:
        return None
    try:
        same = bool((causal.encode(probe, length=probe.shape[1]) == model.encode_text(probe)).all())
    except Exception:  # noqa: BLE001 - any mismatch of internals means: run the model's own encode_text
        return None
    return causal if same else None


# ---------------------------------------------------------------------------------------------------- catalogue
def build_openclip_catalogue(pairs: Sequence[tuple[str, str]] | None = None, on_arch=None) -> pd.DataFrame:
    """Catalogue rows for open_clip pairs (default: all of ``open_clip.list_pretrained()``), weights untouched.
    ``on_arch(arch)`` is called as each pair's row is done (for a progress bar)."""
    import open_clip
    import pandas as pd

    all_pairs = [tuple(p) for p in open_clip.list_pretrained()]
    pairs = all_pairs if pairs is None else [tuple(p) for p in pairs]
    locations: dict[tuple[str, str], str] = {}
    for arch, tag in all_pairs:
        cfg = open_clip.get_pretrained_cfg(arch, tag)
        locations[(arch, tag)] = f"{cfg.get('hf_hub', '')}|{cfg.get('url', '')}"
    rows = []
    for arch, tag in pairs:
        cfg = open_clip.get_pretrained_cfg(arch, tag)
        if not cfg:
            raise VlbiasError(f"the installed open_clip does not know the pair {arch}/{tag}")
        duplicate = None
        if arch.endswith("-quickgelu"):
            base = arch[: -len("-quickgelu")]
            if locations.get((base, tag)) == locations[(arch, tag)]:
                duplicate = f"openclip:{base}/{tag}"
        rows.append(
            {
                "spec": f"openclip:{arch}/{tag}",
                "backend": "openclip",
                "architecture": arch,
                "tag": tag,
                "architecture_family": catalogue.architecture_family(arch),
                **architecture_facts(arch),
                **catalogue.tag_facts(arch, tag),
                "quick_gelu": bool(cfg.get("quick_gelu", False)),
                "duplicate_of": duplicate,
                "hf_hub": cfg.get("hf_hub") or None,
                "url": cfg.get("url") or None,
            }
        )
        if on_arch is not None:
            on_arch(arch)
    df = pd.DataFrame(rows, columns=list(catalogue.COLUMNS))
    return catalogue.coerce(df.astype("string"), "open_clip").reset_index(drop=True)


def write_openclip_catalogue(path: str | os.PathLike, on_arch=None) -> int:
    """Regenerate the shipped catalogue file (the table of known pairs) from the installed open_clip; returns the
    number of rows."""
    df = build_openclip_catalogue(on_arch=on_arch)
    with atomic_path(path) as tmp:
        tmp.write_text(catalogue.to_csv_text(df), encoding="utf-8")
    catalogue.shipped_catalogue.cache_clear()
    pretrained_table.cache_clear()
    return len(df)
