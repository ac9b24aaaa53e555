"""Typed options: declared once, parsed once, the same values from the command line, a sweep config and Python.

An audit (or a dataset loader) declares its options as one frozen dataclass deriving from :class:`Options`, each
field made with :func:`option` (default, one line of help, checks). :meth:`Options.parse` is the one way in: it
turns any raw mapping — a sweep config's YAML, keyword arguments from Python, the command line's strings — into an
instance, so the same raw values give equal options, and so the same numbers and the same config hash, from every
entry point. The command line's flags and help are generated from the same declaration (``vlbias.cli._options``).

What :meth:`Options.parse` guarantees:

- every key is known (a deprecated name is accepted for one release with a :class:`~vlbias.errors.DeprecatedOption`
  warning and mapped to its new name; any other key is refused, with the closest known name suggested);
- every value has its declared type and passes its checks, or parsing fails with one line naming the owner, the
  key, the value and what it must be. Strings are accepted in the command line's forms everywhere: ``true`` /
  ``false`` / ``yes`` / ``no``, numbers (``1e6``, ``1_000_000``), comma lists (``all-text,all-image``), ``KEY=VALUE``
  pairs, and the words a field names (``exact``, ``all``, ``model``);
- a whole number is an ``int``, or a float or string with an integral value; ``2.5`` is refused, never truncated;
  ``True`` is not a number;
- a mapping option merges over its default (``min_level_gap: {age: 2}`` keeps the default's ``smiling: 1.1``), the
  same way everywhere;
- a path option is made absolute against ``base`` (the sweep config's folder; the working directory otherwise),
  so ``data/x`` typed in two places names one file;
- the result is immutable (lists become tuples, mappings :class:`FrozenMap`) and :meth:`Options.to_dict` is its
  canonical JSON form: ``parse(o.to_dict()) == o``. Records, task ids and config hashes hold that form.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import os
import types
import typing
import warnings
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from vlbias.errors import DeprecatedOption, OptionError
from vlbias.utils.io import load_yaml

T = TypeVar("T", bound="Options")
_NONE = type(None)
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class FrozenMap(Mapping):
    """An immutable, hashable mapping that keeps its order (option values that are mappings)."""

    __slots__ = ("_d", "_h")

    def __init__(self, items: Mapping | typing.Iterable = ()):
        self._d = dict(items)
        self._h: int | None = None

    def __getitem__(self, key):
        return self._d[key]

    def __iter__(self) -> Iterator:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __hash__(self) -> int:
        if self._h is None:
            self._h = hash(frozenset(self._d.items()))
        return self._h

    def __eq__(self, other) -> bool:
        return isinstance(other, Mapping) and dict(self._d) == dict(other)

    def __repr__(self) -> str:
        return f"FrozenMap({self._d!r})"


@dataclasses.dataclass(frozen=True)
class Spec:
    """How one option is parsed and shown (kept in the dataclass field's metadata)."""

    help: str
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    choices: tuple[str, ...] | None = None  # allowed strings (of the value, or of each item of a list)
    normalise: typing.Callable[[Any], Any] | None = None  # applied to the raw value before the type check
    #: a filesystem path, made absolute against the base folder (of each item of a list, each value of a mapping);
    #: "maybe": a path only if it looks like one (a / or a file suffix), else a packaged name (lexicon: scm)
    path: bool | str = False
    fragment: bool = False  # a path may end in #WHAT (FILE#x,y,a,b): only the part before # is a path
    split: bool = True  # a list's items may be comma lists (a,b); off where an item may hold commas
    merge: bool = True  # a mapping merges over its default
    flag: str | None = None  # the command line flag [default: --name-with-dashes]
    short: str | None = None  # a one-letter alias (-d)
    metavar: str | None = None
    cli: bool = True  # offered on the command line
    old_flags: tuple[str, ...] = ()  # deprecated command-line spellings (accepted with a warning)
    hidden_default: str | None = None  # what --help shows as the default, where the default needs words


def option(default: Any, help: str, **spec: Any) -> Any:
    """A declared option: its default, one line of help, and the checks of :class:`Spec`."""
    default = _freeze(default)
    return dataclasses.field(default=default, metadata={"vlbias": Spec(help=help, **spec)})


def preset_option() -> Any:
    """The ``preset`` option every audit with presets declares (see :class:`Preset`)."""
    return option(
        None,
        "a study's exact protocol (its options, quirks included; what differs from vlbias's defaults is in "
        "docs/deviations.md); options given beside it override it",
        metavar="NAME",
    )


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping) and not isinstance(value, FrozenMap):
        return FrozenMap({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


@dataclasses.dataclass(frozen=True)
class Field:
    """One declared option: name, resolved type, default and :class:`Spec`."""

    name: str
    type: Any
    default: Any
    spec: Spec

    @property
    def flag(self) -> str:
        return self.spec.flag or "--" + self.name.replace("_", "-")

    def describe(self) -> str:
        """What a value must be, in words (for errors and the README's option tables)."""
        return _describe(self.type, self.spec)


class _Bad(Exception):
    """A value that does not fit a type (internal; becomes an OptionError naming the option)."""


@dataclasses.dataclass(frozen=True)
class Options:
    """Base of every options declaration (see the module docstring)."""

    #: who owns these options, for messages: "eat", "dataset cfd"
    OWNER: ClassVar[str] = "options"
    #: deprecated name -> current name (accepted for one release, with a warning)
    DEPRECATED: ClassVar[Mapping[str, str]] = {}
    #: where the named presets live (``vlbias/data/presets/<PRESETS>/<name>.yaml``); None: no presets
    PRESETS: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every declaration is a frozen dataclass, without writing the decorator each time."""
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True)(cls)

    # ------------------------------------------------------------------ declaration
    @classmethod
    def fields(cls) -> list[Field]:
        cached = cls.__dict__.get("_vlbias_fields")
        if cached is None:
            hints = typing.get_type_hints(cls)
            cached = [
                Field(f.name, hints[f.name], f.default, f.metadata["vlbias"])
                for f in dataclasses.fields(cls)
                if "vlbias" in f.metadata
            ]
            type.__setattr__(cls, "_vlbias_fields", cached)
        return cached

    @classmethod
    def field(cls, name: str) -> Field:
        for f in cls.fields():
            if f.name == name:
                return f
        raise KeyError(name)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in cls.fields()]

    # ------------------------------------------------------------------ parsing
    @classmethod
    def parse(
        cls: type[T],
        raw: Mapping[str, Any] | Options | None = None,
        *,
        base: str | os.PathLike | None = None,
        where: str = "",
        warn: bool = True,
        flags: bool = False,
        **overrides: Any,
    ) -> T:
        """Typed, checked options from a raw mapping (plus keyword overrides); see the module docstring.

        ``base``: the folder relative paths are taken against (default: the working directory). ``where``: a
        prefix for messages (a config file's name). ``warn``: warn about deprecated names (off when reading old
        records back). ``flags``: name options by their command-line flags in messages (``--seed -1: ...``).
        """
        if isinstance(raw, cls) and not overrides:
            return raw
        if isinstance(raw, Options):
            raw = raw.to_dict()
        if raw is not None and not isinstance(raw, Mapping):
            raise OptionError(f"{where}options of {cls.OWNER} must be a mapping of names to values (got {raw!r})")
        given = {**dict(raw or {}), **overrides}
        given = cls._renamed(given, where, warn)
        if cls.PRESETS and given.get("preset") not in (None, ""):
            # a preset is a named set of these options: its values first, then what was given over them (so the
            # canonical form, which records the preset and every value, parses back to the same options)
            given = {**preset(cls, str(given["preset"])).options, **given}
        ctx = _Context(cls.OWNER, Path(base) if base is not None else None, where, flags)
        values = {}
        for f in cls.fields():
            if f.name in given:
                values[f.name] = ctx.convert(f, given[f.name])
            else:
                values[f.name] = f.default
        values = cls._finish(values, ctx)
        return cls(**values)

    @classmethod
    def _renamed(cls, given: dict[str, Any], where: str, warn: bool) -> dict[str, Any]:
        names = set(cls.names())
        out: dict[str, Any] = {}
        for key, value in given.items():
            key = str(key)
            new = cls.DEPRECATED.get(key)
            if new is not None:
                if new in given:
                    raise OptionError(f"{where}{cls.OWNER}: give {new} only ({key} is its old name)")
                if warn:
                    warnings.warn(
                        f"{where}{cls.OWNER} option {key} is deprecated and will be removed; use {new}",
                        DeprecatedOption,
                        stacklevel=4,
                    )
                key = new
            if key not in names:
                close = difflib.get_close_matches(key, sorted(names), n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise OptionError(
                    f"{where}{cls.OWNER} has no option {key!r}{hint} (its options: {', '.join(sorted(names))})"
                )
            out[key] = value
        return out

    @classmethod
    def _finish(cls, values: dict[str, Any], ctx: _Context) -> dict[str, Any]:
        """Checks across options and normal forms that depend on several of them (override in a subclass)."""
        return values

    # ------------------------------------------------------------------ canonical form
    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form (every option, defaults included)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in self.fields()}

    def changed(self) -> dict[str, Any]:
        """Only the options that differ from their defaults, in canonical form."""
        return {
            f.name: _jsonable(getattr(self, f.name)) for f in self.fields() if getattr(self, f.name) != f.default
        }

    def replace(self: T, **changes: Any) -> T:
        """A copy with some options changed, parsed and checked like any other input."""
        return type(self).parse({**self.to_dict(), **changes})


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named set of an audit's options that reproduces a published study's protocol, with its ledger: every place
    where vlbias's own default differs from the study, why, and the option that restores the study's choice."""

    name: str
    title: str
    citation: str
    options: Mapping[str, Any]
    deviations: tuple[Mapping[str, str], ...] = ()
    notes: str = ""
    #: loader name -> the loader options the study used with it (FairFace's train split), applied when the dataset
    #: is loaded by that loader (options given in ``dataset_options`` or set on the dataset spec win)
    dataset_options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)


def preset_names(cls: type[Options]) -> list[str]:
    if not cls.PRESETS:
        return []
    folder = resources.files("vlbias.data").joinpath("presets", cls.PRESETS)
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset(cls: type[Options], name: str) -> Preset:
    """The preset ``name`` of an options declaration (one line naming the known ones if there is none)."""
    names = preset_names(cls)
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise OptionError(f"{cls.OWNER} has no preset {name!r}{hint}; its presets: {', '.join(names) or 'none'}")
    path = resources.files("vlbias.data").joinpath("presets", cls.PRESETS, f"{name}.yaml")
    raw = load_yaml(path.read_text(encoding="utf-8"), f"preset {cls.PRESETS}/{name}")
    return Preset(
        name=name,
        title=raw["title"],
        citation=raw["citation"],
        options=dict(raw.get("options") or {}),
        deviations=tuple(raw.get("deviations") or ()),
        notes=raw.get("notes", ""),
        dataset_options={str(k): dict(v or {}) for k, v in (raw.get("dataset_options") or {}).items()},
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    to_option = getattr(value, "to_option", None)
    if callable(to_option):
        return to_option()
    return value


# ---------------------------------------------------------------------------------------------------- conversion
class _Context:
    def __init__(self, owner: str, base: Path | None, where: str, flags: bool = False):
        self.owner = owner
        self.base = base
        self.where = where
        self.flags = flags

    def error(self, f: Field, value: Any, what: str) -> OptionError:
        shown = value if isinstance(value, str) else _jsonable(value)
        if self.flags:
            if isinstance(shown, (list, tuple)):
                shown = ",".join(map(str, shown))
            name = f.name.split(".", 1)
            label = f.flag if len(name) == 1 else f"--{name[0].replace('_', '-')} {name[1]}="
            return OptionError(f"{label}{'' if label.endswith('=') else ' '}{shown!r}: {what}")
        return OptionError(f"{self.where}{self.owner} option {f.name}={shown!r}: {what}")

    def convert(self, f: Field, value: Any) -> Any:
        try:
            if f.spec.normalise is not None and value is not None:
                value = f.spec.normalise(value)
            out = _convert(f.type, value, f, self)
        except _Bad as e:
            raise self.error(f, value, str(e) or f"must be {f.describe()}") from None
        except OptionError:
            raise
        except (ValueError, TypeError) as e:  # a normaliser's refusal
            raise self.error(f, value, str(e)) from None
        return out

    def path(self, value: str) -> str:
        p = Path(os.path.expanduser(value))
        if not p.is_absolute():
            p = (self.base or Path.cwd()) / p
        return os.path.normpath(str(p))


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _convert(tp: Any, value: Any, f: Field, ctx: _Context) -> Any:
    spec = f.spec
    origin = get_origin(tp)
    if tp is Any:
        return _freeze(value)
    if _is_union(tp):
        args = get_args(tp)
        if value is None or (isinstance(value, str) and value.strip() == "" and _NONE in args):
            if _NONE in args:
                return None
            raise _Bad()
        # words (Literal) first, so 'exact' is not tried as a number; then the other types in order
        ordered = sorted((a for a in args if a is not _NONE), key=lambda a: get_origin(a) is not Literal)
        reasons = []
        for a in ordered:
            try:
                return _convert(a, value, f, ctx)
            except _Bad as e:
                if get_origin(a) is not Literal:
                    reasons.append(str(e))
        # one real alternative (besides words and None) that said precisely what is wrong: say that
        raise _Bad(reasons[0] if len(reasons) == 1 and reasons[0] else "")
    if origin is Literal:
        words = get_args(tp)
        if isinstance(value, str) and value.strip().lower() in {str(w).lower() for w in words}:
            return next(w for w in words if str(w).lower() == value.strip().lower())
        raise _Bad()
    if value is None:
        raise _Bad()
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise _Bad()
    if tp is int:
        return _bounded(_whole(value), spec)
    if tp is float:
        return _bounded(_number(value), spec)
    if tp is str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float, os.PathLike)):
            raise _Bad()
        text = os.fspath(value).strip() if isinstance(value, os.PathLike) else str(value).strip()
        if spec.choices is not None:
            return _choice(text, spec.choices)
        if spec.path and text and (spec.path is True or _looks_like_path(text)):
            if spec.fragment and "#" in text:
                file, _, what = text.partition("#")
                return ctx.path(file) + "#" + what
            return ctx.path(text)
        return text
    if origin is tuple:
        args = get_args(tp)
        item = args[0]
        items = _items(value, nested=get_origin(item) is tuple, split=spec.split)
        return tuple(_convert(item, v, f, ctx) for v in items)
    if origin in (Mapping, FrozenMap) or tp is FrozenMap:
        key_t, val_t = get_args(tp) or (str, Any)
        pairs = _pairs(value)
        out = dict(f.default) if (spec.merge and isinstance(f.default, Mapping)) else {}
        for k, v in pairs:
            k = str(k).strip()
            if not k:
                raise _Bad("has an empty key")
            if val_t is str and spec.path:
                out[k] = ctx.path(str(v))
            else:
                inner = Field(f"{f.name}.{k}", val_t, None, dataclasses.replace(spec, choices=None, path=False))
                try:
                    out[k] = _convert(val_t, v, inner, ctx)
                except _Bad as e:  # name the entry: min_level_gap.age=-1
                    raise ctx.error(inner, v, str(e) or f"must be {inner.describe()}") from None
        return FrozenMap(out)
    from_option = getattr(tp, "from_option", None)
    if callable(from_option):
        return from_option(value, base=ctx.base)
    raise TypeError(f"option {f.name}: type {tp!r} is not supported")  # a declaration bug, not a user error


