"""Association tests as data: templates, the packaged tests, and the YAML, SEAT JSON and WEFE readers."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import pytest

from tests.eat_fixtures import seat_dir
from vlbias.errors import StimulusError
from vlbias.stimuli.eat_tests import (
    get_test,
    indefinite_article,
    packaged_test_names,
    plural,
    read_test_file,
    sentences_for,
)

SEAT_DIR = seat_dir()
needs_seat = pytest.mark.skipif(SEAT_DIR is None, reason="reference SEAT files (../shared) not present")


@pytest.mark.parametrize(
    "word,article",
    [
        ("aster", "an"),
        ("clover", "a"),
        ("honor", "an"),
        ("honest", "an"),
        ("European American", "a"),
        ("African American", "an"),
        ("Ukrainian American", "a"),
        ("Italian American", "an"),
        ("university", "a"),
        ("umbrella", "an"),
        ("one", "a"),
        ("hour", "an"),
    ],
)
def test_indefinite_article(word, article):
    assert indefinite_article(word) == article


@pytest.mark.parametrize("word", ["honest", "uninformed", "unique", "urban", "urologist", "European", "egoistic"])
def test_one_article_rule_for_every_prompt(word):
    """SEAT sentences, zero-shot prompts and perception prompts put the same article before a word."""
    from vlbias.stimuli import perception, prompts

    art = indefinite_article(word)
    assert prompts.fill("This is a {c}.", word) == f"This is {art} {word}."
    assert perception.fill("This is a {w} person.", word, "grammatical") == f"This is {art} {word} person."
    assert sentences_for(word, "noun")[0] == f"This is {art} {word}."


@pytest.mark.parametrize(
    "word,expected",
    [
        ("aster", "asters"),
        ("fly", "flies"),
        ("day", "days"),
        ("crocus", "crocuses"),
        ("cockroach", "cockroaches"),
        ("mosquito", "mosquitoes"),
        ("piano", "pianos"),
        ("knife", "knives"),
        ("man", "men"),
        ("South African American", "South African Americans"),
        ("axe", "axes"),
        ("box", "boxes"),
    ],
)
def test_plural(word, expected):
    assert plural(word) == expected


def test_template_classes():
    assert sentences_for("aster", "noun") == [
        "This is an aster.",
        "That is an aster.",
        "There is an aster.",
        "Here is an aster.",
        "The aster is here.",
        "The aster is there.",
        "An aster is a thing.",
        "It is an aster.",
        "These are asters.",
        "Those are asters.",
        "They are asters.",
        "The asters are here.",
        "The asters are there.",
        "Asters are things.",
    ]
    assert sentences_for("parents", "person")[6:8] == ["A parent is a person.", "These are parents."]
    assert sentences_for("Adam", "name")[-2:] == ["Adam is a person.", "The person's name is Adam."]
    assert sentences_for("love", "mass") == ["This is love.", "That is love.", "There is love.", "It is love."]
    assert sentences_for("he", "subject_pronoun")[0] == "He is here."
    assert sentences_for("kill", "verb")[0] == "This will kill."
    with pytest.raises(StimulusError, match="unknown template class 'bogus'"):
        sentences_for("x", "bogus")


# Sizes of the word lists in Caliskan et al. (2017) (WEAT 3 and 4 as printed there, before their corpus deletions).
CALISKAN_SIZES = {
    "weat1": (25, 25, 25, 25),
    "weat2": (25, 25, 25, 25),
    "weat3": (34, 32, 25, 25),
    "weat4": (18, 18, 25, 25),
    "weat5": (18, 18, 8, 8),
    "weat6": (8, 8, 8, 8),
    "weat7": (8, 8, 8, 8),
    "weat8": (8, 8, 8, 8),
    "weat9": (6, 6, 7, 7),
    "weat10": (8, 8, 8, 8),
    "weat3b": (15, 15, 25, 25),
}


def test_packaged_tests_load_with_sources():
    names = packaged_test_names()
    for name in CALISKAN_SIZES:
        assert name in names and f"sent-{name}" in names
    for name in names:
        t = get_test(name)
        assert t.source and t.title, name
        assert all(len(s.texts) >= 2 for s in t.sets().values()), name
        assert t.orders() == ["all-text"]
        if not name.startswith("sent-") and name in CALISKAN_SIZES:
            assert tuple(len(s.texts) for s in t.sets().values()) == CALISKAN_SIZES[name], name
    assert "Greenwald" in get_test("weat1").source and "Caliskan" in get_test("weat1").source
    assert get_test("weat2").A == get_test("weat1").A  # shared sets are referenced, not copied
    # May et al.'s sentence versions leave out names to balance the sets
    assert len(get_test("sent-weat3").X.texts) == 32 * 8 and len(get_test("sent-weat4").Y.texts) == 16 * 8
    assert "Sentence version" in get_test("sent-weat3").source
    with pytest.raises(StimulusError, match="unknown test 'weat99'"):
        get_test("weat99")


def test_friend_is_a_thing_as_in_the_seat_generator():
    """May et al.'s generator makes a noun a person only if it is a kin or gender word, so "friend" is a thing: 14
    sentences, and the pleasant sets of the battery's tests have 215 (vlbias made it a person before: 214)."""
    a = get_test("sent-weat1").A.texts
    assert len(a) == 215 and len(get_test("sent-weat3").A.texts) == 215
    friend = [t for t in a if "friend" in t.lower()]
    assert friend == sentences_for("friend", "noun") and len(friend) == 14
    assert {"A friend is a thing.", "It is a friend.", "Friends are things."} <= set(friend)
    assert "A friend is a person." not in a and "Friends are people." not in a
    assert len(get_test("sent-weat5").A.texts) == 40 and len(get_test("sent-weat10").A.texts) == 40
    assert "It is a friend." in get_test("sent-weat5").A.texts


