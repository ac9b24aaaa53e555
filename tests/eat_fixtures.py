"""Fixtures and helpers shared by the EAT tests."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """The project's reference material (``../shared`` beside the checkout, or ``$VLBIAS_SHARED``), if present.

    Worktrees live one level deeper than the main checkout, so ``../../shared`` is tried as well."""
    candidates = [os.environ.get("VLBIAS_SHARED")] + [str(REPO.parent / "shared"), str(REPO.parent.parent / "shared")]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


def seat_dir() -> Path | None:
    base = shared_dir()
    return base / "reference" / "seat-format" if base and (base / "reference" / "seat-format").is_dir() else None


def ieat_stimuli() -> Path | None:
    """The stimuli folder that holds ``ieat/`` (so it can be passed as a stimuli dir)."""
    base = shared_dir()
    return base / "stimuli" if base and (base / "stimuli" / "ieat").is_dir() else None
