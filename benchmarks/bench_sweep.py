"""Sweep overhead: what a model-zoo sweep costs beyond the audits themselves, cold and on cached embeddings.

A small zoo (random-init open_clip models and MiniLM by default) runs a synthetic audit (embed texts and images,
then a cosine-similarity statistic, as the real audits do) in several option variants per model, three ways in the
same run:

- cold sweep: empty embedding cache; the models load and compute;
- warm sweep: the same grid into a new results folder with the filled cache; no model loads or computes;
- bare loop on the warm cache: ``audit.run(encoder, options)`` for every task in a plain loop, no sweep machinery
  (no planning, parts, status files or database): the baseline for the sweep's own overhead.

The warm runs are repeated (``--repeat``), interleaved with rotating order, on two grids (``--variants`` and four
times as many variants per model). Printed: each run's wall and CPU time (this process's, which other jobs on a
shared machine disturb less) and the sweep's ratio to the bare loop; and the sweep's own work measured inside the
sweep, so that the machine's noise does not enter it twice: per task, the time ``run_model_tasks`` spends outside
the audits' ``run`` (writing the part, clearing its status, events), in wall and CPU time, and per invocation, the
rest of the sweep's wall time (planning, model identities and facts, ingestion). Medians over the repetitions with
their ranges. Printed too: the cold sweep's share of model time.

    python benchmarks/bench_sweep.py
    python benchmarks/bench_sweep.py --variants 20 --texts 400 --images 64
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLBIAS_PROGRESS", "0")
# numpy's BLAS on one thread: on a small shared machine, idle BLAS threads spin after every product in the audits
# and take the CPU the sweep's own work runs on (measured: 7x the bare loop's CPU time on 2 cores); torch keeps its
# threads for the models
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

TIMERS: dict[str, float] = defaultdict(float)


def timed(name, fn, cpu: bool = False):
    """``fn`` adding its wall time (and, with ``cpu``, this process's CPU time as ``name + " cpu"``) to TIMERS."""

    def wrapper(*a, **k):
        t, c = time.perf_counter(), time.process_time() if cpu else 0.0
        try:
            return fn(*a, **k)
        finally:
            TIMERS[name] += time.perf_counter() - t
            if cpu:
                TIMERS[name + " cpu"] += time.process_time() - c

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
    ap.add_argument("--variants", type=int, default=10, help="option variants (tasks) per model, in the small grid")
    ap.add_argument("--texts", type=int, default=200)
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=5, help="repetitions of the warm runs")
    args = ap.parse_args()

    import torch

    from vlbias.audits.registry import get_audit
    from vlbias.models import load_model
    from vlbias.zoo.plan import parse_config, plan
    from vlbias.zoo.runner import run_sweep
    from vlbias.zoo.store import ResultsStore

    torch.set_num_threads(max(1, torch.get_num_threads()))
    root = Path(tempfile.mkdtemp(prefix="vlbias-bench-sweep-"))
    words, folder = make_stimuli(root, args.texts, args.images)
    register_audit(words, folder)
    instrument()
    ResultsStore.write_part = timed("writing parts", ResultsStore.write_part)
    ResultsStore.ingest = timed("ingestion", ResultsStore.ingest)
    # per task, the sweep's own work is what run_model_tasks does outside the audits' run
    import vlbias.zoo.runner as runner
    from vlbias.audits.registry import AuditSpec

    runner.run_model_tasks = timed("model tasks", runner.run_model_tasks, cpu=True)
    AuditSpec.run = timed("audit.run", AuditSpec.run, cpu=True)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    sizes = {"small": args.variants, "large": 4 * args.variants}

    def config(variants: int):
        return parse_config(
            {
                "models": models,
                "audits": {"bench": [{"variant": v} for v in range(variants)]},
                "encoder": {"device": "cpu", "cache_dir": str(root / "cache")},
            }
        )

    configs = {k: config(v) for k, v in sizes.items()}
    n_tasks = {k: len(plan(c)) for k, c in configs.items()}
    audit = get_audit("bench")
    runs = iter(range(10**6))

    def sweep(size: str) -> tuple[float, float, dict[str, float]]:
        """Wall and CPU seconds (this process, all its threads) of a sweep into a new folder, and the timers."""
        TIMERS.clear()
        t, c = time.perf_counter(), time.process_time()
        summary = run_sweep(configs[size], out=root / f"sweep{next(runs)}")
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        assert summary.state.done == n_tasks[size], summary.failed
        return wall, cpu, dict(TIMERS)

    def bare(size: str) -> tuple[float, float, dict[str, float]]:
        """The same audits on the same (warm) encoders in a plain loop: no planning, parts, statuses or database."""
        TIMERS.clear()
        t, c = time.perf_counter(), time.process_time()
        for m in models:
            enc = load_model(m, **configs[size].encoder_kwargs())
            for v in range(sizes[size]):
                audit.run(enc, {"variant": v})
        return time.perf_counter() - t, time.process_time() - c, dict(TIMERS)

    cold_wall, _, cold = sweep("large")  # fills the embedding cache for both grids
    print(
        f"\n{len(models)} models; grids of {n_tasks['small']} and {n_tasks['large']} tasks; {args.texts // 2} texts "
        f"and {args.images} images per task; torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    fwd_cold = cold.get("model: embed_texts", 0.0) + cold.get("model: embed_images", 0.0)
    print(
        f"cold sweep ({n_tasks['large']} tasks): {cold_wall:.1f} s, the models compute {100 * fwd_cold / cold_wall:.0f}%"
        f" (load {100 * cold.get('model: load', 0) / cold_wall:.0f}%), {1000 * (cold_wall - cold.get('audit (all of run)', 0)) / n_tasks['large']:.0f} ms per task outside the audits\n"
    )
    steps = [("sweep", "small"), ("sweep", "large"), ("bare", "small"), ("bare", "large")]
    times: dict[tuple[str, str], list[tuple[float, float, dict[str, float]]]] = {s: [] for s in steps}
    for r in range(args.repeat):
        for kind, size in steps[r % 4 :] + steps[: r % 4]:  # interleaved, rotating the order
            times[(kind, size)].append((sweep if kind == "sweep" else bare)(size))

    def cell(xs: list[float], scale: float = 1.0, fmt: str = ".2f") -> str:
        xs = [x * scale for x in xs]
        return f"{statistics.median(xs):{fmt}} ({min(xs):{fmt}}-{max(xs):{fmt}})"

    print(f"{'warm run':<22}{'tasks':>6}{'wall s':>20}{'CPU s':>20}{'sweep/bare':>12}")
    for (kind, size), v in times.items():
        label = "sweep (new folder)" if kind == "sweep" else "bare audit.run loop"
        ratio = [a[0] / b[0] for a, b in zip(v, times[("bare", size)])]
        print(
            f"{label:<22}{n_tasks[size]:>6}{cell([x[0] for x in v]):>20}{cell([x[1] for x in v]):>20}"
            f"{cell(ratio) if kind == 'sweep' else '':>12}"
        )
    print("\nthe sweep's own work, measured inside the warm sweeps (median (range) over the repetitions):")
    for size in sizes:
        v = times[("sweep", size)]
        n = n_tasks[size]
        task_wall = [(tm["model tasks"] - tm["audit.run"]) / n for _, _, tm in v]
        task_cpu = [(tm["model tasks cpu"] - tm["audit.run cpu"]) / n for _, _, tm in v]
        parts = [tm["writing parts"] / n for _, _, tm in v]
        fixed = [wall - tm["model tasks"] for wall, _, tm in v]
        ingest = [tm["ingestion"] for _, _, tm in v]
        print(
            f"  {n} tasks: per task {cell(task_wall, 1000)} ms wall, {cell(task_cpu, 1000)} ms CPU (target <= 2; "
            f"writing the part {cell(parts, 1000)} ms); per invocation {cell(fixed, 1000, '.0f')} ms "
            f"(planning, identities, model facts; ingestion {cell(ingest, 1000, '.0f')} ms)"
        )


if __name__ == "__main__":
    main()