def test_packaged_tests_spell_plurals_as_published():
    """The generator's plurals "mosquitos" and "knifes" (what the published files and the studies ran); plural()
    itself writes standard English for other tests."""
    y1, y2 = get_test("sent-weat1").Y.texts, get_test("sent-weat2").Y.texts
    assert "Mosquitos are things." in y1 and not any("mosquitoes" in t.lower() for t in y1)
    assert "These are knifes." in y2 and not any("knives" in t.lower() for t in y2)
    assert plural("mosquito") == "mosquitoes" and plural("knife") == "knives"
    assert sentences_for("knife", "noun", {"knife": "knifes"})[-1] == "Knifes are things."


def test_a_set_taken_with_from_keeps_the_words_its_test_omits(tmp_path):
    """weat5 takes weat4's names, and its sentence version leaves out the same four names as sent-weat4 (128
    sentences a side, not 144)."""
    for name in ("sent-weat4", "sent-weat5"):
        t = get_test(name)
        assert (len(t.X.texts), len(t.Y.texts)) == (128, 128), name
        assert not any(w in " ".join(t.X.texts + t.Y.texts) for w in ("Jay", "Kristen", "Tremayne", "Latonya"))
    assert len(get_test("weat5").X.texts) == 18  # the word test keeps Caliskan et al.'s 18 names
    (tmp_path / "t.yaml").write_text(
        "form: sentences\nsentences: {omit: {X: [Brad]}}\n"
        "X: {from: weat4.X}\nY: {from: weat4.Y}\nA: {from: weat1.A}\nB: {from: weat1.B}\n",
        encoding="utf-8",
    )
    t = read_test_file(tmp_path / "t.yaml")
    assert len(t.X.texts) == 15 * 8 and not any("Brad" in x or "Jay" in x for x in t.X.texts)
    assert len(t.Y.texts) == 16 * 8


