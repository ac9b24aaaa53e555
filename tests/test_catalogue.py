"""The model catalogue: every open_clip pair, facts computed from configs, parsed tags, user rows, filters."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from vlbias.cli import main
from vlbias.errors import VlbiasError
from vlbias.models import catalogue as cat
from vlbias.models.backends.openclip import write_openclip_catalogue


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_shipped_catalogue_has_every_open_clip_pair_once():
    import open_clip

    df = cat.shipped_catalogue()
    assert list(df.columns) == list(cat.COLUMNS)
    assert df["spec"].is_unique
    expected = {f"openclip:{a}/{t}" for a, t in open_clip.list_pretrained()}
    assert set(df["spec"]) == expected
    assert df["architecture_family"].notna().all()
    # every number the catalogue states has its source beside it
    assert df.loc[df["dataset_size"].notna(), "dataset_source"].notna().all()
    assert df.loc[df["samples_seen"].notna(), "samples_seen_source"].notna().all()


def test_regenerating_rows_reproduces_the_shipped_file(monkeypatch, tmp_path):
    import open_clip

    pairs = [
        ("RN50", "cc12m"),
        ("ViT-B-32", "openai"),
        ("ViT-B-32", "laion2b_s34b_b79k"),
        ("ViT-B-32", "commonpool_m_clip_s128m_b4k"),
        ("ViT-B-32-quickgelu", "openai"),
    ]
    monkeypatch.setattr(open_clip, "list_pretrained", lambda *a, **k: pairs)
    out = tmp_path / "cat.csv"
    assert write_openclip_catalogue(out) == len(pairs)
    fresh = cat.coerce(pd.read_csv(out, dtype=str, keep_default_na=False), "x")
    shipped = cat.shipped_catalogue().set_index("spec").loc[fresh["spec"]].reset_index()
    pd.testing.assert_frame_equal(fresh, shipped)
    assert (tmp_path / "cat.csv").read_text() == cat.to_csv_text(shipped)


# Figures of open_clip's published model profile (docs/model_profile.csv: Mparams and GFLOPs per tower)
PUBLISHED = {
    "ViT-B-32": (151.28, 87.85, 63.43, 8.82, 5.96),
    "RN50": (102.01, 38.32, 63.69, 12.22, 5.96),
    "ViT-L-14": (427.62, 303.97, 123.65, 162.03, 13.3),
    "coca_ViT-B-32": (253.56, 89.16, 63.43, 9.19, 5.96),
    "convnext_base": (151.52, 88.09, 63.43, 30.71, 5.96),
    "ViT-bigG-14": (2539.57, 1844.91, 694.66, 967.5, 97.86),
}


@pytest.mark.parametrize("arch", sorted(PUBLISHED))
def test_parameters_and_flops_match_open_clips_published_profile(arch):
    m, m_img, m_txt, g_img, g_txt = PUBLISHED[arch]
    row = cat.shipped_catalogue().query("architecture == @arch").iloc[0]
    assert round(row["n_params"] / 1e6, 2) == m
    assert round(row["n_params_image"] / 1e6, 2) == m_img
    assert round(row["n_params_text"] / 1e6, 2) == m_txt
    assert round(row["gflops_image"], 2) == g_img and round(row["gflops_text"], 2) == g_txt
    assert row["gflops"] == pytest.approx(row["gflops_image"] + row["gflops_text"], abs=1e-3)


def test_meta_device_counts_equal_a_built_model(small_clip):
    """The catalogue's counts (meta device) equal the real model's, and FLOPs on meta equal FLOPs on real tensors."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from vlbias.models.openclip_profile import architecture_facts

    facts = architecture_facts("ViT-S-32-alt")
    info = small_clip.info
    assert (facts["n_params"], facts["n_params_image"], facts["n_params_text"]) == (
        info.n_params,
        info.n_params_image,
        info.n_params_text,
    )
    # open_clip's published profile: ViT-S-32-alt 43.22M params, 2.29 image and 1.27 text GFLOPs
    assert round(facts["n_params"] / 1e6, 2) == 43.22
    from torch.nn.attention import SDPBackend, sdpa_kernel

    counter = FlopCounterMode(display=False)
    # attention as plain matmuls (autograd on, math kernel): the counter has no formula for PyTorch's fused CPU
    # inference kernels, while on the meta device (and for the GPU kernels) it counts attention
    with counter, sdpa_kernel(SDPBackend.MATH):
        small_clip._model.encode_image(torch.zeros(1, 3, 224, 224))
    assert counter.get_total_flops() / 1e9 == pytest.approx(facts["gflops_image"], abs=1e-4)
    assert round(facts["gflops_image"], 2) == 2.29 and round(facts["gflops_text"], 2) == 1.27


