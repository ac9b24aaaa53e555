"""Zoo scale, rehearsed on one machine: sweep, analyze and report for 25, 50, 100 and 200 models.

Synthetic `vectors:` models stand in for a zoo (their cost in the sweep is the audits' own, not a network's; the
analysis and the report do not depend on the model type). Each model holds a vector for every text of the standard
association-test battery's text rows, the birhane2024 zero-shot prompts and the images of a ``--images``-image
face manifest (4 races x 2 genders). A catalogue CSV gives every model made-up facts: a parameter count, an
architecture family, a dataset family (all drawn at random) and a *dataset size*, log-uniform from 10^7 to 10^10,
and the vectors plant a bias gradient over the dataset size: each battery text is pushed along a shared direction,
X and A texts one way and Y and B texts the other, by ``0.08 + 0.04 z`` where ``z`` is the model's standardised
log10 dataset size. The mixed model of `vlbias analyze` should find a positive ``log_dataset_size`` coefficient
(its interval above zero) and nothing comparable for the other facts.

For every size (the first N models; sizes are run smallest first), each stage runs as its own `vlbias` process
and is timed: `vlbias sweep` (the EAT battery's text rows with ``--permutations`` sampled permutations, and the
zero-shot audit; ingestion included), `vlbias analyze`, `vlbias report` (HTML, ``--jobs`` figure processes).
Printed per size: each stage's seconds and seconds per model, the report's size, pages and figures, the slowest
page load in headless Chromium (``--browser``: every page, waiting for every image), and the planted gradient's
recovery. Then each stage's growth from the smallest size to the largest against the growth in models (at most
linear: a ratio near 1 or below).

    python benchmarks/bench_zoo.py --models 25,50,100,200
    python benchmarks/bench_zoo.py --models 4,8 --images 200 --no-browser   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLBIAS_PROGRESS", "0")
DIM = 64
RACES = ("black", "white", "east_asian", "latino_hispanic")
GENDERS = ("female", "male")
FAMILIES = ("vit", "resnet", "convnext")
DATA_FAMILIES = ("laion", "datacomp", "commonpool")
CHROMIUM = os.environ.get("VLBIAS_CHROMIUM", "/usr/bin/chromium")


def battery_text_rows() -> list[dict[str, list[str]]]:
    """The standard battery's rows whose four sets are all texts: role -> texts."""
    from vlbias.audits.eat.options import EATOptions
    from vlbias.audits.eat.run import plan

    rows, _ = plan(EATOptions.parse({}))
    out = []
    for r in rows:
        if r.sides and all(s.modality == "text" for s in r.sides.values()):
            out.append({role: list(s.texts or ()) for role, s in r.sides.items()})
    return out


