"""Prompt templates and class-name lists: filling ``{c}``, the a/an rule, and the CLIP_benchmark file formats.

A template holds ``{c}`` where the class name goes (CLIP_benchmark's convention; ``{label}`` and ``{}`` are read as
``{c}``). With ``article="grammatical"`` an indefinite article right before the placeholder follows the class name:
"A photo of a {c}" gives "A photo of an orangutan" and "A photo of a gorilla". :func:`indefinite_article` is the
one a/an rule of every vlbias prompt (SEAT sentences and perception prompts use it too): "an" before a vowel
letter, except before a "yoo"/"wuh" sound ("a university", "a one-year-old", "a European"), and "an" before a
silent h ("an honest", "an hour"); the exceptions are data (``vlbias/data/articles.yaml``).
``article="as-written"`` leaves the template's article as written (some published protocols do, e.g. "a photo of
a indian man").

Files (CLIP_benchmark convention): a class-names file is UTF-8 text with one class per line, or JSON (a list, or an
object mapping a dataset name to its list); a templates file is text with one template per line, or JSON (a list;
an object mapping dataset name to list; or an object mapping each class name to its own list of full prompts, the
CuPL style). Lines of the form ``task:text`` in *both* files split them into several tasks (the format of
DataComp's FairFace and UTKFace files, e.g. ``race:white`` and ``race:a photo of a {c} person``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

from vlbias.errors import StimulusError
from vlbias.utils.io import load_json, load_yaml

ARTICLES = ("grammatical", "as-written")
_PLACEHOLDER = re.compile(r"\{(?:c|label|)\}")
_ARTICLE_BEFORE = re.compile(r"\b([Aa]n?)(\s+)\{c\}")


@lru_cache(maxsize=1)
def _article_rules() -> tuple[tuple[str, ...], tuple[str, ...]]:
    data = load_yaml(
        resources.files("vlbias.data").joinpath("articles.yaml").read_text(encoding="utf-8"),
        "vlbias/data/articles.yaml",
        StimulusError,
    )
    return tuple(data["an_prefixes"]), tuple(data["a_prefixes"])


def indefinite_article(phrase: str) -> str:
    """'a' or 'an' for the phrase that follows it, by the sound of its first word."""
    word = phrase.strip().lower()
    if not word:
        return "a"
    an_prefixes, a_prefixes = _article_rules()
    if word.startswith(an_prefixes):
        return "an"
    if word.startswith(a_prefixes):
        return "a"
    return "an" if word[0] in "aeiou" else "a"


def normalise_template(template: str) -> str:
    """The template with its placeholder written ``{c}``; a template without one is a user error."""
    if not _PLACEHOLDER.search(template):
        raise StimulusError(f"template {template!r} has no {{c}} placeholder for the class name; add one")
    return _PLACEHOLDER.sub("{c}", template)


def fill(template: str, label: str, article: str = "grammatical") -> str:
    """The prompt for ``label``: the placeholder replaced, and with ``grammatical`` the article fixed."""
    if article not in ARTICLES:
        raise StimulusError(f"unknown article rule {article!r}; use {' or '.join(ARTICLES)}")
    template = normalise_template(template)
    if article == "grammatical":

        def fix(m: re.Match) -> str:
            art = indefinite_article(label)
            return (art.capitalize() if m.group(1)[0].isupper() else art) + m.group(2) + "{c}"

        template = _ARTICLE_BEFORE.sub(fix, template)
    return template.replace("{c}", label)


def _read(path: Path, what: str):
    path = Path(path).expanduser()
    if not path.is_file():
        raise StimulusError(f"{what} file not found: {path}; check the path")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise StimulusError(f"{what} file {path} is not UTF-8 text; save it as UTF-8") from None
    if path.suffix.lower() == ".json":
        return load_json(text, f"{what} file {path}", StimulusError)
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _pick(data, dataset: str | None):
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()) and dataset in data:
        return data[dataset]
    return data


def read_classnames(path: str | Path, dataset: str | None = None) -> list[str]:
    """Class names from a text or JSON file (for a JSON object keyed by dataset, the ``dataset`` entry)."""
    path = Path(path)
    data = _pick(_read(path, "class names"), dataset)
    if isinstance(data, dict):
        keys = ", ".join(list(data)[:5])
        raise StimulusError(f"class names file {path} maps datasets to lists ({keys}…); pick one with its dataset name")
    if not isinstance(data, list) or not all(isinstance(x, str) and x.strip() for x in data):
        raise StimulusError(f"class names file {path} must list non-empty strings, one class per line")
    names = [x.strip() for x in data]
    if not names:
        raise StimulusError(f"class names file {path} lists no classes")
    dup = sorted({x for x in names if names.count(x) > 1})
    if dup:
        raise StimulusError(f"class names file {path} lists {', '.join(map(repr, dup))} twice; classes must differ")
    return names


def read_templates(path: str | Path, dataset: str | None = None) -> list[str] | dict[str, list[str]]:
    """Templates (a list, each with ``{c}``) or per-class prompts (a dict class -> prompts) from a file."""
    path = Path(path)
    data = _pick(_read(path, "templates"), dataset)
    if isinstance(data, list):
        if not data or not all(isinstance(x, str) for x in data):
            raise StimulusError(f"templates file {path} must list templates with {{c}}, one per line")
        return [normalise_template(x) for x in data]
    if isinstance(data, dict) and data and all(isinstance(v, list) and v for v in data.values()):
        return {str(k): [str(p) for p in v] for k, v in data.items()}
    raise StimulusError(f"templates file {path} must hold a list of templates or an object of class -> prompts")


def split_tasks(classnames: list[str], templates: list[str]) -> dict[str, tuple[list[str], list[str]]] | None:
    """Split ``task:text`` lines into tasks; None when the files do not use the prefix convention."""
    pattern = re.compile(r"^([A-Za-z_][\w\-]*):(.+)$")
    cm = [pattern.match(c) for c in classnames]
    tm = [pattern.match(t) for t in templates]
    if not (all(cm) and all(tm)):
        return None
    tasks: dict[str, tuple[list[str], list[str]]] = {}
    for m in cm:
        tasks.setdefault(m.group(1), ([], []))[0].append(m.group(2).strip())
    for m in tm:
        if m.group(1) not in tasks:
            raise StimulusError(f"template task {m.group(1)!r} has no class names with the prefix {m.group(1)}:")
        tasks[m.group(1)][1].append(normalise_template(m.group(2).strip()))
    empty = [t for t, (_, tpl) in tasks.items() if not tpl]
    if empty:
        raise StimulusError(f"task(s) {', '.join(empty)} have class names but no templates; add task:template lines")
    return tasks