@pytest.mark.parametrize(
    "arch, tag, expected",
    [
        (
            "ViT-B-32",
            "laion2b_s34b_b79k",
            dict(dataset_family="laion", dataset_size=2_320_000_000, samples_seen=34_000_000_000, fine_tuned=False),
        ),
        ("ViT-B-32", "openai", dict(dataset_family="openai", dataset_size=400_000_000, samples_seen=12_800_000_000)),
        ("ViT-L-14-336", "openai", dict(samples_seen=13_200_000_000)),
        ("ViT-B-32", "laion400m_e32", dict(pretraining_dataset="LAION-400M", samples_seen=None, epochs=32)),
        (
            "coca_ViT-L-14",
            "mscoco_finetuned_laion2b_s13b_b90k",
            dict(fine_tuned=True, fine_tuned_on="MSCOCO", dataset_family="laion", samples_seen=13_000_000_000),
        ),
        (
            "ViT-B-32",
            "commonpool_s_clip_s13m_b4k",
            dict(pretraining_dataset="CommonPool-S (clip filter)", dataset_size=None, samples_seen=12_800_000),
        ),
        ("ViT-L-14", "datacomp_xl_s13b_b90k", dict(dataset_size=1_400_000_000, samples_seen=12_800_000_000)),
        ("ViT-H-14", "dfn5b", dict(dataset_family="dfn", dataset_size=5_000_000_000, dataset_size_basis="name")),
        ("nllb-clip-base", "v1", dict(pretraining_dataset=None, dataset_family=None, samples_seen=None)),
        ("ViT-B-32", "some_future_tag", dict(pretraining_dataset=None, dataset_size=None, samples_seen=None)),
    ],
)
def test_tag_facts(arch, tag, expected):
    facts = cat.tag_facts(arch, tag)
    for key, value in expected.items():
        assert facts[key] == value, key


@pytest.mark.parametrize(
    "arch, family",
    [
        ("ViT-B-32", "ViT-B"),
        ("ViT-bigG-14-CLIPA", "ViT-bigG"),
        ("roberta-ViT-B-32", "ViT-B"),
        ("RN50x64", "ResNet"),
        ("convnext_xxlarge", "ConvNeXt"),
        ("EVA02-L-14", "EVA"),
        ("ViT-SO400M-14-SigLIP", "SigLIP"),
        ("coca_ViT-B-32", "CoCa"),
        ("MobileCLIP2-S0", "MobileCLIP"),
        ("ViT-S-32-alt", "ViT-S"),
        ("something-else", None),
    ],
)
def test_architecture_families(arch, family):
    assert cat.architecture_family(arch) == family


def test_quickgelu_duplicates_point_at_the_same_weights():
    df = cat.shipped_catalogue().set_index("spec")
    dups = df[df["duplicate_of"].notna()]
    assert len(dups) > 20 and all(s.split("/")[0].endswith("-quickgelu") for s in dups.index)
    for _spec, row in dups.iterrows():
        base = df.loc[row["duplicate_of"]]
        assert (base["hf_hub"], base["url"]) == (row["hf_hub"], row["url"]) and bool(base["quick_gelu"])
    assert df.loc["openclip:ViT-B-32/openai", "duplicate_of"] is pd.NA


