"""The on-disk embedding cache.

Each embedding is computed once per (model identity, stimulus) and reused by every later command. One SQLite file
per model identity holds that model's vectors, keyed by ``(kind, key)``: texts by the exact string, images by the
sha256 of their bytes (plus any crop applied before encoding).

Why SQLite: every write is a transaction, so a process killed mid-write leaves the file as it was before that
batch (never a partial row), and concurrent writers from several processes are serialised by SQLite's lock
(``busy_timeout``). Each row also stores its dimension and a CRC32 of the vector bytes, checked on every read, so
a row can never read back wrong: a mismatch is treated as a miss and recomputed.

Layout: ``<root>/v1/<identity>.sqlite``. The root is ``--cache-dir``, else ``$VLBIAS_CACHE``, else the platform's
user cache folder. On network filesystems without working POSIX locks (some NFS setups) use a local cache folder
per machine.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlbias.errors import CacheError

FORMAT = "v1"
_CHUNK = 500  # keys per SELECT (SQLite's variable limit is well above this)


def default_cache_dir() -> Path:
    env = os.environ.get("VLBIAS_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vlbias"))


def _connect(path: Path) -> sqlite3.Connection:
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

    def _db(self) -> sqlite3.Connection:
        # SQLite connections must not cross fork(); reopen in a child process.
        if self._conn is None or self._pid != os.getpid():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = _connect(self.path)
            except (OSError, sqlite3.Error) as e:
                raise CacheError(
                    f"cannot open the embedding cache at {self.path} ({e}); pass --cache-dir to a writable "
                    f"folder, or --no-cache"
                ) from None
            self._pid = os.getpid()
            if self._meta:
                rows = [(k, json.dumps(v, default=str)) for k, v in self._meta.items()]
                with self._transaction() as c:
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
                conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
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
            rows = conn.execute(
                f"SELECT key, dim, crc, vec FROM emb WHERE kind = ? AND key IN ({marks})", [kind, *chunk]
            ).fetchall()
            for key, dim, crc, blob in rows:
                if len(blob) != 4 * dim or zlib.crc32(blob) != crc:
                    continue  # unreadable row: recomputed and overwritten by the caller
                out[key] = np.frombuffer(blob, dtype="<f4").copy()
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
        with self._transaction() as c:
            c.executemany("INSERT OR REPLACE INTO emb (kind, key, dim, crc, vec) VALUES (?, ?, ?, ?, ?)", rows)

    def counts(self) -> dict[str, int]:
        if not self.path.exists():
            return {}
        rows = self._db().execute("SELECT kind, COUNT(*) FROM emb GROUP BY kind").fetchall()
        return {k: int(n) for k, n in rows}

    def meta(self) -> dict:
        if not self.path.exists():
            return {}
        rows = self._db().execute("SELECT k, v FROM meta").fetchall()
        return {k: json.loads(v) for k, v in rows}

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
        out = []
        for path in self._files():
            mc = ModelCache(path)
            try:
                meta, counts = mc.meta(), mc.counts()
            except sqlite3.Error:
                meta, counts = {}, {}
            finally:
                mc.close()
            size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
            out.append(
                CacheEntry(
                    identity=path.stem,
                    spec=str(meta.get("spec", "?")),
                    path=path,
                    counts=counts,
                    size_bytes=size,
                    created=str(meta.get("created", "")),
                )
            )
        return out

    def clear(self, specs: Iterable[str] | None = None) -> list[CacheEntry]:
        """Delete the cache files of the given model specs (all when None); returns what was removed."""
        wanted = None if specs is None else set(specs)
        removed = []
        for entry in self.entries():
            if wanted is not None and entry.spec not in wanted:
                continue
            for p in entry.path.parent.glob(entry.path.name + "*"):
                p.unlink(missing_ok=True)
            removed.append(entry)
        return removed
