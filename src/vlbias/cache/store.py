"""The on-disk embedding cache.

Each embedding is computed once per (model identity, stimulus) and reused by every later command. One SQLite file
per model identity holds that model's vectors, keyed by ``(kind, key)``: texts by the exact string, images by the
sha256 of their bytes (plus any crop applied before encoding).

Why SQLite: every write is a transaction, so a process killed mid-write leaves the file as it was before that
batch (never a partial row), and concurrent writers from several processes are serialised by SQLite's lock
(``busy_timeout``). Each row also stores its dimension and a CRC32 of the vector bytes, checked on every read, and
a vector must be finite (the encoders refuse non-finite embeddings before they are cached), so a row can never read
back wrong: a mismatch or a NaN or infinite value is treated as a miss, recomputed and overwritten.

A file that is not a readable SQLite database (truncated, overwritten, damaged on disk) is never guessed at: using
it raises a one-line :class:`DamagedCacheError` that names the file to delete; ``vlbias cache info`` lists it as
damaged and ``vlbias cache clear`` deletes it (with ``--yes``, or with ``--model``, since a damaged file no longer
tells whose it was).

Layout: ``<root>/v1/<identity>.sqlite``, with SQLite's ``-wal``, ``-shm`` and ``-journal`` files beside it; nothing
else in the folder is vlbias's, and nothing else is ever deleted. The root is ``--cache-dir``, else
``$VLBIAS_CACHE``, else the platform's user cache folder. On network filesystems without working POSIX locks (some
NFS setups) use a local cache folder per machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlbias.errors import CacheError
from vlbias.utils.io import touch

FORMAT = "v1"
_CHUNK = 500  # keys per SELECT (SQLite's variable limit is well above this)
_SIDE_FILES = ("-wal", "-shm", "-journal")  # SQLite's files beside a database
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


class DamagedCacheError(CacheError):
    """A cache file that is not a readable SQLite database; deleting it loses nothing but recomputation."""

    def __init__(self, path: Path, reason: str, spec: str | None = None):
        self.path = path
        self.reason = reason
        how = f"`vlbias cache clear --model {spec}`" if spec else "`vlbias cache clear --yes`"
        super().__init__(
            f"the embedding cache file {path} is damaged ({reason}); delete that file ({how} does, or remove it by "
            f"hand) and run again: its embeddings are computed again"
        )


def _damaged(e: sqlite3.Error) -> bool:
    """Whether SQLite says the file is not a database or is malformed (not: locked, busy, unwritable)."""
    code = getattr(e, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(e)
    return "file is not a database" in text or "malformed" in text


def cache_files(path: Path) -> list[Path]:
    """The files of one model's cache that exist: the database and SQLite's files beside it."""
    return [p for p in (path, *(path.with_name(path.name + s) for s in _SIDE_FILES)) if p.is_file()]


def default_cache_dir() -> Path:
    env = os.environ.get("VLBIAS_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vlbias"))


def _connect(path: Path) -> sqlite3.Connection:
    touch(path)  # as the umask allows: a cache shared by a group stays writable by it
    conn = sqlite3.connect(path, timeout=120.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=120000")
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:  # e.g. a filesystem without shared memory; rollback journal still atomic
        pass
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS emb (kind TEXT NOT NULL, key TEXT NOT NULL, dim INTEGER NOT NULL, "
        "crc INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID"
    )
    return conn


class ModelCache:
    """The cached vectors of one model identity. Safe to use from several processes at once."""

    def __init__(self, path: Path, meta: dict | None = None):
        self.path = path
        self._meta = dict(meta or {})
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite's 'not a database' and 'malformed' as a :class:`DamagedCacheError` naming the file."""
        try:
            yield
        except sqlite3.Error as e:
            if not _damaged(e):
                raise
            self.close()
            raise DamagedCacheError(self.path, str(e), self._meta.get("spec")) from None

    def _db(self) -> sqlite3.Connection:
        # SQLite connections must not cross fork(); reopen in a child process.
        if self._conn is None or self._pid != os.getpid():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = _connect(self.path)
            except (OSError, sqlite3.Error) as e:
                if isinstance(e, sqlite3.Error) and _damaged(e):
                    raise DamagedCacheError(self.path, str(e), self._meta.get("spec")) from None
                raise CacheError(
                    f"cannot open the embedding cache at {self.path} ({e}); pass --cache-dir to a writable "
                    f"folder, or --no-cache"
                ) from None
            self._pid = os.getpid()
            if self._meta:
                rows = [(k, json.dumps(v, default=str)) for k, v in self._meta.items()]
                with self._guard(), self._transaction() as c:
                    c.executemany("INSERT OR IGNORE INTO meta (k, v) VALUES (?, ?)", rows)
        return self._conn

    def _transaction(self):
        conn = self._conn
        assert conn is not None

        class _Tx:
            def __enter__(self_inner):
                conn.execute("BEGIN IMMEDIATE")
                return conn

            def __exit__(self_inner, exc_type, exc, tb):
                if exc_type is None:
                    conn.execute("COMMIT")
                else:  # SQLite may have rolled back already (on some errors it does): the error that counts is exc
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                return False

        return _Tx()

    def get_many(self, kind: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors for the keys that are cached (missing keys are simply absent from the result)."""
        if not keys or not self.path.exists():
            return {}
        conn = self._db()
        out: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), _CHUNK):
            chunk = unique[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            with self._guard():
                rows = conn.execute(
                    f"SELECT key, dim, crc, vec FROM emb WHERE kind = ? AND key IN ({marks})", [kind, *chunk]
                ).fetchall()
            for key, dim, crc, blob in rows:
                if len(blob) != 4 * dim or zlib.crc32(blob) != crc:
                    continue  # unreadable row: recomputed and overwritten by the caller
                vec = np.frombuffer(blob, dtype="<f4").copy()
                if not np.isfinite(vec).all():
                    continue  # never stored by vlbias (encoders refuse it): a miss, like a bad CRC
                out[key] = vec
        return out

    def put_many(self, kind: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store one batch atomically: after a crash either the whole batch is there or none of it."""
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        if len(keys) != len(vectors):
            raise ValueError("keys and vectors differ in length")
        rows = []
        for key, vec in zip(keys, vectors):
            blob = vec.tobytes()
            rows.append((kind, key, int(vec.shape[0]), zlib.crc32(blob), blob))
        self._db()
        with self._guard(), self._transaction() as c:
            c.executemany("INSERT OR REPLACE INTO emb (kind, key, dim, crc, vec) VALUES (?, ?, ?, ?, ?)", rows)

    def counts(self) -> dict[str, int]:
        if not self.path.exists():
            return {}
        conn = self._db()
        with self._guard():
            rows = conn.execute("SELECT kind, COUNT(*) FROM emb GROUP BY kind").fetchall()
        return {k: int(n) for k, n in rows}

    def meta(self) -> dict:
        if not self.path.exists():
            return {}
        conn = self._db()
        with self._guard():
            rows = conn.execute("SELECT k, v FROM meta").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def set_meta(self, key: str, value) -> None:
        """Store ``value`` (JSON) under ``key`` of the meta table, replacing what was there."""
        self._db()
        with self._guard(), self._transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (key, json.dumps(value, default=str)))

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None