def test_user_rows_add_models_and_override_facts(tmp_path, monkeypatch):
    f = tmp_path / "mine.csv"
    f.write_text(
        "spec,architecture_family,n_params,dataset_family,dataset_size,fine_tuned,notes\n"
        "hf:org/my-clip,ViT-B,150000000,laion,2320000000,false,ours\n"
        "openclip:ViT-B-32/laion400m_e32,,,,,true,\n",
        encoding="utf-8",
    )
    df = cat.load_catalogue([f])
    mine = cat.lookup("hf:org/my-clip", df)
    assert mine["backend"] == "hf" and mine["n_params"] == 150_000_000 and mine["fine_tuned"] is False
    assert mine["notes"] == "ours" and mine["tag"] is None
    shipped = cat.lookup("openclip:ViT-B-32/laion400m_e32", df)
    assert shipped["fine_tuned"] is True and shipped["dataset_family"] == "laion"  # empty cells keep shipped facts
    assert len(df) == len(cat.shipped_catalogue()) + 1
    monkeypatch.setenv("VLBIAS_CATALOGUE", str(f))
    assert cat.lookup("hf:org/my-clip")["n_params"] == 150_000_000
    # a checkpoint of a tag carries that tag's facts
    assert cat.lookup("openclip:ViT-B-32/openai@/tmp/w.pt")["samples_seen"] == 12_800_000_000


def test_user_rows_spelled_open_clip_join_the_openclip_rows(tmp_path):
    f = tmp_path / "mine.csv"
    f.write_text("spec,notes\nopen_clip:ViT-B-32/laion400m_e32,ours\n", encoding="utf-8")
    df = cat.load_catalogue([f])
    assert len(df) == len(cat.shipped_catalogue())  # no second row for the same model
    row = cat.lookup("openclip:ViT-B-32/laion400m_e32", df)
    assert row["notes"] == "ours" and row["dataset_family"] == "laion"


@pytest.mark.parametrize(
    "text, message",
    [
        ("architecture\nViT-B\n", "no 'spec' column"),
        ("spec,n_params\nhf:a,12x\n", "row 2, column 'n_params'"),
        ("spec,n_params\nhf:a,1.5\n", "not a whole number"),
        ("spec,fine_tuned\nhf:a,maybe\n", "true/false"),
        ("spec\nhf:a\nhf:a\n", "appears twice"),
        ("spec\nnope:x\n", "unknown backend"),
    ],
)
def test_bad_user_catalogues_are_one_line_errors(tmp_path, text, message):
    f = tmp_path / "bad.csv"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(VlbiasError, match=message):
        cat.load_catalogue([f])


def test_where_selects_and_unknown_facts_never_match():
    df = cat.shipped_catalogue()
    laion = cat.select(df, "dataset_family == 'laion'")
    assert len(laion) and (laion["dataset_family"] == "laion").all()
    big = cat.select(df, "samples_seen >= 3e10 and architecture_family in ['ViT-B', 'ViT-L']")
    assert set(big["spec"]) >= {"openclip:ViT-B-32/laion2b_s34b_b79k", "openclip:ViT-L-14/laion2b_s32b_b82k"}
    assert not cat.select(df, "samples_seen < 0").shape[0]
    unknown = cat.select(df, "samples_seen != 12800000000")
    assert unknown["samples_seen"].notna().all()  # NA compares as no match, not as "different"
    for bad in ("samples_seen >", "n_params", "no_such_column == 1"):
        with pytest.raises(VlbiasError, match="--where"):
            cat.select(df, bad)


def _rows(df, mask) -> list[str]:
    return df.loc[mask.fillna(False).astype(bool).to_numpy(), "spec"].tolist()


