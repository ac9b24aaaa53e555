"""Word lists and prompt templates of the social-perception probe, read from data files.

Three kinds of file, packaged in ``vlbias/data/perception/`` and addable by users (pass a path where a name goes):

- a **lexicon** names scales and their words: YAML ``{name, title, source, scales: {SCALE: [word, ...]}}``, or a
  CSV with columns ``scale,word``. Packaged: ``scm`` (warm, competent) and ``abc`` (agency+/-, beliefs+/-,
  communion+/-). A scale's score is the mean Delta over its words.
- the **control** words: YAML ``{name, neutral: "", words: {WORD: {COLUMN: [labels]}}}``. The neutral word (the
  empty word) gives the prompt every Delta is measured against; ``marks`` say which images a word names
  (``white: {race: [white]}``) for the markedness analysis. Packaged: ``control``.
- **templates**: YAML ``{name, source, templates: [...]}`` or a text file with one template per line; each holds
  ``{w}`` once. Packaged: ``hausladen2025``.

Prompts: ``{w}`` is replaced by the word; for the empty word, the word and one adjacent space drop out ("A photo
of a {w} person." -> "A photo of a person."), as in the study. ``article="as-written"`` (the replication preset)
keeps the template's "a" before every word as the study did ("A photo of a intelligent person.");
``article="grammatical"`` writes "an" before a vowel sound ("an intelligent", "an honest", "a high-status"), by
the a/an rule that every vlbias prompt shares (:func:`vlbias.stimuli.prompts.indefinite_article`).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from vlbias.errors import StimulusError
from vlbias.stimuli.prompts import ARTICLES, indefinite_article
from vlbias.utils.io import check_columns, load_yaml, stable_hash
from vlbias.utils.provenance import entry

_DATA = "vlbias.data.perception"


class LexiconError(StimulusError):
    """A lexicon, control-word or template file that cannot be used."""


@dataclass(frozen=True)
class Lexicon:
    name: str
    scales: dict[str, tuple[str, ...]]
    title: str = ""
    source: str = ""
    origin: str = ""  # "package" or the file path

    @property
    def words(self) -> list[str]:
        return list(dict.fromkeys(w for ws in self.scales.values() for w in ws))


@dataclass(frozen=True)
class ControlWords:
    name: str
    neutral: str
    words: dict[str, dict[str, tuple[str, ...]]]  # word -> {column: labels it names}
    source: str = ""
    origin: str = ""

    def marking(self, column: str) -> dict[str, str]:
        """label -> the control word that names it, for one column of the face table (e.g. race)."""
        out: dict[str, str] = {}
        for word, marks in self.words.items():
            for label in marks.get(column, ()):
                out.setdefault(label, word)
        return out


@dataclass(frozen=True)
class Templates:
    name: str
    templates: tuple[str, ...]
    source: str = ""
    origin: str = ""


# ---------------------------------------------------------------------------------------------------- reading


def _packaged(kind: str) -> dict[str, object]:
    folder = resources.files(_DATA).joinpath(kind)
    return {p.name.rsplit(".", 1)[0]: p for p in folder.iterdir() if p.name.endswith((".yaml", ".yml", ".csv", ".txt"))}


def packaged_lexicons() -> list[str]:
    return sorted(n for n in _packaged("lexicons") if n != "control")


def packaged_templates() -> list[str]:
    return sorted(_packaged("templates"))


def _read(name_or_path: str | Path, kind: str, what: str) -> tuple[str, str, str]:
    """(text, file name, origin) of a packaged name or a file path."""
    text_name = str(name_or_path)
    packaged = _packaged(kind)
    if text_name in packaged and not Path(text_name).exists():
        res = packaged[text_name]
        return res.read_text(encoding="utf-8"), res.name, "package"
    p = Path(text_name).expanduser()
    if not p.is_file():
        known = ", ".join(sorted(n for n in packaged if not (kind == "lexicons" and n == "control")))
        raise LexiconError(
            f"{what} {text_name!r} is neither a packaged one ({known}) nor a file; check the name or path"
        )
    try:
        return p.read_text(encoding="utf-8"), p.name, str(p)
    except UnicodeDecodeError:
        raise LexiconError(f"{what} file {p} is not UTF-8 text; save it as UTF-8") from None


def _yaml(text: str, source: str, what: str) -> dict:
    data = load_yaml(text, f"{what} file {source}", LexiconError)
    if not isinstance(data, dict):
        raise LexiconError(f"{what} file {source} must be a YAML mapping with a name and its entries")
    return data


_BAD_WORD = re.compile(r"[{}\n\r\t]")


def _check_word(word, source: str, where: str) -> str:
    if not isinstance(word, (str, int, float)) or isinstance(word, bool):
        raise LexiconError(f"{source}: {where} holds {word!r}, which is not a word; list words as strings")
    w = str(word)
    if not w.strip() or w != w.strip() or _BAD_WORD.search(w):
        raise LexiconError(
            f"{source}: {where} holds {w!r}; a word must be non-empty, without surrounding spaces, braces or tabs"
        )
    return w


def load_lexicon(name_or_path: str | Path) -> Lexicon:
    """A packaged lexicon by name (scm, abc) or a user's YAML/CSV file."""
    text, fname, origin = _read(name_or_path, "lexicons", "lexicon")
    if fname.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        check_columns(reader.fieldnames or [], f"lexicon {fname}", LexiconError)
        rows = list(reader)
        header = [h.strip().lower() for h in (rows[0].keys() if rows else [])]
        if "scale" not in header or "word" not in header:
            raise LexiconError(f"lexicon {fname}: a CSV lexicon needs the columns scale,word")
        scales: dict[str, list[str]] = {}
        for i, row in enumerate(rows, 2):
            r = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            scales.setdefault(_check_word(r["scale"], fname, f"line {i} scale"), []).append(
                _check_word(r["word"], fname, f"line {i} word")
            )
        data = {"name": Path(fname).stem, "scales": scales}
    else:
        data = _yaml(text, fname, "lexicon")
    raw = data.get("scales")
    if not isinstance(raw, dict) or not raw:
        raise LexiconError(f"lexicon {fname} has no scales; give 'scales:' with SCALE: [word, ...] entries")
    scales_out: dict[str, tuple[str, ...]] = {}
    for scale, words in raw.items():
        scale = _check_word(scale, fname, "a scale name")
        if not isinstance(words, list) or not words:
            raise LexiconError(f"lexicon {fname}: scale {scale!r} must list at least one word")
        ws = [_check_word(w, fname, f"scale {scale!r}") for w in words]
        dup = sorted({w for w in ws if ws.count(w) > 1})
        if dup:
            raise LexiconError(f"lexicon {fname}: scale {scale!r} lists {', '.join(dup)} twice; list each word once")
        scales_out[scale] = tuple(ws)
    name = str(data.get("name") or Path(fname).stem)
    return Lexicon(name, scales_out, str(data.get("title", "")), str(data.get("source", "")).strip(), origin)