def test_the_studys_gender_tests():
    """Ghate et al.'s gender tests: sent-weat11 / sent-weat11b (names / terms vs their 25 + 25 NRC-VAD words in six
    "the word" templates), and in their SEAT-attribute variant the same targets vs WEAT 5's words (the battery's
    default); they report minus d for these rows."""
    sizes = {n: tuple(len(s.texts) for s in get_test(n).sets().values()) for n in ("sent-weat11", "sent-weat11b")}
    assert sizes == {"sent-weat11": (64, 64, 150, 150), "sent-weat11b": (80, 80, 150, 150)}
    nrc = get_test("weat11")
    assert nrc.A.words[:2] == ("very positive", "enjoyable") and nrc.B.words[-1] == "shit"
    assert get_test("sent-weat11").A.texts[:2] == ("This is the word very positive.", "That is the word very positive.")
    assert get_test("sent-weat11b").A == get_test("sent-weat11").A
    for name, twin in (("gender-names-valence", "weat11"), ("gender-terms-valence", "weat11b")):
        t = get_test(f"sent-{name}")
        assert (t.X, t.Y) == (get_test(f"sent-{twin}").X, get_test(f"sent-{twin}").Y)
        assert (t.A, t.B) == (get_test("sent-weat5").A, get_test("sent-weat5").B)
        assert (len(t.A.texts), len(t.B.texts)) == (40, 47)
        assert "does not list" not in t.source and "CLIP_bias" in t.source
        assert t.sign("ghate2025") == get_test(twin).sign("ghate2025") == -1 and t.sign(None) == 1
    assert get_test("sent-weat1").sign("ghate2025") == 1


def test_published_sentence_versions(tmp_path):
    """sent-weat2 as published keeps 330 of the 350 instrument sentences (cut at random by the generator)."""
    full, pub = get_test("sent-weat2"), get_test("sent-weat2", published=True)
    assert (len(full.X.texts), len(pub.X.texts), len(pub.Y.texts)) == (350, 330, 330)
    assert set(pub.X.texts) < set(full.X.texts) and "A violin is a thing." not in pub.X.texts
    assert [t for t in full.X.texts if t in set(pub.X.texts)] == list(pub.X.texts)  # the published order
    assert "As published:" in pub.source and "As published:" not in full.source
    assert get_test("sent-weat1", published=True) == get_test("sent-weat1")  # nothing cut: the same test
    rest = "Y: {from: weat1.Y}\nA: {from: weat1.A}\nB: {from: weat1.B}\n"
    (tmp_path / "p.yaml").write_text(
        "sentences: {published: {source: cut, drop: {X: [This is a rose.]}}}\n"
        "X: {name: R, words: [rose, tulip], class: noun}\n" + rest,
        encoding="utf-8",
    )
    from vlbias.stimuli.eat_tests import sentence_version

    t = read_test_file(tmp_path / "p.yaml")
    assert len(sentence_version(t).X.texts) == 28 and len(sentence_version(t, published=True).X.texts) == 27
    (tmp_path / "q.yaml").write_text(
        "sentences: {published: {drop: {X: [This is a lily.]}}}\nX: {name: R, words: [rose, tulip], class: noun}\n"
        + rest,
        encoding="utf-8",
    )
    with pytest.raises(StimulusError, match="sentences.published.drop.X lists 'This is a lily.', not a sentence"):
        sentence_version(read_test_file(tmp_path / "q.yaml"), published=True)


@needs_seat
def test_sentence_versions_match_the_nrc_variant_targets():
    """The SEAT files one folder up (Ghate et al.'s NRC-VAD variant) keep the published targets."""
    for name in ("sent-weat1", "sent-weat3"):
        ours, ref = get_test(name), read_test_file(SEAT_DIR / f"{name}.json")
        assert (ours.X.texts, ours.Y.texts) == (ref.X.texts, ref.Y.texts), name


PUBLISHED = SEAT_DIR / "published" if SEAT_DIR is not None else None
needs_published = pytest.mark.skipif(
    PUBLISHED is None or not PUBLISHED.is_dir(), reason="the published SEAT files (../shared) are not present"
)

