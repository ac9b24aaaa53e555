"""Row filters (``vlbias models --where``, ``models: [{where: ...}]`` in a sweep config): data, never code.

A filter is one condition over a table's columns, in this grammar (Python's syntax for it, nothing else)::

    condition  := condition or condition | condition and condition | not condition | ( condition )
                | operand OP operand [OP operand ...]        OP: == != < <= > >=
                | column in [literal, ...] | column not in [literal, ...]
                | column == null | column != null             the fact is empty / is known
                | column                                      a true/false column, e.g. fine_tuned
    operand    := column | literal
    literal    := 'text' | "text" | number (2e8, -1, 0.5) | true | false | null   (True, False, None too)

e.g. ``dataset_family == 'laion' and n_params > 2e8``, ``architecture_family in ['ViT-B', 'ViT-L']``,
``not fine_tuned and duplicate_of == null``.

Guarantee: nothing in a filter is ever run. The text is parsed with :func:`ast.parse` (``mode="eval"``, which
only builds a syntax tree) and every node is checked against the grammar above: names must be the table's columns
(or the literal words), and attribute access, calls, indexing, ``@`` variables, arithmetic, lambdas,
comprehensions and f-strings are refused, as are comparisons whose sides are of different kinds (a text column
with a number) and filters longer than :data:`MAX_LENGTH` characters or nested deeper than :data:`MAX_DEPTH`.
The checked tree is then evaluated with pandas boolean masks built here; there is no ``eval`` or ``exec``.
Every refusal is one :class:`~vlbias.errors.VlbiasError` line: the filter, what is wrong, what is allowed.

Empty facts never match: a comparison or ``in`` on an empty value is unknown, ``not`` of unknown is unknown,
``and``/``or`` follow three-valued logic (false and unknown is false; true or unknown is true), and rows whose
condition is unknown are left out. ``column == null`` asks for the empty facts themselves.
"""

from __future__ import annotations

import ast
import difflib
import io
import operator
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vlbias.errors import VlbiasError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MAX_LENGTH = 4000  # characters
MAX_DEPTH = 50  # nesting of the syntax tree

ALLOWED = (
    "a filter compares the columns with == != < <= > >=, in [...] or not in [...], joins the comparisons with "
    "and, or, not and parentheses, and its literals are 'text', numbers, true, false and null; "
    "e.g. \"dataset_family == 'laion' and n_params > 2e8\""
)
_LITERAL_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_FUNCS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_INT64 = 2**63 - 1
#: what a refused node is, for the message
_REFUSED = {
    ast.Attribute: "attribute access ('.')",
    ast.Call: "a function call",
    ast.Subscript: "indexing ('[...]' after a value)",
    ast.BinOp: "arithmetic or the operators & | ^ (join conditions with and, or, not)",
    ast.Lambda: "lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.JoinedStr: "an f-string",
    ast.IfExp: "a conditional expression (x if c else y)",
    ast.NamedExpr: "':='",
    ast.Dict: "'{...}' (a list is written [...])",
    ast.Set: "'{...}' (a list is written [...])",
    ast.Starred: "'*'",
}


# ---------------------------------------------------------------------------------------------- the checked tree
@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # number | text | boolean


@dataclass(frozen=True)
class Literal:
    value: Any  # str, int, float, bool or None


@dataclass(frozen=True)
class Compare:
    op: str
    left: Column | Literal
    right: Column | Literal


@dataclass(frozen=True)
class IsIn:
    column: Column
    values: tuple[Any, ...]
    negate: bool


@dataclass(frozen=True)
class IsNull:
    column: Column
    negate: bool


@dataclass(frozen=True)
class Flag:
    column: Column  # a true/false column on its own


@dataclass(frozen=True)
class And:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    part: Condition


Condition = Compare | IsIn | IsNull | Flag | And | Or | Not


@dataclass(frozen=True)
class RowFilter:
    """A checked filter: its text and its tree; :meth:`mask` evaluates it on a table with the same columns."""

    text: str
    condition: Condition

    def mask(self, df: pd.DataFrame) -> np.ndarray:
        """True for the rows the filter keeps (unknown conditions are not kept)."""
        return _evaluate(self.condition, df).fillna(False).to_numpy(dtype=bool)


# ---------------------------------------------------------------------------------------------- parsing
def column_kinds(df: pd.DataFrame) -> dict[str, str]:
    """Each column's kind for filters: boolean, number or text."""
    import pandas as pd

    kinds = {}
    for name, dtype in df.dtypes.items():
        if pd.api.types.is_bool_dtype(dtype):
            kinds[str(name)] = "boolean"
        elif pd.api.types.is_numeric_dtype(dtype):
            kinds[str(name)] = "number"
        else:
            kinds[str(name)] = "text"
    return kinds