def test_where_filters_give_the_hand_filtered_rows():
    df = cat.shipped_catalogue()
    fam, arch_fam, n, seen = df["dataset_family"], df["architecture_family"], df["n_params"], df["samples_seen"]
    cases = {
        "dataset_family == 'laion'": fam == "laion",
        "dataset_family == 'laion' and n_params > 1e9": (fam == "laion") & (n > 1e9),
        "samples_seen >= 3e10 and architecture_family in ['ViT-B', 'ViT-L']": (seen >= 3e10)
        & arch_fam.isin(["ViT-B", "ViT-L"]),
        "architecture == 'ViT-B-32' and dataset_family in ['openai', 'laion']": (df["architecture"] == "ViT-B-32")
        & fam.isin(["openai", "laion"]),
        "(dataset_family == 'laion' or dataset_family == 'openai') and not n_params > 2e8": (
            (fam == "laion") | (fam == "openai")
        )
        & ~(n > 2e8),
        "1e8 < n_params < 2e8": (n > 1e8) & (n < 2e8),
        "n_params_image > n_params_text": df["n_params_image"] > df["n_params_text"],
        "fine_tuned": df["fine_tuned"],
        "not fine_tuned and duplicate_of == null": ~df["fine_tuned"] & df["duplicate_of"].isna(),
        "duplicate_of != None": df["duplicate_of"].notna(),
        "fine_tuned == true and dataset_size >= 1e9": df["fine_tuned"] & (df["dataset_size"] >= 1e9),
        "gflops >= 10.5 or patch_size == -1": df["gflops"] >= 10.5,
        'tag == "openai"': df["tag"] == "openai",
        # an empty fact matches no comparison, negated or not
        "dataset_family != 'laion'": fam.notna() & (fam != "laion"),
        "not dataset_family == 'laion'": fam.notna() & (fam != "laion"),
        "architecture_family not in ['ViT-B']": arch_fam.notna() & ~arch_fam.isin(["ViT-B"]),
    }
    for expr, mask in cases.items():
        want = _rows(df, mask)
        assert cat.select(df, expr)["spec"].tolist() == want, expr
    assert len(_rows(df, fam == "laion")) == 41 and len(_rows(df, fam.isna())) == 6  # the cases are not empty


@pytest.mark.parametrize(
    "expr, problem",
    [
        ("@pd.io.common.os.system('touch PWNED') == 0", "'@' (a local variable) is not allowed"),
        ("__import__('os').system('touch PWNED') == 0", "a function call is not allowed"),
        ("spec.__class__.__mro__[1].__subclasses__() == 0", "a function call is not allowed"),
        ("spec.str.len > 3", "attribute access ('.') is not allowed"),
        ("(lambda: __import__('os').system('touch PWNED'))() == 0", "a function call is not allowed"),
        ("(lambda: 0) == 0", "lambda is not allowed"),
        ("__builtins__ == 0", "unknown column '__builtins__'"),
        ("[__import__('os').system('touch PWNED') for x in [1]] == 0", "a comprehension is not allowed"),
        ('f\'{__import__("os").system("touch PWNED")}\' == spec', "an f-string is not allowed"),
        ("spec[0] == 'o'", "indexing"),
        ("n_params + 1 > 2", "arithmetic"),
        ("~fine_tuned", "'~' is not allowed"),
        ("spec == 'x' or " * 300 + "spec == 'x'", "characters long, more than the 4000"),
        ("not " * 60 + "fine_tuned", "nested more than 50 levels deep"),
        ("(" * 300 + "fine_tuned" + ")" * 300, "too many nested parentheses"),
        ("dataset_famly == 'laion'", "unknown column 'dataset_famly' (did you mean 'dataset_family'?)"),
        ("n_params == 'big'", "compares number column 'n_params' with 'big'"),
        ("dataset_family == 3", "compares text column 'dataset_family' with 3"),
        ("n_params", "is not a condition"),
        ("1 == 1", "compares two literals"),
        ("n_params is None", "write column == null"),
    ],
)
def test_where_filters_never_run_code(expr, problem, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["models", "--where", expr], capsys)
    assert list(tmp_path.iterdir()) == []  # PWNED was not created
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("vlbias: error: --where ") and problem in err
    with pytest.raises(VlbiasError, match="the columns are spec, backend|a filter compares the columns"):
        cat.select(cat.shipped_catalogue(), expr)