def write_faces(folder: Path, n: int) -> Path:
    """``n`` tiny JPEGs and their manifest (identity, race, gender)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rows = ["path,identity,race,gender"]
    for i in range(n):
        name = f"face{i:05d}.jpg"
        Image.new("RGB", (8, 8), (i % 256, (7 * i) % 256, (13 * i) % 256)).save(folder / name, quality=90)
        rows.append(f"{name},p{i:05d},{RACES[i % 4]},{GENDERS[(i // 4) % 2]}")
    manifest = folder / "faces.csv"
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return manifest


def write_zoo(root: Path, n_models: int, n_images: int) -> tuple[list[str], Path, Path]:
    """The models' vectors files, the catalogue CSV and the face manifest; returns (specs, catalogue, manifest)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vlbias.datasets import load_dataset
    from vlbias.stimuli.zeroshot import load_protocol

    rows = battery_text_rows()
    sign: dict[str, float] = {}
    for row in rows:  # X and A one way, Y and B the other; a text in several sets keeps its first side
        for role, texts in row.items():
            for t in texts:
                sign.setdefault(t, 1.0 if role in ("X", "A") else -1.0)
    prompts = [p for t in load_protocol("birhane2024").tasks for ps in t.prompts().values() for p in ps]
    texts = list(dict.fromkeys(list(sign) + prompts))
    manifest = write_faces(root / "faces", n_images)
    image_keys = load_dataset(f"manifest:{manifest}").table["key"].astype(str).tolist()
    signs = np.array([sign.get(t, 0.0) for t in texts])

    rng = np.random.default_rng(2024)
    log_size = rng.uniform(7, 10, n_models)
    z = (log_size - log_size.mean()) / log_size.std()
    facts = pd.DataFrame(
        {
            "architecture": [f"arch{i % 7}" for i in range(n_models)],
            "architecture_family": rng.choice(FAMILIES, n_models),
            "n_params": np.round(10 ** rng.uniform(7, 9, n_models)).astype(np.int64),
            "pretraining_dataset": [f"data{i % 11}" for i in range(n_models)],
            "dataset_family": rng.choice(DATA_FAMILIES, n_models),
            "dataset_size": np.round(10**log_size).astype(np.int64),
        }
    )
    direction = rng.normal(size=DIM)
    direction /= np.linalg.norm(direction)
    specs = []
    for m in range(n_models):
        r = np.random.default_rng(m)
        t = r.normal(size=(len(texts), DIM))
        t /= np.linalg.norm(t, axis=1, keepdims=True)
        t += (0.08 + 0.04 * z[m]) * signs[:, None] * direction
        img = r.normal(size=(len(image_keys), DIM))
        path = root / "models" / f"model{m:04d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        vectors = np.concatenate([t, img]).astype(np.float32)
        table = pa.table({"key": texts + image_keys, "vector": pa.FixedSizeListArray.from_arrays(vectors.ravel(), DIM)})
        pq.write_table(table, path)
        specs.append(f"vectors:{path}")
    facts.insert(0, "spec", specs)
    catalogue = root / "facts.csv"
    facts.to_csv(catalogue, index=False)
    return specs, catalogue, manifest


def run(args: list[str], what: str) -> float:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "vlbias", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{what} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return time.perf_counter() - t


