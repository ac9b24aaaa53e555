"""Model specs: parsing, validation and the one-line errors for bad specs (no weights are loaded here)."""

from __future__ import annotations

import pytest

from vlbias.errors import SpecError
from vlbias.models import ModelSpec, backend_names, load_model


def test_builtin_backends_are_discovered():
    assert {"openclip", "hf", "st", "vectors"} <= set(backend_names())


@pytest.mark.parametrize(
    "text, backend, target",
    [
        ("openclip:ViT-B-32/laion2b_s34b_b79k", "openclip", "ViT-B-32/laion2b_s34b_b79k"),
        ("  hf:openai/clip-vit-base-patch32 ", "hf", "openai/clip-vit-base-patch32"),
        ("vectors:C:/data/x.txt", "vectors", "C:/data/x.txt"),
    ],
)
def test_parse(text, backend, target):
    spec = ModelSpec.parse(text)
    assert (spec.backend, spec.target) == (backend, target)
    assert str(spec) == f"{backend}:{target}"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty model spec"),
        ("ViT-B-32", "no backend prefix"),
        ("clip:ViT-B-32/openai", "unknown backend 'clip'"),
        ("openclip:", "names no model"),
        ("openclip:ViT-B-32", "names no weights"),
        ("openclip:ViT-B-99/random", "unknown open_clip architecture 'ViT-B-99'"),
        ("openclip:ViT-B-32/laion9000", "unknown pretrained tag 'laion9000' for ViT-B-32"),
        ("openclip:ViT-B-32/missing/ckpt.pt", "checkpoint file not found"),
        ("openclip:ViT-B-32/laion2b_s34b_b79k@/nope/w.bin", "weights file not found"),
        ("openclip:local-dir:/nope", "no open_clip_config.json"),
        ("vectors:/nope/vectors.txt", "vectors file not found"),
    ],
)
def test_bad_specs_raise_one_line(text, fragment):
    with pytest.raises(SpecError) as exc:
        load_model(text)
    msg = str(exc.value)
    assert fragment in msg
    assert "\n" not in msg


def test_unknown_architecture_suggests_close_names():
    with pytest.raises(SpecError, match="did you mean .*ViT-B-32"):
        load_model("openclip:ViT-B-23/random")


@pytest.mark.parametrize(
    "spec, message",
    [
        # a typo in the tag of a known architecture: the closest tags of that architecture, as specs
        (
            "openclip:ViT-B-32/laion2b_s34b_b7k",
            "unknown pretrained tag 'laion2b_s34b_b7k' for ViT-B-32 in openclip:ViT-B-32/laion2b_s34b_b7k; "
            "did you mean openclip:ViT-B-32/laion2b_s34b_b79k?",
        ),
        (
            "openclip:ViT-B-32/LAION2B_S34B_B79K@/w.bin",  # case, and a local copy of the weights
            "unknown pretrained tag 'LAION2B_S34B_B79K' for ViT-B-32 in openclip:ViT-B-32/LAION2B_S34B_B79K@/w.bin; "
            "did you mean openclip:ViT-B-32/laion2b_s34b_b79k?",
        ),
        # another architecture's tag: the nearest of this one's, and whose tag it is
        (
            "openclip:ViT-B-16/laion2b_s34b_b79k",
            "unknown pretrained tag 'laion2b_s34b_b79k' for ViT-B-16 in openclip:ViT-B-16/laion2b_s34b_b79k; "
            "did you mean openclip:ViT-B-16/laion2b_s34b_b88k? (laion2b_s34b_b79k is a tag of ViT-B-32)",
        ),
        # a typo in the architecture: the closest architectures, those with the tag first, case ignored
        (
            "openclip:RN5O/openai",
            "unknown open_clip architecture 'RN5O' in openclip:RN5O/openai; did you mean RN50 or RN50x4?",
        ),
        (
            "openclip:vit-b-32/random",
            "unknown open_clip architecture 'vit-b-32' in openclip:vit-b-32/random; "
            "did you mean ViT-B-32, ViT-S-32 or ViT-M-32?",
        ),
    ],
)
def test_mistyped_names_get_a_did_you_mean(spec, message):
    with pytest.raises(SpecError) as exc:
        load_model(spec)
    assert str(exc.value) == message


