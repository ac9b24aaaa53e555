"""Hugging Face hub access that fails fast and quietly when there is no network.

Without a network, huggingface_hub retries each request for most of a minute and logs every retry. vlbias
instead (1) uses a copy already in the local Hugging Face cache when there is one, and (2) otherwise checks once
whether the hub can be reached at all, so an offline machine gets its one-line error at once.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from vlbias.cache.fingerprints import tree_fingerprint
from vlbias.errors import WeightsUnavailableError
from vlbias.models.base import Encoder

HUB_HOST = "huggingface.co"


def offline_mode() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


@lru_cache(maxsize=8)
def reachable(host: str = HUB_HOST, timeout: float = 4.0) -> bool:
    if offline_mode():
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def url_reachable(url: str) -> bool:
    host = urlparse(url).hostname
    return bool(host) and reachable(host)


def quiet() -> None:
    """Silence per-retry warnings and download bars below vlbias's own messages."""
    try:
        from huggingface_hub.utils import logging as hub_logging

        hub_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency of transformers
        pass


def cached_file(repo_id: str, filename: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(repo_id, filename)
    return Path(hit) if isinstance(hit, str) else None


def cached_snapshot(repo_id: str) -> Path | None:
    """The local folder of a hub repository that is fully in the cache, else None (never touches the network)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - any miss means "not cached"
        return None


def quiet_transformers() -> None:
    """No per-file 'Loading weights' bars or advisory logs from transformers inside vlbias's own progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def hub_source(spec, repo_ids: list[str], prefix: str) -> str:
    """A hub model's local snapshot if cached; else its id if the hub is reachable; else a clear error."""
    quiet()
    for repo in repo_ids:
        snapshot = cached_snapshot(repo)
        if snapshot is not None:
            return str(snapshot)
    if not reachable():
        raise WeightsUnavailableError(
            f"cannot download {spec} (offline: {HUB_HOST} cannot be reached); on a machine with internet run "
            f"`hf download {repo_ids[-1]} --local-dir DIR`, copy DIR here and use {prefix}:DIR"
        )
    return repo_ids[0]


class HubModelEncoder(Encoder):
    """Base of backends whose spec is a Hugging Face hub id or a local model folder (``hf:``, ``st:``).

    A local folder is identified by its content; a hub id by its name.
    """

    def _local_folder(self, target: str) -> Path | None:
        local = Path(target).expanduser()
        return local if local.is_dir() else None

    def _parse(self) -> None:
        self.model_id = self.spec.target
        self.path = self._local_folder(self.model_id)

    def _identity_payload(self) -> dict[str, Any]:
        if self.path is not None:
            return {"folder": tree_fingerprint(self.path, self.memo_root), "precision": self.precision}
        return {"model": self.model_id, "precision": self.precision}