def whole_number(owner: str, name: str, value: Any, low: int = 0) -> int:
    """One integer value outside an options declaration (a sweep's seed, an encoder's batch size), read exactly as
    declared options read whole numbers (so ``2.5`` and ``True`` are refused, ``"64"`` and ``1e6`` accepted), at
    least ``low``, else the same one-line error."""
    try:
        return _bounded(_whole(value), Spec(help="", min=low))
    except _Bad:
        raise OptionError(f"{owner} option {name}={value!r}: must be a whole number ≥ {low}") from None


def _whole(value: Any) -> int:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise _Bad()
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise _Bad()
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            return int(text)
        except ValueError:
            pass
        try:
            x = float(text)
        except ValueError:
            raise _Bad() from None
        if math.isfinite(x) and x.is_integer() and abs(x) < 2**63:
            return int(x)
    raise _Bad()


def _number(value: Any) -> float:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise _Bad()
    if isinstance(value, numbers.Real):
        x = float(value)
    elif isinstance(value, str):
        try:
            x = float(value.strip().replace("_", ""))
        except ValueError:
            raise _Bad() from None
    else:
        raise _Bad()
    if not math.isfinite(x):
        raise _Bad()
    return x


def _bounded(x, spec: Spec):
    lo, hi = spec.min, spec.max
    if lo is not None and (x < lo or (spec.min_open and x == lo)):
        raise _Bad()
    if hi is not None and (x > hi or (spec.max_open and x == hi)):
        raise _Bad()
    return x


