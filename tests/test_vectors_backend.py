"""vectors: backend: every file format, exact vectors, image keys, and every malformed file."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest

from tests.helpers import random_image, write_parquet_vectors, write_w2v_binary, write_w2v_text
from vlbias.errors import MissingKeysError, StimulusError
from vlbias.models import load_model
from vlbias.utils.io import sha256_file

KEYS = ["aster", "clover", "ant", "New_York", "naïve"]
VECS = np.array([[3, 4, 0], [0, 0, 2], [1, 1, 1], [-1, 0, 0], [0.5, -0.25, 2.0]], dtype=np.float32)
UNIT = VECS / np.linalg.norm(VECS, axis=1, keepdims=True)


def _files(tmp_path):
    paths = {}
    write_w2v_text(paths.setdefault("w2v", tmp_path / "v.txt"), KEYS, VECS)
    write_w2v_text(paths.setdefault("glove", tmp_path / "glove.vec"), KEYS, VECS, header=False)
    write_w2v_binary(paths.setdefault("bin", tmp_path / "v.bin"), KEYS, VECS)
    np.savez(paths.setdefault("npz", tmp_path / "v.npz"), keys=np.array(KEYS), vectors=VECS)
    write_parquet_vectors(paths.setdefault("parquet", tmp_path / "v.parquet"), KEYS, VECS)
    return paths


@pytest.mark.parametrize("fmt", ["w2v", "glove", "bin", "npz", "parquet"])
def test_formats_give_exact_normalised_vectors(tmp_path, fmt):
    enc = load_model(f"vectors:{_files(tmp_path)[fmt]}")
    got = enc.encode_texts(["ant", "aster", "naïve", "ant"])
    np.testing.assert_allclose(got, UNIT[[2, 0, 4, 2]], rtol=1e-6)
    assert enc.info.embed_dim == 3


def test_missing_keys_are_listed_and_checkable(tmp_path):
    enc = load_model(f"vectors:{_files(tmp_path)['w2v']}")
    assert enc.missing_texts(["ant", "bee", "wasp", "bee"]) == ["bee", "wasp"]
    with pytest.raises(MissingKeysError) as exc:
        enc.encode_texts(["ant", "bee", "wasp"])
    assert exc.value.missing == ["bee", "wasp"]
    assert "'bee', 'wasp'" in str(exc.value) and "add them to the file" in str(exc.value)


def test_sentences_as_keys_in_parquet(tmp_path):
    p = tmp_path / "s.parquet"
    write_parquet_vectors(p, ["This is an aster.", "This is an ant."], VECS[:2])
    got = load_model(f"vectors:{p}").encode_texts(["This is an ant."])
    np.testing.assert_allclose(got[0], UNIT[1], rtol=1e-6)


def test_image_keys_relative_path_or_sha256(tmp_path):
    root = tmp_path / "data"
    (root / "faces").mkdir(parents=True)
    a, b = root / "faces" / "a.png", root / "faces" / "b.png"
    random_image(0).save(a)
    random_image(1).save(b)
    p = tmp_path / "img.parquet"
    write_parquet_vectors(p, ["faces/a.png", sha256_file(b)], VECS[:2])
    enc = load_model(f"vectors:{p}")
    got = enc.encode_images([b, a, a], root=root)
    np.testing.assert_allclose(got, UNIT[[1, 0, 0]], rtol=1e-6)
    c = root / "faces" / "c.png"
    random_image(2).save(c)
    assert enc.missing_images([a, c], root=root) == [str(c)]
    with pytest.raises(MissingKeysError):
        enc.encode_images([a, c], root=root)
    res = enc.try_encode_images([a, c], root=root, skip_bad=True)
    assert res.ok.tolist() == [True, False]


def test_null_vectors_in_parquet_are_ignored(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "n.parquet"
    pq.write_table(pa.table({"key": ["a", "b"], "vector": [[1.0, 0.0], None]}), p)
    enc = load_model(f"vectors:{p}")
    assert enc.missing_texts(["a", "b"]) == ["b"]


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("mixed.txt", "2 3\na 1 2 3\nb 1 2\n", "line 3 ('b') has 2 values where the others have 3"),
        ("glove.txt", "a 1 2 3\nb 1 2 3 4\n", "line 2 ('b') has 4 values where the others have 3"),
        ("nan.txt", "a 1 2 x\n", "not a number"),
        ("empty.txt", "", "no vectors in the file"),
        ("dup.txt", "a 1 0\na 0 1\n", "key 'a' appears twice with different vectors"),
    ],
)
def test_malformed_text_files(tmp_path, name, content, fragment):
    p = tmp_path / name
    p.write_text(content)
    with pytest.raises(StimulusError) as exc:
        load_model(f"vectors:{p}").encode_texts(["a"])
    assert fragment in str(exc.value) and str(p) in str(exc.value)


def test_malformed_binary_npz_parquet(tmp_path):
    bin_path = tmp_path / "short.bin"
    write_w2v_binary(bin_path, KEYS, VECS)
    bin_path.write_bytes(bin_path.read_bytes()[:-20])
    npz_path = tmp_path / "wrong.npz"
    np.savez(npz_path, words=np.array(["a"]), vectors=VECS[:1])
    shape_path = tmp_path / "shape.npz"
    np.savez(shape_path, keys=np.array(["a", "b"]), vectors=VECS[:3])
    pq_path = tmp_path / "mixed.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"key": ["a", "b"], "vector": [[1.0, 0.0], [1.0, 0.0, 2.0]]}), pq_path)
    cols_path = tmp_path / "cols.parquet"
    pq.write_table(pa.table({"word": ["a"], "vector": [[1.0]]}), cols_path)
    cases = {
        bin_path: "truncated",
        npz_path: "needs arrays 'keys' and 'vectors'",
        shape_path: "one row per key",
        pq_path: "row 2 ('b') has 3 values where row 1 has 2",
        cols_path: "needs columns 'key' and 'vector'",
    }
    for path, fragment in cases.items():
        with pytest.raises(StimulusError) as exc:
            load_model(f"vectors:{path}").encode_texts(["a"])
        assert fragment in str(exc.value), path


def test_zero_vector_is_an_error_when_used(tmp_path):
    p = tmp_path / "z.txt"
    p.write_text("a 0 0\nb 1 0\n")
    enc = load_model(f"vectors:{p}")
    np.testing.assert_array_equal(enc.encode_texts(["b"]), [[1, 0]])
    with pytest.raises(StimulusError, match="'a' is zero"):
        enc.encode_texts(["a"])


def test_wefe_word2vec_subset_reads(tmp_path):
    """The real word2vec (GoogleNews) subset that WEFE ships reads as a word2vec text file."""
    path = importlib.metadata.distribution("wefe").locate_file("wefe/datasets/data/weat_w2v____old.txt")
    enc = load_model(f"vectors:{path}")
    v = enc.encode_texts(["rose", "tulip", "cockroach"])
    assert v.shape == (3, 300)
    assert enc.info.extra["n_vectors"] == 347
    # real embeddings: two flowers are closer to each other than to an insect
    assert v[0] @ v[1] > v[0] @ v[2]


TWO_RECORDS = (("a", (1.0, 2.0, 3.0)), ("b", (4.0, 5.0, 6.0)))


def _binary(path, header: bytes, records=TWO_RECORDS):
    import struct

    path.write_bytes(header + b"".join(k.encode() + b" " + struct.pack(f"<{len(v)}f", *v) + b"\n" for k, v in records))
    return path


def _npz_claiming(path, rows: int):
    """An .npz whose 'vectors' array header claims ``rows`` x 3 float32 but holds 24 bytes."""
    import io
    import zipfile

    from numpy.lib import format as npy

    arr = io.BytesIO()
    npy.write_array_header_1_0(arr, {"descr": "<f4", "fortran_order": False, "shape": (rows, 3)})
    keys = io.BytesIO()
    np.save(keys, np.array(["a", "b"]))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("keys.npy", keys.getvalue())
        z.writestr("vectors.npy", arr.getvalue() + b"\0" * 24)
    return path


#: headers that lie: each is refused in one line before anything is allocated (1e11 words would be 1.1 TiB)
LYING_HEADERS = [
    ("huge.bin", b"100000000000 3\n", "the header announces 100,000,000,000 vectors of 3 values, at least"),
    ("more.bin", b"3 3\n", "the header announces 3 vectors of 3 values, at least 42 bytes, but 30 bytes follow it"),
    ("negdim.bin", b"2 -3\n", "the header 'N D' gives -3 values per vector; a vector has 1 to 65,536"),
    ("zerodim.bin", b"2 0\n", "the header 'N D' gives 0 values per vector"),
    ("bigdim.bin", b"1 1000000000\n", "the header 'N D' gives 1,000,000,000 values per vector"),
    ("negn.bin", b"-2 3\n", "the header announces -2 vectors; a vectors file holds at least 1"),
    ("zeron.bin", b"0 3\n", "the header announces 0 vectors"),
    ("words.bin", b"two three\n", "the first line is not the word2vec binary header 'N D'"),
    ("float.bin", b"1e11 3\n", "the first line is not the word2vec binary header 'N D'"),
    ("nonewline.bin", b"2 3", "the first line is not the word2vec binary header 'N D'"),
]


@pytest.mark.parametrize("name, header, fragment", LYING_HEADERS, ids=[c[0] for c in LYING_HEADERS])
def test_binary_header_is_checked_against_the_file_before_allocating(tmp_path, name, header, fragment, monkeypatch):
    path = _binary(tmp_path / name, header, () if name == "nonewline.bin" else TWO_RECORDS)
    real_empty = np.empty

    def guarded(shape, *a, **k):  # the reader must not ask for more memory than the file can fill
        assert np.prod(shape) * 4 <= path.stat().st_size, shape
        return real_empty(shape, *a, **k)

    monkeypatch.setattr(np, "empty", guarded)
    with pytest.raises(StimulusError) as exc:
        load_model(f"vectors:{path}").encode_texts(["a"])
    assert fragment in str(exc.value) and str(path) in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("short.txt", "5 3\na 1 2 3\nb 4 5 6\n", "the header announces 5 vectors but the file holds 2 (truncated?)"),
        ("long.txt", "1 3\na 1 2 3\nb 4 5 6\n", "the header announces 1 vectors but the file holds 2"),
        ("zerodim.txt", "2 0\na\nb\n", "the header 'N D' gives 0 values per vector"),
        ("hugedim.txt", "2 100000000000\na 1 2 3\n", "the header 'N D' gives 100,000,000,000 values per vector"),
        ("novalues.txt", "a\nb\n", "line 1 ('a') gives 0 values per vector"),
    ],
)
def test_text_header_and_dimension_are_checked(tmp_path, name, content, fragment):
    p = tmp_path / name
    p.write_text(content)
    with pytest.raises(StimulusError) as exc:
        load_model(f"vectors:{p}").encode_texts(["a"])
    assert fragment in str(exc.value) and str(p) in str(exc.value)


def test_npz_claiming_more_than_memory_is_one_line(tmp_path):
    p = _npz_claiming(tmp_path / "huge.npz", 10**11)
    with pytest.raises(StimulusError) as exc:
        load_model(f"vectors:{p}").encode_texts(["a"])
    assert str(p) in str(exc.value) and "\n" not in str(exc.value)


def test_vectors_without_values_are_refused(tmp_path):
    p = tmp_path / "empty-vectors.npz"
    np.savez(p, keys=np.array(["a", "b"]), vectors=np.zeros((2, 0), np.float32))
    with pytest.raises(StimulusError, match="its vectors have no values"):
        load_model(f"vectors:{p}").encode_texts(["a"])
