"""The files beside a report's pages: figures (PNG) and the data behind them: CSV files, and compressed Parquet for
tables too long to read in a spreadsheet (every value kept, so a report of many models stays small). A table of
one run whose own Parquet file in the results is larger than :data:`LINK_BYTES` (perception's 56,000 pairs of a
model, its curve grid) is linked there instead of copied, unless the report is built ``self_contained``: the
report of ten models then stays under 5 MB, and every number is still one click away.

Sections plan their figures as jobs (a plotting function, its arguments and the file it writes); all jobs are then
rendered once each, in worker processes when there are many (figures are independent, and drawing is most of a
report's time; the workers claim jobs one at a time, so slow and quick figures balance), and a page that shows a
figure twice shows the same file. A figure that fails is reported as an error on the summary page and on stderr
instead of stopping the report; a figure its data cannot make (:class:`~vlbias.plots.style.NotDrawn`, or the
``not_drawn`` of a function that draws several) is noted where it would be, with the reason.
"""

from __future__ import annotations

import importlib
import os
import pickle
import re
import shutil
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from vlbias.utils.io import stable_hash

#: the longest table, and the largest CSV file, written as CSV; larger ones are compressed Parquet (a CSV of the
#: 56,000 perception pairs of one model is 25 MB, its Parquet 0.1 MB; every row of a run's table repeats its
#: provenance, which Parquet stores once)
CSV_ROWS = 1_000
CSV_BYTES = 16_000
#: a run's table whose own Parquet file (in the sweep's part or the audit's output folder) is larger than this is
#: linked there, not copied into the report (unless it is built self-contained)
LINK_BYTES = 64_000
#: how a spreadsheet formula starts: a CSV cell that starts so runs when the file is opened in Excel or LibreOffice
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` fit for a CSV that people open in a spreadsheet: a text cell (or column name) that starts like a formula
    (``=HYPERLINK(...)``, ``@SUM(...)``, ``+cmd``, ``-2+3``) gets a leading apostrophe, the OWASP rule, so it shows as
    text. Numbers, in numeric columns or as text such as ``-0.5``, stay as they are."""

    def cell(v: Any) -> Any:
        if not isinstance(v, str) or not v.startswith(FORMULA_START):
            return v
        try:
            float(v)
            return v  # a number written as text: no formula
        except ValueError:
            return "'" + v

    def column(s: pd.Series) -> pd.Series:
        text = s.dtype == object or isinstance(s.dtype, (pd.StringDtype, pd.CategoricalDtype))
        return s.astype(object).map(cell) if text else s

    if df.shape[1] == 0:
        return df
    out = pd.concat([column(df.iloc[:, j]) for j in range(df.shape[1])], axis=1)  # by position: names may repeat
    out.columns = [cell(c) for c in df.columns]
    return out


def slug(*parts: str, n: int = 80) -> str:
    text = "-".join(str(p) for p in parts if p)
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-.")[:n] or "x"


@dataclass
class Figure:
    path: str  # relative to the report root
    title: str
    caption: str = ""
    data: list[tuple[str, str]] = field(default_factory=list)  # (label, relative CSV path)
    not_drawn: str | None = None  # why its data cannot make it (then path is "")


@dataclass
class FigureGroup:
    """The figures of one job that writes several files (e.g. every figure of a zero-shot run)."""

    figures: list[Figure] = field(default_factory=list)
    error: str | None = None
    not_drawn: list[tuple[str, str]] = field(default_factory=list)  # (figure, reason): what its data cannot make


@dataclass
class _Job:
    fn: str  # "module:function"
    kwargs: dict[str, Any]
    target: Figure | FigureGroup
    describe: Any = None  # for groups: (Path) -> Figure
    name: str = ""


#: what one job returns: the files written, the error, and the figures its data cannot make (figure, reason)
Outcome = tuple[list[str], str | None, list[tuple[str, str]]]


def _call(fn: str, kwargs: dict[str, Any]) -> Outcome:
    """Run one plotting job; returns the files written, the error, and what was not drawn (worker processes call
    this)."""
    from vlbias.plots.style import NotDrawn

    module, _, attr = fn.partition(":")
    try:
        out = getattr(importlib.import_module(module), attr)(**kwargs)
    except NotDrawn as e:
        return [], None, [("", str(e))]
    except Exception as e:  # noqa: BLE001 - a figure that cannot be drawn must not lose the whole report
        tb = traceback.format_exception_only(type(e), e)[-1].strip()
        return [], tb, []
    paths = out if isinstance(out, (list, tuple)) else [out]
    return [str(p) for p in paths if p is not None], None, list(getattr(out, "not_drawn", []))


class Assets:
    """The files of a report being written in ``root``; ``final`` is the folder it will be (links to the results
    are relative to it), ``self_contained`` copies every table instead of linking the large ones."""

    def __init__(self, root: Path, final: Path | None = None, self_contained: bool = False):
        self.root = Path(root).resolve()
        self.final = os.path.abspath(final if final is not None else root)
        self.self_contained = self_contained
        self.linked: list[str] = []  # the results' own files the report links (absolute paths)
        (self.root / "figures").mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        self.jobs: list[_Job] = []
        self.errors: list[str] = []
        self.not_drawn: list[str] = []  # figures whose data cannot make them, with the reason
        self._names: set[str] = set()

    def _unique(self, folder: str, stem: str, suffix: str) -> str:
        stem = slug(stem).replace(".", "-")  # `vectors:model.parquet` makes no data/…-model.parquet.parquet
        name = f"{folder}/{stem}{suffix}"
        if name in self._names:
            name = f"{folder}/{stem}-{stable_hash([stem, len(self._names)], n=6)}{suffix}"
        self._names.add(name)
        return name

    def data(self, stem: str, df: pd.DataFrame, *, csv: bool = False, source: Path | None = None) -> str:
        """Write ``df`` beside the pages; returns its path relative to the report. A table of at most
        :data:`CSV_ROWS` rows whose CSV is at most :data:`CSV_BYTES` (or any, with ``csv``: a file another command
        reads, as the rerun config's catalogue) is data/<stem>.csv, with formula-like text neutralised; a larger one
        is data/<stem>.parquet, compressed (zstd), every value as stored. ``source``: the Parquet file in the results
        that holds exactly ``df`` (a run's table); larger than :data:`LINK_BYTES`, it is linked, not copied."""
        if source is not None and not csv and not self.self_contained:
            link = self._link(Path(source))
            if link is not None:
                return link
        text = spreadsheet_safe(df).to_csv(index=False) if csv or len(df) <= CSV_ROWS else None
        if text is not None and (csv or len(text.encode()) <= CSV_BYTES):
            rel = self._unique("data", stem, ".csv")
            (self.root / rel).write_text(text, encoding="utf-8")
        else:
            rel = self._unique("data", stem, ".parquet")
            df.to_parquet(self.root / rel, index=False, compression="zstd")
        return rel

    def _link(self, source: Path) -> str | None:
        """``source``'s path relative to the report, each part percent-encoded (a folder named ``run#1`` links too),
        if it is larger than :data:`LINK_BYTES`; None (copy it) for a smaller or unreadable file, or one that no
        relative path reaches (another drive). Paths are made absolute without resolving links: a browser resolves
        ``..`` against the path the report was opened by."""
        try:
            if source.stat().st_size <= LINK_BYTES:
                return None
            rel = os.path.relpath(os.path.abspath(source), self.final)
        except (OSError, ValueError):
            return None
        self.linked.append(os.path.abspath(source))
        return quote(Path(rel).as_posix(), safe="/")

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
            results = _parallel(calls, workers, self.root)
        else:
            results = [_call(fn, kw) for fn, kw in calls]
        for job, (files, error, not_drawn) in zip(jobs, results):
            for figure, reason in not_drawn:
                self.not_drawn.append(f"{job.name}{': ' + figure if figure else ''}: {reason}")
                if isinstance(job.target, FigureGroup):
                    job.target.not_drawn.append((figure, reason))
                else:
                    job.target.path, job.target.not_drawn = "", reason
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


def work(jobs_file: Path, folder: Path) -> None:
    """Draw every job of ``jobs_file`` that no other worker has claimed yet (a claim is a file created exclusively),
    writing each result to ``folder/<i>.done``: workers share the jobs as they go, the slow ones and the quick."""
    calls = pickle.loads(Path(jobs_file).read_bytes())
    for i, (fn, kwargs) in enumerate(calls):
        try:
            os.close(os.open(Path(folder) / f"{i}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        tmp = Path(folder) / f"{i}.tmp"
        tmp.write_bytes(pickle.dumps(_call(fn, kwargs)))
        os.replace(tmp, Path(folder) / f"{i}.done")


def _parallel(calls: list[tuple[str, dict[str, Any]]], workers: int, root: Path) -> list[Outcome]:
    """Run the jobs in ``workers`` processes: this one and fresh interpreters (``python -m vlbias.report._worker``),
    which never import the caller's main module (multiprocessing's spawn would re-run a script without a main guard
    and cannot start from a script read on stdin)."""
    import subprocess
    import sys
    import tempfile

    import vlbias

    folder = Path(tempfile.mkdtemp(prefix=".figures-", dir=root))
    try:
        jobs_file = folder / "jobs.pkl"
        jobs_file.write_bytes(pickle.dumps(calls))
        env = dict(os.environ)
        src = str(Path(vlbias.__file__).resolve().parents[1])  # this vlbias, wherever it was imported from
        env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
        cmd = [sys.executable, "-m", "vlbias.report._worker", str(jobs_file), str(folder)]
        procs = [subprocess.Popen(cmd, env=env) for _ in range(workers - 1)]
        try:
            work(jobs_file, folder)
            for proc in procs:
                proc.wait()
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        out = []
        for i in range(len(calls)):
            done = folder / f"{i}.done"
            out.append(
                pickle.loads(done.read_bytes()) if done.is_file() else ([], "a worker process died drawing it", [])
            )
        return out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))
