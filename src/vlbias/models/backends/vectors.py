"""Precomputed embeddings: ``vectors:PATH``.

Audit embeddings made by any pipeline, and feed exact vectors to tests. Formats, chosen by the file name:

- word2vec text (``.txt``, ``.vec``, ``.w2v``, optionally ``.gz``): an optional ``N D`` header line, then
  ``KEY v1 … vD`` per line, KEY being the first whitespace-free token (word2vec's own definition; GloVe files
  without a header work too). Keys with spaces (sentences) need ``.npz`` or Parquet.
- word2vec binary (``.bin``): the ``N D`` header, then KEY, a space and D little-endian float32 per record.
- ``.npz``: arrays ``keys`` (strings) and ``vectors`` (N × D).
- Parquet (``.parquet``, ``.pq``): columns ``key`` (string) and ``vector`` (list of floats); rows with a null
  vector are ignored (``vlbias embed`` writes those for skipped images). An optional ``sha256`` column adds a
  second key per row.

A word2vec header is checked against the file before anything is allocated: its dimension must be 1 to
:data:`MAX_DIM`, and its count of vectors must fit in the bytes that follow (binary) or match the lines (text).

Text keys are the exact strings. Image keys are the image's path relative to the dataset root (``/``-separated)
or the sha256 of its bytes; a cropped image (an audit's ``ImageRef`` with a crop box) is looked up as
``PATH@crop=left,upper,right,lower`` first, then as the whole image's key. Vectors are L2-normalised on the way
out, like every backend's.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import numpy as np

from vlbias.cache.fingerprints import file_fingerprint
from vlbias.errors import MissingKeysError, SpecError, StimulusError
from vlbias.models.base import Encoder, ImageEncoding, _check_texts
from vlbias.models.images import ImageRef, as_ref, content_key, describe

DESCRIPTION = "precomputed embeddings: vectors:PATH (word2vec text or binary, .npz keys+vectors, Parquet key+vector)"
#: more dimensions than any embedding model has: a header that claims more is damaged, not a model
MAX_DIM = 65_536


class VectorFileError(StimulusError):
    pass


def _bad(path: Path, what: str) -> VectorFileError:
    return VectorFileError(f"{path}: {what}; fix the file (see `vlbias models` for the vectors: formats)")


def _check_dim(path: Path, dim: int, where: str) -> None:
    if not 1 <= dim <= MAX_DIM:
        raise _bad(path, f"{where} gives {dim:,} values per vector; a vector has 1 to {MAX_DIM:,}")


def read_word2vec_text(path: Path) -> tuple[list[str], np.ndarray]:
    opener = gzip.open if path.suffix == ".gz" else open
    keys: list[str] = []
    rows: list[list[str]] = []
    dim: int | None = None
    announced: int | None = None
    with opener(path, "rt", encoding="utf-8", errors="strict") as f:
        for lineno, line in enumerate(f, 1):
            toks = line.rstrip("\n").rstrip("\r").split()
            if not toks:
                continue
            if lineno == 1 and len(toks) == 2 and toks[0].isdigit() and toks[1].isdigit():
                announced, dim = int(toks[0]), int(toks[1])
                _check_dim(path, dim, "the header 'N D'")
                continue
            if dim is None:
                dim = len(toks) - 1
                _check_dim(path, dim, f"line {lineno} ({toks[0]!r})")
            if len(toks) - 1 != dim:
                raise _bad(path, f"line {lineno} ({toks[0]!r}) has {len(toks) - 1} values where the others have {dim}")
            keys.append(toks[0])
            rows.append(toks[1:])
    if not keys:
        raise _bad(path, "no vectors in the file")
    if announced is not None and announced != len(keys):
        raise _bad(path, f"the header announces {announced:,} vectors but the file holds {len(keys):,} (truncated?)")
    try:
        mat = np.asarray(rows, dtype=np.float32)
    except ValueError:
        raise _bad(path, "a vector holds a value that is not a number") from None
    return keys, mat


def read_word2vec_binary(path: Path) -> tuple[list[str], np.ndarray]:
    data = path.read_bytes()
    nl = data.find(b"\n")
    try:
        if nl < 0:
            raise ValueError
        n, dim = (int(x) for x in data[:nl].split())
    except ValueError:
        raise _bad(path, "the first line is not the word2vec binary header 'N D'") from None
    _check_dim(path, dim, "the header 'N D'")
    if n < 1:
        raise _bad(path, f"the header announces {n} vectors; a vectors file holds at least 1")
    body, record = len(data) - nl - 1, 4 * dim + 2  # a record: a key of at least one byte, a space, D float32
    if n * record > body:  # checked before allocating: a damaged header must not claim terabytes
        raise _bad(
            path,
            f"the header announces {n:,} vectors of {dim} values, at least {n * record:,} bytes, but "
            f"{body:,} bytes follow it (truncated, or not a word2vec binary file)",
        )
    keys, mat, pos = [], np.empty((n, dim), dtype=np.float32), nl + 1
    width = 4 * dim
    for i in range(n):
        while pos < len(data) and data[pos : pos + 1] in (b"\n", b" "):
            pos += 1
        sp = data.find(b" ", pos)
        if sp < 0 or sp + 1 + width > len(data):
            raise _bad(path, f"record {i + 1} of {n} is truncated (file shorter than the header says)")
        keys.append(data[pos:sp].decode("utf-8", errors="replace"))
        mat[i] = np.frombuffer(data, dtype="<f4", count=dim, offset=sp + 1)
        pos = sp + 1 + width
    rest = data[pos:].strip()
    if rest:
        raise _bad(path, f"{len(rest)} bytes after the {n} records the header announces (mixed dimensions?)")
    return keys, mat


def read_npz(path: Path) -> tuple[list[str], np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        if "keys" not in z or "vectors" not in z:
            raise _bad(path, f"an .npz needs arrays 'keys' and 'vectors' (found {', '.join(z.files) or 'none'})")
        keys = [str(k) for k in z["keys"]]
        mat = np.asarray(z["vectors"], dtype=np.float32)
    if mat.ndim != 2 or mat.shape[0] != len(keys):
        raise _bad(path, f"'vectors' has shape {mat.shape}; it must be ({len(keys)}, D), one row per key")
    return keys, mat


def read_parquet(path: Path) -> tuple[list[str], np.ndarray, list[str | None]]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    for col in ("key", "vector"):
        if col not in table.column_names:
            raise _bad(path, f"a Parquet vectors file needs columns 'key' and 'vector' (found {table.column_names})")
    table = table.filter(pc.is_valid(table["vector"]))
    if table.num_rows == 0:
        raise _bad(path, "no vectors in the file")
    lengths = pc.list_value_length(table["vector"]).to_numpy(zero_copy_only=False)
    if lengths.min() != lengths.max():
        first = int(np.flatnonzero(lengths != lengths[0])[0])
        key = table["key"][first].as_py()
        raise _bad(path, f"row {first + 1} ({key!r}) has {lengths[first]} values where row 1 has {lengths[0]}")
    flat = pc.list_flatten(table["vector"]).to_numpy(zero_copy_only=False).astype(np.float32)
    mat = flat.reshape(table.num_rows, int(lengths[0]))
    keys = [str(k) for k in table["key"].to_pylist()]
    sha = table["sha256"].to_pylist() if "sha256" in table.column_names else [None] * len(keys)
    return keys, mat, sha


class Backend(Encoder):
    uses_cache = False

    def _parse(self) -> None:
        self.path = Path(self.spec.target).expanduser()
        if not self.path.is_file():
            raise SpecError(f"vectors file not found: {self.path} (from {self.spec}); check the path")

    def _identity_payload(self) -> dict[str, Any]:
        return {"file": file_fingerprint(self.path, self.memo_root)}

    @property
    def device(self) -> str:  # no computation happens here
        return "cpu"

    def _load(self) -> None:
        p = self.path
        name = p.name.lower()
        aliases: list[str | None] = []
        try:
            if name.endswith(".npz"):
                keys, mat = read_npz(p)
            elif name.endswith((".parquet", ".pq")):
                keys, mat, aliases = read_parquet(p)
            elif name.endswith(".bin"):
                keys, mat = read_word2vec_binary(p)
            else:
                keys, mat = read_word2vec_text(p)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            if isinstance(e, VectorFileError):
                raise
            raise _bad(p, f"cannot be read as a vectors file ({type(e).__name__}: {str(e)[:120]})") from None
        except MemoryError:
            raise VectorFileError(
                f"{p} does not fit in memory, or its header claims more vectors than it holds; check the file"
            ) from None
        if mat.shape[1] == 0:
            raise _bad(p, "its vectors have no values")
        index: dict[str, int] = {}
        for i, k in enumerate(keys):
            j = index.setdefault(k, i)
            if j != i and not np.array_equal(mat[i], mat[j]):
                raise _bad(p, f"key {k!r} appears twice with different vectors")
        for i, a in enumerate(aliases):
            if a:
                index.setdefault(a, i)
        norms = np.linalg.norm(mat.astype(np.float64), axis=1)
        zero = np.flatnonzero(~(norms > 0) | ~np.isfinite(norms))
        self._zero = {keys[i] for i in zero}
        norms[zero] = 1.0
        self._matrix = (mat / norms[:, None]).astype(np.float32)
        self._index = index

    def _info(self) -> dict[str, Any]:
        return {
            "architecture": "precomputed",
            "pretrained": str(self.path),
            "embed_dim": int(self._matrix.shape[1]),
            "extra": {"n_vectors": int(self._matrix.shape[0])},
        }

    def _rows(self, keys: list[str], kind: str) -> np.ndarray:
        idx = [self._index[k] for k in keys]
        for k in keys:
            if k in self._zero:
                raise _bad(self.path, f"the vector of {k!r} is zero or not finite, so it has no direction")
        return self._matrix[idx]

    def missing_texts(self, texts) -> list[str]:
        self.load()
        return [t for t in dict.fromkeys(texts) if t not in self._index]

    def encode_texts(self, texts) -> np.ndarray:
        self._require("text")
        texts = _check_texts(texts)
        missing = self.missing_texts(texts)
        if missing:
            raise MissingKeysError(str(self.spec), "text", missing)
        return self._rows(texts, "text")

    def _image_key(self, ref, root: Path | None) -> str | None:
        if isinstance(ref, ImageRef):
            candidates = []
            if root is not None:
                try:
                    candidates.append(ref.path.resolve().relative_to(Path(root).resolve()).as_posix())
                except ValueError:
                    pass
            candidates.append(ref.path.as_posix())
            if ref.crop is not None:  # a crop is its own image: PATH@crop=l,u,r,b first (FACET's people)
                candidates = [c + ref.suffix_key for c in candidates] + candidates
            for c in candidates:
                if c in self._index:
                    return c
        try:
            key = content_key(ref)
        except OSError:
            return None
        return key if key in self._index else None

    def missing_images(self, images, root: str | os.PathLike | None = None) -> list[str]:
        self.load()
        refs = [as_ref(x) for x in images]
        return [describe(r) for r in refs if self._image_key(r, Path(root) if root else None) is None]

    def try_encode_images(self, images, *, root=None, skip_bad: bool = False) -> ImageEncoding:
        self._require("image")
        self.load()
        refs = [as_ref(x) for x in images]
        if not refs:
            raise StimulusError("no images to encode; the image list or folder is empty")
        root_path = Path(root) if root else None
        keys = [self._image_key(r, root_path) for r in refs]
        missing = [describe(r) for r, k in zip(refs, keys) if k is None]
        if missing and not skip_bad:
            raise MissingKeysError(
                str(self.spec), "image", missing, "add them to the file, or pass --skip-bad-images to leave them out"
            )
        ok = np.array([k is not None for k in keys], dtype=bool)
        vecs = self._rows([k for k in keys if k is not None], "image")
        skipped = [(i, describe(r), "no vector in the file") for i, (r, k) in enumerate(zip(refs, keys)) if k is None]
        return ImageEncoding(vectors=vecs, ok=ok, skipped=skipped, keys=keys)
