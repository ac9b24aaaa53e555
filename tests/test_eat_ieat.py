"""Fetching and verifying the iEAT stimuli: local copies, downloads, checksums, and the real manifest."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import stat
import threading
from types import SimpleNamespace

import pytest

from tests.eat_fixtures import ieat_stimuli
from tests.helpers import write_images
from vlbias.cli import main
from vlbias.stimuli import ieat


@pytest.fixture
def fake_ieat(tmp_path, monkeypatch):
    """A small stand-in for the iEAT sets, in the repository's layout, with its own manifest."""
    src = tmp_path / "src"
    entries = []
    for rel in ("age/young", "age/old"):
        for p in write_images(src / rel, n=3, prefix=rel.replace("/", "-")):
            data = p.read_bytes()
            entries.append(
                ieat.ManifestEntry(p.relative_to(src).as_posix(), hashlib.sha256(data).hexdigest(), len(data))
            )
    licence = b"CC BY-NC-SA 4.0\n"
    (src / "LICENSE").write_bytes(licence)
    monkeypatch.setattr(ieat, "manifest", lambda: entries)
    known = ieat.ManifestEntry("LICENSE", hashlib.sha256(licence).hexdigest(), len(licence))
    monkeypatch.setattr(ieat, "LICENSE_FILE", known, raising=False)  # the repository's LICENSE, for these tests
    return src, entries


def test_fetch_from_a_local_copy_and_rerun(tmp_path, fake_ieat):
    src, entries = fake_ieat
    report = ieat.fetch(tmp_path / "store", from_dir=src)
    assert (report.fetched, report.already) == (6, 0) and report.dest == tmp_path / "store" / "ieat"
    assert (report.dest / "LICENSE").is_file() and "4d7639b" in (report.dest / "NOTICE.txt").read_text()
    assert ieat.verify(tmp_path / "store").complete
    again = ieat.fetch(tmp_path / "store", from_dir=src)
    assert (again.fetched, again.already) == (0, 6)
    # a clone of the repository works too: the sets sit under data/experiments
    clone = tmp_path / "clone"
    shutil.copytree(src, clone / "data" / "experiments")
    assert ieat.fetch(tmp_path / "store2", from_dir=clone).fetched == 6
    part = ieat.fetch(tmp_path / "store3", from_dir=src, sets=["age/old"])
    assert part.fetched == 3 and ieat.verify(tmp_path / "store3").missing == [e.path for e in entries[:3]]


def test_a_file_that_does_not_match_is_not_kept(tmp_path, fake_ieat):
    src, entries = fake_ieat
    victim = src / entries[4].path
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(ieat.FetchError, match=r"does not match the manifest .*not kept") as e:
        ieat.fetch(tmp_path / "store", from_dir=src)
    assert entries[4].path in str(e.value) and "\n" not in str(e.value)
    dest = tmp_path / "store" / "ieat"
    assert not (dest / entries[4].path).exists()  # nothing half-written or unverified
    assert [p.name for p in (dest / "age" / "old").iterdir()] == [(dest / entries[3].path).name]
    (src / entries[5].path).unlink()
    victim.write_bytes(victim.read_bytes()[:-1])
    with pytest.raises(ieat.FetchError, match="has no age/old/"):
        ieat.fetch(tmp_path / "store", from_dir=src)


