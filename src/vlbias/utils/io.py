"""Atomic file and folder writes, content hashing, strict readers of YAML, JSON and CSV headers.

Outputs are written to a temporary sibling and renamed into place, so a crash, a kill or a user error never leaves
a half-written output behind: the destination holds either the old content or the complete new one.

Every YAML and JSON file vlbias reads goes through :func:`load_yaml` and :func:`load_json`: ``yaml.safe_load``'s
and ``json.loads``'s meaning (no tags that build objects), except that a mapping naming a key twice is refused
(both parsers would silently keep the last value), and a YAML file whose aliases (``*name``) expand it beyond
:data:`MAX_YAML_VALUES` values, or that refers to itself, is refused before anything is built from it. A CSV header
naming a column twice is refused by :func:`check_columns` (pandas would rename the second one ``a.1``, a
``csv.DictReader`` would keep the last). Each refusal is one line naming the file, the key and the line.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import json.decoder
import json.scanner
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from vlbias.errors import VlbiasError

_CHUNK = 1 << 20
#: the most values (mapping keys, mapping values, list items, scalars) a YAML file may hold, every alias counted at
#: its full size: far above any config, test or lexicon, far below an alias bomb's millions
MAX_YAML_VALUES = 100_000


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stable_hash(payload: Any, n: int = 32) -> str:
    """A short, stable hex digest of a JSON-serialisable payload (key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; on success rename it to ``dest``, on failure delete it."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix + ".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``dest``; on success it replaces ``dest`` as a whole."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
            os.replace(dest, old / "x")
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: str | os.PathLike, payload: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------- strict readers
class _StrictYAMLLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys, self-reference and alias bombs (see the module docstring)."""

    origin = "YAML"
    error: type[VlbiasError] = VlbiasError

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        self._check_size(node)
        return self.construct_document(node)

    def _check_size(self, root: yaml.Node) -> None:
        sizes: dict[int, int] = {}
        open_nodes: set[int] = set()  # the nodes on the path from the root to the one being expanded
        stack: list[tuple[yaml.Node, bool]] = [(root, False)]
        while stack:
            node, finished = stack.pop()
            key = id(node)
            if finished:
                open_nodes.discard(key)
                size = 1 + sum(sizes[id(c)] for c in _children(node))
                if size > MAX_YAML_VALUES:
                    raise self.error(
                        f"{self.origin}: holds more than {MAX_YAML_VALUES:,} values once its aliases (*name) are "
                        f"expanded (the value starting at line {node.start_mark.line + 1}); vlbias refuses files this "
                        f"large: write the values out, or split the file"
                    )
                sizes[key] = size
            elif key in open_nodes:
                raise self.error(
                    f"{self.origin} line {node.start_mark.line + 1}: an alias (*name) refers to a value that holds "
                    f"it; write the values out"
                )
            elif key not in sizes:
                open_nodes.add(key)
                stack.append((node, True))
                stack += [(c, False) for c in _children(node) if id(c) not in sizes]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # '<<: *base' merges; the keys written beside it override the merged ones
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in first:
                        raise self.error(
                            f"{self.origin} line {line}: key {key!r} appears twice (first at line {first[key]}); "
                            f"keep one"
                        )
                    first[key] = line
                except TypeError:
                    continue  # an unhashable key: SafeConstructor reports it
        return super().construct_mapping(node, deep=deep)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_yaml(text: str, origin: str, error: type[VlbiasError] = VlbiasError) -> Any:
    """The YAML document in ``text`` as ``yaml.safe_load`` reads it, strictly; ``origin`` names it in errors
    (a path, or e.g. ``lexicon file x.yaml``) and ``error`` is the kind of :class:`VlbiasError` raised."""
    loader = _StrictYAMLLoader(text)
    loader.origin, loader.error = origin, error
    try:
        return loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise error(f"{origin}{line} is not valid YAML ({problem}); fix the file") from None
    except RecursionError:
        raise error(f"{origin} is nested too deeply to be a vlbias file; fix the file") from None
    finally:
        loader.dispose()


class _StrictJSONDecoder(json.JSONDecoder):
    """``json.JSONDecoder`` whose objects refuse a key given twice, naming the line of the second one."""

    def __init__(self, origin: str, error: type[VlbiasError]):
        super().__init__()
        self.origin, self.error = origin, error
        self.parse_object = self._object
        self.scan_once = json.scanner.py_make_scanner(self)  # the C scanner does not call parse_object

    def _object(self, s_and_end, strict, scan_once, object_hook, object_pairs_hook, memo=None):
        s, start = s_and_end
        pairs, end = json.decoder.JSONObject(s_and_end, strict, scan_once, None, list, memo)
        out: dict[str, Any] = {}
        for i, (key, value) in enumerate(pairs):
            if key in out:
                offsets = _json_key_offsets(s, start, scan_once)
                first = next(j for j, (k, _) in enumerate(pairs) if k == key)
                line, first_line = (s.count("\n", 0, offsets[j]) + 1 for j in (i, first))
                raise self.error(
                    f"{self.origin} line {line}: key {key!r} appears twice (first at line {first_line}); keep one"
                )
            out[key] = value
        return out, end


def _json_key_offsets(s: str, start: int, scan_once) -> list[int]:
    """Where each key of the object whose text starts at ``start`` (just after its ``{``) begins."""
    ws = json.decoder.WHITESPACE.match
    offsets = []
    pos = ws(s, start).end()
    while s[pos : pos + 1] == '"':
        offsets.append(pos)
        _, pos = json.decoder.scanstring(s, pos + 1)
        pos = ws(s, ws(s, pos).end() + 1).end()  # past the ':'
        _, pos = scan_once(s, pos)
        pos = ws(s, pos).end()
        if s[pos : pos + 1] == ",":
            pos = ws(s, pos + 1).end()
    return offsets


def load_json(text: str, origin: str, error: type[VlbiasError] = VlbiasError) -> Any:
    """The JSON value in ``text`` as ``json.loads`` reads it, but refusing a key given twice in an object."""
    try:
        return _StrictJSONDecoder(origin, error).decode(text)
    except json.JSONDecodeError as e:
        raise error(f"{origin} line {e.lineno} is not valid JSON ({e.msg}); fix the file") from None
    except RecursionError:
        raise error(f"{origin} is nested too deeply to be a vlbias file; fix the file") from None


def check_columns(header: Iterable[str], origin: str, error: type[VlbiasError] = VlbiasError) -> None:
    """Refuse a CSV header naming a column twice (names compared without surrounding spaces, in any case)."""
    seen: dict[str, int] = {}
    for i, name in enumerate(header, 1):
        key = str(name).strip().casefold()
        if not key:
            continue
        if key in seen:
            raise error(
                f"{origin}: the header names column {str(name).strip()!r} twice (columns {seen[key]} and {i}); "
                f"rename or drop one"
            )
        seen[key] = i


def csv_header(path: str | os.PathLike) -> list[str]:
    """The first row of a CSV file (its column names)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        return next(csv.reader(f), [])
