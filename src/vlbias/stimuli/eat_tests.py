"""Association tests as data: the packaged WEAT/SEAT tests, and readers for test files in three formats.

A test has four stimulus sets, X and Y (targets) and A and B (attributes). Each set has a name and texts (words,
or sentences made from words with templates, or literal sentences), images (a folder, a list of files or a CSV
manifest), or both; a set with both takes part in cross-modal orders.

Formats read by :func:`read_test_file`:

- vlbias YAML (``.yaml``/``.yml``), the format of the packaged tests in ``vlbias/data/eat/tests``::

      title: ...
      source: ...                       # the citation
      form: words                       # or "sentences": expand words with the bleached templates
      X:
        name: Flowers
        words: [aster, clover]          # or texts: [literal sentences]
        class: noun                     # template class of the words (templates.yaml); per-word: classes
        classes: {mass: [clover]}
        plurals: {mosquito: mosquitos}  # plurals the sentence version writes other than plural() does
        images: flowers/                # optional: folder, [files] or manifest.csv, relative to this file;
                                        # "ieat/<test>/<category>" names a set of the fetched iEAT stimuli
      Y: ...
      A: {from: weat1.A}                # a set of a packaged test
      B: ...
      sentences:                        # the sentence version: its source, words it leaves out (a set
        source: ...                     # taken with from: keeps them), and the sentences the published
        omit: {X: [word]}               # version lacks (``published: {source, drop: {X: [sentences]}}``)

- SEAT JSON (May et al. 2019): ``{"targ1": {"category": name, "examples": [...]}, "targ2", "attr1", "attr2"}``.
- WEFE word sets (``WEAT.json`` of the WEFE package): ``{set_name: [words]}``; choose the four sets as
  ``FILE#x_set,y_set,a_set,b_set``.

Packaged tests are named by their file (``weat1`` ... ``weat10``, ``weat3b``, ...); ``sent-<name>`` is the
sentence version of each, made with the templates and word classes of May et al.'s (2019) generator.
``get_test(name, published=True)`` gives a sentence version as May et al. released it, where their generator cut a
target set at random to the other's size (``sent-weat2``: 330 of the 350 instrument sentences).

Every field of a file is checked for its type before it is used (names and classes strings, word lists lists of
strings, ``classes`` and ``sentences`` mappings, ...): a malformed file is one :class:`StimulusError` that names the
file, the set and the field, never a traceback.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from vlbias.errors import StimulusError
from vlbias.stimuli.prompts import indefinite_article
from vlbias.utils.io import load_json, load_yaml

ROLES = ("X", "Y", "A", "B")
ORDERS = ("all-text", "all-image", "image-as-target", "text-as-target")
_SEAT_KEYS = {"targ1": "X", "targ2": "Y", "attr1": "A", "attr2": "B"}
_SET_KEYS = {"name", "words", "texts", "class", "classes", "plurals", "images", "from", "source"}
_TEST_KEYS = {"name", "title", "source", "form", "sentences", "reported_sign", *ROLES}
#: sign conventions a study reports effect sizes in (``reported_sign: {ghate2025: -1}`` of a test)
SIGN_CONVENTIONS = ("ghate2025",)


# ---------------------------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class ImageSide:
    """Where a set's images are: ``ref`` is a folder or manifest (``ieat/...`` for the iEAT store), or ``files``."""

    ref: str | None = None
    root: Path | None = None  # folder that relative refs and files are relative to
    files: tuple[str, ...] | None = None
    key: str | None = None  # name under which the user may supply the set (image_sets option)
    missing: str | None = None  # why the set is known to be unavailable

    def identity(self) -> str:
        if self.files is not None:
            return "files:" + "|".join(self.files)
        return f"ref:{self.ref}:{self.key}"


@dataclass(frozen=True)
class StimulusSet:
    name: str
    texts: tuple[str, ...] | None = None
    words: tuple[str, ...] | None = None  # the words the texts were made from (None: literal texts)
    images: ImageSide | None = None
    word_class: str | None = None
    classes: tuple[tuple[str, str], ...] = ()  # (word, class) overrides
    plurals: tuple[tuple[str, str], ...] = ()  # (word, plural) overrides of plural()
    omit: tuple[str, ...] = ()  # words the sentence version leaves out (they travel with the set through from:)