def test_symlinks_and_files_outside_the_folder_are_never_copied(tmp_path, fake_ieat, capsys):
    import os

    src, entries = fake_ieat
    secret = tmp_path / "secret"
    secret.write_bytes(b"root:$6$hash:19000:0:99999:7:::\n")
    (src / "LICENSE").unlink()
    (src / "LICENSE").symlink_to(secret)
    os.chmod(secret, 0o600)
    victim = src / entries[1].path
    victim.rename(tmp_path / "moved.png")
    victim.symlink_to(tmp_path / "moved.png")  # even the right bytes: a link is never followed
    elsewhere = tmp_path / "elsewhere"  # a linked folder leading out of the --from folder
    shutil.move(src / "age" / "old", elsewhere)
    (src / "age" / "old").symlink_to(elsewhere, target_is_directory=True)
    store = tmp_path / "store"
    code = main(["stimuli", "fetch", "ieat", "--from", str(src), "--stimuli-dir", str(store)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 2, err
    warning, error = err.splitlines()
    assert warning == (
        f"vlbias: warning: {src / 'LICENSE'} was not copied: it is a symbolic link; NOTICE.txt names the licence"
    )
    assert error.startswith(f"vlbias: error: 4 files in {src} were not copied, as vlbias copies only regular files ")
    assert f"{entries[1].path} (a symbolic link)" in error
    for e in entries[3:]:
        assert f"{e.path} (outside {src}, through a linked folder)" in error
    assert "(the 2 verified files are kept)" in error
    dest = store / "ieat"
    copied = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert copied == sorted(["NOTICE.txt", entries[0].path, entries[2].path])
    assert not any(p.is_symlink() for p in dest.rglob("*"))


def test_a_licence_that_is_not_the_repositorys_is_skipped_with_a_note(tmp_path, fake_ieat):
    from vlbias.errors import VlbiasWarning

    src, _ = fake_ieat
    (src / "LICENSE").write_text("anything at all\n", encoding="utf-8")
    with pytest.warns(VlbiasWarning, match=r"LICENSE was not copied: it is not the ieat repository's LICENSE"):
        report = ieat.fetch(tmp_path / "store", from_dir=src)
    assert report.fetched == 6 and not (report.dest / "LICENSE").exists() and (report.dest / "NOTICE.txt").is_file()


@pytest.fixture
def http_server(fake_ieat):
    """The fake stimuli over HTTP on this machine: every request path is recorded, and a path put in ``flaky``
    answers 503 (a server error) once."""
    src, _ = fake_ieat
    seen: list[str] = []
    flaky: set[str] = set()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            if self.path in flaky:
                flaky.discard(self.path)
                self.send_error(503)
                return
            super().do_GET()

        def log_message(self, *args, **kwargs):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(src)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_address[1]}", seen=seen, flaky=flaky)
    server.shutdown()


def test_download_and_verify(tmp_path, fake_ieat, http_server):
    from vlbias.utils.io import current_umask

    _, entries = fake_ieat
    report = ieat.fetch(tmp_path / "store", base_url=http_server.url)
    assert report.fetched == 6 and ieat.verify(tmp_path / "store").complete
    for e in entries:  # readable as the umask says, like every file vlbias writes (not a temporary file's 0600)
        assert stat.S_IMODE((tmp_path / "store" / "ieat" / e.path).stat().st_mode) == 0o666 & ~current_umask()
    assert ieat.fetch(tmp_path / "store", base_url=http_server.url).already == 6 and len(http_server.seen) == 6
    missing = f"{http_server.url}/missing/{entries[0].path}"
    with pytest.raises(ieat.FetchError) as e:
        ieat.fetch(tmp_path / "other", base_url=http_server.url + "/missing")
    assert str(e.value) == f"cannot download {missing} (HTTP 404); check the network, or use --from DIR"
    assert http_server.seen.count(f"/missing/{entries[0].path}") == 1  # a missing file is not asked for again
    with pytest.raises(ieat.FetchError) as e:
        ieat.fetch(tmp_path / "other", base_url="http://127.0.0.1:9", timeout=2)
    assert str(e.value) == (
        f"cannot download http://127.0.0.1:9/{entries[0].path} ([Errno 111] Connection refused); without internet, "
        "copy the ieat repository's data/experiments folder at commit 4d7639b here and pass --from DIR"
    )
    assert [p for p in (tmp_path / "other").rglob("*") if p.is_file()] == []  # no temporary file left behind


def test_a_download_that_fails_is_tried_again_and_pooch_stays_quiet(tmp_path, fake_ieat, http_server, monkeypatch):
    import logging

    import pooch

    _, entries = fake_ieat
    http_server.flaky.add(f"/{entries[2].path}")  # a server error the first time
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    pooch.get_logger().addHandler(handler)
    try:
        report = ieat.fetch(tmp_path / "store", base_url=http_server.url)
    finally:
        pooch.get_logger().removeHandler(handler)
    assert report.fetched == 6 and ieat.verify(tmp_path / "store").complete
    assert http_server.seen.count(f"/{entries[2].path}") == 2 and len(http_server.seen) == 7
    assert records == []  # pooch's "Downloading file ..." lines: vlbias shows its own progress bar
    assert pooch.get_logger().level == logging.NOTSET  # and the logger is as it was


def test_a_download_that_does_not_match_is_not_kept(tmp_path, fake_ieat, http_server, monkeypatch):
    src, entries = fake_ieat
    monkeypatch.setattr(ieat, "RETRIES", 1)
    changed = src / entries[1].path
    changed.write_bytes(changed.read_bytes() + b"\0")
    with pytest.raises(ieat.FetchError) as e:
        ieat.fetch(tmp_path / "store", base_url=http_server.url)
    assert str(e.value) == (
        f"{http_server.url}/{entries[1].path} does not match the manifest (sha256 expected {entries[1].sha256[:12]}"
        "...); it is not the file of commit 4d7639b, so it was not kept"
    )
    assert http_server.seen.count(f"/{entries[1].path}") == 2  # tried again once: a transfer may have broken
    kept = sorted(p.relative_to(tmp_path / "store" / "ieat").as_posix() for p in (tmp_path / "store").rglob("*.*"))
    assert kept == [entries[0].path]  # the verified one, nothing unverified or half-written


def test_cli_fetch_verify(tmp_path, fake_ieat, capsys, monkeypatch):
    src, entries = fake_ieat
    store = tmp_path / "store"
    assert main(["stimuli", "fetch", "ieat", "--from", str(src), "--stimuli-dir", str(store)]) == 0
    assert "6 fetched" in capsys.readouterr().err
    assert main(["stimuli", "verify", "ieat", "--stimuli-dir", str(store)]) == 0
    assert capsys.readouterr().err == f"iEAT stimuli in {store / 'ieat'}: all 6 files verified\n"
    with monkeypatch.context() as m:
        m.setattr(ieat, "manifest", lambda: entries[:1])
        assert main(["stimuli", "verify", "ieat", "--stimuli-dir", str(store)]) == 0
        assert capsys.readouterr().err == f"iEAT stimuli in {store / 'ieat'}: 1 file verified\n"
    (store / "ieat" / entries[0].path).write_bytes(b"not an image")
    assert main(["stimuli", "verify", "ieat", "--stimuli-dir", str(store)]) == 2
    err = capsys.readouterr().err
    assert "0 missing and 1 changed" in err and err.count("\n") == 1  # one line
    assert main(["stimuli", "fetch", "ieat", "--from", str(src), "--stimuli-dir", str(store)]) == 0
    assert "1 fetched" in capsys.readouterr().err
    assert main(["stimuli", "fetch", "ieat", "--from", str(tmp_path / "nope"), "--stimuli-dir", str(store)]) == 2
    assert "is not a folder" in capsys.readouterr().err


REAL = ieat_stimuli()


@pytest.mark.skipif(REAL is None, reason="the iEAT stimuli (../shared/stimuli/ieat) are not present")
def test_the_shipped_manifest_matches_the_real_stimuli(tmp_path):
    entries = ieat.manifest()
    assert len(entries) == 291 and len({e.path for e in entries}) == 291
    assert ieat.manifest_sets() == [
        "age/old",
        "age/young",
        "gender/female",
        "gender/male",
        "insect-flower/flower",
        "insect-flower/insect",
        "race/african-american",
        "race/european-american",
        "valence/pleasant",
        "valence/unpleasant",
        "weapon/weapon",
    ]
    report = ieat.verify(REAL)
    assert report.complete and report.ok == 291
    copied = ieat.fetch(tmp_path, from_dir=REAL / "ieat")
    assert copied.fetched == 291 and ieat.verify(tmp_path).complete
    assert (tmp_path / "ieat" / "LICENSE").read_bytes() == (REAL / "ieat" / "LICENSE").read_bytes()  # the known one
