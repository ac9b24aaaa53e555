"""Shared fixtures. Every test runs offline: no hub downloads, no network."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ["VLBIAS_PROGRESS"] = "0"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.helpers import write_images  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own default cache folder unless it passes one explicitly."""
    monkeypatch.setenv("VLBIAS_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def vitb32():
    """Random-init ViT-B-32 (the real open_clip code path), loaded once for the session, no cache."""
    from vlbias.models import load_model

    return load_model("openclip:ViT-B-32/random", cache=False, device="cpu").load()


@pytest.fixture(scope="session")
def small_clip():
    from vlbias.models import load_model

    return load_model("openclip:ViT-S-32-alt/random", cache=False, device="cpu").load()


@pytest.fixture(scope="session")
def minilm():
    from vlbias.models import load_model

    return load_model("st:all-MiniLM-L6-v2", cache=False, device="cpu").load()


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory) -> Path:
    """Generated images in several formats and modes."""
    folder = tmp_path_factory.mktemp("images")
    write_images(folder, n=6)
    return folder
