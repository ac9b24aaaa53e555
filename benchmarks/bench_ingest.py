"""Database ingestion: appending new parts vs rebuilding from all parts, at 50, 100, 200 and 400 parts.

A sweep run as one `vlbias sweep` invocation per task (a SLURM array) ingests after every task. Before, every
ingestion rebuilt the database from all the parts, so the n-th invocation read n parts and the whole array grew
quadratically. Now an ingestion appends the parts the database lacks to a copy of it (`ResultsStore._append`).

Synthetic parts shaped like the association-test audit's (a 26-row results table and a 1,300-row items table per
task) are written into one sweep folder; at each size the same run measures, interleaved, ``--repeat`` times:

- rebuild: ``ingest(force=True)``, what every ingestion did before (all parts read);
- append 1: one new part since the last ingestion (the SLURM-array case);
- append 10: ten new parts.

The new parts are moved in for a measurement and out again, and the database put back, so every measurement at a
size starts from the same folder.

Printed: medians and ranges in milliseconds, and the rebuild / append ratio.

    python benchmarks/bench_ingest.py
    python benchmarks/bench_ingest.py --sizes 50,100,200,400 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("VLBIAS_PROGRESS", "0")


def part(k: int):
    import pandas as pd

    from vlbias.audits.base import AuditResult, RunRecord

    rng = np.random.default_rng(k)
    model = f"vectors:/zoo/model{k // 4:04d}.parquet"
    rec = RunRecord(
        audit="eat",
        model={"spec": model, "identity": f"id-{k // 4}"},
        options={"variant": k % 4},
        seed=0,
        stimuli=[{"name": "battery", "version": "1", "sha256": "a" * 64}],
    )
    results = pd.DataFrame(
        {
            "concept": [f"concept{i % 7}" for i in range(26)],
            "test": [f"test{i}" for i in range(26)],
            "order": [["text-text", "text-image", "image-text", "image-image"][i % 4] for i in range(26)],
            "effect_size": rng.normal(size=26),
            "p_value": rng.uniform(size=26),
            "n_permutations": np.full(26, 1_000_000),
            "ci_low": rng.normal(size=26) - 1,
            "ci_high": rng.normal(size=26) + 1,
            "status": ["ok"] * 26,
        }
    )
    items = pd.DataFrame(
        {
            "test": [f"test{i % 26}" for i in range(1300)],
            "role": [["X", "Y"][i % 2] for i in range(1300)],
            "item": [f"item {i}" for i in range(1300)],
            "association": rng.normal(size=1300),
        }
    )
    return model, AuditResult("eat", {"results": results, "items": items}, rec)


def write_parts(store, start: int, stop: int) -> None:
    from vlbias.zoo.plan import make_task

    for k in range(start, stop):
        model, result = part(k)
        if not store.has_model_facts(model):  # as a sweep does, before its tasks run
            store.write_model_facts(model, {"architecture_family": "vit", "model_identity": f"id-{k // 4}"})
        task = make_task(model, "eat", {"variant": k % 4})
        store.write_part(task, result, {"model_identity": result.record.model["identity"], "seconds": 1.0})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="50,100,200,400")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from vlbias.zoo.store import ResultsStore

    sizes = [int(s) for s in args.sizes.split(",")]
    root = Path(tempfile.mkdtemp(prefix="vlbias-bench-ingest-"))
    store = ResultsStore(root / "sweep")
    staging = ResultsStore(root / "staging")  # the new parts, moved in for a measurement and out again
    write_parts(staging, 100_000, 100_010)
    staged = sorted((root / "staging" / "parts" / "eat").iterdir())
    made = 0
    rows = []
    print(f"parts shaped like the EAT audit's (26 result rows, 1,300 item rows); {args.repeat} repetitions\n")
    print(f"{'parts':>6}{'rebuild ms':>20}{'append 1 ms':>20}{'append 10 ms':>20}{'rebuild/append 1':>18}")
    for n in sizes:
        write_parts(store, made, n)
        made = n
        store.ingest(force=True)
        saved = root / "saved.duckdb"
        shutil.copyfile(store.db_path, saved)
        times: dict[str, list[float]] = {"rebuild": [], "append 1": [], "append 10": []}
        for r in range(args.repeat):
            steps = [("append 1", 1), ("append 10", 10), ("rebuild", 0)]
            if r % 2:
                steps = steps[2:] + steps[:2]  # interleaved, alternating the order
            for name, new in steps:
                moved = [store.root / "parts" / "eat" / p.name for p in staged[:new]]
                for src, dst in zip(staged, moved):
                    os.rename(src, dst)
                t = time.perf_counter()
                summary = store.ingest(force=name == "rebuild")
                times[name].append(1000 * (time.perf_counter() - t))
                assert summary is not None and summary.parts == (n if name == "rebuild" else new), summary
                for src, dst in zip(staged, moved):
                    os.rename(dst, src)
                shutil.copyfile(saved, store.db_path)  # the database of the n parts again
        med = {k: statistics.median(v) for k, v in times.items()}
        cells = "".join(f"{f'{med[k]:.0f} ({min(v):.0f}-{max(v):.0f})':>20}" for k, v in times.items())
        print(f"{n:>6}{cells}{med['rebuild'] / med['append 1']:>17.1f}x", flush=True)
        rows.append((n, med))
    (n0, m0), (n1, m1) = rows[0], rows[-1]
    print(
        f"\nfrom {n0} to {n1} parts ({n1 / n0:.0f}x): rebuild {m1['rebuild'] / m0['rebuild']:.1f}x, "
        f"append 1 {m1['append 1'] / m0['append 1']:.1f}x, append 10 {m1['append 10'] / m0['append 10']:.1f}x"
    )
    # rebuilds grow about linearly in the parts, so an n-task array pays about n/2 of the last one's cost
    appends = statistics.median([m["append 1"] for _, m in rows])
    print(
        f"a {n1}-task SLURM array ingesting after each task: about {m1['rebuild'] * n1 / 2000:.0f} s of rebuilds "
        f"before, {appends * n1 / 1000:.0f} s of appends now"
    )


if __name__ == "__main__":
    main()
