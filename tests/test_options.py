"""The options parser (vlbias.utils.options): one reading of every value, from every entry point."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlbias.errors import DeprecatedOption, OptionError
from vlbias.utils import options as opt_mod
from vlbias.utils.options import FrozenMap, Options, Preset, option, option_table


class Demo(Options):
    OWNER = "demo"
    DEPRECATED = {"boot": "n_bootstrap"}
    PRESETS = "demo"

    preset: str | None = option(None, "a preset")
    n_bootstrap: int = option(100, "replicates", min=0)
    confidence: float = option(0.95, "level", min=0, max=1, min_open=True, max_open=True)
    flag: bool = option(False, "a switch")
    words: tuple[str, ...] = option(("a", "b"), "words")
    mode: Literal["x", "y"] = option("x", "a mode")
    budget: int | Literal["exact"] = option(1000, "a budget", min=1)
    gaps: Mapping[str, float] = option({"age": 1.1, "smiling": 1.1}, "gaps", min=0)
    folder: str | None = option(None, "a folder", path=True)
    groups: tuple[tuple[str, ...], ...] | None = option(None, "groupings")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"n_bootstrap": "200"}, {"n_bootstrap": 200}),
        ({"n_bootstrap": 2e3}, {"n_bootstrap": 2000}),
        ({"n_bootstrap": "1_000"}, {"n_bootstrap": 1000}),
        ({"flag": "true"}, {"flag": True}),
        ({"flag": "No"}, {"flag": False}),
        ({"flag": 0}, {"flag": False}),
        ({"words": "c, d"}, {"words": ("c", "d")}),
        ({"words": ["c", "d,e"]}, {"words": ("c", "d", "e")}),
        ({"mode": "Y"}, {"mode": "y"}),
        ({"budget": "exact"}, {"budget": "exact"}),
        ({"budget": "EXACT"}, {"budget": "exact"}),
        ({"budget": "5e3"}, {"budget": 5000}),
        ({"gaps": {"age": 2}}, {"gaps": {"age": 2.0, "smiling": 1.1}}),
        ({"gaps": ["age=2", "pose=0.5"]}, {"gaps": {"age": 2.0, "smiling": 1.1, "pose": 0.5}}),
        ({"groups": "race;race,gender"}, {"groups": (("race",), ("race", "gender"))}),
        ({"groups": ""}, {"groups": None}),
    ],
)
def test_values_are_read_the_same_way_whatever_form_they_come_in(given, expected):
    o = Demo.parse(given)
    for k, v in expected.items():
        assert getattr(o, k) == v


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"n_bootstrap": 2.5}, "demo option n_bootstrap=2.5: must be a whole number ≥ 0"),
        ({"n_bootstrap": True}, "demo option n_bootstrap=True: must be a whole number ≥ 0"),
        ({"n_bootstrap": -1}, "demo option n_bootstrap=-1: must be a whole number ≥ 0"),
        ({"confidence": 1}, "demo option confidence=1: must be a number > 0 and < 1"),
        ({"confidence": "nan"}, "demo option confidence='nan': must be a number > 0 and < 1"),
        ({"flag": "maybe"}, "demo option flag='maybe': must be true or false"),
        ({"mode": "z"}, "demo option mode='z': must be x or y"),
        ({"budget": 0}, "demo option budget=0: must be a whole number ≥ 1 or exact"),
        ({"gaps": {"age": -1}}, "demo option gaps.age=-1: must be a number ≥ 0"),
        ({"gaps": "age"}, "demo option gaps='age': 'age' must be KEY=VALUE"),
        ({"n_bootstrp": 1}, "demo has no option 'n_bootstrp'; did you mean n_bootstrap?"),
        ({"boot": 1, "n_bootstrap": 2}, "demo: give n_bootstrap only (boot is its old name)"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_option(given, message):
    with pytest.raises(OptionError) as e:
        Demo.parse(given)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_command_line_messages_name_the_flag():
    with pytest.raises(OptionError, match=r"^--n-bootstrap '-3': must be a whole number ≥ 0$"):
        Demo.parse({"n_bootstrap": "-3"}, flags=True)


def test_deprecated_names_work_for_now_with_a_warning():
    with pytest.warns(DeprecatedOption, match="demo option boot is deprecated and will be removed; use n_bootstrap"):
        assert Demo.parse({"boot": 7}).n_bootstrap == 7
    assert Demo.parse({"boot": 7}, warn=False).n_bootstrap == 7  # reading old records back: quietly


def test_options_are_frozen_and_canonical(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    o = Demo.parse(words="c", gaps={"age": 3}, folder="data/../data/x", groups=[["race"], "gender"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.flag = True
    assert isinstance(o.gaps, FrozenMap) and hash(o) == hash(Demo.parse(o.to_dict()))
    assert o.folder == str(tmp_path / "data" / "x")  # absolute and normalised against the working directory
    assert Demo.parse(folder="x", base=tmp_path / "cfg").folder == str(tmp_path / "cfg" / "x")
    assert Demo.parse(o.to_dict()) == o and Demo.parse(o) is o
    assert o.changed() == {"words": ["c"], "gaps": {"age": 3.0, "smiling": 1.1}, "folder": o.folder,
                           "groups": [["race"], ["gender"]]}  # fmt: skip
    assert o.replace(flag="yes").flag is True


@given(
    n=st.integers(0, 10**9),
    c=st.floats(0.001, 0.999),
    words=st.lists(st.text("abcxyz", min_size=1, max_size=5), min_size=1, max_size=4),
    gap=st.floats(0, 10, allow_nan=False),
)
def test_the_command_lines_strings_and_python_values_give_equal_options(n, c, words, gap):
    python = Demo.parse(n_bootstrap=n, confidence=c, words=words, gaps={"age": gap})
    strings = Demo.parse(n_bootstrap=str(n), confidence=repr(c), words=",".join(words), gaps=(f"age={gap!r}",))
    assert python == strings and python.to_dict() == strings.to_dict()


def test_a_preset_is_a_named_set_of_options_that_given_options_override(monkeypatch):
    study = Preset("study2025", "A study", "Someone et al. 2025", {"n_bootstrap": 5, "mode": "y"})
    monkeypatch.setattr(opt_mod, "preset_names", lambda cls: ["study2025"])
    monkeypatch.setattr(opt_mod, "preset", lambda cls, name: study if name == "study2025" else opt_mod.preset(cls, name))
    o = Demo.parse(preset="study2025")
    assert (o.preset, o.n_bootstrap, o.mode) == ("study2025", 5, "y")
    assert Demo.parse(preset="study2025", n_bootstrap=9).n_bootstrap == 9
    assert Demo.parse(o.to_dict()) == o  # the record keeps the preset and every value: it parses back the same


def test_an_unknown_preset_names_the_known_ones():
    from vlbias.audits.eat import EATOptions

    with pytest.raises(OptionError, match="eat has no preset 'nobody2099'; its presets: "):
        EATOptions.parse(preset="nobody2099")


def test_the_option_table_is_the_declaration():
    table = option_table(Demo).splitlines()
    assert table[0] == "| option | flag | default | meaning |"
    assert "| `budget` | `--budget` | `1000` | a budget |" in table
    assert "| `gaps` | `--gaps` | `age=1.1 smiling=1.1` | gaps |" in table
    assert table[-1].startswith("Deprecated names") and "`boot` → `n_bootstrap`" in table[-1]