@dataclass
class CacheEntry:
    """One model identity's cache file, as ``vlbias cache info`` reports it."""

    identity: str
    spec: str
    path: Path
    counts: dict[str, int]
    size_bytes: int
    created: str
    damaged: str | None = None  # why the file cannot be read (then spec is "?"); `clear` deletes it


class EmbeddingCache:
    """All cached embeddings under one root folder."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root).expanduser() if root else default_cache_dir()

    @property
    def folder(self) -> Path:
        return self.root / FORMAT

    def for_model(self, identity: str, meta: dict) -> ModelCache:
        meta = {"identity": identity, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **meta}
        return ModelCache(self.folder / f"{identity}.sqlite", meta)

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("*.sqlite"))

    def entries(self) -> list[CacheEntry]:
        """Every model's cache file, damaged ones included (with ``damaged`` saying why)."""
        out = []
        for path in self._files():
            mc = ModelCache(path)
            damaged = None
            try:
                meta, counts = mc.meta(), mc.counts()
            except DamagedCacheError as e:
                meta, counts, damaged = {}, {}, e.reason
            except sqlite3.Error:
                meta, counts = {}, {}
            finally:
                mc.close()
            out.append(
                CacheEntry(
                    identity=path.stem,
                    spec=str(meta.get("spec", "?")),
                    path=path,
                    counts=counts,
                    size_bytes=sum(p.stat().st_size for p in cache_files(path)),
                    created=str(meta.get("created", "")),
                    damaged=damaged,
                )
            )
        return out

    def clear(self, specs: Iterable[str] | None = None) -> list[CacheEntry]:
        """Delete the cache files of the given model specs (all when None), and every damaged cache file (whose
        model cannot be told any more); returns what was removed. Only the cache's own files are deleted."""
        wanted = None if specs is None else set(specs)
        removed = []
        for entry in self.entries():
            if wanted is not None and entry.spec not in wanted and entry.damaged is None:
                continue
            for p in cache_files(entry.path):
                p.unlink(missing_ok=True)
            removed.append(entry)
        return removed