def load_control(name_or_path: str | Path = "control") -> ControlWords:
    text, fname, origin = _read(name_or_path, "lexicons", "control-word list")
    data = _yaml(text, fname, "control-word list")
    neutral = data.get("neutral", "")
    if neutral is None:
        neutral = ""
    if not isinstance(neutral, str) or _BAD_WORD.search(neutral):
        raise LexiconError(f"control-word list {fname}: 'neutral' must be a word or \"\" (the empty word)")
    raw = data.get("words") or {}
    if not isinstance(raw, dict):
        raise LexiconError(
            f"control-word list {fname}: 'words' must map each word to what it names, e.g. white: {{race: [white]}}"
        )
    words: dict[str, dict[str, tuple[str, ...]]] = {}
    for word, marks in raw.items():
        word = _check_word(word, fname, "'words'")
        marks = marks or {}
        if not isinstance(marks, dict):
            raise LexiconError(
                f"control-word list {fname}: {word!r} must map columns to labels, e.g. {{race: [white]}}"
            )
        words[word] = {
            str(col): tuple(str(v) for v in (vals if isinstance(vals, list) else [vals])) for col, vals in marks.items()
        }
    if neutral in words:
        raise LexiconError(f"control-word list {fname}: the neutral word {neutral!r} is also listed under 'words'")
    return ControlWords(str(data.get("name") or Path(fname).stem), neutral, words, str(data.get("source", "")), origin)


