"""Association tests as data: templates, the packaged tests, and the YAML, SEAT JSON and WEFE readers."""

from __future__ import annotations

import json
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


@needs_seat
def test_sentence_versions_match_the_published_seat_files():
    for name in ("sent-weat1", "sent-weat3"):
        ours, ref = get_test(name), read_test_file(SEAT_DIR / f"{name}.json")
        assert ours.X.texts == ref.X.texts, name
        if name == "sent-weat1":
            diff = [(a, b) for a, b in zip(ours.Y.texts, ref.Y.texts) if a != b]
            # the published file writes "mosquitos"; vlbias writes the standard "mosquitoes"
            assert len(ours.Y.texts) == len(ref.Y.texts) and len(diff) == 6
            assert all("mosquitoes" in a.lower() and "mosquitos" in b.lower() for a, b in diff)
        else:
            assert ours.Y.texts == ref.Y.texts


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