def _choice(text: str, choices: tuple[str, ...]) -> str:
    for c in choices:
        if text.lower() == c.lower():
            return c
    close = difflib.get_close_matches(text, choices, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise _Bad(f"{text!r} is not one of {', '.join(choices)}{hint}")


def _looks_like_path(text: str) -> bool:
    return "/" in text or os.sep in text or Path(text).suffix.lower() in _FILE_SUFFIXES


_FILE_SUFFIXES = {".yaml", ".yml", ".json", ".csv", ".txt", ".tsv"}


def _items(value: Any, nested: bool = False, split: bool = True) -> list:
    """A list from a list, a tuple, or the command line's forms: a comma list (``a,b``), or for a list of lists
    ``;`` between lists (``race;race,gender``)."""
    if isinstance(value, str):
        if nested:
            return [[c.strip() for c in part.split(",") if c.strip()] for part in value.split(";") if part.strip()]
        if not split:
            return [value.strip()] if value.strip() else []
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        if nested:
            if all(isinstance(v, str) for v in value):
                # several command-line values each naming one list, or one list of names written flat
                if any("," in v or ";" in v for v in value):
                    return [x for v in value for x in _items(v, nested=True)]
                return [list(value)]
            return [_items(v) if isinstance(v, str) else list(v) for v in value]
        out = []
        for v in value:
            out += _items(v, split=split) if isinstance(v, str) else [v]
        return out
    raise _Bad()


def _pairs(value: Any) -> list[tuple[Any, Any]]:
    """Key-value pairs from a mapping, or the command line's ``KEY=VALUE`` strings (one or several)."""
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)):
        out = []
        for item in value:
            if isinstance(item, Mapping):
                out += list(item.items())
                continue
            key, sep, val = str(item).partition("=")
            if not sep or not key.strip():
                raise _Bad(f"{item!r} must be KEY=VALUE")
            out.append((key.strip(), val.strip()))
        return out
    raise _Bad()


