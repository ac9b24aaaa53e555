"""Layer features (vlbias.models.layers): every hooked layer equals a forward pass written here from the model's own
modules that stops at that block, the last layer's lens reading is the model's embedding, one pass fills every
layer's cache, and what is not supported is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import tiny_hf_clip, write_images
from vlbias.errors import LayerError, OptionError
from vlbias.models import load_layers, load_model
from vlbias.models.layers import LayerEncoder, Layers, block_of, layer_encoders, layer_identity, layer_numbers

TEXTS = ["a photo of a doctor", "a nurse", "an engineer at work", "x"]


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------- open_clip ViT-B-32
def _openclip_manual(model, tokens, pixels) -> dict[int, list[np.ndarray]]:
    """Block -> text and image vectors (raw, lens) of a forward pass written from the modules that stops after that
    block (the passes stopping at each block share their prefix, so one loop gives them all)."""
    import torch

    out: dict[int, list] = {}
    with torch.inference_mode():
        # text: token + position embedding, the blocks with the causal mask, the end-of-text token
        x = model.token_embedding(tokens) + model.positional_embedding[: tokens.shape[1]]
        text_first = getattr(model.transformer, "batch_first", True)
        x = x if text_first else x.transpose(0, 1)
        mask = model.attn_mask[: tokens.shape[1], : tokens.shape[1]]
        # image: patches, class token, positions, ln_pre, the blocks, the class token
        v = model.visual
        y = v.conv1(pixels).reshape(len(pixels), v.conv1.out_channels, -1).permute(0, 2, 1)
        cls = v.class_embedding.expand(len(pixels), 1, -1)
        y = v.ln_pre(torch.cat([cls, y], dim=1) + v.positional_embedding)
        image_first = getattr(v.transformer, "batch_first", True)
        y = y if image_first else y.transpose(0, 1)
        for depth, (t_block, i_block) in enumerate(zip(model.transformer.resblocks, v.transformer.resblocks), 1):
            x, y = t_block(x, attn_mask=mask), i_block(y)
            xt = x if text_first else x.transpose(0, 1)
            t_raw = xt[torch.arange(len(tokens)), tokens.argmax(dim=-1)]
            i_raw = (y if image_first else y.transpose(0, 1))[:, 0]
            t_lens, i_lens = model.ln_final(t_raw) @ model.text_projection, v.ln_post(i_raw) @ v.proj
            out[depth] = [_unit(a.numpy()) for a in (t_raw, t_lens, i_raw, i_lens)]
    return out


@pytest.fixture(scope="module")
def vitb32_layers(vitb32, tmp_path_factory):
    import torch
    from PIL import Image

    images = write_images(tmp_path_factory.mktemp("layer-images"), n=3)
    lens = layer_encoders(vitb32, Layers.parse("all"))
    raw = layer_encoders(vitb32, Layers.parse("all", "raw"))
    got = {
        "lens": ({e.layer: e.encode_texts(TEXTS) for e in lens}, {e.layer: e.encode_images(images) for e in lens}),
        "raw": ({e.layer: e.encode_texts(TEXTS) for e in raw}, {e.layer: e.encode_images(images) for e in raw}),
    }
    model = vitb32._model
    tokens = vitb32._tokenizer(TEXTS)
    pixels = torch.stack([vitb32._preprocess(Image.open(p).convert("RGB")) for p in images])
    return vitb32, images, got, model, tokens, pixels


def test_openclip_every_layer_equals_a_forward_pass_that_stops_at_its_block(vitb32_layers):
    vitb32, _, got, model, tokens, pixels = vitb32_layers
    assert sorted(got["lens"][0]) == list(range(1, 13))
    manual = _openclip_manual(model, tokens, pixels)
    assert sorted(manual) == list(range(1, 13))
    for depth in range(1, 13):
        t_raw, t_lens, i_raw, i_lens = manual[depth]
        np.testing.assert_allclose(got["raw"][0][depth], t_raw, atol=2e-5)
        np.testing.assert_allclose(got["lens"][0][depth], t_lens, atol=2e-5)
        np.testing.assert_allclose(got["raw"][1][depth], i_raw, atol=2e-5)
        np.testing.assert_allclose(got["lens"][1][depth], i_lens, atol=2e-5)
    # raw vectors are the towers' widths; lens vectors the embedding's
    assert got["raw"][0][5].shape == (4, 512) and got["raw"][1][5].shape == (3, 768)
    assert got["lens"][1][5].shape == (3, 512)
    # different blocks read different vectors
    assert not np.allclose(got["lens"][0][3], got["lens"][0][4])


def test_openclip_last_layer_lens_is_the_model_embedding(vitb32_layers):
    vitb32, images, got, *_ = vitb32_layers
    np.testing.assert_allclose(got["lens"][0][12], vitb32.encode_texts(TEXTS), atol=1e-6)
    np.testing.assert_allclose(got["lens"][1][12], vitb32.encode_images(images), atol=1e-6)
    last = layer_encoders(vitb32, Layers.parse(-1))[0]
    np.testing.assert_allclose(last.encode_texts(TEXTS), vitb32.encode_texts(TEXTS), atol=1e-6)


# ---------------------------------------------------------------------------------------------- Hugging Face CLIP
def test_hf_clip_every_layer_equals_a_forward_pass_that_stops_at_its_block(tmp_path):
    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    folder = tiny_hf_clip(tmp_path / "tiny")
    images = write_images(tmp_path / "im", n=3)
    spec = f"hf:{folder}"
    base = load_model(spec, cache=False, device="cpu")
    lens = load_layers(spec, layer="all", cache=False, device="cpu")
    raw = load_layers(spec, layer="all", reading="raw", cache=False, device="cpu")
    assert [e.layer for e in lens] == [1, 2]
    model = CLIPModel.from_pretrained(folder).eval()
    processor = CLIPProcessor.from_pretrained(folder)
    pixels = processor(images=[Image.open(p).convert("RGB") for p in images], return_tensors="pt")["pixel_values"]
    tm, vm = model.text_model, model.vision_model
    for depth in (1, 2):
        with torch.inference_mode():
            t_raw, t_lens = [], []
            for text in TEXTS:  # one text at a time: no padding, the causal mask alone
                ids = processor.tokenizer([text], return_tensors="pt")["input_ids"]
                h = tm.embeddings(input_ids=ids)
                n = ids.shape[1]
                mask = torch.full((n, n), torch.finfo(h.dtype).min).triu(1)[None, None]
                for layer in tm.encoder.layers[:depth]:
                    h = layer(h, mask)
                    h = h[0] if isinstance(h, tuple) else h
                tok = h[0, ids[0].argmax()]
                t_raw.append(tok.numpy())
                t_lens.append(model.text_projection(tm.final_layer_norm(tok)).numpy())
            g = vm.pre_layrnorm(vm.embeddings(pixels))
            for layer in vm.encoder.layers[:depth]:
                g = layer(g, None)
                g = g[0] if isinstance(g, tuple) else g
            i_raw, i_lens = g[:, 0], model.visual_projection(vm.post_layernorm(g[:, 0]))
        np.testing.assert_allclose(raw[depth - 1].encode_texts(TEXTS), _unit(t_raw), atol=2e-5)
        np.testing.assert_allclose(lens[depth - 1].encode_texts(TEXTS), _unit(t_lens), atol=2e-5)
        np.testing.assert_allclose(raw[depth - 1].encode_images(images), _unit(i_raw.numpy()), atol=2e-5)
        np.testing.assert_allclose(lens[depth - 1].encode_images(images), _unit(i_lens.numpy()), atol=2e-5)
    np.testing.assert_allclose(lens[-1].encode_texts(TEXTS), base.encode_texts(TEXTS), atol=1e-6)
    np.testing.assert_allclose(lens[-1].encode_images(images), base.encode_images(images), atol=1e-6)


# ---------------------------------------------------------------------------------------------- one pass, the cache
def test_one_pass_fills_every_layer_and_each_layer_has_its_own_identity_and_cache(small_clip, tmp_path, monkeypatch):
    from vlbias.cache.store import EmbeddingCache

    spec = "openclip:ViT-S-32-alt/random"
    cache = EmbeddingCache(tmp_path / "cache")
    encoders = load_layers(spec, layer="1,5,-1", cache=cache, device="cpu")
    base = encoders[0].base
    base._model, base._tokenizer, base._preprocess = small_clip._model, small_clip._tokenizer, small_clip._preprocess
    base._loaded = True  # the session's loaded weights (same spec and seed)
    passes = []
    real = type(base)._embed_text_layers
    monkeypatch.setattr(type(base), "_embed_text_layers", lambda self, *a: passes.append(a[1]) or real(self, *a))
    first = encoders[0].encode_texts(TEXTS)
    assert len(passes) == 1 and passes[0] == {1: 1, 5: 5, -1: 10}  # one pass; -1 is the text tower's block 10
    files = sorted(p.stem for p in (tmp_path / "cache" / "v1").glob("*.sqlite"))
    assert files == sorted(e.identity for e in encoders)  # each layer's vectors in its own file, written by the pass
    for e in encoders[1:]:
        e.encode_texts(TEXTS)
    assert len(passes) == 1  # the other layers read their caches
    # identities: distinct, and the model's identity with the layer and the reading
    assert len({e.identity for e in encoders} | {base.identity}) == 4
    assert encoders[1].identity == layer_identity("openclip", base.identity, 5, "lens")
    again = load_layers(spec, layer=5, cache=cache, device="cpu")[0]
    assert again.identity == encoders[1].identity
    np.testing.assert_array_equal(again.encode_texts(TEXTS[:2]), encoders[1].encode_texts(TEXTS[:2]))
    assert not again.is_loaded  # answered by the cache
    np.testing.assert_allclose(first, encoders[0].encode_texts(TEXTS))
    record = encoders[1].record()
    assert (record["layer"], record["reading"], record["identity"], record["base_identity"]) == (
        5,
        "lens",
        encoders[1].identity,
        base.identity,
    )


def test_a_tower_too_shallow_for_a_layer_cannot_encode_there(small_clip):
    # ViT-S-32-alt: 12 image blocks, 10 text blocks
    encoders = layer_encoders(small_clip, Layers.parse("10,11"))
    assert [e.modalities for e in encoders] == [("text", "image"), ("image",)]
    with pytest.raises(LayerError, match="its text tower has 10 blocks, so it has no layer 11"):
        encoders[1].encode_texts(["a"])
    assert layer_numbers(small_clip.tower_depths()) == tuple(range(1, 13))
    with pytest.raises(LayerError, match="has no layer 13 .blocks per tower: image 12, text 10."):
        layer_encoders(small_clip, Layers.parse(13))


# ---------------------------------------------------------------------------------------------- parsing, refusals
@pytest.mark.parametrize(
    ("layer", "reading", "select", "read"),
    [
        (None, None, None, None),
        ("all", None, "all", "lens"),
        ("ALL", "raw", "all", "raw"),
        (6, None, (6,), "lens"),
        ("-1", "lens", (-1,), "lens"),
        ("1, 6,-1,6", None, (1, 6, -1), "lens"),
        ([3, "4"], "raw", (3, 4), "raw"),
    ],
)
def test_layers_parse(layer, reading, select, read):
    parsed = Layers.parse(layer, reading)
    assert (parsed.select, parsed.reading) == (select, read)
    assert Layers.parse(parsed) is parsed


@pytest.mark.parametrize(
    ("layer", "reading", "message"),
    [
        (0, None, "--layer 0: a layer is a transformer block number, 1 (the first)"),
        ("six", None, "--layer 'six': a layer is a transformer block number"),
        ("1,all", None, "'all' stands alone"),
        (True, None, "--layer True: a layer is a transformer block number"),
        (3, "logit", "--reading 'logit': use lens"),
        (None, "raw", "--reading raw: a reading applies to a layer; give a layer too"),
    ],
)
def test_layers_parse_refuses_in_one_line(layer, reading, message):
    with pytest.raises(OptionError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        Layers.parse(layer, reading)
    assert "\n" not in str(e.value)


def test_block_of_counts_from_either_end():
    assert [block_of(k, 12) for k in (1, 12, -1, -12, 13, -13)] == [1, 12, 12, 1, None, None]


def test_unsupported_models_are_refused_in_one_line(tmp_path):
    with pytest.raises(LayerError, match="RN50/random: its image tower .ResNet. is not an open_clip vision"):
        load_layers("openclip:RN50/random", layer=3, cache=False)  # from the config, no weights loaded
    with pytest.raises(LayerError, match="the st backend gives no layer features"):
        load_layers("st:all-MiniLM-L6-v2", layer="all", cache=False)
    with pytest.raises(LayerError, match="load_model gives one .use load_layers."):
        load_model("openclip:ViT-S-32-alt/random", layer="all", cache=False)


def test_no_layer_is_the_model_itself():
    enc = load_model("openclip:ViT-S-32-alt/random", cache=False)
    assert not isinstance(enc, LayerEncoder)
    assert load_layers("openclip:ViT-S-32-alt/random", cache=False)[0].identity == enc.identity
