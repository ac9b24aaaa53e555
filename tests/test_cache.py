"""The embedding cache: round trips, integrity checks, concurrent writers and writers killed mid-write."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from vlbias.cache import EmbeddingCache


def _keyvec(i: int, d: int = 16) -> tuple[str, np.ndarray]:
    key = f"text-{i}"
    rng = np.random.default_rng(i)
    return key, rng.standard_normal(d).astype(np.float32)


def test_round_trip_and_missing_keys(tmp_path):
    mc = EmbeddingCache(tmp_path).for_model("abc", {"spec": "x:y"})
    assert mc.get_many("text", ["a"]) == {}
    vecs = np.arange(12, dtype=np.float32).reshape(3, 4)
    mc.put_many("text", ["a", "b", "c"], vecs)
    got = mc.get_many("text", ["c", "a", "zzz", "a"])
    assert set(got) == {"a", "c"}
    np.testing.assert_array_equal(got["a"], vecs[0])
    np.testing.assert_array_equal(got["c"], vecs[2])
    # kinds are separate namespaces
    assert mc.get_many("image", ["a"]) == {}
    assert mc.counts() == {"text": 3}
    assert mc.meta()["spec"] == "x:y"


def test_many_keys_beyond_one_query(tmp_path):
    mc = EmbeddingCache(tmp_path).for_model("abc", {"spec": "x:y"})
    keys = [f"k{i}" for i in range(1234)]
    vecs = np.random.default_rng(0).standard_normal((1234, 8)).astype(np.float32)
    mc.put_many("text", keys, vecs)
    got = mc.get_many("text", keys)
    assert len(got) == 1234
    np.testing.assert_array_equal(np.stack([got[k] for k in keys]), vecs)


def test_corrupt_row_reads_as_missing(tmp_path):
    mc = EmbeddingCache(tmp_path).for_model("abc", {"spec": "x:y"})
    mc.put_many("text", ["a", "b"], np.ones((2, 4), dtype=np.float32))
    mc.close()
    conn = sqlite3.connect(mc.path)
    conn.execute("UPDATE emb SET vec = ? WHERE key = 'a'", (np.zeros(4, dtype=np.float32).tobytes(),))
    conn.execute("UPDATE emb SET vec = ? WHERE key = 'b'", (np.ones(3, dtype=np.float32).tobytes(),))
    conn.commit()
    conn.close()
    assert mc.get_many("text", ["a", "b"]) == {}  # crc / length mismatch: recomputed, never returned


def _writer(root: str, start: int, n: int, batch: int) -> None:
    mc = EmbeddingCache(root).for_model("shared", {"spec": "x:y"})
    for s in range(start, start + n, batch):
        items = [_keyvec(i) for i in range(s, min(s + batch, start + n))]
        mc.put_many("text", [k for k, _ in items], np.stack([v for _, v in items]))


def test_two_concurrent_writers(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s, 3000, 50)) for s in (0, 2000)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    mc = EmbeddingCache(tmp_path).for_model("shared", {"spec": "x:y"})
    got = mc.get_many("text", [f"text-{i}" for i in range(5000)])
    assert len(got) == 5000  # overlapping ranges 2000..2999 written by both: no loss, no duplicates
    for i in range(5000):
        np.testing.assert_array_equal(got[f"text-{i}"], _keyvec(i)[1])
    assert mc.counts() == {"text": 5000}


KILLED_WRITER = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from vlbias.cache import EmbeddingCache
from test_cache import _keyvec
mc = EmbeddingCache({root!r}).for_model("killed", {{"spec": "x:y"}})
i = 0
print("ready", flush=True)
while True:
    items = [_keyvec(j, 512) for j in range(i, i + 200)]
    mc.put_many("text", [k for k, _ in items], np.stack([v for _, v in items]))
    i += 200
"""


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.9])
def test_writer_killed_mid_write_leaves_only_whole_batches(tmp_path, delay):
    code = KILLED_WRITER.format(tests=os.path.dirname(__file__), root=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    mc = EmbeddingCache(tmp_path).for_model("killed", {"spec": "x:y"})
    n = mc.counts().get("text", 0)
    assert n % 200 == 0  # whole batches only
    got = mc.get_many("text", [f"text-{i}" for i in range(n + 400)])
    assert len(got) == n and set(got) == {f"text-{i}" for i in range(n)}
    for i in range(n):
        np.testing.assert_array_equal(got[f"text-{i}"], _keyvec(i, 512)[1])


def test_entries_and_clear(tmp_path):
    store = EmbeddingCache(tmp_path)
    a = store.for_model("id-a", {"spec": "openclip:A/random"})
    b = store.for_model("id-b", {"spec": "st:B"})
    a.put_many("text", ["x"], np.ones((1, 4), np.float32))
    a.put_many("image", ["h1", "h2"], np.ones((2, 4), np.float32))
    b.put_many("text", ["y"], np.ones((1, 4), np.float32))
    entries = {e.spec: e for e in store.entries()}
    assert entries["openclip:A/random"].counts == {"image": 2, "text": 1}
    assert entries["st:B"].size_bytes > 0
    removed = store.clear(["st:B"])
    assert [e.spec for e in removed] == ["st:B"]
    assert [e.spec for e in store.entries()] == ["openclip:A/random"]
    store.clear()
    assert store.entries() == []


def test_unwritable_cache_dir_is_a_clear_error(tmp_path):
    from vlbias.errors import CacheError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    mc = EmbeddingCache(blocker / "sub").for_model("x", {"spec": "x:y"})
    with pytest.raises(CacheError, match="--cache-dir"):
        mc.put_many("text", ["a"], np.ones((1, 2), np.float32))


def _damage(path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] if how == "truncated" else os.urandom(len(data)))


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_a_damaged_cache_file_is_named_and_cleared_by_vlbias(tmp_path, capsys, how):
    from vlbias.cli import main
    from vlbias.errors import CacheError

    store = EmbeddingCache(tmp_path)
    good = store.for_model("id-good", {"spec": "st:good"})
    good.put_many("text", ["x"], np.ones((1, 4), np.float32))
    bad = store.for_model("id-bad", {"spec": "st:bad"})
    bad.put_many("text", [f"k{i}" for i in range(400)], np.ones((400, 64), np.float32))
    for mc in (good, bad):
        mc.close()
    _damage(bad.path, how)
    theirs = [store.folder / "id-good.sqlite.bak", store.folder / "notes.txt", tmp_path / "README"]
    for p in theirs:  # files in the cache folder that vlbias did not write: never deleted
        p.write_text("mine")
    reopened = store.for_model("id-bad", {"spec": "st:bad"})
    with pytest.raises(CacheError) as e:
        reopened.get_many("text", ["k1"])
    msg = str(e.value)
    assert msg.startswith(f"the embedding cache file {bad.path} is damaged (") and "\n" not in msg
    assert "delete that file (`vlbias cache clear --model st:bad` does" in msg
    reopened.close()
    args = ["--cache-dir", str(tmp_path)]
    assert main(["cache", "info", *args]) == 0
    out, err = capsys.readouterr()
    assert "st:good" in out and "(damaged)" in out
    assert err.startswith(f"vlbias: warning: {bad.path} is damaged (") and err.count("\n") == 1
    assert main(["cache", "clear", "--model", "st:bad", *args]) == 0
    assert "1 of them damaged" in capsys.readouterr().err
    assert sorted(p.name for p in store.folder.iterdir()) == ["id-good.sqlite", "id-good.sqlite.bak", "notes.txt"]
    _damage(good.path, how)
    assert main(["cache", "clear", "--yes", *args]) == 0
    err = capsys.readouterr().err
    assert err.startswith("removed 1 model cache file, ") and err.endswith(f", 1 of them damaged ({good.path})\n")
    assert sorted(p.name for p in store.folder.iterdir()) == ["id-good.sqlite.bak", "notes.txt"]
    assert all(p.read_text() == "mine" for p in theirs)


