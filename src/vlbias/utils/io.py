"""Atomic file and folder writes, the rule for writing a user's output, content hashing, strict readers of YAML,
JSON and CSV headers.

Outputs are written to a temporary sibling and renamed into place, so a crash, a kill or a user error never leaves
a half-written output behind: the destination holds either the old content or the complete new one. Temporaries get
the permissions the umask gives (as ``open`` and ``mkdir`` do, not ``tempfile``'s private 0600 and 0700), so
colleagues on a shared server can read what was written. A write that fails (a full disk, no permission) raises one
line naming the path and leaves nothing behind.

The output rule (:func:`check_out`), the same for every command that writes where the user says:

* a new path, or an empty folder, is written;
* an existing output is replaced only if vlbias wrote it, as the same kind of output, and only when asked
  (``overwrite``, the ``--overwrite`` flag). A folder is recognised by ``.vlbias-output.json``, the list of what
  vlbias wrote in it, and is refused if it holds anything that list does not name (a folder from a vlbias that did
  not write the list is recognised by its record: ``record.json`` of an audit, ``report.json`` of a report,
  ``analysis.json`` of an analysis); a Parquet file by vlbias's key in its schema metadata. A CSV file carries no
  mark and is never replaced;
* a sweep folder (recognised by its ``sweep.json``) is resumed, added to and never replaced, so it needs no
  ``overwrite``, and may be reached through a symbolic link;
* everything else is refused with one line saying what to do: a file where a folder is wanted or the reverse, a
  folder holding files vlbias did not write, a symbolic link where an output would be replaced (it is never
  followed), a folder holding the current one, a place that cannot be written.

Nothing but a replaced output is ever deleted, and that only once its replacement is complete.

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
import errno
import hashlib
import json
import json.decoder
import json.scanner
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vlbias import __version__
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


def stable_hash(payload: Any, n: int = 32) -> str:
    """A short, stable hex digest of a JSON-serialisable payload (key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


# ---------------------------------------------------------------------------------------------- permissions
_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (else set and restored under a lock,
    briefly to the strict 0o077 so that a file another thread creates meanwhile is never more open than asked)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def touch(path: str | os.PathLike) -> None:
    """Create the file ``path`` if it is missing, with the permissions the umask gives (as ``open`` does), for a
    library that would create it with fixed ones (SQLite: 0644, whatever the umask)."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o666))


# ---------------------------------------------------------------------------------------------- the output rule
MANIFEST = ".vlbias-output.json"  # in every folder written by atomic_dir: its kind and every path written in it
PARQUET_KEY = b"vlbias.version"  # in the schema metadata of every Parquet file written by write_parquet


@dataclass(frozen=True)
class OutputKind:
    """A kind of output: a folder or a file, and how one written by an earlier vlbias (before the manifest) is
    recognised: a JSON ``record`` file (a glob pattern) holding all of ``record_keys``."""

    name: str
    what: str
    folder: bool
    record: str | None = None
    record_keys: tuple[str, ...] = ()
    resumable: bool = False  # added to, never replaced


KINDS = {
    k.name: k
    for k in (
        OutputKind(
            "audit", "audit output", True, "record.json", ("audit", "model", "options", "vlbias_version", "config_hash")
        ),
        OutputKind("report", "report", True, "report.json", ("vlbias_report",)),
        OutputKind("analysis", "analysis", True, "analysis.json", ("audit", "table", "effect", "by")),
        OutputKind("export", "table export", True),
        OutputKind("demo", "demo dataset", True),
        OutputKind("sweep", "sweep folder", True, "sweep*.json", ("tasks", "vlbias_version"), resumable=True),
        OutputKind("parquet", "Parquet file", False),
        OutputKind("csv", "CSV file", False),
    )
}


def check_out(path: str | os.PathLike, kind: str, overwrite: bool = False, option: str | None = "--out") -> None:
    """Apply the output rule (see the module) to writing a ``kind`` output at ``path``; a :class:`VlbiasError`
    naming ``option`` and the path, saying what to do, if it is refused. Reads only; writes nothing."""
    problem = _refusal(Path(path), KINDS[kind], overwrite, f"{option} {path}" if option else str(path))
    if problem:
        raise VlbiasError(problem)


def _refusal(path: Path, kind: OutputKind, overwrite: bool, name: str) -> str | None:
    new = "a new folder" if kind.folder else "a new file name"
    if path.is_symlink() and not (kind.resumable and path.is_dir()):  # a folder only added to may be reached so
        return (
            f"{name} is a symbolic link (to {os.readlink(path)}); vlbias does not write through links: give the "
            f"path it points to, or {new}"
        )
    try:
        if path.exists():
            problem = _existing(path, kind, overwrite, name, new)
            if problem:
                return problem
        return _unwritable(path if kind.resumable and path.is_dir() else path.parent, name)
    except OSError as e:
        return f"{name} cannot be read ({e.strerror or e}); give {new}"


def _existing(path: Path, kind: OutputKind, overwrite: bool, name: str, new: str) -> str | None:
    if kind.folder != path.is_dir():
        if kind.folder:
            return f"{name} is a file; give {new} for the {kind.what}"
        return f"{name} is a folder; give a file name for the {kind.what}"
    again = f"{name} holds an earlier vlbias {kind.what}; add --overwrite to replace it, or give {new}"
    if not kind.folder:
        if kind.name == "parquet" and _vlbias_parquet(path):
            return None if overwrite else again
        if kind.name == "csv":
            return f"{name} exists, and a CSV file does not tell whether vlbias wrote it; give {new}"
        return f"{name} exists and vlbias did not write it; give {new} (vlbias replaces only its own outputs)"
    top = os.listdir(path)
    if kind.resumable:  # a temporary of another run writing there (a shard starting at the same time)
        top = [n for n in top if not (n.startswith(".") and n.endswith(".tmp"))]
    if not top:
        return None
    found, listed = _folder_kind(path)
    if found is None:
        return f"{name} holds files vlbias did not write ({_names(top)}); give {new}"
    if found != kind.name:
        return f"{name} holds a vlbias {KINDS[found].what}, not {_a(kind.what)}; give {new}"
    foreign = _entries(path) - listed - {MANIFEST} if listed is not None else set()
    if foreign:
        return (
            f"{name} holds files that are not part of its {kind.what} ({_names(foreign)}); move them out of it, or "
            f"give {new}"
        )
    if kind.resumable:
        return None
    if not overwrite:
        return again
    cwd, real = os.path.realpath(os.getcwd()), os.path.realpath(path)
    if cwd == real or cwd.startswith(real.rstrip(os.sep) + os.sep):
        return f"{name} holds the current folder, which replacing it would remove; run from elsewhere, or give {new}"
    return None


def _unwritable(folder: Path, name: str) -> str | None:
    """Why ``folder`` (or, if it is missing, its nearest existing ancestor) cannot be written in, if so."""
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{name}: {folder} is not a folder; give a path in a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"{name}: {folder} cannot be written in (no permission, or a read-only disk); give a path in a folder "
            f"you can write to"
        )
    return None


def _entries(folder: Path) -> set[str]:
    """Every path under ``folder`` relative to it (folders with a trailing /); links are listed, never followed."""
    out = set()
    for root, dirs, files in os.walk(folder, onerror=_raise):
        rel = Path(root).relative_to(folder)
        for d in dirs:
            out.add((rel / d).as_posix() + ("" if os.path.islink(os.path.join(root, d)) else "/"))
        out.update((rel / f).as_posix() for f in files)
    return out


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _raise(e: OSError) -> None:
    raise e


def _names(entries: Iterable[str]) -> str:
    """A few of ``entries``, the shallowest first."""
    shown = sorted(entries, key=lambda e: (e.rstrip("/").count("/"), e))
    return ", ".join(shown[:3]) + (f", ... ({len(shown)} in all)" if len(shown) > 3 else "")


def _folder_kind(folder: Path) -> tuple[str | None, set[str] | None]:
    """The kind of vlbias output ``folder`` is, and the paths its manifest lists (None for an older output)."""
    manifest = _json_object(folder / MANIFEST)
    if manifest is not None and manifest.get("vlbias_output") in KINDS and isinstance(manifest.get("files"), list):
        return manifest["vlbias_output"], {str(f) for f in manifest["files"]}
    for kind in KINDS.values():
        if kind.folder and kind.record:
            for record in folder.glob(kind.record):
                raw = _json_object(record)
                if raw is not None and all(k in raw for k in kind.record_keys):
                    return kind.name, None
    return None, None


def _json_object(path: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def _vlbias_parquet(path: Path) -> bool:
    import pyarrow.parquet as pq

    try:
        return PARQUET_KEY in (pq.read_schema(path).metadata or {})
    except Exception:  # noqa: BLE001 - not a Parquet file at all: not vlbias's
        return False


# ---------------------------------------------------------------------------------------------- writing
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NO_RIGHT = {errno.EACCES, errno.EPERM, errno.EROFS}


def _write_error(dest: Path, e: OSError) -> VlbiasError:
    if e.errno in _FULL:
        todo = "free some space there, or give a path on another disk"
    elif e.errno in _NO_RIGHT:
        todo = "give a path in a folder you can write to"
    elif e.errno == errno.ENAMETOOLONG:
        todo = "give a shorter name"
    else:
        todo = "check the path, or give another one"
    return VlbiasError(f"cannot write {dest}: {e.strerror or e}; {todo}")


def _is_write_error(e: OSError, *places: Path) -> bool:
    """An error of writing the output: the disk is full or read-only, or it is about a path in one of ``places``."""
    if e.errno in _FULL or e.errno == errno.EROFS:
        return True
    names = [os.fsdecode(f) for f in (e.filename, e.filename2) if f is not None]
    return any(Path(os.path.abspath(n)).is_relative_to(os.path.abspath(p)) for n in names for p in places)


@contextlib.contextmanager
def _writing(dest: Path, *places: Path) -> Iterator[None]:
    """OSErrors of writing ``dest`` as one line: every one, or (with ``places``) those of writing there."""
    try:
        yield
    except OSError as e:
        if not places or _is_write_error(e, *places):
            raise _write_error(dest, e) from None
        raise


@contextlib.contextmanager
def atomic_path(
    dest: str | os.PathLike, suffix: str = "", kind: str | None = None, overwrite: bool = False
) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; on success rename it to ``dest``, on failure delete it. With a
    ``kind`` the output rule is applied, before and again just before the rename."""
    dest = Path(dest)
    if kind is not None:
        check_out(dest, kind, overwrite, option=None)
    with _writing(dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix + ".tmp", dir=dest.parent)
    tmp_path = Path(tmp)
    try:
        with _writing(dest, tmp_path):
            try:
                os.fchmod(fd, 0o666 & ~current_umask())
            finally:
                os.close(fd)
            yield tmp_path
        if kind is not None:
            check_out(dest, kind, overwrite, option=None)
        with _writing(dest):
            os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike, kind: str, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``dest``; on success it replaces ``dest`` as a whole, with the
    manifest of what was written in it. The output rule is applied before and again just before the swap; the old
    folder is moved aside, and removed only once the new one is in its place (put back if that fails)."""
    dest = Path(dest)
    check_out(dest, kind, overwrite, option=None)
    with _writing(dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        with _writing(dest, tmp):
            os.chmod(tmp, 0o777 & ~current_umask())
            yield tmp
            manifest = {"vlbias_output": kind, "vlbias_version": __version__, "files": sorted(_entries(tmp))}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        check_out(dest, kind, overwrite, option=None)
        with _writing(dest):
            if dest.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
                os.replace(dest, old / "x")
                try:
                    os.replace(tmp, dest)
                except BaseException:
                    os.replace(old / "x", dest)
                    os.rmdir(old)
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_parquet(
    data: Any, dest: str | os.PathLike, metadata: dict[str, Any] | None = None, overwrite: bool = False
) -> None:
    """A pandas DataFrame or an Arrow table to the Parquet file ``dest``, atomically and under the output rule, with
    vlbias's version (the mark of its outputs) and ``metadata`` (as ``vlbias.<key>``) in the schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    meta = {**(table.schema.metadata or {})}
    meta.update({f"vlbias.{k}".encode(): str(v).encode() for k, v in (metadata or {}).items()})
    meta[PARQUET_KEY] = __version__.encode()
    with atomic_path(dest, suffix=".parquet", kind="parquet", overwrite=overwrite) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp)


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
