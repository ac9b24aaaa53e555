"""Content fingerprints of local weight files and model folders, memoised by (path, size, mtime).

A model loaded from a local checkpoint or folder is identified by what is in it, not by its path: moving the file
keeps its cached embeddings, overwriting it with other weights does not. Hashing a large checkpoint takes seconds,
so each file's sha256 is remembered until its size or modification time changes.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

from vlbias.utils.io import sha256_file, touch


def _memo(root: Path | None) -> sqlite3.Connection | None:
    if root is None:
        return None
    try:
        root.mkdir(parents=True, exist_ok=True)
        touch(root / "fingerprints.sqlite")  # as the umask allows
        conn = sqlite3.connect(root / "fingerprints.sqlite", timeout=60.0, isolation_level=None)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS fp (path TEXT, size INTEGER, mtime INTEGER, sha256 TEXT, "
            "PRIMARY KEY (path, size, mtime))"
        )
        return conn
    except (OSError, sqlite3.Error):
        return None  # a memo is an optimisation only


def file_fingerprint(path: str | os.PathLike, memo_root: Path | None = None) -> str:
    path = Path(path).resolve()
    st = path.stat()
    conn = _memo(memo_root)
    if conn is not None:
        row = conn.execute(
            "SELECT sha256 FROM fp WHERE path = ? AND size = ? AND mtime = ?", (str(path), st.st_size, st.st_mtime_ns)
        ).fetchone()
        if row:
            conn.close()
            return row[0]
    digest = sha256_file(path)
    if conn is not None:
        try:
            conn.execute(
                "INSERT OR REPLACE INTO fp VALUES (?, ?, ?, ?)", (str(path), st.st_size, st.st_mtime_ns, digest)
            )
        except sqlite3.Error:
            pass
        conn.close()
    return digest


def tree_fingerprint(folder: str | os.PathLike, memo_root: Path | None = None) -> str:
    """sha256 over (relative path, file sha256) of every regular file in a folder, hidden files excluded."""
    folder = Path(folder).resolve()
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if not p.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        h.update(rel.as_posix().encode() + b"\0" + file_fingerprint(p, memo_root).encode() + b"\n")
    return h.hexdigest()