def test_a_damaged_cache_file_stops_a_command_with_one_line_and_clear_repairs_it(tmp_path, capsys):
    from vlbias.cli import main

    texts = tmp_path / "t.txt"
    texts.write_text("This is a tulip.\nThese are ants.\n", encoding="utf-8")
    args = ["embed", "-m", "st:all-MiniLM-L6-v2", "--texts", str(texts), "--cache-dir", str(tmp_path / "cache")]
    assert main([*args, "--out", str(tmp_path / "a.parquet")]) == 0
    import gc

    gc.collect()  # the first command's encoder, and with it its SQLite connection, is gone
    (path,) = EmbeddingCache(tmp_path / "cache").folder.glob("*.sqlite*")  # one file: no WAL of an open connection
    _damage(path, "garbage")
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "b.parquet")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vlbias: error: the embedding cache file {path} is damaged (file is not a database)")
    assert "`vlbias cache clear --model st:all-MiniLM-L6-v2` does" in err and err.count("\n") == 1
    assert main(["cache", "clear", "--model", "st:all-MiniLM-L6-v2", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.parquet")]) == 0
    import pandas as pd

    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    np.testing.assert_array_equal(np.stack(a["vector"]), np.stack(b["vector"]))


def test_a_non_finite_vector_with_a_valid_crc_reads_as_missing_and_is_recomputed(tmp_path):
    import zlib

    from vlbias.models import load_model

    enc = load_model("st:all-MiniLM-L6-v2", cache=tmp_path, device="cpu")
    first = enc.encode_texts(["a tulip", "an ant"])
    mc = enc._cache()
    mc.close()
    conn = sqlite3.connect(mc.path)
    for key, value in (("a tulip", np.nan), ("an ant", np.inf)):
        blob = first[0].copy()
        blob[3] = value
        blob = blob.astype("<f4").tobytes()
        conn.execute("UPDATE emb SET vec = ?, crc = ? WHERE key = ?", (blob, zlib.crc32(blob), key))
    conn.commit()
    conn.close()
    assert mc.get_many("text", ["a tulip", "an ant"]) == {}  # the guarantee: never returned
    again = load_model("st:all-MiniLM-L6-v2", cache=tmp_path, device="cpu").encode_texts(["a tulip", "an ant"])
    np.testing.assert_array_equal(again, first)  # recomputed ...
    got = mc.get_many("text", ["a tulip", "an ant"])
    np.testing.assert_array_equal(np.stack([got["a tulip"], got["an ant"]]), first)  # ... and overwritten