def test_openclip_spec_kinds(tmp_path):
    ckpt = tmp_path / "w.pt"
    ckpt.write_bytes(b"x")
    cases = {
        "openclip:ViT-B-32/laion2b_s34b_b79k": ("tag", 0),
        "openclip:ViT-B-32/random": ("random", 0),
        "openclip:ViT-B-32/random-7": ("random", 7),
        f"openclip:ViT-B-32/{ckpt}": ("file", 0),
        f"openclip:ViT-B-32/openai@{ckpt}": ("tag_file", 0),
        "openclip:hf-hub:timm/ViT-B-16-SigLIP": ("hf-hub", 0),
    }
    for text, (kind, seed) in cases.items():
        enc = load_model(text)
        assert (enc.kind, enc.seed) == (kind, seed), text


def test_identity_is_cheap_and_separates_what_changes_vectors(tmp_path):
    a = load_model("openclip:ViT-B-32/random")
    assert a.identity == load_model("openclip:ViT-B-32/random", device="cpu", batch_size=3).identity
    others = [
        load_model("openclip:ViT-B-32/random-1"),
        load_model("openclip:ViT-B-32/random", precision="fp16"),
        load_model("openclip:ViT-B-16/random"),
        load_model("openclip:ViT-B-32/laion2b_s34b_b79k"),
    ]
    assert len({a.identity, *(o.identity for o in others)}) == 5
    # a checkpoint is identified by its content, not its path
    w1, w2 = tmp_path / "a.pt", tmp_path / "b.pt"
    w1.write_bytes(b"weights")
    w2.write_bytes(b"weights")
    assert load_model(f"openclip:ViT-B-32/{w1}").identity == load_model(f"openclip:ViT-B-32/{w2}").identity
    w2.write_bytes(b"other weights")
    assert load_model(f"openclip:ViT-B-32/{w1}").identity != load_model(f"openclip:ViT-B-32/{w2}").identity


def test_construction_imports_no_deep_learning_library():
    import subprocess
    import sys

    code = (
        "import sys; from vlbias.models import load_model; "
        "e = load_model('openclip:ViT-B-32/laion2b_s34b_b79k'); e.identity; "
        "bad = [m for m in ('torch', 'open_clip', 'transformers') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("alias", ["open_clip", "open-clip"])
def test_open_clip_prefix_is_an_alias_recorded_as_openclip(alias):
    spec = ModelSpec.parse(f"{alias}:ViT-B-32/random")
    assert (spec.backend, str(spec)) == ("openclip", "openclip:ViT-B-32/random")
    a, b = load_model(f"{alias}:ViT-B-32/random"), load_model("openclip:ViT-B-32/random")
    assert str(a.spec) == "openclip:ViT-B-32/random" and a.identity == b.identity


def test_open_clip_alias_plans_the_same_tasks_as_openclip():
    from vlbias.zoo.plan import parse_config, plan

    def grid(models, exclude=()):
        config = parse_config({"models": models, "exclude": list(exclude), "audits": {"eat": {"tests": ["weat7"]}}})
        return [(t.model, t.task_id) for t in plan(config)]

    reference = grid(["openclip:ViT-B-32/random", "openclip:ViT-B-16/laion400m_e3*"])
    assert reference[0][0] == "openclip:ViT-B-32/random" and len(reference) == 3
    assert grid(["open_clip:ViT-B-32/random", "open_clip:ViT-B-16/laion400m_e3*"]) == reference  # spec and pattern
    assert grid(["open-clip:ViT-B-32/random", "openclip:ViT-B-32/random"]) == reference[:1]  # one model, listed once
    assert grid(["openclip:ViT-B-32/random", "openclip:ViT-B-16/laion400m_e3*"], ["open_clip:*/*e32"]) == reference[:2]