def page_loads(report: Path) -> tuple[float, str, int]:
    """The slowest page load (navigation to every image drawn) over all pages: seconds, page, pages."""
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    worst, name = 0.0, ""
    files = sorted(report.rglob("*.html"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(files[0].as_uri(), wait_until="load")  # the browser's own start-up stays out
            for f in files:
                t = time.perf_counter()
                page.goto(f.as_uri(), wait_until="load")
                page.wait_for_function("[...document.images].every(i => i.complete)")
                took = time.perf_counter() - t
                if took > worst:
                    worst, name = took, f.relative_to(report).as_posix()
        finally:
            browser.close()
    return worst, name, len(files)


def folder_size(folder: Path) -> tuple[int, int, int, int]:
    """Bytes, files, HTML pages and figures (PNG/SVG) under a folder."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    figures = sum(p.suffix in (".png", ".svg") for p in files)
    return sum(p.stat().st_size for p in files), len(files), sum(p.suffix == ".html" for p in files), figures


def planted_gradient(db: Path) -> dict[str, tuple[float, float, float]]:
    """The mixed model's fixed effects: term -> (estimate, interval low, high)."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        df = con.execute('SELECT * FROM analysis."mixed_model"').df()
    finally:
        con.close()
    cols = {c.lower(): c for c in df.columns}
    est = cols.get("estimate") or cols.get("coef")
    lo, hi = cols.get("ci_low"), cols.get("ci_high")
    return {str(r[cols["term"]]): (float(r[est]), float(r[lo]), float(r[hi])) for _, r in df.iterrows()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="25,50,100,200", help="zoo sizes, e.g. 25,50,100,200")
    ap.add_argument("--images", type=int, default=1000, help="images in the zero-shot manifest")
    ap.add_argument("--permutations", type=int, default=10_000, help="EAT permutations per row (sampled)")
    ap.add_argument("--jobs", type=int, default=None, help="figure processes of the report [default: CPU count]")
    ap.add_argument("--browser", action=argparse.BooleanOptionalAction, default=True, help="time page loads")
    ap.add_argument("--keep", default=None, help="a folder to build in and keep (default: a temporary one)")
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.models.split(","))
    jobs = args.jobs or max(1, os.cpu_count() or 1)

    root = Path(args.keep or tempfile.mkdtemp(prefix="vlbias-bench-zoo-"))
    root.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    specs, catalogue, manifest = write_zoo(root, max(sizes), args.images)
    print(
        f"{max(sizes)} vectors: models (d={DIM}), {args.images} images, {len(battery_text_rows())} text rows of the "
        f"standard battery, {args.permutations:,} permutations per row; report with {jobs} figure processes; "
        f"inputs written in {time.perf_counter() - t:.0f} s under {root}\n"
    )
    import yaml

    results = []
    header = (
        f"{'models':>6}{'sweep s':>9}{'/model':>8}{'analyze s':>11}{'report s':>10}{'/model':>8}{'report MB':>11}"
        f"{'pages':>7}{'figures':>9}{'slowest page s':>16}"
    )
    print(header, flush=True)
    for n in sizes:
        out = root / f"zoo{n}"
        config = {
            "models": specs[:n],
            "catalogue": [str(catalogue)],
            "audits": {
                "eat": {"battery": "standard", "permutations": args.permutations, "n_bootstrap": 200},
                "zeroshot": {"dataset": f"manifest:{manifest}", "n_bootstrap": 200},
            },
            "seed": 0,
            "encoder": {"device": "cpu", "cache_dir": str(root / "cache")},
        }
        cfg = root / f"zoo{n}.yaml"
        cfg.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        stage = {
            "sweep": run(["sweep", str(cfg), "--out", str(out)], f"sweep of {n} models"),
            "analyze": run(["analyze", "--db", str(out)], f"analyze of {n} models"),
            "report": run(["report", str(out), "--jobs", str(jobs)], f"report of {n} models"),
        }
        size, n_files, pages, figures = folder_size(out / "report")
        slowest = page_loads(out / "report") if args.browser else (float("nan"), "", pages)
        terms = planted_gradient(out / "results.duckdb")
        results.append((n, stage, size, slowest, terms))
        print(
            f"{n:>6}{stage['sweep']:>9.1f}{stage['sweep'] / n:>8.2f}{stage['analyze']:>11.1f}{stage['report']:>10.1f}"
            f"{stage['report'] / n:>8.2f}{size / 1e6:>11.1f}{pages:>7}{figures:>9}{slowest[0]:>16.2f}  {slowest[1]}",
            flush=True,
        )
    print("\nthe planted gradient (mixed model, per SD of each log10 fact; 95% intervals):")
    for n, _, _, _, terms in results:
        shown = "; ".join(
            f"{k} {e:+.3f} [{lo:+.3f}, {hi:+.3f}]" for k, (e, lo, hi) in terms.items() if k != "Intercept"
        )
        print(f"  {n:>4} models: {shown}")
    (n0, s0, z0, _, _), (n1, s1, z1, _, _) = results[0], results[-1]
    print(f"\ngrowth from {n0} to {n1} models ({n1 / n0:.0f}x); per-model growth (1 = linear, below 1: better):")
    for k in ("sweep", "analyze", "report"):
        print(f"  {k:<8} {s1[k] / s0[k]:6.1f}x   per model {s1[k] / s0[k] / (n1 / n0):.2f}")
    print(f"  {'report size':<8} {z1 / z0:6.1f}x   per model {z1 / z0 / (n1 / n0):.2f}")
    summary = root / "bench_zoo.json"
    summary.write_text(
        json.dumps(
            [
                {"models": n, "stages": s, "report_bytes": z, "slowest_page": sl[:2], "terms": t}
                for n, s, z, sl, t in results
            ],
            indent=1,
        )
    )
    print(f"\n(figures kept in {root}; summary in {summary})")


if __name__ == "__main__":
    main()
