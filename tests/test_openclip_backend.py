"""open_clip backend on random-initialised architectures: the real code path with random weights."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import random_image
from vlbias.errors import WeightsUnavailableError
from vlbias.models import ImageRef, load_model

TEXTS = ["a photo of a doctor", "a photo of a nurse", "an orangutan", "", "x" * 500, "a photo of a doctor"]


def test_texts_unit_norm_order_and_duplicates(vitb32):
    v = vitb32.encode_texts(TEXTS)
    assert v.shape == (6, 512) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(v[0], v[5])  # same text, same vector
    assert not np.allclose(v[0], v[1])
    single = vitb32.encode_texts([TEXTS[2]])
    np.testing.assert_allclose(single[0], v[2], atol=1e-5)


def test_random_init_is_deterministic_across_loads(vitb32):
    again = load_model("openclip:ViT-B-32/random", cache=False, device="cpu")
    np.testing.assert_array_equal(again.encode_texts(TEXTS[:3]), vitb32.encode_texts(TEXTS[:3]))
    other_seed = load_model("openclip:ViT-B-32/random-1", cache=False, device="cpu")
    assert not np.allclose(other_seed.encode_texts(TEXTS[:1]), vitb32.encode_texts(TEXTS[:1]))


def test_batch_size_invariance_texts_and_images(image_dir):
    paths = sorted(image_dir.glob("*.jpg"))
    texts = [f"a photo of person number {i}" for i in range(70)]
    one = load_model("openclip:ViT-S-32-alt/random", cache=False, device="cpu", batch_size=1, num_workers=0)
    big = load_model("openclip:ViT-S-32-alt/random", cache=False, device="cpu", batch_size=64, num_workers=2)
    np.testing.assert_allclose(one.encode_texts(texts), big.encode_texts(texts), atol=2e-5)
    imgs = paths * 12  # 72 images: more than one batch of 64, through two worker processes
    np.testing.assert_allclose(one.encode_images(paths), big.encode_images(imgs)[: len(paths)], atol=2e-5)
    np.testing.assert_allclose(big.encode_images(imgs)[-len(paths) :], one.encode_images(paths), atol=2e-5)


def test_cached_read_equals_fresh_and_skips_the_model(tmp_path, image_dir, monkeypatch):
    paths = sorted(image_dir.glob("*.jpg"))
    fresh = load_model("openclip:ViT-S-32-alt/random", cache=False, device="cpu")
    expected_t, expected_i = fresh.encode_texts(TEXTS), fresh.encode_images(paths)

    first = load_model("openclip:ViT-S-32-alt/random", cache=tmp_path, device="cpu")
    np.testing.assert_array_equal(first.encode_texts(TEXTS), expected_t)
    np.testing.assert_array_equal(first.encode_images(paths), expected_i)

    second = load_model("openclip:ViT-S-32-alt/random", cache=tmp_path, device="cpu")

    def no_load():
        raise AssertionError("a fully cached rerun must not load the model")

    monkeypatch.setattr(second, "_load", no_load)
    np.testing.assert_array_equal(second.encode_texts(TEXTS), expected_t)
    np.testing.assert_array_equal(second.encode_images(list(reversed(paths))), expected_i[::-1])


def test_images_by_content_not_name(tmp_path, vitb32):
    a = tmp_path / "a.png"
    random_image(1).save(a)
    b = tmp_path / "copy_of_a.png"
    b.write_bytes(a.read_bytes())
    v = vitb32.encode_images([a, b, random_image(1)])
    np.testing.assert_allclose(v[0], v[1])
    np.testing.assert_allclose(v[0], v[2], atol=1e-5)  # PIL input: same pixels, same vector


def test_crop_is_part_of_the_stimulus(tmp_path, vitb32):
    p = tmp_path / "face.png"
    random_image(3, size=(120, 100)).save(p)
    full, cropped, again = vitb32.encode_images(
        [ImageRef(p), ImageRef(p, (10, 0, 110, 100)), ImageRef(p, (10, 0, 110, 100))]
    )
    assert not np.allclose(full, cropped)
    np.testing.assert_array_equal(cropped, again)
    from PIL import Image

    manual = vitb32.encode_images([Image.open(p).convert("RGB").crop((10, 0, 110, 100))])
    np.testing.assert_allclose(manual[0], cropped, atol=1e-5)


def test_checkpoint_file_gives_the_same_model(tmp_path, small_clip):
    import torch

    ckpt = tmp_path / "ckpt.pt"
    torch.save({"state_dict": small_clip._model.state_dict()}, ckpt)
    from_file = load_model(f"openclip:ViT-S-32-alt/{ckpt}", cache=False, device="cpu")
    np.testing.assert_allclose(from_file.encode_texts(TEXTS), small_clip.encode_texts(TEXTS), atol=1e-6)
    assert from_file.info.pretrained == str(ckpt)


def test_tag_with_local_weights_uses_the_tags_preprocessing(tmp_path):
    import torch

    from vlbias.models.backends.openclip import known_pairs

    src = load_model("openclip:ViT-B-16/random", cache=False, device="cpu").load()
    ckpt = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(src._model.state_dict(), ckpt)
    assert "datacomp_xl_s13b_b90k" in known_pairs()["ViT-B-16"]
    enc = load_model(f"openclip:ViT-B-16/datacomp_xl_s13b_b90k@{ckpt}", cache=False, device="cpu")
    info = enc.info
    assert info.pretrained == "datacomp_xl_s13b_b90k"
    np.testing.assert_allclose(enc.encode_texts(["a cat"]), src.encode_texts(["a cat"]), atol=1e-6)


def test_unreachable_weights_say_where_to_put_a_local_file():
    enc = load_model("openclip:ViT-B-32/laion2b_s34b_b79k", cache=False, device="cpu")
    with pytest.raises(WeightsUnavailableError) as exc:
        enc.encode_texts(["a"])
    msg = str(exc.value)
    assert "huggingface.co/laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in msg
    assert "openclip:ViT-B-32/laion2b_s34b_b79k@/path/to/open_clip_pytorch_model.bin" in msg
    assert "\n" not in msg


def test_info(vitb32):
    info = vitb32.info
    assert info.architecture == "ViT-B-32" and info.pretrained == "random"
    assert info.embed_dim == 512 and info.modalities == ("text", "image")
    assert info.n_params == info.n_params_image + info.n_params_text + 1  # + the logit scale, in neither tower
    assert 150e6 < info.n_params < 152e6
    assert info.preprocessing["size"] == [224, 224]
    assert info.logit_scale == pytest.approx(1 / 0.07, rel=1e-4)
    assert info.to_dict()["identity"] == vitb32.identity


def test_resnet_architecture(image_dir):
    enc = load_model("openclip:RN50/random", cache=False, device="cpu")
    v = enc.encode_images(sorted(image_dir.glob("*.jpg"))[:2])
    assert v.shape == (2, 1024)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-6)


def test_half_precision_needs_a_gpu():
    from vlbias.errors import VlbiasError

    enc = load_model("openclip:ViT-B-32/random", precision="fp16", device="cpu", cache=False)
    with pytest.raises(VlbiasError, match="needs a GPU"):
        enc.encode_texts(["a"])


HUB_CACHE_CHECK = """
import numpy as np
from vlbias.models import load_model
tag = load_model("openclip:RN50/openai", cache=False, device="cpu")
via_file = load_model("openclip:RN50/openai@{weights}", cache=False, device="cpu")
texts = ["a photo of a thief", "a photo of a person"]
np.testing.assert_array_equal(tag.encode_texts(texts), via_file.encode_texts(texts))
info = tag.info
assert info.pretrained == "openai", info
assert info.preprocessing["interpolation"] == "bicubic"
print("ok")
"""


def test_pretrained_tag_loads_from_the_local_hub_cache_offline(tmp_path):
    """The real tag path: weights found in the Hugging Face cache load with no network at all."""
    import subprocess
    import sys

    import torch

    src = load_model("openclip:RN50/random", cache=False, device="cpu").load()
    snap = tmp_path / "hub" / "models--timm--resnet50_clip.openai" / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    weights = snap / "open_clip_pytorch_model.bin"
    torch.save({k: v.half() for k, v in src._model.state_dict().items()}, weights)
    refs = snap.parent.parent / "refs"
    refs.mkdir()
    (refs / "main").write_text("0123abcd")
    env = {**__import__("os").environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", HUB_CACHE_CHECK.format(weights=weights)], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


# ---------------------------------------------------------------------------------------------- text padding cut
MIXED = [
    "",
    "a",
    "a photo of a doctor",
    "Ein Foto einer Ärztin, die lächelt",
    "a photo of a person who works as a nurse in a large hospital",
    "x " * 120,  # longer than the context: truncated, its end-of-text token at the last position
    "an orangutan",
    "a photo of someone",
]


def _padded(model, tokenizer, texts):
    """The reference: every text alone, padded to the full context length, through the model's own encode_text."""
    import torch

    with torch.inference_mode():
        v = np.concatenate([model.encode_text(tokenizer([t])).float().numpy() for t in texts])
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_cut_padding_gives_the_padded_vectors(vitb32, batch_size):
    """The text tower runs on batches cut after their last end-of-text token (the causal mask makes that the same
    model); every vector equals the fully padded one within 1e-6, whatever the batch it lands in."""
    from vlbias.models.backends.openclip import causal_text

    model = vitb32._model
    expected = _padded(model, vitb32._tokenizer, MIXED)
    lengths: list[int] = []
    real = model.transformer.forward

    def recording(x, attn_mask=None):
        lengths.append(x.shape[1])
        return real(x, attn_mask=attn_mask)

    vitb32.encode_texts(["a"])  # the first batch also checks the cut forward pass against encode_text
    rng = np.random.default_rng(batch_size)
    old = vitb32.batch_size
    vitb32.batch_size = batch_size
    model.transformer.forward = recording
    try:
        for order in (range(len(MIXED)), reversed(range(len(MIXED))), rng.permutation(len(MIXED))):
            order = list(order)
            got = vitb32.encode_texts([MIXED[i] for i in order])
            assert np.abs(got - expected[order]).max() <= 1e-6
    finally:
        vitb32.batch_size = old
        del model.transformer.forward
    assert causal_text(model) is not None
    # texts go in batches by length, each batch cut after its longest prompt ("" is 2 tokens, the truncated text 77)
    by_length = sorted(MIXED, key=len)
    tokens = vitb32._tokenizer(by_length).argmax(-1) + 1
    cuts = [int(tokens[i : i + batch_size].max()) for i in range(0, len(MIXED), batch_size)]
    assert lengths == cuts * 3
    assert cuts[0] == {1: 2, 3: 5, 64: 77}[batch_size] and cuts[-1] == 77


