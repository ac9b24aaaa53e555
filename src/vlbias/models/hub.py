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
from urllib.parse import urlparse

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
