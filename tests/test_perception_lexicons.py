"""Lexicons, control words and templates as data, and the exact prompts they make."""

from __future__ import annotations

import pytest

from vlbias.stimuli.perception import (
    LexiconError,
    Vocabulary,
    fill,
    load_control,
    load_lexicon,
    load_templates,
    packaged_lexicons,
    packaged_templates,
)
from vlbias.stimuli.prompts import indefinite_article


def test_packaged_lexicons_hold_the_studys_words():
    assert packaged_lexicons() == ["abc", "scm"] and packaged_templates() == ["hausladen2025"]
    scm = load_lexicon("scm")
    assert scm.scales == {
        "warm": ("warm", "trustworthy", "friendly", "honest", "likable", "sincere"),
        "competent": ("competent", "intelligent", "skilled", "efficient", "assertive", "confident"),
    }
    abc = load_lexicon("abc")
    assert abc.scales == {
        "agency+": ("powerful", "high-status", "dominating", "wealthy", "confident", "competitive"),
        "agency-": ("powerless", "low-status", "dominated", "poor", "meek", "passive"),
        "beliefs+": ("science-oriented", "alternative", "liberal", "modern"),
        "beliefs-": ("religious", "conventional", "conservative", "traditional"),
        "communion+": ("trustworthy", "sincere", "friendly", "benevolent", "likable", "altruistic"),
        "communion-": ("untrustworthy", "dishonest", "unfriendly", "threatening", "unpleasant", "egoistic"),
    }
    assert "Fiske" in scm.source and "Koch" in abc.source and scm.origin == "package"
    control = load_control()
    assert control.neutral == "" and list(control.words) == [
        "white",
        "black",
        "asian",
        "male",
        "female",
        "young",
        "old",
    ]
    assert control.marking("race") == {
        "white": "white",
        "black": "black",
        "asian": "asian",
        "east_asian": "asian",
        "southeast_asian": "asian",
    }
    assert control.marking("gender") == {"male": "male", "female": "female"}
    assert load_templates().templates == (
        "A photo of a {w} person.",
        "A {w} person.",
        "This is a {w} person.",
        "cropped face photo of a {w} person",
    )


def test_prompts_as_the_study_wrote_them():
    t = load_templates().templates
    assert [fill(x, "") for x in t] == [
        "A photo of a person.",
        "A person.",
        "This is a person.",
        "cropped face photo of a person",
    ]
    assert [fill(x, "intelligent") for x in t] == [
        "A photo of a intelligent person.",  # the study keeps "a" before vowels
        "A intelligent person.",
        "This is a intelligent person.",
        "cropped face photo of a intelligent person",
    ]


def test_grammatical_articles():
    t = load_templates().templates
    assert [fill(x, "intelligent", "grammatical") for x in t] == [
        "A photo of an intelligent person.",
        "An intelligent person.",
        "This is an intelligent person.",
        "cropped face photo of an intelligent person",
    ]
    assert fill(t[1], "honest", "grammatical") == "An honest person."
    assert fill(t[1], "high-status", "grammatical") == "A high-status person."
    assert fill(t[0], "", "grammatical") == "A photo of a person."
    assert fill("Is {w} a photo?", "egoistic", "grammatical") == "Is egoistic a photo?"  # no article before {w}
    yes = ["alternative", "egoistic", "old", "untrustworthy", "unpleasant", "unfriendly", "uninformed", "honest"]
    no = ["warm", "high-status", "unique", "uniform", "useful", "european", "one-sided", "young"]
    assert all(indefinite_article(w) == "an" for w in yes) and not any(indefinite_article(w) == "an" for w in no)


