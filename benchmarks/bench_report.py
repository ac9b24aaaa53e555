"""Report generation: how long `vlbias report` takes for a zoo, where the time goes, and what the figure workers buy.

A zoo of `vectors:` models (the report's cost does not depend on the model type: it reads tables and draws) runs
the three audits of the report tests (two cross-modal association tests in four orders, the birhane2024 zero-shot
protocol on a CFD-layout folder, perception on a CausalFace-layout folder), then `vlbias analyze`. The same results
are then reported, in the same run:

- HTML with one process drawing the figures (the baseline), then with 2, 4, ... worker processes;
- the Markdown summary (only the cross-model figures are drawn).

Printed: wall time, the share spent drawing figures, figures and pages written, and each run's speed-up over the
one-process HTML report. All runs write byte-identical figures (checked).

``--sizes 1,2,5,10`` instead prints the size of the HTML report per model count (perception with its default
1,000 pairs per dimension, as users run it), as built by default and with ``--self-contained``: the whole folder,
per model, its figures, its data files and the largest file. The 2-model report was 59 MB before long tables became
compressed Parquet and figures palette PNGs.

    python benchmarks/bench_report.py
    python benchmarks/bench_report.py --models 16 --jobs 1,2,4,8
    python benchmarks/bench_report.py --sizes 1,2,5,10
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLBIAS_PROGRESS", "0")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the report tests' fixtures build the zoo's inputs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=int, default=8, help="vectors: models in the zoo")
    ap.add_argument("--jobs", default=None, help="worker counts to time, e.g. 1,2,4 [default: 1 and the CPU count]")
    ap.add_argument("--sizes", default=None, help="model counts whose report sizes to print, e.g. 1,2,5,10")
    args = ap.parse_args()
    if args.sizes:
        sizes([int(n) for n in args.sizes.split(",")])
        return
    jobs = [int(j) for j in args.jobs.split(",")] if args.jobs else sorted({1, max(1, os.cpu_count() or 1)})
    if 1 not in jobs:
        jobs = [1, *jobs]

    from tests.report_fixtures import build_sweep

    import vlbias.report.assets as assets
    from vlbias.cli import main as cli
    from vlbias.report import build_report

    drawing = {"s": 0.0}
    real_render = assets.Assets.render

    def timed_render(self, workers=1):
        t = time.perf_counter()
        try:
            return real_render(self, workers)
        finally:
            drawing["s"] += time.perf_counter() - t

    assets.Assets.render = timed_render
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["VLBIAS_CACHE"] = str(root / "cache")
        info = build_sweep(root, n_vectors=args.models, openclip=False, minilm=False)
        t = time.perf_counter()
        assert cli(["sweep", str(info["config"])]) == 0
        assert cli(["analyze", "--db", str(info["out"]), "--compare-by", "pretraining_dataset"]) == 0
        print(f"\nzoo: {args.models} vectors: models x 3 audits, swept and analysed in {time.perf_counter() - t:.1f} s")
        print(f"machine: {os.cpu_count()} CPUs\n")
        rows = []
        for fmt, workers in [("html", j) for j in jobs] + [("md", max(jobs))]:
            drawing["s"] = 0.0
            out = root / f"report-{fmt}-{workers}"
            t = time.perf_counter()
            summary = build_report(info["out"], out, fmt=fmt, workers=workers)
            wall = time.perf_counter() - t
            rows.append((fmt, workers, wall, drawing["s"], summary))
        base = rows[0][2]
        ref = rows[0][4].out
        print("| report | figure processes | wall | drawing figures | figures | pages | speed-up |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for fmt, workers, wall, draw, s in rows:
            same = all((s.out / f).read_bytes() == (ref / f).read_bytes() for f in _figures(s.out))
            assert same, "figures differ between runs"
            print(
                f"| {fmt} | {workers} | {wall:.1f} s | {draw:.1f} s ({draw / wall:.0%}) | {s.figures} | "
                f"{len(s.pages)} | {base / wall:.2f}x |"
            )
        print("\nfigures identical across runs: yes")


def _zoo(root: Path, n: int, pairs: int | None = None) -> dict:
    """The report tests' zoo of ``n`` vectors: models, swept and analysed (``pairs``: perception's pairs per
    dimension, the fixture's small number by default)."""
    import yaml
    from tests.report_fixtures import build_sweep

    from vlbias.cli import main as cli

    os.environ["VLBIAS_CACHE"] = str(root / "cache")
    info = build_sweep(root, n_vectors=n, openclip=False, minilm=False)
    if pairs is not None:
        config = yaml.safe_load(info["config"].read_text())
        config["audits"]["perception"]["pairs"] = pairs
        info["config"].write_text(yaml.safe_dump(config, sort_keys=False))
    assert cli(["sweep", str(info["config"])]) == 0
    assert cli(["analyze", "--db", str(info["out"]), "--compare-by", "pretraining_dataset"]) == 0
    return info


def sizes(counts: list[int]) -> None:
    """The HTML report's size per model count, perception with the default 1,000 pairs per dimension: as built by
    default (a run's tables over 64 kB linked in the results) and ``--self-contained`` (every table copied)."""
    from vlbias.report import build_report

    rows = []
    for n in counts:
        with tempfile.TemporaryDirectory() as tmp:
            info = _zoo(Path(tmp), n, pairs=1000)
            for self_contained in (False, True):
                out = Path(tmp) / f"report-{self_contained}"
                workers = max(1, min(8, os.cpu_count() or 1))
                build_report(info["out"], out, workers=workers, self_contained=self_contained)
                files = [f for f in out.rglob("*") if f.is_file()]
                total = sum(f.stat().st_size for f in files)
                part = {
                    k: sum(f.stat().st_size for f in files if f.relative_to(out).parts[0] == k)
                    for k in ("figures", "data")
                }
                big = max(files, key=lambda f: f.stat().st_size)
                how = "self-contained" if self_contained else "default"
                rows.append((n, how, total, part, big.relative_to(out).as_posix(), big.stat().st_size))
    print("\n| models | report | size | per model | figures | data | largest file |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for n, how, total, part, big, big_size in rows:
        print(
            f"| {n} | {how} | {total / 1e6:.2f} MB | {total / n / 1e6:.2f} MB | {part['figures'] / 1e6:.2f} MB | "
            f"{part['data'] / 1e6:.2f} MB | {big} ({big_size / 1e6:.2f} MB) |"
        )


def _figures(folder: Path) -> list[str]:
    return [p.relative_to(folder).as_posix() for p in folder.glob("figures/**/*.png")]


if __name__ == "__main__":
    main()