def load_templates(name_or_path: str | Path = "hausladen2025") -> Templates:
    text, fname, origin = _read(name_or_path, "templates", "template set")
    if fname.lower().endswith(".txt"):
        items = [line.rstrip("\n") for line in text.splitlines() if line.strip() and not line.startswith("#")]
        data = {"name": Path(fname).stem, "templates": items}
    else:
        data = _yaml(text, fname, "template set")
    items = data.get("templates")
    if not isinstance(items, list) or not items:
        raise LexiconError(f"template set {fname} lists no templates; give 'templates:' with strings holding {{w}}")
    out = []
    for t in items:
        if not isinstance(t, str) or t.count("{w}") != 1 or re.search(r"\{(?!w\})", t):
            raise LexiconError(
                f"template set {fname}: {t!r} must hold the placeholder {{w}} exactly once (and no other braces)"
            )
        out.append(t)
    if len(set(out)) != len(out):
        raise LexiconError(f"template set {fname} lists a template twice; list each once")
    return Templates(str(data.get("name") or Path(fname).stem), tuple(out), str(data.get("source", "")), origin)


# ---------------------------------------------------------------------------------------------------- prompts

_ARTICLE = re.compile(r"(?<![A-Za-z])([Aa])( \{w\})")


def fill(template: str, word: str, article: str = "as-written") -> str:
    """The prompt for ``word`` (empty: the neutral prompt) from ``template``."""
    if article not in ARTICLES:
        raise LexiconError(f"unknown article mode {article!r}; use one of {', '.join(ARTICLES)}")
    if not word:
        for pattern in ("{w} ", " {w}", "{w}"):
            if pattern in template:
                return template.replace(pattern, "", 1)
    if article == "grammatical" and indefinite_article(word) == "an":
        template = _ARTICLE.sub(lambda m: ("An" if m.group(1) == "A" else "an") + m.group(2), template)
    return template.replace("{w}", word)


@dataclass
class PromptSet:
    """Every word (neutral first) with every template: ``prompts[i * T + t]`` is word i with template t."""

    words: list[str]
    templates: list[str]
    article: str
    prompts: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.prompts = [fill(t, w, self.article) for w in self.words for t in self.templates]

    @property
    def n_templates(self) -> int:
        return len(self.templates)

    def unique_prompts(self) -> list[str]:
        return list(dict.fromkeys(self.prompts))


@dataclass
class Vocabulary:
    """The lexicons, control words and templates of one run, resolved into words, scales and prompts."""

    lexicons: list[Lexicon]
    control: ControlWords
    templates: Templates
    article: str = "as-written"

    def __post_init__(self) -> None:
        if self.article not in ARTICLES:
            raise LexiconError(f"unknown article mode {self.article!r}; use one of {', '.join(ARTICLES)}")
        seen: dict[str, str] = {}
        for lex in self.lexicons:
            for scale in lex.scales:
                if scale in seen:
                    raise LexiconError(
                        f"scale {scale!r} is defined by both lexicon {seen[scale]} and {lex.name}; rename one"
                    )
                seen[scale] = lex.name

    @property
    def scales(self) -> dict[str, tuple[str, ...]]:
        return {s: ws for lex in self.lexicons for s, ws in lex.scales.items()}

    @property
    def words(self) -> list[str]:
        """Neutral word first, then the control words, then every lexicon word once."""
        ws = [self.control.neutral, *self.control.words]
        for lex in self.lexicons:
            ws += lex.words
        return list(dict.fromkeys(ws))

    def prompt_set(self) -> PromptSet:
        return PromptSet(self.words, list(self.templates.templates), self.article)

    def describe(self) -> list[dict]:
        """Provenance entries for the run record."""
        out = [
            entry("lexicon", lex.name, origin=lex.origin, source=lex.source, sha256=stable_hash(lex.scales))
            for lex in self.lexicons
        ]
        words = {"neutral": self.control.neutral, "words": self.control.words}
        out.append(entry("control", self.control.name, origin=self.control.origin, sha256=stable_hash(words)))
        out.append(
            entry(
                "templates",
                self.templates.name,
                origin=self.templates.origin,
                sha256=stable_hash(list(self.templates.templates)),
                article=self.article,
            )
        )
        return out
