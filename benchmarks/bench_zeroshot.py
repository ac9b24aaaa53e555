"""Zero-shot audit costs: a second protocol on cached images, a fully warm rerun, and the cluster bootstrap.

Measured in one run, so the ratios hold on a noisy machine:

1. On a CFD-layout folder of generated JPEGs (one neutral image per person, the CFD 3.0 layout and workbook):
   - cold: ``birhane2024`` with an empty cache (encode every image and prompt, bootstrap, tables);
   - second protocol: ``birhane2024-racegender`` on the same images (new prompts, cached images);
   - warm rerun: ``birhane2024`` again with a fresh encoder on the filled cache (no model is loaded).
2. The cluster bootstrap at FairFace-validation scale (10,954 images, 14 race x gender groups, 46 values, 2,000
   replicates): vlbias's vectorised resampling (counts per cluster, one matrix product per chunk of replicates)
   against the direct loop (per replicate: draw people per group, ``groupby().mean()``), timed on a subset of
   replicates and scaled to 2,000.

    python benchmarks/bench_zeroshot.py                      # random-init ViT-B-32 on the CPU, 160 faces
    python benchmarks/bench_zeroshot.py --device cuda --people 600
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLBIAS_PROGRESS", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' fixture builders


def make_cfd_folder(base: Path, people: int, size: tuple[int, int]) -> Path:
    """A CFD 3.0 folder: ``people`` models over the 8 race x gender cells, one neutral JPEG each, and the workbook."""
    import openpyxl
    from PIL import Image
    from tests.faces_fixtures import CFD_HEADER, CFD_SUBHEADER

    root = base / "CFD Version 3.0"
    rng = np.random.default_rng(0)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    rows = []
    for i in range(people):
        r, g = "ABLW"[i % 4], "FM"[(i // 4) % 2]
        model = f"{r}{g}-{200 + i:03d}"
        base_img = (np.sin(xx / (7 + i % 13)) + np.cos(yy / (5 + i % 11))) * 60 + 128
        arr = np.stack([base_img, base_img[::-1], base_img[:, ::-1]], axis=-1) + rng.normal(0, 12, (h, w, 3))
        folder = root / "Images" / "CFD" / model
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(folder / f"CFD-{model}-{i:03d}-N.jpg", quality=90)
        rows.append([model, r, g, 20 + i % 40, 25.0, 0.5, 0.5, 0.2, 0.2, 0.2, 0.4, 3.0, 4.0, 3.5])
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "CFD U.S. Norming Data"
    for j, (name, sub) in enumerate(zip(CFD_HEADER, CFD_SUBHEADER), 1):
        ws.cell(8, j, name)
        ws.cell(9, j, sub)
    for i, row in enumerate(rows):
        for j, v in enumerate(row, 1):
            ws.cell(10 + i, j, v)
    wb.save(root / "CFD 3.0 Norming Data and Codebook.xlsx")
    return root


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def naive_bootstrap(values: np.ndarray, groups, clusters: np.ndarray, n_bootstrap: int, seed: int = 0) -> None:
    """The direct loop: per replicate, draw each group's people with replacement and average their images."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    df = pd.DataFrame(values)
    df["_g"] = groups
    df["_c"] = clusters
    by_group = {g: sub for g, sub in df.groupby("_g")}
    for _ in range(n_bootstrap):
        parts = []
        for sub in by_group.values():
            people = sub["_c"].unique()
            drawn = rng.choice(people, size=len(people), replace=True)
            counts = pd.Series(drawn).value_counts()
            part = sub[sub["_c"].isin(counts.index)]
            weights = part["_c"].map(counts)
            parts.append(part.drop(columns=["_g", "_c"]).mul(weights, axis=0).sum() / weights.sum())
        pd.concat(parts, axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="openclip:ViT-B-32/random")
    ap.add_argument("--people", type=int, default=160, help="CFD models (one neutral image each)")
    ap.add_argument("--size", default="600x422", help="JPEG size WxH (CFD's originals are 2444x1718)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--naive-replicates", type=int, default=20, help="replicates timed for the direct loop")
    args = ap.parse_args()

    from vlbias.audits.zeroshot import AUDIT
    from vlbias.models import load_model
    from vlbias.stats.groups import group_means

    w, h = (int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_cfd_folder(tmp / "cfd", args.people, (w, h))
        cache = tmp / "cache"
        opts = {"dataset": f"cfd:{root}", "n_bootstrap": 2000}
        enc = load_model(args.model, device=args.device, cache=cache)
        t_load, _ = timed(enc.load)
        t_cold, _ = timed(lambda: AUDIT.run(enc, opts))
        t_second, _ = timed(lambda: AUDIT.run(enc, {**opts, "protocol": "birhane2024-racegender"}))
        fresh = load_model(args.model, device=args.device, cache=cache)
        t_warm, _ = timed(lambda: AUDIT.run(fresh, opts))
        assert not fresh._loaded, "the warm rerun loaded the model"

    print(f"zero-shot audit, {args.model} on {args.device}, {args.people} CFD-layout JPEGs of {w}x{h}, 2000 replicates")
    print(f"  model load (not in the runs below)        {t_load:7.2f} s")
    print(f"  cold: birhane2024, empty cache            {t_cold:7.2f} s   1.00")
    print(f"  second protocol on the cached images      {t_second:7.2f} s   {t_cold / t_second:5.1f}x faster than cold")
    print(f"  warm rerun, fresh encoder, no model load  {t_warm:7.2f} s   {t_cold / t_warm:5.1f}x faster than cold")

    rng = np.random.default_rng(0)
    n, k = 10954, 46
    values = rng.random((n, k))
    groups = np.array([f"{r}|{g}" for r, g in zip(rng.integers(0, 7, n), rng.integers(0, 2, n))])
    people = np.arange(n)
    import pandas as pd

    t_vec, _ = timed(lambda: group_means(values, pd.Series(groups, name="g"), people, n_bootstrap=2000, seed=0))
    t_naive_part, _ = timed(lambda: naive_bootstrap(values, groups, people, args.naive_replicates))
    t_naive = t_naive_part * 2000 / args.naive_replicates
    print(f"cluster bootstrap, {n} images, 14 groups, {k} values, 2000 replicates")
    print(
        f"  direct loop (per replicate, pandas)       {t_naive:7.2f} s   1.00  (timed on {args.naive_replicates}, scaled)"
    )
    print(f"  vlbias group_means (vectorised)           {t_vec:7.2f} s   {t_naive / t_vec:5.1f}x faster")


if __name__ == "__main__":
    main()