#: every (test, set, published?) whose sentences differ from the published file of the same name: (vlbias's count,
#: the published count, sentences only vlbias has, sentences only the published file has). Everything else is equal
#: sentence for sentence, in the same order.
SEAT_DIFFERENCES = {
    # word tests: vlbias keeps Caliskan et al.'s 34 / 18 names; May et al.'s word files have 32 / 16
    ("weat3", "X", False): (34, 32, 2, 0),
    ("weat4", "X", False): (18, 16, 2, 0),
    ("weat4", "Y", False): (18, 16, 2, 0),
    ("weat5", "X", False): (18, 16, 2, 0),
    ("weat5", "Y", False): (18, 16, 2, 0),
    # "short" (Caliskan et al.'s word2vec variant) where May et al. have "short-term"
    ("weat9", "A", False): (7, 7, 1, 1),
    ("sent-weat9", "A", False): (21, 21, 3, 3),
    ("sent-weat9", "A", True): (21, 21, 3, 3),
    # the generator's random cut of the instruments to the weapons' 330 (restored with published=True)
    ("sent-weat2", "X", False): (350, 330, 20, 0),
    # vlbias's word classes: executive, parent(s), child(ren), cousin(s), relative(s) persons (the generator: things),
    # management, computation, addition, technology, drama, influenza mass nouns (generator: count nouns), NASA a
    # proper noun and always, forever adverbs (generator: mass nouns); and the generator's random cuts of sent-weat7,
    # 8 and 9's targets
    ("sent-weat6", "A", False): (90, 101, 6, 17),
    ("sent-weat6", "B", False): (108, 112, 8, 12),
    ("sent-weat7", "X", False): (52, 72, 8, 28),
    ("sent-weat7", "Y", False): (72, 72, 14, 14),
    ("sent-weat8", "X", False): (48, 56, 7, 15),
    ("sent-weat8", "Y", False): (66, 56, 19, 9),
    ("sent-weat9", "Y", False): (63, 18, 48, 3),
    ("sent-weat9", "B", False): (21, 23, 6, 8),
}
SEAT_DIFFERENCES.update(
    {
        (t, r, True): v
        for (t, r, p), v in list(SEAT_DIFFERENCES.items())
        if t.startswith("sent-weat") and t[-1] in "6789"
    }
)
#: packaged tests without a published file of their name, and the published test whose targets they have
SAME_TARGETS = {
    "gender-names-valence": "weat6",
    "gender-terms-valence": "weat6b",
    "weat11": "weat6",
    "weat11b": "weat6b",
}


@needs_published
def test_every_packaged_test_against_the_published_seat_files():
    """Every packaged test (words and sentences, vlbias's and as published) against the 46 published SEAT files of
    May et al. (2019), sentence by sentence: equal except the differences listed in SEAT_DIFFERENCES."""
    found, compared = {}, 0
    for name in packaged_test_names():
        for published in (False, True) if name.startswith("sent-") else (False,):
            ours = get_test(name, published=published)
            file = PUBLISHED / f"{name}.json"
            if not file.is_file():
                base = name.removeprefix("sent-")
                ref = read_test_file(PUBLISHED / f"{name[: len(name) - len(base)]}{SAME_TARGETS[base]}.json")
                assert (ours.X.texts, ours.Y.texts) == (ref.X.texts, ref.Y.texts), name
                compared += 2
                continue
            ref = read_test_file(file)
            for role in "XYAB":
                a, b = getattr(ours, role).texts, getattr(ref, role).texts
                compared += 1
                if a != b:
                    only_a, only_b = [t for t in a if t not in b], [t for t in b if t not in a]
                    assert only_a or only_b, (name, role, "the same sentences in another order")
                    found[(name, role, published)] = (len(a), len(b), len(only_a), len(only_b))
    assert found == SEAT_DIFFERENCES
    # 11 tests with a published file (words: 4 sets; sentences: 4 sets, twice), 4 compared by their targets
    assert compared == 11 * 4 + 11 * 4 * 2 + 4 * 2 + 4 * 2 * 2
    # the sets the battery uses are the published ones, sentence for sentence
    for name in ("sent-weat1", "sent-weat2", "sent-weat3", "sent-weat3b", "sent-weat4", "sent-weat10"):
        ours, ref = get_test(name, published=True), read_test_file(PUBLISHED / f"{name}.json")
        assert ours.sets() == {r: replace(getattr(ours, r), texts=getattr(ref, r).texts) for r in "XYAB"}, name


@needs_seat
def test_word_tests_match_the_published_seat_files():
    for name in ("weat1", "weat10"):
        ours, ref = get_test(name), read_test_file(SEAT_DIR / f"{name}.json")
        for role in "XYAB":
            assert getattr(ours, role).texts == getattr(ref, role).texts, (name, role)
    ours, ref = get_test("weat3"), read_test_file(SEAT_DIR / "weat3.json")
    assert set(ours.X.texts) - set(ref.X.texts) == {"Sara", "Amber"}  # the SEAT word file balances 34 to 32


