"""Image decoding across real-world formats and modes, and every kind of bad image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.helpers import random_image
from vlbias.errors import ImageDecodeError, StimulusError
from vlbias.models.images import ImageRef, list_image_folder, open_image
from vlbias.stimuli.imagesets import image_source


def _variants(folder):
    base = random_image(5, size=(96, 80))
    made = {}
    made["rgb.jpg"] = base
    made["gray.jpg"] = base.convert("L")
    made["cmyk.jpg"] = base.convert("CMYK")
    made["rgb.png"] = base
    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    made["rgba.png"] = rgba
    made["palette.png"] = base.convert("P", palette=Image.ADAPTIVE, colors=64)
    pt = base.convert("P", palette=Image.ADAPTIVE, colors=64)
    pt.info["transparency"] = 0
    made["palette_transparent.png"] = pt
    made["photo.webp"] = base
    made["tiny.png"] = random_image(6, size=(32, 32))
    made["large.jpg"] = random_image(7, size=(4000, 3171))
    made["la.png"] = base.convert("LA")
    made["gif.gif"] = base.convert("P")
    paths = {}
    for name, img in made.items():
        p = folder / name
        kw = {"transparency": 0} if name == "palette_transparent.png" else {}
        img.save(p, **kw)
        paths[name] = p
    return paths


def test_every_format_and_mode_decodes_to_rgb(tmp_path):
    for name, p in _variants(tmp_path).items():
        img = open_image(ImageRef(p))
        assert img.mode == "RGB", name
        assert img.size == Image.open(p).size


def test_cmyk_jpeg_keeps_its_colours(tmp_path):
    base = Image.new("RGB", (64, 64), (200, 40, 40))
    base.convert("CMYK").save(tmp_path / "red.jpg", quality=95)
    px = np.asarray(open_image(ImageRef(tmp_path / "red.jpg")))
    assert abs(int(px[..., 0].mean()) - 200) < 12 and px[..., 1].mean() < 60


def test_all_formats_encode(tmp_path, small_clip):
    paths = list(_variants(tmp_path).values())
    v = small_clip.encode_images(paths)
    assert v.shape[0] == len(paths)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-6)


def _with_bad(folder):
    good = [folder / f"g{i}.jpg" for i in range(3)]
    for i, p in enumerate(good):
        random_image(i).save(p)
    corrupt = folder / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    truncated = folder / "truncated.png"
    random_image(9, size=(200, 200)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    return good, corrupt, truncated


def test_corrupt_image_fails_by_default_naming_it(tmp_path, small_clip):
    good, corrupt, truncated = _with_bad(tmp_path)
    with pytest.raises(ImageDecodeError) as exc:
        small_clip.encode_images([good[0], corrupt, good[1], truncated])
    msg = str(exc.value)
    assert str(corrupt) in msg and "--skip-bad-images" in msg and "1 other bad image" in msg
    assert {b for b, _ in exc.value.bad} == {str(corrupt), str(truncated)}


def test_skip_bad_images_reports_what_was_skipped(tmp_path, small_clip):
    good, corrupt, truncated = _with_bad(tmp_path)
    missing = tmp_path / "missing.jpg"
    res = small_clip.try_encode_images([good[0], corrupt, good[1], missing, truncated, good[2]], skip_bad=True)
    assert res.ok.tolist() == [True, False, True, False, False, True]
    assert [i for i, _, _ in res.skipped] == [1, 3, 4]
    assert dict((i, r) for i, _, r in res.skipped)[3] == "file not found"
    np.testing.assert_allclose(res.vectors, small_clip.encode_images(good), atol=1e-6)
    assert np.isnan(res.full()[1]).all()


def test_missing_file_fails_before_any_encoding(tmp_path, small_clip):
    with pytest.raises(ImageDecodeError, match="file not found"):
        small_clip.encode_images([tmp_path / "nope.jpg"])


def test_bad_image_leaves_no_cache_entry(tmp_path):
    from vlbias.cache import EmbeddingCache
    from vlbias.models import load_model

    _, corrupt, _ = _with_bad(tmp_path)
    enc = load_model("openclip:ViT-S-32-alt/random", cache=tmp_path / "c", device="cpu")
    with pytest.raises(ImageDecodeError):
        enc.encode_images([corrupt])
    assert all(sum(e.counts.values()) == 0 for e in EmbeddingCache(tmp_path / "c").entries())


def test_empty_inputs(small_clip):
    with pytest.raises(StimulusError, match="no images"):
        small_clip.encode_images([])
    with pytest.raises(StimulusError, match="text list is empty"):
        small_clip.encode_texts([])
    with pytest.raises(StimulusError, match="not a single string"):
        small_clip.encode_texts("a photo")


def test_folder_listing_and_manifest(tmp_path):
    (tmp_path / "sub").mkdir()
    random_image(0).save(tmp_path / "b.jpg")
    random_image(1).save(tmp_path / "sub" / "a.png")
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / ".DS_Store").write_text("x")
    images, others = list_image_folder(tmp_path)
    assert [p.name for p in images] == ["b.jpg", "a.png"]
    assert [p.name for p in others] == ["notes.txt"]
    src = image_source(tmp_path)
    assert [src.key(p) for p in src.paths] == ["b.jpg", "sub/a.png"]

    (tmp_path / "m.csv").write_text("image,group\nsub/a.png,x\nb.jpg,y\n")
    man = image_source(tmp_path / "m.csv")
    assert [src.key(p) for p in man.paths] == ["sub/a.png", "b.jpg"] and man.rows[1]["group"] == "y"


@pytest.mark.parametrize(
    "content, fragment",
    [("group\nx\n", "no image path column"), ("path,group\n", "lists no images"), ("path\n\n,\n", "empty 'path'")],
)
def test_bad_manifests(tmp_path, content, fragment):
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises(StimulusError, match=fragment):
        image_source(tmp_path / "m.csv")


def test_missing_image_source(tmp_path):
    with pytest.raises(StimulusError, match="not found"):
        image_source(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StimulusError, match="is empty"):
        image_source(tmp_path / "empty")


def test_content_keys_hash_each_unchanged_file_once_per_process(tmp_path, monkeypatch):
    """A sweep's tasks read the same images again and again: after the first read, a key costs a stat. An edited
    file is read again even with its size and mtime put back (its ctime changed)."""
    import hashlib
    import os

    import vlbias.utils.io as io
    from vlbias.models.images import content_keys

    paths = []
    for i in range(20):
        p = tmp_path / f"f{i:02d}.bin"
        p.write_bytes(bytes([i]) * 1000)
        paths.append(p)
    reads: list[str] = []
    real = io.sha256_file
    monkeypatch.setattr(io, "sha256_file", lambda path: reads.append(os.fspath(path)) or real(path))
    refs = [ImageRef(p) for p in paths] + [ImageRef(tmp_path / "missing.jpg")]
    first = content_keys(refs)
    assert first[:20] == [hashlib.sha256(bytes([i]) * 1000).hexdigest() for i in range(20)]
    assert isinstance(first[20], FileNotFoundError)
    assert sorted(reads) == sorted(map(os.fspath, paths))
    reads.clear()
    assert content_keys(refs[:20]) == first[:20] and content_keys(refs[3:4]) == first[3:4]
    assert reads == []
    st = paths[5].stat()
    paths[5].write_bytes(b"\xff" * 1000)  # same size; then the same mtime
    os.utime(paths[5], ns=(st.st_atime_ns, st.st_mtime_ns))
    again = content_keys(refs[:20])
    assert reads == [os.fspath(paths[5])]
    assert again[5] == hashlib.sha256(b"\xff" * 1000).hexdigest() and again[:5] == first[:5]


def test_content_keys_reuse_one_pool_of_hashing_threads(tmp_path, monkeypatch):
    """Hashing threads start once per process, not once per call (a sweep makes hundreds of calls)."""
    import threading

    from vlbias.models.images import content_keys

    started: list[str] = []
    real = threading.Thread.start

    def counting(self):
        started.append(self.name)
        return real(self)

    monkeypatch.setattr(threading.Thread, "start", counting)
    for call in range(6):
        folder = tmp_path / str(call)
        folder.mkdir()
        refs = []
        for i in range(40):  # new files each call: all of them are read
            (folder / f"{i}.bin").write_bytes(f"{call}-{i}".encode() * 100)
            refs.append(ImageRef(folder / f"{i}.bin"))
        assert all(isinstance(k, str) for k in content_keys(refs))
    assert len(started) <= 8
