"""Progress bars for long work, shown on an interactive terminal and silent otherwise.

``VLBIAS_PROGRESS=1`` forces them on, ``VLBIAS_PROGRESS=0`` off. Library code calls :func:`progress` and never
checks the terminal itself.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


def progress_enabled() -> bool:
    flag = os.environ.get("VLBIAS_PROGRESS", "").strip().lower()
    if flag in {"0", "false", "no", "off"}:
        return False
    if flag in {"1", "true", "yes", "on"}:
        return True
    return sys.stderr.isatty()


class _Null:
    def advance(self, n: int = 1) -> None:
        pass


class _Bar:
    def __init__(self, prog, task):
        self._prog = prog
        self._task = task

    def advance(self, n: int = 1) -> None:
        self._prog.advance(self._task, n)


@contextlib.contextmanager
def progress(description: str, total: int | None, unit: str = "items") -> Iterator[_Bar | _Null]:
    """A progress bar context; ``bar.advance(n)`` as work completes."""
    if not progress_enabled() or (total is not None and total <= 0):
        yield _Null()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("{task.description}", style="bold", markup=False),  # the description may hold a user's name
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit, markup=False),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=True) as prog:
        task = prog.add_task(description, total=total)
        yield _Bar(prog, task)