@needs_seat
def test_seat_reader_on_real_files():
    t = read_test_file(SEAT_DIR / "sent-weat1.json")
    assert t.name == "sent-weat1"
    assert (t.X.name, t.Y.name, t.A.name, t.B.name) == ("Flowers", "Insects", "Pleasant", "Unpleasant")
    assert [len(s.texts) for s in t.sets().values()] == [350, 350, 150, 150]
    assert t.A.texts[0] == "This is the word very positive."


def _write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def _seat(**over):
    base = {
        k: {"category": c, "examples": ex}
        for k, c, ex in [
            ("targ1", "T1", ["a", "b"]),
            ("targ2", "T2", ["c", "d"]),
            ("attr1", "A1", ["e", "f"]),
            ("attr2", "A2", ["g", "h"]),
        ]
    }
    base.update(over)
    return base


@pytest.mark.parametrize(
    "content,message",
    [
        ({k: v for k, v in _seat().items() if k != "attr2"}, "has no 'attr2'"),
        (_seat(targ1={"examples": ["a", "b"]}), "'targ1' has no 'category'"),
        (_seat(targ2={"category": "T2"}), "'targ2' must be an object with 'category' and 'examples'"),
        (_seat(attr1={"category": "A1", "examples": []}), "attr1.examples is empty"),
        (_seat(attr1={"category": "A1", "examples": ["x"]}), "set A \\(A1\\) has only 1 item"),
        (_seat(attr1={"category": "A1", "examples": "x y"}), "must be a list of strings"),
        ([1, 2], "neither a SEAT test"),
    ],
)
def test_bad_seat_files(tmp_path, content, message):
    path = _write_json(tmp_path / "bad.json", content)
    with pytest.raises(StimulusError, match=message) as e:
        read_test_file(path)
    assert "\n" not in str(e.value)


def test_not_json_and_missing_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"targ1": ', encoding="utf-8")
    with pytest.raises(StimulusError, match="line 1 is not valid JSON"):
        read_test_file(bad)
    with pytest.raises(StimulusError, match="test file not found"):
        read_test_file(tmp_path / "nope.yaml")


def _wefe_weat_json() -> Path | None:
    try:
        path = Path(metadata.distribution("wefe").locate_file("wefe/datasets/data/WEAT.json"))
    except metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def test_wefe_word_sets(tmp_path):
    real = _wefe_weat_json()
    path = real or _write_json(
        tmp_path / "WEAT.json",
        {
            "flowers": ["rose", "lily"],
            "insects": ["ant", "bee"],
            "pleasant_5": ["joy", "love"],
            "unpleasant_5": ["war", "pain"],
        },
    )
    t = read_test_file(f"{path}#flowers,insects,pleasant_5,unpleasant_5")
    assert (t.X.name, t.B.name) == ("flowers", "unpleasant_5")
    if real is not None:
        assert len(t.X.texts) == 25 and t.X.texts[0] == "aster"
    with pytest.raises(StimulusError, match="choose four as .*#X,Y,A,B from: flowers, insects"):
        read_test_file(path)
    with pytest.raises(StimulusError, match="has no word set 'roses'"):
        read_test_file(f"{path}#roses,insects,pleasant_5,unpleasant_5")
    with pytest.raises(StimulusError, match="name exactly four sets"):
        read_test_file(f"{path}#flowers,insects")


def test_yaml_test_file_with_images_and_sentences(tmp_path, image_dir):
    (tmp_path / "t.yaml").write_text(
        f"""
title: my test
source: me
form: sentences
X: {{name: Roses, words: [rose, tulip], class: noun, images: {image_dir}}}
Y: {{name: Bugs, words: [ant, moth], class: noun, images: [{image_dir}/img000.jpg, {image_dir}/img001.jpg]}}
A: {{from: weat1.A}}
B: {{name: Bad, texts: ["It is awful.", "It is bad."], images: ieat/valence/unpleasant}}
""",
        encoding="utf-8",
    )
    t = read_test_file(tmp_path / "t.yaml")
    assert t.name == "t" and t.title == "my test"
    assert t.X.texts[0] == "This is a rose." and len(t.X.texts) == 28
    assert t.B.texts == ("It is awful.", "It is bad.")  # literal texts are not templated
    assert t.orders() == ["all-text", "image-as-target"]  # A has no images: no all-image, no text-as-target
    assert t.X.images.ref == str(image_dir) and t.Y.images.files[0].endswith("img000.jpg")