def parse_filter(text: str, columns: Mapping[str, str], label: str = "--where") -> RowFilter:
    """Check ``text`` against the grammar and ``columns`` (name -> kind); a user error if it does not conform."""
    return RowFilter(text, _Parser(text, columns, label).parse())


class _Parser:
    def __init__(self, text: Any, columns: Mapping[str, str], label: str):
        self.text = text
        self.columns = dict(columns)
        self.label = label

    def fail(self, problem: str, allowed: str = ALLOWED) -> VlbiasError:
        shown = str(self.text)
        shown = shown if len(shown) <= 120 else shown[:117] + "..."
        return VlbiasError(f"{self.label} {shown!r}: {problem}; {allowed}")

    def parse(self) -> Condition:
        text = self.text
        if not isinstance(text, str) or not text.strip():
            raise self.fail("is not a condition (an empty or non-text filter)")
        if len(text) > MAX_LENGTH:
            raise self.fail(f"is {len(text)} characters long, more than the {MAX_LENGTH} a filter may have")
        if self._has_at(text):
            raise self.fail("'@' (a local variable) is not allowed; only the columns can be named")
        try:
            self.text = text = text.strip()
            tree = ast.parse(text, mode="eval")
        except SyntaxError as e:
            at = f" at character {e.offset}" if e.offset else ""
            raise self.fail(f"is not a valid expression ({e.msg}{at})") from None
        except (ValueError, RecursionError, MemoryError):
            raise self.fail("is not a valid expression (null characters, or nested too deeply)") from None
        return self.condition(tree.body, 1)

    @staticmethod
    def _has_at(text: str) -> bool:
        try:
            return any(
                t.type == tokenize.OP and t.string == "@" for t in tokenize.generate_tokens(io.StringIO(text).readline)
            )
        except (tokenize.TokenError, SyntaxError, ValueError):
            return False  # ast.parse reports the syntax error

    def refuse(self, node: ast.AST) -> VlbiasError:
        what = _REFUSED.get(type(node))
        if what is None:
            what = f"'{ast.get_source_segment(self.text, node) or type(node).__name__}'"
        return self.fail(f"{what} is not allowed")

    def condition(self, node: ast.AST, depth: int) -> Condition:
        if depth > MAX_DEPTH:
            raise self.fail(f"is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.BoolOp):
            parts = tuple(self.condition(v, depth + 1) for v in node.values)
            return And(parts) if isinstance(node.op, ast.And) else Or(parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return Not(self.condition(node.operand, depth + 1))
        if isinstance(node, ast.Compare):
            return self.compare(node, depth)
        operand = self.operand(node, depth)
        if isinstance(operand, Column) and operand.kind == "boolean":
            return Flag(operand)
        what = f"column {operand.name!r} holds {operand.kind}s" if isinstance(operand, Column) else "a literal"
        raise self.fail(f"is not a condition ({what}, not true/false)")

    def compare(self, node: ast.Compare, depth: int) -> Condition:
        if any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
            if len(node.ops) > 1:
                raise self.fail("chains 'in' with another comparison; join them with and")
            return self.membership(node, depth)
        if any(isinstance(op, (ast.Is, ast.IsNot)) for op in node.ops):
            raise self.fail("'is' is not allowed; write column == null or column != null")
        operands = [self.operand(n, depth + 1) for n in (node.left, *node.comparators)]
        parts = tuple(self.pair(_OPS[type(op)], a, b) for op, a, b in zip(node.ops, operands[:-1], operands[1:]))
        return parts[0] if len(parts) == 1 else And(parts)

    def pair(self, op: str, a: Column | Literal, b: Column | Literal) -> Condition:
        if isinstance(a, Literal) and isinstance(b, Literal):
            raise self.fail(f"compares two literals ({a.value!r} {op} {b.value!r}); compare a column")
        if isinstance(a, Literal) or isinstance(b, Literal):
            col, lit = (a, b) if isinstance(b, Literal) else (b, a)
            if lit.value is None:
                if op not in ("==", "!="):
                    raise self.fail(f"'{op} null' is not a comparison; write {col.name} == null or != null")
                return IsNull(col, negate=op == "!=")
            self.check_literal(col, lit.value)
            if col.kind == "boolean" and op not in ("==", "!="):
                raise self.fail(f"orders the true/false column {col.name!r}; compare it with == or !=")
            return Compare(op, a, b)
        if a.kind != b.kind:
            raise self.fail(f"compares {a.kind} column {a.name!r} with {b.kind} column {b.name!r}")
        if a.kind == "boolean" and op not in ("==", "!="):
            raise self.fail(f"orders the true/false column {a.name!r}; compare it with == or !=")
        return Compare(op, a, b)

    def membership(self, node: ast.Compare, depth: int) -> Condition:
        col = self.operand(node.left, depth + 1)
        if not isinstance(col, Column):
            raise self.fail("'in' needs a column on its left, e.g. architecture_family in ['ViT-B', 'ViT-L']")
        seq = node.comparators[0]
        if not isinstance(seq, (ast.List, ast.Tuple)):
            raise self.fail("'in' needs a list of literals on its right, e.g. dataset_family in ['laion', 'openai']")
        values = []
        for item in seq.elts:
            lit = self.operand(item, depth + 2)
            if not isinstance(lit, Literal):
                raise self.fail("the list after 'in' holds a column; list literals only")
            if lit.value is None:
                raise self.fail(f"null in a list; write {col.name} == null")
            self.check_literal(col, lit.value)
            values.append(lit.value)
        return IsIn(col, tuple(values), negate=isinstance(node.ops[0], ast.NotIn))

    def check_literal(self, col: Column, value: Any) -> None:
        kind = "boolean" if isinstance(value, bool) else "number" if isinstance(value, (int, float)) else "text"
        if kind != col.kind:
            example = {"number": "a number", "text": "a quoted text", "boolean": "true or false"}[col.kind]
            raise self.fail(f"compares {col.kind} column {col.name!r} with {value!r}; give {example}")

    def operand(self, node: ast.AST, depth: int) -> Column | Literal:
        if depth > MAX_DEPTH:
            raise self.fail(f"is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.Name):
            if node.id in _LITERAL_NAMES:
                return Literal(_LITERAL_NAMES[node.id])
            if node.id not in self.columns:
                close = difflib.get_close_matches(node.id, list(self.columns), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.fail(
                    f"unknown column {node.id!r}{hint}",
                    f"the columns are {', '.join(self.columns)}",
                )
            return Column(node.id, self.columns[node.id])
        if isinstance(node, ast.Constant):
            return Literal(self.literal(node.value, node))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = node.operand
            if isinstance(inner, ast.Constant) and type(inner.value) in (int, float):
                value = self.literal(inner.value, inner)
                return Literal(-value if isinstance(node.op, ast.USub) else value)
            raise self.fail("a sign ('-', '+') is allowed only before a number")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
            raise self.fail("'~' is not allowed; write not")
        if isinstance(node, (ast.BoolOp, ast.Compare)) or (
            isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)
        ):
            raise self.fail("compares a condition with a value; compare columns with values, join with and/or")
        raise self.refuse(node)

    def literal(self, value: Any, node: ast.AST) -> Any:
        if value is None or isinstance(value, (bool, str, float)):
            return value
        if type(value) is int:
            return value if -_INT64 <= value <= _INT64 else float(value)
        raise self.refuse_literal(node)

    def refuse_literal(self, node: ast.AST) -> VlbiasError:
        return self.fail(f"{ast.get_source_segment(self.text, node) or 'the literal'} is not a literal of a filter")


# ---------------------------------------------------------------------------------------------- evaluation
def _evaluate(cond: Condition, df: pd.DataFrame) -> pd.Series:
    """A nullable boolean Series (NA: unknown) aligned with ``df``."""
    import pandas as pd

    if isinstance(cond, And | Or):
        parts = [_evaluate(p, df) for p in cond.parts]
        out = parts[0]
        for p in parts[1:]:
            out = (out & p) if isinstance(cond, And) else (out | p)  # Kleene logic of the boolean dtype
        return out
    if isinstance(cond, Not):
        return ~_evaluate(cond.part, df)
    if isinstance(cond, IsNull):
        empty = df[cond.column.name].isna()
        return (~empty if cond.negate else empty).astype("boolean")
    if isinstance(cond, Flag):
        return df[cond.column.name].astype("boolean")
    if isinstance(cond, IsIn):
        col = df[cond.column.name]
        hit = col.isin(list(cond.values)).astype(bool)
        return _unknown_where_empty(~hit if cond.negate else hit, col.isna())
    left, right = (_operand(x, df) for x in (cond.left, cond.right))
    known = pd.Series(True, index=df.index)
    for x in (left, right):
        if isinstance(x, pd.Series):
            known &= x.notna()
    result = _FUNCS[cond.op](left, right)
    return _unknown_where_empty(result.astype("boolean").fillna(False).astype(bool), ~known)


def _operand(x: Column | Literal, df: pd.DataFrame) -> Any:
    return df[x.name] if isinstance(x, Column) else x.value


def _unknown_where_empty(values: pd.Series, empty: pd.Series) -> pd.Series:
    import pandas as pd

    arr = pd.arrays.BooleanArray(values.to_numpy(dtype=bool), empty.to_numpy(dtype=bool))
    return pd.Series(arr, index=values.index)