@dataclass(frozen=True)
class EATTest:
    name: str
    X: StimulusSet
    Y: StimulusSet
    A: StimulusSet
    B: StimulusSet
    title: str = ""
    source: str = ""
    origin: str = ""  # file or package resource it was read from
    #: (convention, +1 or -1): the sign a study gives this test's effect sizes in its tables (Ghate et al. report
    #: minus d for gender)
    reported_sign: tuple[tuple[str, int], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def sign(self, convention: str | None) -> int:
        """The sign of this test's effect sizes under a study's convention (+1 when it does not flip them)."""
        return dict(self.reported_sign).get(convention or "", 1)

    def sets(self) -> dict[str, StimulusSet]:
        return {r: getattr(self, r) for r in ROLES}

    def orders(self) -> list[str]:
        """The orders this test can run in, given which sets have texts and images."""
        t = {r: s.texts is not None for r, s in self.sets().items()}
        i = {r: s.images is not None for r, s in self.sets().items()}
        out = []
        if all(t.values()):
            out.append("all-text")
        if all(i.values()):
            out.append("all-image")
        if i["X"] and i["Y"] and t["A"] and t["B"]:
            out.append("image-as-target")
        if t["X"] and t["Y"] and i["A"] and i["B"]:
            out.append("text-as-target")
        return out


# ---------------------------------------------------------------------------------------------------- templates
@lru_cache(maxsize=1)
def templates() -> dict[str, Any]:
    text = resources.files("vlbias.data").joinpath("eat/templates.yaml").read_text(encoding="utf-8")
    return load_yaml(text, "vlbias/data/eat/templates.yaml", StimulusError)


def template_classes() -> list[str]:
    return sorted(templates()["classes"])


def plural(term: str) -> str:
    """The plural of a word or phrase (its last word inflected)."""
    *head, last = term.split(" ")
    irregular = templates()["plurals"]
    low = last.lower()
    if low in irregular:
        out = irregular[low]
        out = out[0].upper() + out[1:] if last[:1].isupper() else out
    elif low.endswith(("s", "x", "z", "ch", "sh")):
        out = last + "es"
    elif low.endswith("y") and low[-2:-1] not in set("aeiou"):
        out = last[:-1] + "ies"
    else:
        out = last + "s"
    return " ".join([*head, out])


def _cap(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def sentences_for(word: str, word_class: str, plurals: dict[str, str] | None = None) -> list[str]:
    """The bleached sentences of one word in its template class (``plurals``: spellings that replace
    :func:`plural`'s)."""
    classes = templates()["classes"]
    if word_class not in classes:
        raise StimulusError(f"unknown template class {word_class!r}; use one of {', '.join(template_classes())}")
    singulars = templates()["singulars"]
    if word.lower() in singulars:  # a word given in the plural
        single, many = singulars[word.lower()], word
    else:
        single, many = word, (plurals or {}).get(word) or plural(word)
    article = indefinite_article(single)
    return [_cap(t.format(word=single, words=many, a=article)) for t in classes[word_class]]


def expand(
    words: tuple[str, ...], default_class: str | None, classes: dict[str, str], plurals: dict[str, str] | None = None
) -> list[str]:
    out: list[str] = []
    for w in words:
        cls = classes.get(w, default_class)
        if cls is None:
            raise StimulusError(f"word {w!r} has no template class; give the set a 'class' or list it in 'classes'")
        out += sentences_for(w, cls, plurals)
    return out


# ---------------------------------------------------------------------------------------------------- YAML tests
def _yaml_load(text: str, origin: str) -> Any:
    return load_yaml(text, origin, StimulusError)


def _str_list(value: Any, origin: str, what: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise StimulusError(f"{origin}: {what} must be a list of strings (got {_kind(value)})")
    odd = [x for x in value if not isinstance(x, str)]
    if odd:
        raise StimulusError(
            f"{origin}: {what} must be a list of strings, but holds {_kind(odd[0])} {odd[0]!r}; quote items that YAML "
            "reads as numbers, dates, yes/no or null"
        )
    items = tuple(x.strip() for x in value)
    if any(not x for x in items):
        raise StimulusError(f"{origin}: {what} holds an empty string")
    return items


def _check_size(items: tuple[str, ...] | None, origin: str, role: str, name: str) -> None:
    if items is None:
        return
    if not items:
        raise StimulusError(f"{origin}: set {role} ({name}) is empty; list at least two items")
    if len(items) < 2:
        raise StimulusError(
            f"{origin}: set {role} ({name}) has only 1 item; an association test needs at least 2 per set"
        )


def _image_side(value: Any, base: Path | None, origin: str, role: str) -> ImageSide:
    where = f"{origin}: set {role} 'images'"
    if isinstance(value, str):
        if not value.strip():
            raise StimulusError(f"{where} is empty; give a folder, a manifest or a list of image files")
        return ImageSide(ref=value, root=base)
    if isinstance(value, list):
        return ImageSide(files=_str_list(value, origin, f"set {role} 'images'"), root=base)
    if isinstance(value, dict):
        _check_mapping(value, {"ref", "key", "missing", "name"}, where, "a ref")
        fields = {k: _opt_str(value, k, where) for k in ("ref", "key", "missing", "name")}
        if not (fields["ref"] or fields["key"] or fields["missing"]):
            raise StimulusError(f"{where} names no images; give 'ref' (a folder or manifest) or 'key'")
        return ImageSide(ref=fields["ref"], root=base, key=fields["key"], missing=fields["missing"])
    raise StimulusError(f"{where} must be a folder, a manifest or a list of image files (got {_kind(value)})")


def _kind(value: Any) -> str:
    """What a YAML or JSON value is, for messages: 'a list', 'a number', 'null'..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "yes/no"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _check_mapping(raw: Any, known: set[str], where: str, what: str) -> None:
    if not isinstance(raw, dict):
        raise StimulusError(f"{where} must be a mapping with {what} (got {_kind(raw)})")
    unknown = {str(k) for k in raw if k not in known}
    if unknown:
        raise StimulusError(f"{where} has unknown key(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(known))}")


def _opt_str(raw: dict, key: str, where: str) -> str | None:
    """``raw[key]``: a string, or None when absent or null (``key:`` with no value); anything else is an error."""
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        hint = "" if isinstance(value, (list, dict)) else "; quote it"
        raise StimulusError(f"{where} '{key}' must be a string (got {_kind(value)} {value!r}){hint}")
    return value


def _parse_set(raw: Any, role: str, origin: str, base: Path | None, resolving: tuple[str, ...]) -> StimulusSet:
    where = f"{origin}: set {role}"
    _check_mapping(raw, _SET_KEYS, where, "a name and words, texts or images")
    _opt_str(raw, "source", where)
    if "from" in raw:
        ref = _opt_str(raw, "from", where)
        m = re.fullmatch(r"([\w.-]+)\.([XYAB])", ref or "")
        if not m:
            raise StimulusError(f"{where} 'from: {ref}' must name a packaged test's set, e.g. weat1.A")
        others = sorted(set(raw) - {"from", "name", "source"})
        if others:
            raise StimulusError(f"{where} takes its items from {ref}, so it cannot have {', '.join(others)}; drop them")
        if m.group(1) in resolving:
            raise StimulusError(f"{where} 'from: {ref}' refers back to itself")
        base_set = _packaged_words_test(m.group(1), resolving).sets()[m.group(2)]
        name = _opt_str(raw, "name", where)
        return replace(base_set, name=name.strip() if name and name.strip() else base_set.name)
    name = _opt_str(raw, "name", where)
    if not name or not name.strip():
        raise StimulusError(f"{where} has no name; give it one with 'name:'")
    words = _str_list(raw["words"], origin, f"set {role} 'words'") if "words" in raw else None
    texts = _str_list(raw["texts"], origin, f"set {role} 'texts'") if "texts" in raw else None
    if words is not None and texts is not None:
        raise StimulusError(f"{where} has both 'words' and 'texts'; give one of them")
    images = _image_side(raw["images"], base, origin, role) if "images" in raw else None
    if words is None and texts is None and images is None:
        raise StimulusError(f"{where} ({name}) has no words, texts or images")
    _check_size(words, origin, role, name)
    _check_size(texts, origin, role, name)
    word_class = _opt_str(raw, "class", where)
    raw_classes = raw.get("classes") or {}
    if not isinstance(raw_classes, dict):
        raise StimulusError(
            f"{where} 'classes' must map template classes to words, e.g. classes: {{mass: [love]}} "
            f"(got {_kind(raw_classes)}); for one class of every word use 'class:'"
        )
    if words is None and (word_class is not None or raw_classes):
        raise StimulusError(f"{where} has template classes but no 'words'; classes apply to words only")
    classes: dict[str, str] = {}
    for cls, members in raw_classes.items():
        for w in _str_list(members, origin, f"set {role} classes.{cls}"):
            classes[w] = str(cls)
    known = set(templates()["classes"])
    for cls in sorted({word_class, *classes.values()} - {None}):
        if cls not in known:
            raise StimulusError(f"{where} uses unknown template class {cls!r}; use one of {sorted(known)}")
    if words is not None:
        stray = set(classes) - set(words)
        if stray:
            raise StimulusError(f"{where} classes list {sorted(stray)}, which are not among its words")
    plurals = _plurals(raw.get("plurals"), words, where)
    return StimulusSet(
        name=name.strip(),
        texts=texts if texts is not None else words,
        words=words,
        images=images,
        word_class=word_class,
        classes=tuple(sorted(classes.items())),
        plurals=plurals,
    )


def _plurals(raw: Any, words: tuple[str, ...] | None, where: str) -> tuple[tuple[str, str], ...]:
    """A set's ``plurals: {word: plural}``, checked: string to string, for words of the set."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise StimulusError(
            f"{where} 'plurals' must map words to their plurals, e.g. {{knife: knifes}} (got {_kind(raw)})"
        )
    if words is None:
        raise StimulusError(f"{where} has 'plurals' but no 'words'; plurals apply to words only")
    out = {}
    for w, pl in raw.items():
        if not isinstance(w, str) or not isinstance(pl, str) or not pl.strip():
            raise StimulusError(f"{where} 'plurals' must map words to plurals (strings); got {w!r}: {pl!r}")
        out[w.strip()] = pl.strip()
    stray = set(out) - set(words)
    if stray:
        raise StimulusError(f"{where} plurals list {sorted(stray)}, which are not among its words")
    return tuple(sorted(out.items()))


def _sentences_spec(raw: Any, origin: str) -> dict[str, Any]:
    """The ``sentences:`` entry of a test, checked: {source: text, omit: {role: [words]}, published: {source: text,
    drop: {role: [sentences]}}}."""
    if raw is None:
        return {}
    where = f"{origin}: 'sentences'"
    _check_mapping(raw, {"source", "omit", "published"}, where, "'omit' and 'source'")
    spec: dict[str, Any] = {}
    source = _opt_str(raw, "source", where)
    if source:
        spec["source"] = source
    omit = raw.get("omit")
    if omit is not None:
        _check_mapping(omit, set(ROLES), f"{where} 'omit'", "sets X, Y, A or B and the words to leave out")
        spec["omit"] = {r: _str_list(v, origin, f"sentences.omit.{r}") for r, v in omit.items() if v is not None}
    published = raw.get("published")
    if published is not None:
        _check_mapping(published, {"source", "drop"}, f"{where} 'published'", "'source' and 'drop'")
        drop = published.get("drop") or {}
        _check_mapping(drop, set(ROLES), f"{where} 'published' 'drop'", "sets X, Y, A or B and the sentences")
        spec["published"] = {
            "source": _opt_str(published, "source", f"{where} 'published'") or "",
            "drop": {r: _str_list(v, origin, f"sentences.published.drop.{r}") for r, v in drop.items() if v},
        }
    return spec


def _reported_sign(raw: Any, origin: str) -> tuple[tuple[str, int], ...]:
    if raw is None:
        return ()
    where = f"{origin}: 'reported_sign'"
    _check_mapping(raw, set(SIGN_CONVENTIONS), where, "a study's convention and its sign, e.g. {ghate2025: -1}")
    for k, v in raw.items():
        if v not in (1, -1) or isinstance(v, bool):
            raise StimulusError(f"{where} {k}: must be 1 or -1 (got {v!r})")
    return tuple(sorted((str(k), int(v)) for k, v in raw.items()))


def parse_test(raw: Any, name: str, origin: str, base: Path | None = None, resolving: tuple[str, ...] = ()) -> EATTest:
    _check_mapping(raw, _TEST_KEYS, origin, "sets X, Y, A and B")
    missing = [r for r in ROLES if r not in raw]
    if missing:
        raise StimulusError(f"{origin} has no set {', '.join(missing)}; a test needs sets X, Y, A and B")
    title, source, own_name = (_opt_str(raw, k, origin) for k in ("title", "source", "name"))
    form = raw.get("form", "words")
    if form not in ("words", "sentences"):
        raise StimulusError(f"{origin}: 'form' must be words or sentences (got {form!r})")
    sentences = _sentences_spec(raw.get("sentences"), origin)
    signs = _reported_sign(raw.get("reported_sign"), origin)
    resolving = (*resolving, name)
    sets = {r: _parse_set(raw[r], r, origin, base, resolving) for r in ROLES}
    for role, dropped in (sentences.get("omit") or {}).items():  # onto the set, so that from: carries them
        s = sets[role]
        unknown = set(dropped) - set(s.words or ())
        if unknown:
            raise StimulusError(f"{origin}: sentences.omit.{role} lists {sorted(unknown)}, not words of set {role}")
        sets[role] = replace(s, omit=tuple(dict.fromkeys((*s.omit, *dropped))))
    test = EATTest(
        name=(own_name or "").strip() or name,
        title=title or "",
        source=" ".join((source or "").split()),
        origin=origin,
        reported_sign=signs,
        extra={"sentences": sentences},
        **sets,
    )
    return sentence_version(test, keep_name=True) if form == "sentences" else test


def sentence_version(test: EATTest, keep_name: bool = False, published: bool = False) -> EATTest:
    """The SEAT version: every word set expanded with the bleached templates (literal texts stay as they are),
    without the words the test (or the test a set comes from) omits. ``published``: also without the sentences
    the published version lacks (``sentences.published.drop``)."""
    spec = test.extra.get("sentences") or {}
    drops = (spec.get("published") or {}).get("drop") or {} if published else {}
    sets = {}
    for role, s in test.sets().items():
        if s.words is None:
            sets[role] = s
            continue
        words = tuple(w for w in s.words if w not in set(s.omit))
        texts = expand(words, s.word_class, dict(s.classes), dict(s.plurals))
        drop = drops.get(role) or ()
        absent = [t for t in drop if t not in texts]
        if absent:
            raise StimulusError(
                f"{test.origin}: sentences.published.drop.{role} lists {absent[0]!r}, not a sentence of set {role}"
            )
        texts = [t for t in texts if t not in set(drop)]
        sets[role] = replace(s, texts=tuple(texts), words=words)
    source = test.source
    if spec.get("source"):
        source = f"{source} Sentence version: {' '.join(str(spec['source']).split())}"
    if drops and spec["published"]["source"]:
        source = f"{source} As published: {' '.join(spec['published']['source'].split())}"
    return replace(
        test,
        name=test.name if keep_name else f"sent-{test.name}",
        title=test.title if keep_name else f"{test.title} (sentences)",
        source=source,
        **sets,
    )


# ---------------------------------------------------------------------------------------------------- packaged
def _tests_dir():
    return resources.files("vlbias.data").joinpath("eat/tests")


@lru_cache(maxsize=1)
def _packaged_files() -> dict[str, str]:
    return {p.name[: -len(".yaml")]: p.name for p in _tests_dir().iterdir() if p.name.endswith(".yaml")}


def packaged_test_names() -> list[str]:
    """Word-level tests and their sentence versions, e.g. weat1, sent-weat1."""
    names = sorted(_packaged_files(), key=_natural)
    return names + [f"sent-{n}" for n in names]


def _natural(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


@cache
def _packaged_words_test(name: str, resolving: tuple[str, ...] = ()) -> EATTest:
    files = _packaged_files()
    if name not in files:
        raise StimulusError(f"unknown test {name!r}; packaged tests: {', '.join(packaged_test_names())}")
    text = _tests_dir().joinpath(files[name]).read_text(encoding="utf-8")
    origin = f"vlbias/data/eat/tests/{files[name]}"
    return parse_test(_yaml_load(text, origin), name, origin, None, resolving)


def get_test(name: str, published: bool = False) -> EATTest:
    """A packaged test by name: ``weat1`` (words) or ``sent-weat1`` (its sentence version; ``published``: as
    May et al. released it, see :func:`sentence_version`)."""
    if name.startswith("sent-") and name[5:] in _packaged_files():
        return sentence_version(_packaged_words_test(name[5:]), published=published)
    return _packaged_words_test(name)


# ---------------------------------------------------------------------------------------------------- files
def read_test_file(spec: str | os.PathLike) -> EATTest:
    """A test from a file: vlbias YAML, SEAT JSON, or WEFE word sets as ``FILE#x,y,a,b``."""
    spec = str(spec)
    chosen: list[str] | None = None
    path = Path(spec).expanduser()
    if not path.exists() and "#" in spec:
        file_part, _, sets_part = spec.rpartition("#")
        path = Path(file_part).expanduser()
        chosen = [s.strip() for s in sets_part.split(",")]
    if not path.is_file():
        raise StimulusError(f"test file not found: {path}; check the path")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise StimulusError(f"cannot read the test file {path} ({e}); it must be UTF-8 text") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        if chosen is not None:
            raise StimulusError(f"{path}: '#sets' selects sets of a WEFE word-set file, not of a YAML test")
        return parse_test(_yaml_load(text, str(path)), path.stem, str(path), path.parent)
    raw = load_json(text, str(path), StimulusError)
    if isinstance(raw, dict) and any(k in raw for k in _SEAT_KEYS):
        if chosen is not None:
            raise StimulusError(f"{path} is a SEAT test file; it defines its own four sets, so drop '#...'")
        return read_seat(raw, path)
    if isinstance(raw, dict) and raw and all(isinstance(v, list) for v in raw.values()):
        return read_wefe(raw, path, chosen)
    raise StimulusError(
        f"{path} is neither a SEAT test (targ1, targ2, attr1, attr2) nor a WEFE word-set file ({{name: [words]}})"
    )


def read_seat(raw: dict, path: Path) -> EATTest:
    sets = {}
    for key, role in _SEAT_KEYS.items():
        if key not in raw:
            raise StimulusError(f"{path} has no {key!r}; a SEAT test needs targ1, targ2, attr1 and attr2")
        entry = raw[key]
        if not isinstance(entry, dict) or "examples" not in entry:
            raise StimulusError(
                f"{path}: {key!r} must be an object with 'category' and 'examples' (got {_kind(entry)})"
            )
        if "category" not in entry:
            raise StimulusError(f"{path}: {key!r} has no 'category'; give the set a name")
        category = entry["category"]
        if not isinstance(category, str) or not category.strip():
            raise StimulusError(
                f"{path}: {key}.category must name the set with a string (got {_kind(category)} {category!r})"
            )
        examples = _str_list(entry["examples"], str(path), f"{key}.examples")
        if not examples:
            raise StimulusError(f"{path}: {key}.examples is empty; list at least two items")
        _check_size(examples, str(path), role, category.strip())
        sets[role] = StimulusSet(name=category.strip(), texts=examples)
    extra = sorted(set(raw) - set(_SEAT_KEYS))
    return EATTest(name=path.stem, origin=str(path), source="SEAT test file", extra={"ignored_keys": extra}, **sets)


def read_wefe(raw: dict, path: Path, chosen: list[str] | None) -> EATTest:
    names = list(raw)
    if chosen is None:
        raise StimulusError(
            f"{path} is a WEFE word-set file with {len(names)} sets; choose four as {path}#X,Y,A,B "
            f"from: {', '.join(names)}"
        )
    if len(chosen) != 4 or not all(chosen):
        raise StimulusError(f"{path}#{','.join(chosen)}: name exactly four sets, X,Y,A,B")
    sets = {}
    for role, set_name in zip(ROLES, chosen):
        if set_name not in raw:
            raise StimulusError(f"{path} has no word set {set_name!r}; its sets: {', '.join(names)}")
        words = _str_list(raw[set_name], str(path), f"set {set_name!r}")
        _check_size(words, str(path), role, set_name)
        sets[role] = StimulusSet(name=set_name, texts=words, words=words)
    return EATTest(name=f"{path.stem}:{'/'.join(chosen)}", origin=str(path), source="WEFE word sets", **sets)
