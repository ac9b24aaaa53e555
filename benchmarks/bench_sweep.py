"""Sweep overhead: what a model-zoo sweep costs beyond the audits themselves, cold and on cached embeddings.

A small zoo (random-init open_clip models and MiniLM by default) runs a synthetic audit (embed texts and images,
then a cosine-similarity statistic, as the real audits do) in several option variants per model, three ways in the
same run:

- cold sweep: empty embedding cache; the models load and compute;
- warm sweep: the same grid into a new results folder with the filled cache; no model loads or computes;
- bare loop on the warm cache: ``audit.run(encoder, options)`` for every task in a plain loop, no sweep machinery
  (no planning, parts, status files or database): the baseline for the sweep's own overhead.

Printed: wall time, the time in model forward passes, in encoder calls (cache look-ups included) and in audit
code, and the overhead per task (sweep wall minus the time inside the audits, per task: planning, identities,
atomic Parquet parts, database ingestion).

    python benchmarks/bench_sweep.py
    python benchmarks/bench_sweep.py --variants 20 --texts 400 --images 64
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLBIAS_PROGRESS", "0")

TIMERS: dict[str, float] = defaultdict(float)


def timed(name, fn):
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            TIMERS[name] += time.perf_counter() - t

    return wrapper


def make_stimuli(root: Path, n_texts: int, n_images: int) -> tuple[list[str], Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    words = [f"a photo of a {w} number {i}" for i, w in enumerate(rng.choice(["cat", "dog", "car", "tree"], n_texts))]
    folder = root / "images"
    folder.mkdir()
    for i in range(n_images):
        arr = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"img{i:04d}.jpg", quality=90)
    return words, folder


def register_audit(words: list[str], folder: Path):
    import pandas as pd

    from vlbias.audits.base import AuditResult, RunRecord
    from vlbias.audits.registry import AuditSpec, register
    from vlbias.utils.options import Options, option

    class BenchOptions(Options):
        OWNER = "bench"
        variant: int = option(0, "which half of the texts (a seed)", min=0)

    paths = sorted(folder.glob("*.jpg"))

    def run(encoder, options):
        t = time.perf_counter()
        rng = np.random.default_rng(options.variant)
        idx = rng.choice(len(words), size=len(words) // 2, replace=False)
        texts = encoder.encode_texts([words[i] for i in idx])
        rows = []
        if "image" in encoder.modalities:
            images = encoder.encode_images(paths)
            sims = images @ texts.T
            rows = [
                {"image": p.name, "mean_cos": float(s.mean()), "max_cos": float(s.max())} for p, s in zip(paths, sims)
            ]
        tt = texts @ texts.T
        rows.append({"image": None, "mean_cos": float(tt.mean()), "max_cos": float(np.sort(tt, axis=1)[:, -2].max())})
        rec = RunRecord("bench", {"spec": str(encoder.spec), "identity": encoder.identity}, options.to_dict())
        TIMERS["audit (all of run)"] += time.perf_counter() - t
        return AuditResult("bench", {"results": pd.DataFrame(rows)}, rec)

    register(AuditSpec("bench", "benchmark audit", BenchOptions, run, ("text",)), replace=True)


def instrument():
    from vlbias.models.backends import openclip, st
    from vlbias.models.base import Encoder

    for cls in (openclip.Backend, st.Backend):
        for name in ("_embed_texts", "_embed_images", "_load"):
            if name in cls.__dict__:
                setattr(cls, name, timed("model: " + name.strip("_"), cls.__dict__[name]))
    Encoder.encode_texts = timed("encoder calls", Encoder.encode_texts)
    Encoder.try_encode_images = timed("encoder calls", Encoder.try_encode_images)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--models",
        default="openclip:ViT-S-32-alt/random,openclip:RN50/random,openclip:ViT-S-16-alt/random,st:all-MiniLM-L6-v2",
    )
    ap.add_argument("--variants", type=int, default=10, help="option variants (tasks) per model")
    ap.add_argument("--texts", type=int, default=200)
    ap.add_argument("--images", type=int, default=32)
    args = ap.parse_args()

    import torch

    from vlbias.models import load_model
    from vlbias.zoo.plan import parse_config, plan
    from vlbias.zoo.runner import run_sweep

    torch.set_num_threads(max(1, torch.get_num_threads()))
    root = Path(tempfile.mkdtemp(prefix="vlbias-bench-sweep-"))
    words, folder = make_stimuli(root, args.texts, args.images)
    register_audit(words, folder)
    instrument()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    config = parse_config(
        {
            "models": models,
            "audits": {"bench": [{"variant": v} for v in range(args.variants)]},
            "encoder": {"device": "cpu", "cache_dir": str(root / "cache")},
        }
    )
    n_tasks = len(plan(config))
    results = {}
    for label, out in (("cold sweep", "cold"), ("warm sweep", "warm")):
        TIMERS.clear()
        t = time.perf_counter()
        summary = run_sweep(config, out=root / out)
        wall = time.perf_counter() - t
        assert summary.state.done == n_tasks, summary.failed
        results[label] = (wall, dict(TIMERS))
    # the bare loop: the same audits on the same (warm) encoders, no sweep machinery
    from vlbias.audits.registry import get_audit

    audit = get_audit("bench")
    TIMERS.clear()
    t = time.perf_counter()
    for m in models:
        enc = load_model(m, **config.encoder_kwargs())
        for v in range(args.variants):
            audit.run(enc, {"variant": v})
    results["bare loop, warm cache"] = (time.perf_counter() - t, dict(TIMERS))

    print(
        f"\n{len(models)} models x {args.variants} variants = {n_tasks} tasks; {args.texts // 2} texts and "
        f"{args.images} images per task; torch {torch.__version__}, {torch.get_num_threads()} threads\n"
    )
    print(f"{'run':<24}{'wall s':>9}{'model load':>12}{'forward':>10}{'encoder':>10}{'audit':>9}{'overhead/task':>15}")
    for label, (wall, tm) in results.items():
        load = tm.get("model: load", 0.0)
        fwd = tm.get("model: embed_texts", 0.0) + tm.get("model: embed_images", 0.0)
        audit_t = tm.get("audit (all of run)", 0.0)
        enc = tm.get("encoder calls", 0.0)
        per_task = (wall - audit_t) / n_tasks * 1000
        print(f"{label:<24}{wall:>9.2f}{load:>12.2f}{fwd:>10.2f}{enc:>10.2f}{audit_t:>9.2f}{per_task:>12.1f} ms")
    cold_wall, cold = results["cold sweep"]
    warm_wall, warm = results["warm sweep"]
    bare_wall, _ = results["bare loop, warm cache"]
    fwd_cold = cold.get("model: embed_texts", 0.0) + cold.get("model: embed_images", 0.0)
    fwd_warm = warm.get("model: embed_texts", 0.0) + warm.get("model: embed_images", 0.0)
    print(
        f"\ncold sweep: the models compute {100 * fwd_cold / cold_wall:.0f}% of the wall time "
        f"(load {100 * cold.get('model: load', 0) / cold_wall:.0f}%)"
    )
    print(
        f"warm sweep: the models compute {100 * fwd_warm / warm_wall:.1f}% of the wall time; audits "
        f"{100 * warm.get('audit (all of run)', 0) / warm_wall:.0f}%; the sweep is {warm_wall / bare_wall:.2f}x the "
        f"bare loop ({1000 * (warm_wall - bare_wall) / n_tasks:.1f} ms more per task)"
    )


if __name__ == "__main__":
    main()