def test_vocabulary_words_and_prompts():
    v = Vocabulary([load_lexicon("scm"), load_lexicon("abc")], load_control(), load_templates())
    words = v.words
    assert words[:8] == ["", "white", "black", "asian", "male", "female", "young", "old"]
    assert len(words) == len(set(words)) == 8 + 12 + 32 - 5  # confident, trustworthy, sincere, friendly, likable twice
    ps = v.prompt_set()
    assert len(ps.prompts) == 4 * len(words) and ps.prompts[4] == "A photo of a white person."
    assert ps.prompts[:4] == [
        "A photo of a person.",
        "A person.",
        "This is a person.",
        "cropped face photo of a person",
    ]
    assert list(v.scales) == [
        "warm",
        "competent",
        "agency+",
        "agency-",
        "beliefs+",
        "beliefs-",
        "communion+",
        "communion-",
    ]
    assert {(d["kind"], d["name"]) for d in v.describe()} == {
        ("lexicon", "scm"),
        ("lexicon", "abc"),
        ("control", "control"),
        ("templates", "hausladen2025"),
    }


def test_user_files(tmp_path):
    y = tmp_path / "mine.yaml"
    y.write_text("name: mine\nsource: me\nscales:\n  shiny: [glossy, bright]\n  dull: [matte]\n", encoding="utf-8")
    assert load_lexicon(y).scales == {"shiny": ("glossy", "bright"), "dull": ("matte",)}
    c = tmp_path / "words.csv"
    c.write_text("scale,word\nkind,kind\nkind,gentle\ncold,cold\n", encoding="utf-8")
    lex = load_lexicon(c)
    assert lex.name == "words" and lex.scales == {"kind": ("kind", "gentle"), "cold": ("cold",)}
    tt = tmp_path / "t.txt"
    tt.write_text("# mine\na portrait of a {w} person\n{w}\n", encoding="utf-8")
    assert load_templates(tt).templates == ("a portrait of a {w} person", "{w}")
    assert fill("{w}", "") == ""
    ctrl = tmp_path / "ctrl.yaml"
    ctrl.write_text("neutral: ''\nwords:\n  latino: {race: [latino_hispanic]}\n", encoding="utf-8")
    assert load_control(ctrl).marking("race") == {"latino_hispanic": "latino"}


@pytest.mark.parametrize(
    ("kind", "text", "suffix", "message"),
    [
        ("lexicon", "scales: [a, b]\n", ".yaml", "has no scales"),
        ("lexicon", "scales:\n  s: []\n", ".yaml", "scale 's' must list at least one word"),
        ("lexicon", "scales:\n  s: [a, a]\n", ".yaml", "lists a twice"),
        ("lexicon", "scales:\n  s: ['a {b}']\n", ".yaml", "without surrounding spaces, braces"),
        ("lexicon", "scales: {s: [a\n", ".yaml", "is not valid YAML"),
        ("lexicon", "scale,term\ns,a\n", ".csv", "needs the columns scale,word"),
        ("templates", "templates: ['no placeholder']\n", ".yaml", "must hold the placeholder {w} exactly once"),
        ("templates", "templates: ['{w} and {w}']\n", ".yaml", "exactly once"),
        ("templates", "templates: ['{w} {x}']\n", ".yaml", "exactly once (and no other braces)"),
        ("templates", "templates: []\n", ".yaml", "lists no templates"),
        ("control", "neutral: ''\nwords: [a]\n", ".yaml", "'words' must map each word"),
    ],
)
def test_bad_files_are_one_line(tmp_path, kind, text, suffix, message):
    p = tmp_path / f"bad{suffix}"
    p.write_text(text, encoding="utf-8")
    loader = {"lexicon": load_lexicon, "templates": load_templates, "control": load_control}[kind]
    with pytest.raises(LexiconError) as e:
        loader(p)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_unknown_names_and_clashing_scales(tmp_path):
    with pytest.raises(LexiconError, match="neither a packaged one \\(abc, scm\\) nor a file"):
        load_lexicon("sxm")
    with pytest.raises(LexiconError, match="scale 'warm' is defined by both lexicon scm and scm"):
        Vocabulary([load_lexicon("scm"), load_lexicon("scm")], load_control(), load_templates())
    with pytest.raises(LexiconError, match="unknown article mode"):
        Vocabulary([load_lexicon("scm")], load_control(), load_templates(), article="fancy")
