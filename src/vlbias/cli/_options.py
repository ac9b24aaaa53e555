"""Command-line flags made from an options declaration (:mod:`vlbias.utils.options`), so that flags, help text and
defaults cannot drift from what the Python API and sweep configs accept.

Each declared option becomes one flag (``--name-with-dashes`` unless the declaration names another): booleans as
``--x/--no-x``, lists and mappings repeatable (``--test A --test B``, ``--orders a,b``, ``--image-set K=DIR``), the
rest as one string. The command receives only what was typed, unparsed, as ``raw_options``; the declaration's one
parser turns it into typed options, exactly as it does for a sweep config or Python, so the command line has no
defaults or checks of its own. Deprecated flags (``--bootstrap``) still work, with a warning.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import click

from vlbias.errors import DeprecatedOption
from vlbias.utils.options import Field, Options, _show_default

_PREFIX = "opt__"


def _alternatives(tp: Any) -> list[Any]:
    return [a for a in get_args(tp) if a is not type(None)] if get_origin(tp) in (Union, UnionType) else [tp]


def _multiple(f: Field) -> bool:
    """Lists of names and mappings are repeatable flags; a list of lists (group_by) is one string (a,b;c)."""
    for a in _alternatives(f.type):
        if get_origin(a) is Mapping or (get_origin(a) is tuple and get_origin(get_args(a)[0]) is not tuple):
            return True
    return False


def _is_bool(f: Field) -> bool:
    return f.type is bool


def _help(f: Field, required: bool = False) -> str:
    text = f.spec.help[0].upper() + f.spec.help[1:] if f.spec.help else ""
    if "[default:" in text or required:
        return text
    default = f.spec.hidden_default or _show_default(f.default).strip("`")
    return f"{text} [default: {default}]"


def _metavar(f: Field) -> str:
    if f.spec.metavar:
        return f.spec.metavar
    words = [w for a in _alternatives(f.type) if get_origin(a) is Literal for w in get_args(a)]
    if words and all(get_origin(a) is Literal for a in _alternatives(f.type)):
        return "[" + "|".join(map(str, words)) + "]"
    if f.spec.choices:
        return "[" + "|".join(f.spec.choices) + "]"
    return {int: "N", float: "X"}.get(f.type, "TEXT")


def _click_option(f: Field, required: bool = False) -> click.Option:
    dest = _PREFIX + f.name
    decls = [f.flag] + ([f.spec.short] if f.spec.short else [])
    if _is_bool(f):
        decls = [f"{f.flag}/--no-{f.flag[2:]}"] + ([f.spec.short] if f.spec.short else [])
        return click.Option(decls + [dest], default=None, help=_help(f))
    return click.Option(
        decls + [dest],
        default=() if _multiple(f) else None,
        multiple=_multiple(f),
        metavar=_metavar(f),
        help=_help(f, required),
        required=required,
    )


def _old_option(f: Field, old: str) -> click.Option:
    return click.Option(
        [old, f"{_PREFIX}old__{f.name}__{old.strip('-').replace('-', '_')}"],
        default=() if _multiple(f) else None,
        multiple=_multiple(f),
        hidden=True,
        is_flag=_is_bool(f),
        flag_value=True if _is_bool(f) else None,
    )


def _typed(value: Any) -> Any:
    """What a flag gave: None if absent; one repeated value as the string itself (so ``all`` stays a word)."""
    if value == ():
        return None
    if isinstance(value, tuple) and len(value) == 1:
        return value[0]
    return value


def options_flags(
    options_cls: type[Options], *, skip: tuple[str, ...] = (), required: tuple[str, ...] = ()
) -> Callable:
    """Add a flag per declared option (but ``skip``); the command gets ``raw_options``: what was typed. Options in
    ``required`` must be given on this command (e.g. the dataset of an audit that needs one)."""
    fields = [f for f in options_cls.fields() if f.spec.cli and f.name not in skip]

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            raw: dict[str, Any] = {}
            for f in fields:
                value = _typed(kwargs.pop(_PREFIX + f.name))
                if value is not None:
                    raw[f.name] = value
                for old in f.spec.old_flags:
                    key = f"{_PREFIX}old__{f.name}__{old.strip('-').replace('-', '_')}"
                    value = _typed(kwargs.pop(key))
                    if value is not None and value is not False:
                        warnings.warn(f"{old} is deprecated and will be removed; use {f.flag}", DeprecatedOption, 2)
                        if f.name in raw:
                            raise click.UsageError(f"give {f.flag} only ({old} is its old name)")
                        raw[f.name] = value
            return fn(*args, raw_options=raw, **kwargs)

        params = getattr(wrapper, "__click_params__", [])
        for f in reversed(fields):  # click lists params in the reverse order of their decorators
            params.append(_click_option(f, required=f.name in required))
            params += [_old_option(f, old) for old in f.spec.old_flags]
        wrapper.__click_params__ = params
        return wrapper

    return decorate