@pytest.mark.parametrize(
    "body,message",
    [
        ("X: {name: a, words: [x, y]}\nY: {name: b, words: [x, y]}\nA: {name: c, words: [x, y]}", "has no set B"),
        ("Z: 1\n", "unknown key"),
        (
            "X: {name: a, words: [x, y], colour: red}\nY: {from: weat1.Y}\nA: {from: weat1.A}\nB: {from: weat1.B}",
            "unknown key",
        ),
        (
            "X: {name: a, words: [x]}\nY: {from: weat1.Y}\nA: {from: weat1.A}\nB: {from: weat1.B}",
            "set X \\(a\\) has only 1 item",
        ),
        ("X: {name: a, words: []}\nY: {from: weat1.Y}\nA: {from: weat1.A}\nB: {from: weat1.B}", "is empty"),
        ("X: {words: [x, y]}\nY: {from: weat1.Y}\nA: {from: weat1.A}\nB: {from: weat1.B}", "has no name"),
        ("X: {name: a}\nY: {from: weat1.Y}\nA: {from: weat1.A}\nB: {from: weat1.B}", "has no words, texts or images"),
        (
            "X: {from: weat1}\nY: {from: weat1.Y}\nA: {from: weat1.A}\nB: {from: weat1.B}",
            "must name a packaged test's set",
        ),
        (
            "X: {name: a, words: [x, y], class: verbz}\nY: {from: weat1.Y}\nA: {from: weat1.A}\nB: {from: weat1.B}",
            "unknown template class",
        ),
        (
            "X: {name: a, words: [x, y], texts: [z, w]}\nY: {from: weat1.Y}\nA: {from: weat1.A}\nB: {from: weat1.B}",
            "both 'words' and 'texts'",
        ),
        (
            "X: {name: a, words: [x, y], classes: {mass: [q]}}\nY: {from: weat1.Y}\nA: {from: weat1.A}\nB: {from: weat1.B}",
            "not among its words",
        ),
        ("X: [a, b\n", "is not valid YAML"),
        (
            "form: poems\nX: {from: weat1.X}\nY: {from: weat1.Y}\nA: {from: weat1.A}\nB: {from: weat1.B}",
            "'form' must be",
        ),
        (
            "form: sentences\nX: {name: a, words: [x, y]}\nY: {from: weat1.Y}\nA: {from: weat1.A}\nB: {from: weat1.B}",
            "has no template class",
        ),
    ],
)
def test_bad_yaml_tests(tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(StimulusError, match=message) as e:
        read_test_file(path)
    assert "\n" not in str(e.value)


_REST = "Y: {from: weat1.Y}\nA: {from: weat1.A}\nB: {from: weat1.B}\n"
_OK_X = "X: {name: a, words: [x, y], class: noun}\n"

#: malformed test files: every field of the wrong type; each must be one line naming the file, the field and the fix
MALFORMED_YAML = [
    ("X: {name: a, words: [x, y], classes: [noun]}\n" + _REST, "set X 'classes' must map template classes to words"),
    ("X: {name: a, words: [x, y], class: [noun]}\n" + _REST, "set X 'class' must be a string (got a list ['noun'])"),
    ("sentences: oops\n" + _OK_X + _REST, "'sentences' must be a mapping with 'omit' and 'source' (got a string)"),
    ("sentences: {omit: [X]}\n" + _OK_X + _REST, "'sentences' 'omit' must be a mapping with sets X, Y, A or B"),
    ("sentences: {omit: {X: x}}\n" + _OK_X + _REST, "sentences.omit.X must be a list of strings (got a string)"),
    ("sentences: {omit: {Q: [x]}}\n" + _OK_X + _REST, "'sentences' 'omit' has unknown key(s) Q"),
    ("sentences: {source: [a]}\n" + _OK_X + _REST, "'sentences' 'source' must be a string (got a list"),
    ("sentences: {omit: {X: [x]}, also: 1}\n" + _OK_X + _REST, "'sentences' has unknown key(s) also"),
    (
        "form: sentences\nsentences: {omit: {X: [q]}}\n" + _OK_X + _REST,
        "sentences.omit.X lists ['q'], not words of set X",
    ),
    ("X: {name: a, words: [x, y], plurals: [x]}\n" + _REST, "set X 'plurals' must map words to their plurals"),
    ("X: {name: a, words: [x, y], plurals: {x: [xs]}}\n" + _REST, "set X 'plurals' must map words to plurals"),
    ("X: {name: a, words: [x, y], plurals: {q: qs}}\n" + _REST, "set X plurals list ['q'], which are not among"),
    ("X: {name: a, texts: [x, y], plurals: {x: xs}}\n" + _REST, "set X has 'plurals' but no 'words'"),
    ("sentences: {published: [x]}\n" + _OK_X + _REST, "'sentences' 'published' must be a mapping with 'source'"),
    ("sentences: {published: {drop: {Q: [x]}}}\n" + _OK_X + _REST, "'published' 'drop' has unknown key(s) Q"),
    ("sentences: {published: {drop: {X: x}}}\n" + _OK_X + _REST, "sentences.published.drop.X must be a list"),
    ("reported_sign: {ghate2025: 2}\n" + _OK_X + _REST, "'reported_sign' ghate2025: must be 1 or -1 (got 2)"),
    ("reported_sign: {ghate2025: yes}\n" + _OK_X + _REST, "'reported_sign' ghate2025: must be 1 or -1 (got True)"),
    ("reported_sign: {me2030: -1}\n" + _OK_X + _REST, "'reported_sign' has unknown key(s) me2030; use ghate2025"),
    ("reported_sign: -1\n" + _OK_X + _REST, "'reported_sign' must be a mapping with a study's convention"),
    ("title: [a, b]\n" + _OK_X + _REST, "bad.yaml 'title' must be a string (got a list"),
    ("source: {a: 1}\n" + _OK_X + _REST, "bad.yaml 'source' must be a string (got a mapping"),
    ("name: [x]\n" + _OK_X + _REST, "bad.yaml 'name' must be a string (got a list"),
    ("form: [sentences]\n" + _OK_X + _REST, "'form' must be words or sentences"),
    ("1: x\n" + _OK_X + _REST, "has unknown key(s) 1;"),
    ("X: {name: [a], words: [x, y]}\n" + _REST, "set X 'name' must be a string (got a list"),
    ("X: {name: 5, words: [x, y]}\n" + _REST, "set X 'name' must be a string (got a number 5); quote it"),
    ("X: {name: '  ', words: [x, y]}\n" + _REST, "set X has no name"),
    ("X: {name: a, words: [1, 2]}\n" + _REST, "set X 'words' must be a list of strings, but holds a number 1"),
    ("X: {name: a, words: [yes, no]}\n" + _REST, "set X 'words' must be a list of strings, but holds yes/no True"),
    ("X: {name: a, words: [x, null]}\n" + _REST, "set X 'words' must be a list of strings, but holds null None"),
    ("X: {name: a, words: [x, 2017-01-01]}\n" + _REST, "but holds a date datetime.date(2017, 1, 1)"),
    ("X: {name: a, words: [x, '']}\n" + _REST, "set X 'words' holds an empty string"),
    ("X: {name: a, words: x y}\n" + _REST, "set X 'words' must be a list of strings (got a string)"),
    ("X: {name: a, words: {x: 1}}\n" + _REST, "set X 'words' must be a list of strings (got a mapping)"),
    ("X: {name: a, texts: [[x], [y]]}\n" + _REST, "set X 'texts' must be a list of strings, but holds a list"),
    ("X: {name: a, words: [x, y], classes: {mass: x}}\n" + _REST, "classes.mass must be a list of strings"),
    ("X: {name: a, words: [x, y], classes: {mass: [[x]]}}\n" + _REST, "classes.mass must be a list of strings"),
    ("X: {name: a, words: [x, y], classes: {5: [x]}}\n" + _REST, "set X uses unknown template class '5'"),
    ("X: {name: a, texts: [x, y], class: noun}\n" + _REST, "set X has template classes but no 'words'"),
    ("X: {name: a, words: [x, y], source: 5}\n" + _REST, "set X 'source' must be a string (got a number 5)"),
    ("X: {name: a, images: 5}\n" + _REST, "set X 'images' must be a folder, a manifest or a list of image files"),
    ("X: {name: a, images: [1, 2]}\n" + _REST, "set X 'images' must be a list of strings, but holds a number 1"),
    ("X: {name: a, images: {ref: [a]}}\n" + _REST, "set X 'images' 'ref' must be a string (got a list"),
    ("X: {name: a, images: {name: pics}}\n" + _REST, "set X 'images' names no images"),
    ("X: {name: a, images: {ref: a, size: 3}}\n" + _REST, "set X 'images' has unknown key(s) size"),
    ("X: {name: a, images: ''}\n" + _REST, "set X 'images' is empty"),
    ("X: {from: [weat1.X]}\n" + _REST, "set X 'from' must be a string (got a list"),
    ("X: {from: weat1.X, words: [x, y]}\n" + _REST, "set X takes its items from weat1.X, so it cannot have words"),
    ("X: {from: weat1.X, name: [a]}\n" + _REST, "set X 'name' must be a string"),
    ("X: null\n" + _REST, "set X must be a mapping with a name and words, texts or images (got null)"),
    ("X: [a, b]\n" + _REST, "set X must be a mapping with a name and words, texts or images (got a list)"),
    ("X: flowers\n" + _REST, "set X must be a mapping with a name and words, texts or images (got a string)"),
    ("- a\n- b\n", "bad.yaml must be a mapping with sets X, Y, A and B (got a list)"),
    ("", "bad.yaml must be a mapping with sets X, Y, A and B (got null)"),
    ("just text\n", "bad.yaml must be a mapping with sets X, Y, A and B (got a string)"),
]


@pytest.mark.parametrize("body,message", MALFORMED_YAML, ids=[m[:40] for _, m in MALFORMED_YAML])
def test_malformed_yaml_tests_are_one_line(tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(StimulusError) as e:
        read_test_file(path)
    assert message in str(e.value) and str(e.value).startswith(str(path))
    assert "\n" not in str(e.value)


MALFORMED_SEAT = [
    (_seat(attr1={"category": "A1", "examples": [1, 2]}), "examples must be a list of strings, but holds a number"),
    (_seat(attr1={"category": "A1", "examples": ["x", None]}), "examples must be a list of strings, but holds null"),
    (_seat(attr1={"category": "A1", "examples": None}), "attr1.examples must be a list of strings (got null)"),
    (_seat(attr1={"category": "A1", "examples": {"x": 1}}), "attr1.examples must be a list of strings (got a mapping)"),
    (_seat(targ1={"category": None, "examples": ["a", "b"]}), "category must name the set with a string (got null"),
    (_seat(targ1={"category": 5, "examples": ["a", "b"]}), "category must name the set with a string (got a num"),
    (_seat(targ1={"category": ["T"], "examples": ["a", "b"]}), "category must name the set with a string (got a list"),
    (_seat(targ1={"category": " ", "examples": ["a", "b"]}), "targ1.category must name the set with a string"),
    (_seat(targ1=["a", "b"]), "'targ1' must be an object with 'category' and 'examples' (got a list)"),
    (_seat(targ1="a b"), "'targ1' must be an object with 'category' and 'examples' (got a string)"),
    (_seat(targ1=None), "'targ1' must be an object with 'category' and 'examples' (got null)"),
    ("targ1", "is neither a SEAT test"),
    ({"flowers": ["a", 1], "bugs": ["c", "d"]}, "is a WEFE word-set file"),
]


@pytest.mark.parametrize("content,message", MALFORMED_SEAT, ids=[m[:40] for _, m in MALFORMED_SEAT])
def test_malformed_seat_files_are_one_line(tmp_path, content, message):
    path = _write_json(tmp_path / "bad.json", content)
    with pytest.raises(StimulusError) as e:
        read_test_file(path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_wefe_set_with_a_non_string_word_is_one_line(tmp_path):
    path = _write_json(tmp_path / "w.json", {"a": ["x", 1], "b": ["y", "z"], "c": ["u", "v"], "d": ["p", "q"]})
    with pytest.raises(StimulusError, match=r"set 'a' must be a list of strings, but holds a number 1"):
        read_test_file(f"{path}#a,b,c,d")
