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