def _tiny(kind: str):
    """A small open_clip model of each text-tower family (random weights)."""
    import torch
    from open_clip.coca_model import CoCa
    from open_clip.model import CLIP, CustomTextCLIP

    vision = dict(layers=1, width=64, patch_size=16, image_size=32, head_width=32)
    text = dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=2)
    torch.manual_seed(0)
    if kind == "clip":
        return CLIP(32, vision, text).eval()
    if kind == "clip-eos":  # MetaCLIP 2 worldwide: pooled at the first end-of-text token
        return CLIP(32, vision, {**text, "pool_type": "eos", "eos_id": 49407}).eval()
    if kind == "custom-text":  # EVA, PE-Core
        return CustomTextCLIP(32, vision, text).eval()
    if kind == "siglip":  # SigLIP, CLIPA: bidirectional, read at the last position
        return CustomTextCLIP(32, vision, {**text, "no_causal_mask": True, "pool_type": "last"}).eval()
    if kind == "bidirectional-argmax":  # MobileCLIP
        return CustomTextCLIP(32, vision, {**text, "no_causal_mask": True}).eval()
    if kind == "coca":  # class token appended after the padding
        multimodal = dict(width=64, heads=2, layers=1, context_length=76, vocab_size=49408)
        return CoCa(32, multimodal, {**text, "embed_cls": True, "context_length": 76}, vision).eval()
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind, cut",
    [
        ("clip", True),
        ("clip-eos", True),
        ("custom-text", True),
        ("siglip", False),
        ("bidirectional-argmax", False),
        ("coca", False),
    ],
)
def test_padding_is_cut_only_where_the_result_is_the_same(kind, cut):
    """Causal towers pooled at the end-of-text token are cut and give the padded vectors within 1e-6; bidirectional
    towers (whose vectors do change with the padding: checked) and CoCa run padded, as trained."""
    import open_clip
    import torch

    from vlbias.models.backends.openclip import causal_text, checked_causal_text

    model = _tiny(kind)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    tokens = tokenizer(MIXED[:5], context_length=76 if kind == "coca" else 77)
    found = checked_causal_text(model, tokens[:1])
    assert (found is not None) == cut
    if kind == "coca":
        return
    with torch.inference_mode():
        padded = model.encode_text(tokens)
        if cut:
            assert found.cut_length(tokens) == int(tokens.argmax(-1).max()) + 1 < 77
            assert (found.encode(tokens) - padded).abs().max().item() <= 1e-6
        else:  # why these are not cut: the same tower on the cut batch gives other vectors
            assert causal_text(model) is None
            assert (model.encode_text(tokens[:, :16]) - padded).abs().max().item() > 1e-3


def test_a_forward_pass_unlike_encode_text_is_not_used():
    """The cut forward pass is checked against the model's own encode_text; a model whose encode_text does more
    (a future open_clip, a subclass) runs padded."""
    import open_clip

    from vlbias.models.backends.openclip import checked_causal_text

    model = _tiny("clip")
    probe = open_clip.get_tokenizer("ViT-B-32")(["a photo"])
    assert checked_causal_text(model, probe) is not None
    real = model.encode_text
    model.encode_text = lambda text, normalize=False: real(text) * 2  # noqa: ARG005
    assert checked_causal_text(model, probe) is None