def test_models_details_cli(capsys, tmp_path):
    code, out, _ = run(["models", "--where", "dataset_family == 'laion' and n_params > 1e9"], capsys)
    assert code == 0 and "openclip:ViT-bigG-14/laion2b_s39b_b160k" in out and "openai" not in out
    code, out, _ = run(["models", "--details", "--format", "csv", "--where", "architecture == 'RN50'"], capsys)
    back = pd.read_csv(io.StringIO(out))
    assert list(back.columns) == list(cat.COLUMNS) and set(back["tag"]) == {"openai", "yfcc15m", "cc12m"}
    code, out, _ = run(["models", "--details", "--columns", "samples_seen", "--where", "tag == 'openai'"], capsys)
    assert code == 0 and "12.8B" in out
    code, _, err = run(["models", "--details", "--columns", "nope"], capsys)
    assert code == 2 and err.count("\n") == 1 and "unknown catalogue column" in err


def test_model_info_carries_pretraining_metadata(small_clip):
    from vlbias.models import load_model

    facts = load_model("openclip:ViT-B-32/laion2b_s34b_b79k")._catalogue_facts()  # no weights needed
    assert facts == {
        "architecture_family": "ViT-B",
        "pretraining_dataset": "LAION-2B (en)",
        "dataset_family": "laion",
        "dataset_size": 2_320_000_000,
        "samples_seen": 34_000_000_000,
        "fine_tuned": False,
    }
    info = small_clip.info
    assert info.architecture_family == "ViT-S" and info.dataset_family is None and info.samples_seen is None
    assert info.to_dict()["architecture_family"] == "ViT-S"


def test_write_catalogue_says_what_it_does_and_counts_the_pairs_done(tmp_path, monkeypatch, capsys):
    """`--write-catalogue` takes minutes: a line says so at once, and the bar advances as each pair's row is done."""
    import contextlib

    import open_clip

    import vlbias.utils.progress

    pairs = [("RN50", "openai"), ("RN50", "yfcc15m"), ("ViT-B-32", "openai")]
    monkeypatch.setattr(open_clip, "list_pretrained", lambda: list(pairs))
    rows_done, bars = [], []
    tag_facts = cat.tag_facts
    monkeypatch.setattr(cat, "tag_facts", lambda a, t: (rows_done.append((a, t)), tag_facts(a, t))[1])

    class Bar:
        def __init__(self, description, total, unit):
            self.opened, self.seen = (description, total, unit), []

        def advance(self, n=1):
            self.seen.append(len(rows_done))

    @contextlib.contextmanager
    def recording(description, total, unit="items"):
        bars.append(Bar(description, total, unit))
        yield bars[-1]

    monkeypatch.setattr(vlbias.utils.progress, "progress", recording)
    out = tmp_path / "catalogue.csv"
    code, _, err = run(["models", "--write-catalogue", out], capsys)
    assert code == 0
    assert err.splitlines() == [
        f"profiling 3 pretrained pairs (2 architectures) of open_clip {open_clip.__version__} on PyTorch's meta "
        "device (no weights are downloaded); this takes a few minutes",
        f"wrote 3 catalogue rows to {out}",
    ]
    (bar,) = bars
    assert bar.opened == ("profiling open_clip models", 3, "pairs") and bar.seen == [1, 2, 3]
    assert pd.read_csv(out)["spec"].tolist() == [f"openclip:{a}/{t}" for a, t in pairs]
