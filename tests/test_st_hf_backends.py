"""sentence-transformers (the packaged, real all-MiniLM-L6-v2) and transformers dual encoders."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import random_image, tiny_hf_clip
from vlbias.errors import ModalityError, WeightsUnavailableError
from vlbias.models import load_model


def test_minilm_is_the_real_pretrained_model(minilm):
    v = minilm.encode_texts(["A dog runs in the park.", "A puppy plays on the grass.", "Stock markets fell today."])
    assert v.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-6)
    assert v[0] @ v[1] > 0.4 > v[0] @ v[2]  # a trained encoder, not random weights


def test_minilm_agrees_with_sentence_transformers_directly(minilm):
    texts = ["This is a tulip.", "These are ants.", "Here is Adam."]
    direct = minilm._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(minilm.encode_texts(texts), direct, atol=1e-6)


def test_minilm_batch_size_invariance():
    texts = [f"This is sentence number {i} of the batch." for i in range(40)]
    a = load_model("st:all-MiniLM-L6-v2", cache=False, batch_size=1).encode_texts(texts)
    b = load_model("st:all-MiniLM-L6-v2", cache=False, batch_size=64).encode_texts(texts)
    np.testing.assert_allclose(a, b, atol=2e-5)


def test_text_only_model_refuses_images(minilm, image_dir):
    with pytest.raises(ModalityError, match="text-only model and cannot encode images"):
        minilm.encode_images(sorted(image_dir.glob("*.jpg")))


def test_unknown_hub_model_offline_is_a_clear_error():
    with pytest.raises(WeightsUnavailableError, match="use st:DIR"):
        load_model("st:someone/not-a-model", cache=False).encode_texts(["a"])
    with pytest.raises(WeightsUnavailableError, match="use hf:DIR"):
        load_model("hf:someone/not-a-model", cache=False).encode_texts(["a"])


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    return tiny_hf_clip(tmp_path_factory.mktemp("hfclip"))


def test_hf_clip_matches_transformers_directly(hf_dir):
    import torch
    from transformers import CLIPModel, CLIPProcessor

    enc = load_model(f"hf:{hf_dir}", cache=False)
    texts = ["a photo of a cat", "a dog"]
    img = random_image(0, size=(50, 40))
    model, proc = CLIPModel.from_pretrained(hf_dir), CLIPProcessor.from_pretrained(hf_dir)
    with torch.no_grad():
        t = model.get_text_features(**proc(text=texts, padding=True, return_tensors="pt"))
        i = model.get_image_features(**proc(images=[img], return_tensors="pt"))
    t = getattr(t, "pooler_output", t).numpy()
    i = getattr(i, "pooler_output", i).numpy()
    np.testing.assert_allclose(enc.encode_texts(texts), t / np.linalg.norm(t, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(enc.encode_images([img]), i / np.linalg.norm(i, axis=1, keepdims=True), atol=1e-5)


def test_hf_batch_invariance_and_info(hf_dir, tmp_path):
    paths = []
    for k in range(9):
        p = tmp_path / f"{k}.png"
        random_image(k).save(p)
        paths.append(p)
    a = load_model(f"hf:{hf_dir}", cache=False, batch_size=1, num_workers=0).encode_images(paths)
    b = load_model(f"hf:{hf_dir}", cache=False, batch_size=4, num_workers=2).encode_images(paths)
    np.testing.assert_allclose(a, b, atol=1e-5)
    info = load_model(f"hf:{hf_dir}", cache=False).info
    assert info.architecture == "CLIPModel" and info.embed_dim == 32
    assert info.n_params == info.n_params_image + info.n_params_text
    assert info.preprocessing["crop_size"] == {"height": 32, "width": 32}


MIXED = [
    "",
    "a",
    "a photo of a doctor",
    "Ein Foto einer Ärztin, die lächelt",
    "a photo of a person who works as a nurse in a large hospital",
    "x " * 120,  # truncated to the context length
    "an orangutan",
]


def test_hf_clip_pads_to_the_batchs_longest_text_with_the_padded_vectors(hf_dir):
    """CLIP's causal, masked text tower read at the end-of-text token: texts padded to their batch's longest equal
    the fully padded ones within 1e-6, whatever the batch size and composition."""
    import torch
    from transformers import CLIPModel, CLIPProcessor

    model, proc = CLIPModel.from_pretrained(hf_dir).eval(), CLIPProcessor.from_pretrained(hf_dir)
    with torch.no_grad():
        full = [
            getattr(o, "pooler_output", o).numpy()
            for t in MIXED
            for o in [
                model.get_text_features(
                    **proc(text=[t], padding="max_length", truncation=True, max_length=77, return_tensors="pt")
                )
            ]
        ]
    expected = np.concatenate(full)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    rng = np.random.default_rng(0)
    for batch_size in (1, 3, 64):
        enc = load_model(f"hf:{hf_dir}", cache=False, batch_size=batch_size).load()
        widths: list[int] = []
        real = enc._model.get_text_features

        def recording(input_ids, attention_mask=None, real=real, widths=widths):
            widths.append(input_ids.shape[1])
            return real(input_ids=input_ids, attention_mask=attention_mask)

        enc._model.get_text_features = recording
        for order in (list(range(len(MIXED))), list(rng.permutation(len(MIXED)))):
            got = enc.encode_texts([MIXED[i] for i in order])
            assert np.abs(got - expected[order]).max() <= 1e-6
        assert min(widths) == {1: 2, 3: 5, 64: 77}[batch_size] and max(widths) == 77


def test_hf_text_model_without_an_attention_mask_runs_at_full_length(hf_dir):
    enc = load_model(f"hf:{hf_dir}", cache=False, batch_size=8).load()
    widths: list[int] = []
    real = enc._model.get_text_features

    def no_mask(input_ids):
        widths.append(input_ids.shape[1])
        return real(input_ids=input_ids)

    enc._model.get_text_features = no_mask
    enc.encode_texts(["a", "a photo"])
    assert widths == [77]
