"""The files beside a report's pages: figures (PNG) and the data behind them (CSV).

Sections plan their figures as jobs (a plotting function, its arguments and the file it writes); all jobs are then
rendered once each, in worker processes when there are many (figures are independent, and drawing is most of a
report's time), and a page that shows a figure twice shows the same file. A figure that cannot be drawn is reported
on the summary page and on stderr instead of stopping the report.
"""

from __future__ import annotations

import importlib
import os
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vlbias.utils.io import stable_hash


def slug(*parts: str, n: int = 80) -> str:
    text = "-".join(str(p) for p in parts if p)
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-.")[:n] or "x"


@dataclass
class Figure:
    path: str  # relative to the report root
    title: str
    caption: str = ""
    data: list[tuple[str, str]] = field(default_factory=list)  # (label, relative CSV path)


@dataclass
class FigureGroup:
    """The figures of one job that writes several files (e.g. every figure of a zero-shot run)."""

    figures: list[Figure] = field(default_factory=list)
    error: str | None = None


@dataclass
class _Job:
    fn: str  # "module:function"
    kwargs: dict[str, Any]
    target: Figure | FigureGroup
    describe: Any = None  # for groups: (Path) -> Figure
    name: str = ""


def _call(fn: str, kwargs: dict[str, Any]) -> tuple[list[str], str | None]:
    """Run one plotting job; returns the files written, or the error (worker processes call this)."""
    module, _, attr = fn.partition(":")
    try:
        out = getattr(importlib.import_module(module), attr)(**kwargs)
    except Exception as e:  # noqa: BLE001 - a figure that cannot be drawn must not lose the whole report
        tb = traceback.format_exception_only(type(e), e)[-1].strip()
        return [], tb
    paths = out if isinstance(out, (list, tuple)) else [out]
    return [str(p) for p in paths if p is not None], None


class Assets:
    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        (self.root / "figures").mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        self.jobs: list[_Job] = []
        self.errors: list[str] = []
        self._names: set[str] = set()

    def _unique(self, folder: str, stem: str, suffix: str) -> str:
        stem = slug(stem)
        name = f"{folder}/{stem}{suffix}"
        if name in self._names:
            name = f"{folder}/{stem}-{stable_hash([stem, len(self._names)], n=6)}{suffix}"
        self._names.add(name)
        return name

    def csv(self, stem: str, df: pd.DataFrame) -> str:
        """Write ``df`` as data/<stem>.csv; returns its path relative to the report."""
        rel = self._unique("data", stem, ".csv")
        df.to_csv(self.root / rel, index=False)
        return rel

    def text(self, stem: str, suffix: str, content: str) -> str:
        rel = self._unique("data", stem, suffix)
        (self.root / rel).write_text(content, encoding="utf-8")
        return rel

    def figure(
        self, fn: str, kwargs: dict[str, Any], *, stem: str, title: str, caption: str = "", data=(), arg: str = "path"
    ) -> Figure:
        """A job that draws one file; ``arg`` names the plotting function's output-path argument."""
        rel = self._unique("figures", stem, ".png")
        fig = Figure(rel, title, caption, list(data))
        self.jobs.append(_Job(fn, {**kwargs, arg: self.root / rel}, fig, name=title))
        return fig

    def group(self, fn: str, kwargs: dict[str, Any], *, folder: str, describe, arg: str, name: str) -> FigureGroup:
        """A job that draws several files into figures/<folder>/; ``describe(path)`` captions each."""
        rel = self._unique("figures", folder, "")
        group = FigureGroup()
        self.jobs.append(_Job(fn, {**kwargs, arg: self.root / rel}, group, describe, name=name))
        return group

    def render(self, workers: int = 1) -> None:
        """Draw every planned figure once (in ``workers`` processes when there are enough jobs to pay for them)."""
        jobs, self.jobs = self.jobs, []
        calls = [(j.fn, j.kwargs) for j in jobs]
        if workers > 1 and len(jobs) >= 2 * workers:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: a fresh interpreter per worker (no forked database or thread state)
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                results = list(pool.map(_call, *zip(*calls), chunksize=1))
        else:
            results = [_call(fn, kw) for fn, kw in calls]
        for job, (files, error) in zip(jobs, results):
            if error:
                self.errors.append(f"figure not drawn ({job.name}): {error}")
                if isinstance(job.target, FigureGroup):
                    job.target.error = error
                else:
                    job.target.path = ""
                    job.target.caption = f"This figure could not be drawn: {error}"
                continue
            if isinstance(job.target, FigureGroup):
                for f in files:
                    fig = job.describe(Path(f))
                    fig.path = Path(f).relative_to(self.root).as_posix()
                    job.target.figures.append(fig)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))
