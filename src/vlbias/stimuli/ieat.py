"""The iEAT image stimuli (Steed & Caliskan 2021): a local, checksum-verified copy of the sets the battery uses.

The images are licensed (CC BY-NC-SA 4.0) and not bundled. ``vlbias stimuli fetch ieat`` downloads them from the
ryansteed/ieat repository at a fixed commit, or copies them from a local folder (``--from DIR``, either the
repository's own ``<test>/<category>/`` layout or a clone of the repository), and verifies every file against the
sha256 manifest shipped in ``vlbias/data/eat/ieat-manifest.csv`` (built from the files at that commit). Each file
is written atomically, so an interrupted fetch leaves whole, verified files only and a rerun fetches the rest.

The stimuli live under ``<stimuli dir>/ieat/<test>/<category>/``; the stimuli dir is ``--stimuli-dir``,
``$VLBIAS_STIMULI``, or the platform's user data folder.
"""

from __future__ import annotations

import csv
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from vlbias.errors import StimulusError, VlbiasError
from vlbias.utils.io import atomic_path, sha256_file

IEAT_REPO = "ryansteed/ieat"
IEAT_COMMIT = "4d7639bfd0b6c17b127ce163af0ddf985f5a6510"
IEAT_PREFIX = "data/experiments"
IEAT_LICENSE = "CC BY-NC-SA 4.0 (https://creativecommons.org/licenses/by-nc-sa/4.0/)"
BASE_URL = f"https://raw.githubusercontent.com/{IEAT_REPO}/{IEAT_COMMIT}/{IEAT_PREFIX}"
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


def _source_file(from_dir: Path, rel: str) -> Path | None:
    for candidate in (from_dir / rel, from_dir / IEAT_PREFIX / rel):
        if candidate.is_file():
            return candidate
    return None


def _download(url: str, dest: Path, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:  # noqa: S310
            shutil.copyfileobj(resp, out)
    except urllib.error.HTTPError as e:
        raise FetchError(f"cannot download {url} (HTTP {e.code}); check the network, or use --from DIR") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise FetchError(
            f"cannot download {url} ({reason}); without internet, copy the ieat repository's {IEAT_PREFIX} "
            f"folder at commit {IEAT_COMMIT[:7]} here and pass --from DIR"
        ) from None


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
    for entry in entries:
        target = dest / entry.path
        if target.is_file() and target.stat().st_size == entry.size and sha256_file(target) == entry.sha256:
            report.already += 1
            if progress_bar is not None:
                progress_bar.advance(1)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            if src is not None:
                found = _source_file(src, entry.path)
                if found is None:
                    raise FetchError(
                        f"{src} has no {entry.path}; it must hold the ieat stimuli at commit {IEAT_COMMIT[:7]}"
                    )
                shutil.copyfile(found, tmp)
                origin = str(found)
            else:
                origin = f"{url}/{entry.path}"
                _download(origin, tmp, timeout)
            got = sha256_file(tmp)
            if got != entry.sha256:
                raise FetchError(
                    f"{origin} does not match the manifest (sha256 {got[:12]}..., expected {entry.sha256[:12]}...); "
                    f"it is not the file of commit {IEAT_COMMIT[:7]}, so it was not kept"
                )
        report.fetched += 1
        report.bytes += entry.size
        if progress_bar is not None:
            progress_bar.advance(1)
    if src is not None and (src / "LICENSE").is_file():
        shutil.copyfile(src / "LICENSE", dest / "LICENSE")
    (dest / "NOTICE.txt").write_text(NOTICE, encoding="utf-8")
    return report


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
