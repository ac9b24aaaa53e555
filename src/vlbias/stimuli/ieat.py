"""The iEAT image stimuli (Steed & Caliskan 2021): a local, checksum-verified copy of the sets the battery uses.

The images are licensed (CC BY-NC-SA 4.0) and not bundled. ``vlbias stimuli fetch ieat`` downloads them from the
ryansteed/ieat repository at a fixed commit, or copies them from a local folder (``--from DIR``, either the
repository's own ``<test>/<category>/`` layout or a clone of the repository), and verifies every file against the
sha256 manifest shipped in ``vlbias/data/eat/ieat-manifest.csv`` (built from the files at that commit). Getting and
verifying is pooch's (:class:`pooch.Pooch` over the manifest as its registry): each file lands in a temporary file
beside its place and is moved there only once its sha256 matches, so an interrupted fetch leaves whole, verified
files only and a rerun fetches the rest. A download that fails (no connection, a time-out, a server error, bytes
that do not match, as a broken transfer gives) is tried again :data:`RETRIES` times; a missing file (HTTP 404) is
not, nor a local copy.

From a local folder only regular files that the manifest names are read, and only inside that folder: a symbolic
link, or a file reached through a linked folder that leads out of it, is never opened (a shared folder could point
``LICENSE`` at a secret file); such files are reported and the fetch fails once the others are copied. The
repository's ``LICENSE`` is copied only if it is that file (its sha256 at the commit); otherwise it is skipped with
a note (``NOTICE.txt`` names the licence either way).

The stimuli live under ``<stimuli dir>/ieat/<test>/<category>/``; the stimuli dir is ``--stimuli-dir``,
``$VLBIAS_STIMULI``, or the platform's user data folder.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import logging
import os
import re
import shutil
import stat
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from vlbias.errors import StimulusError, VlbiasError, VlbiasWarning, plural
from vlbias.utils.io import atomic_path, current_umask, sha256_file

IEAT_REPO = "ryansteed/ieat"
IEAT_COMMIT = "4d7639bfd0b6c17b127ce163af0ddf985f5a6510"
IEAT_PREFIX = "data/experiments"
IEAT_LICENSE = "CC BY-NC-SA 4.0 (https://creativecommons.org/licenses/by-nc-sa/4.0/)"
BASE_URL = f"https://raw.githubusercontent.com/{IEAT_REPO}/{IEAT_COMMIT}/{IEAT_PREFIX}"
#: further tries of a download that failed for the network (pooch waits 1 s, then 2 s, ... between them)
RETRIES = 2
NOTICE = f"""iEAT image stimuli (Steed & Caliskan 2021, "Image Representations Learned With Unsupervised
Pre-Training Contain Human-like Biases", FAccT), from https://github.com/{IEAT_REPO} at commit {IEAT_COMMIT}.
Licence: {IEAT_LICENSE}. The images were collected by the iEAT authors from Project Implicit and web image search;
see the repository's data/README.md for their sources. Fetched and verified by vlbias (sha256 per file).
"""


class FetchError(VlbiasError):
    """The stimuli could not be fetched or did not verify."""


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # <test>/<category>/<file>, '/'-separated
    sha256: str
    size: int


#: the repository's LICENSE file at IEAT_COMMIT (the CC BY-NC-SA 4.0 legal code, in Markdown)
LICENSE_FILE = ManifestEntry("LICENSE", "d1b536a4e61f3c1f6ccc2db283186a70f4ce94083bc65c0a5f3f00a42ff21f30", 19089)


def manifest() -> list[ManifestEntry]:
    text = resources.files("vlbias.data").joinpath("eat/ieat-manifest.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    return [ManifestEntry(r["path"], r["sha256"], int(r["bytes"])) for r in rows]


def manifest_sets() -> list[str]:
    """The ``<test>/<category>`` sets the manifest covers."""
    return sorted({e.path.rsplit("/", 1)[0] for e in manifest()})


def default_stimuli_dir() -> Path:
    env = os.environ.get("VLBIAS_STIMULI")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("vlbias", appauthor=False)) / "stimuli"


def ieat_dir(stimuli_dir: str | os.PathLike | None = None) -> Path:
    return Path(stimuli_dir).expanduser() / "ieat" if stimuli_dir else default_stimuli_dir() / "ieat"


@dataclass
class FetchReport:
    dest: Path
    fetched: int = 0
    already: int = 0
    bytes: int = 0


class _Refused(Exception):
    """A file of the --from folder that is not read: the message says why."""


def _source_file(from_dir: Path, rel: str) -> Path | None:
    """``rel`` in the --from folder (either layout): a regular file inside it, or None if it is not there.

    Raises :class:`_Refused` for a symbolic link, something that is not a regular file, or a file whose real path
    (through linked folders) lies outside the folder; none of these is ever opened."""
    root = from_dir.resolve()
    for candidate in (from_dir / rel, from_dir / IEAT_PREFIX / rel):
        try:
            mode = candidate.lstat().st_mode
        except OSError:  # missing, or a path through something that is not a folder
            continue
        if stat.S_ISLNK(mode):
            raise _Refused("a symbolic link")
        if not stat.S_ISREG(mode):
            raise _Refused("not a regular file")
        if not candidate.resolve().is_relative_to(root):
            raise _Refused(f"outside {from_dir}, through a linked folder")
        return candidate
    return None


def _copy_regular(src: Path, dest: Path) -> None:
    """Copy ``src`` without following a symbolic link (or blocking on a pipe) put in its place since it was
    checked."""
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as e:
        raise _Refused("a symbolic link" if e.errno == errno.ELOOP else f"unreadable: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise _Refused("not a regular file")
        with open(dest, "wb") as out:
            shutil.copyfileobj(f, out)


def _readable(path: str) -> None:
    """Give pooch's temporary file the permissions the umask gives (``tempfile`` makes it private, 0600)."""
    os.chmod(path, 0o666 & ~current_umask())


class _Copy:
    """A pooch downloader that copies one manifest entry from the --from folder (regular files inside it only)."""

    def __init__(self, from_dir: Path, rel: str):
        self.from_dir, self.rel = from_dir, rel

    def __call__(self, url: str, output_file: str, pooch) -> None:
        found = _source_file(self.from_dir, self.rel)
        if found is None:
            raise FetchError(
                f"{self.from_dir} has no {self.rel}; it must hold the ieat stimuli at commit {IEAT_COMMIT[:7]}"
            )
        _copy_regular(found, Path(output_file))
        _readable(output_file)


class _Download:
    """pooch's HTTP downloader; a client error (404: the file is not there) is final, never tried again."""

    def __init__(self, timeout: float):
        import pooch

        self.http = pooch.HTTPDownloader(timeout=timeout, progressbar=False)

    def __call__(self, url: str, output_file: str, pooch) -> None:
        import requests

        try:
            self.http(url, output_file, pooch)
        except requests.exceptions.HTTPError as e:
            code = e.response.status_code if e.response is not None else 0
            if 400 <= code < 500:
                raise _http_error(url, code) from None
            raise  # a server error: pooch tries again
        _readable(output_file)


def _http_error(url: str, code: int) -> FetchError:
    return FetchError(f"cannot download {url} (HTTP {code}); check the network, or use --from DIR")


def _network_reason(e: BaseException) -> str:
    """The reason of a requests error in a few words: the system's ('[Errno 111] Connection refused') where there is
    one, else the message of the innermost error that requests and urllib3 wrap ('Read timed out.')."""
    errno_text = re.search(r"\[Errno [^\]]*\][^()'\"]*", str(e))
    if errno_text:
        return errno_text.group(0).strip()
    while True:
        inner = getattr(e, "reason", None)
        if not isinstance(inner, BaseException):
            inner = e.args[0] if e.args and isinstance(e.args[0], BaseException) else None
        if inner is None or inner is e:
            break
        e = inner
    message = e.args[-1] if e.args and isinstance(e.args[-1], str) else str(e)
    message = re.sub(r"^\w+\([^)]*\):\s*", "", message)  # HTTPConnectionPool(host=..., port=...): ...
    return re.sub(r"\s*\(\w+ timeout=[^)]*\)$", "", message) or type(e).__name__


@contextlib.contextmanager
def _quiet_pooch():
    """pooch logs every file it downloads at INFO; vlbias shows its own progress bar instead."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def fetch(
    dest_root: str | os.PathLike | None = None,
    *,
    from_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
    sets: list[str] | None = None,
    timeout: float = 60.0,
    progress_bar=None,
) -> FetchReport:
    """Fetch (download or copy) and verify the iEAT sets into ``<dest_root>/ieat``."""
    import pooch
    import requests

    dest = ieat_dir(dest_root)
    entries = manifest()
    if sets:
        known = set(manifest_sets())
        unknown = [s for s in sets if s not in known]
        if unknown:
            raise StimulusError(f"unknown iEAT set(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        entries = [e for e in entries if e.path.rsplit("/", 1)[0] in sets]
    src = Path(from_dir).expanduser() if from_dir is not None else None
    if src is not None and not src.is_dir():
        raise StimulusError(f"--from {src} is not a folder; give the ieat stimuli folder or a clone of the repository")
    url = (base_url or os.environ.get("VLBIAS_IEAT_URL") or BASE_URL).rstrip("/")
    report = FetchReport(dest=dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FetchError(f"cannot create {dest} ({e.strerror}); choose another --stimuli-dir") from None
    store = pooch.create(
        path=dest,
        base_url=f"{url}/",
        registry={e.path: f"sha256:{e.sha256}" for e in entries},
        retry_if_failed=0 if src is not None else RETRIES,  # a local copy that does not match will not next time
    )
    download = _Download(timeout) if src is None else None
    refused: list[str] = []
    with _quiet_pooch():
        for entry in entries:
            target = dest / entry.path
            if target.is_file() and target.stat().st_size == entry.size and sha256_file(target) == entry.sha256:
                report.already += 1
                if progress_bar is not None:
                    progress_bar.advance(1)
                continue
            origin = str(src / entry.path) if src is not None else store.get_url(entry.path)
            try:
                store.fetch(entry.path, downloader=_Copy(src, entry.path) if src is not None else download)
            except _Refused as e:
                refused.append(f"{entry.path} ({e})")
                continue
            except requests.exceptions.HTTPError as e:  # a server error, after the retries
                raise _http_error(origin, e.response.status_code if e.response is not None else 0) from None
            except requests.exceptions.RequestException as e:
                raise FetchError(
                    f"cannot download {origin} ({_network_reason(e)}); without internet, copy the ieat "
                    f"repository's {IEAT_PREFIX} folder at commit {IEAT_COMMIT[:7]} here and pass --from DIR"
                ) from None
            except ValueError:  # pooch: the sha256 of what it got is not the registry's
                raise FetchError(
                    f"{origin} does not match the manifest (sha256 expected {entry.sha256[:12]}...); it is not the "
                    f"file of commit {IEAT_COMMIT[:7]}, so it was not kept"
                ) from None
            report.fetched += 1
            report.bytes += entry.size
            if progress_bar is not None:
                progress_bar.advance(1)
    if src is not None:
        _copy_license(src, dest)
    (dest / "NOTICE.txt").write_text(NOTICE, encoding="utf-8")
    if refused:
        shown = "; ".join(refused[:5]) + (f"; and {len(refused) - 5} more" if len(refused) > 5 else "")
        kept = report.fetched + report.already
        raise FetchError(
            f"{plural(len(refused), 'file')} in {src} {'was' if len(refused) == 1 else 'were'} not copied, as vlbias "
            f"copies only regular files inside the folder: {shown}; put the files themselves there and run again "
            f"(the {plural(kept, 'verified file')} {'is' if kept == 1 else 'are'} kept)"
        )
    return report


def _copy_license(src: Path, dest: Path) -> None:
    """The repository's LICENSE, if the --from folder holds that very file; otherwise a warning saying why not."""
    try:
        found = _source_file(src, LICENSE_FILE.path)
        if found is None:
            return
        with atomic_path(dest / "LICENSE") as tmp:
            _copy_regular(found, tmp)
            if tmp.stat().st_size != LICENSE_FILE.size or sha256_file(tmp) != LICENSE_FILE.sha256:
                raise _Refused(f"not the ieat repository's LICENSE of commit {IEAT_COMMIT[:7]}")
    except _Refused as e:
        warnings.warn(
            f"{src / LICENSE_FILE.path} was not copied: it is {e}; NOTICE.txt names the licence",
            VlbiasWarning,
            stacklevel=3,
        )


@dataclass
class VerifyReport:
    dest: Path
    ok: int
    missing: list[str]
    bad: list[str]

    @property
    def complete(self) -> bool:
        return not self.missing and not self.bad


def verify(dest_root: str | os.PathLike | None = None) -> VerifyReport:
    dest = ieat_dir(dest_root)
    ok, missing, bad = 0, [], []
    for entry in manifest():
        p = dest / entry.path
        if not p.is_file():
            missing.append(entry.path)
        elif p.stat().st_size != entry.size or sha256_file(p) != entry.sha256:
            bad.append(entry.path)
        else:
            ok += 1
    return VerifyReport(dest, ok, missing, bad)