# ---------------------------------------------------------------------------------------------------- words
def _describe(tp: Any, spec: Spec) -> str:
    if _is_union(tp):
        return " or ".join(_describe(a, spec) for a in get_args(tp) if a is not _NONE)
    origin = get_origin(tp)
    if origin is Literal:
        words = [str(w) for w in get_args(tp)]
        return " or ".join(words) if len(words) <= 2 else "one of " + ", ".join(words)
    if tp is bool:
        return "true or false"
    if tp in (int, float):
        what = "a whole number" if tp is int else "a number"
        lo, hi = spec.min, spec.max
        if lo is not None and hi is not None:
            return f"{what} {'>' if spec.min_open else '≥'} {_num(lo)} and {'<' if spec.max_open else '≤'} {_num(hi)}"
        if lo is not None:
            return f"{what} {'>' if spec.min_open else '≥'} {_num(lo)}"
        if hi is not None:
            return f"{what} {'<' if spec.max_open else '≤'} {_num(hi)}"
        return what
    if tp is str:
        if spec.choices:
            return "one of " + ", ".join(spec.choices)
        return "a path" if spec.path else "text"
    if origin is tuple:
        item = get_args(tp)[0]
        if get_origin(item) is tuple:
            return "lists of names (a,b;c)"
        inner = "one or more of " + ", ".join(spec.choices) if spec.choices else "names"
        return f"a list ({inner}; comma-separated on the command line)"
    if origin in (Mapping, FrozenMap) or tp is FrozenMap:
        val_t = (get_args(tp) or (str, Any))[1]
        kind = "numbers" if val_t in (int, float) else "paths" if spec.path else "values"
        return f"a mapping of names to {kind} (KEY=VALUE on the command line)"
    doc = getattr(tp, "OPTION_WORDS", None)
    return doc or getattr(tp, "__name__", str(tp))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def option_table(cls: type[Options], flags: bool = True) -> str:
    """A Markdown table of the options (name, command-line flag, default, meaning): the README's option tables are
    this text, checked by a test, so documentation and declaration cannot drift apart."""
    rows = (
        ["| option | flag | default | meaning |", "|---|---|---|---|"]
        if flags
        else ["| option | default | meaning |", "|---|---|---|"]
    )
    for f in cls.fields():
        default = f.spec.hidden_default or _show_default(f.default)
        text = f.spec.help.replace("|", "\\|")
        if flags:
            flag = f"`{f.flag}`" if f.spec.cli else ""
            rows.append(f"| `{f.name}` | {flag} | {default} | {text} |")
        else:
            rows.append(f"| `{f.name}` | {default} | {text} |")
    renamed = ", ".join(f"`{old}` → `{new}`" for old, new in cls.DEPRECATED.items())
    if renamed:
        rows.append(f"\nDeprecated names (accepted with a warning until the next release): {renamed}.")
    return "\n".join(rows)


def _show_default(value: Any) -> str:
    value = _jsonable(value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "`" + ",".join(map(str, value)) + "`" if value else "none"
    if isinstance(value, dict):
        return "`" + " ".join(f"{k}={v}" for k, v in value.items()) + "`" if value else "none"
    return f"`{value}`"
