"""What applying a fitted mitigation adds to a warm-cache audit.

An audit on cached embeddings does no model work; a mitigated encoder adds the transform (a d x d product for the
projections, a column assignment for CLIP-clip and SFID) and renormalisation to every embedding it hands out. This
runs each audit on the raw encoder and on the mitigated one, alternating, after one warm-up run of each (which
fills the cache and fits the transform; fitting is not timed), and prints the median wall time of each, their
difference in percent, and the time spent inside the transform itself (``Transform.apply``, timed around every
call) as a share of the raw run: on a shared machine the wall-time difference of two runs of a fraction of a second
is mostly noise, the time inside the transform is what mitigation adds:

- ``eat``: st:all-MiniLM-L6-v2, eight SEAT tests (sent-weat1 ... sent-weat8), default permutations and bootstrap,
  under ``projection`` (Chuang et al., fitted on the gender prompt set);
- ``zeroshot``: openclip:ViT-B-32/random, the birhane2024 protocol on a manifest of N generated faces, under
  ``projection`` and under ``clipclip`` fitted on a second manifest of other people (so no evaluation image is held
  out and both runs see the same images).

    python benchmarks/bench_mitigation.py
    python benchmarks/bench_mitigation.py --images 400 --repeats 7
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLBIAS_PROGRESS", "0")


def manifest(folder: Path, n: int, seed: int) -> str:
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    races = ["white", "black", "east_asian", "indian"]
    with open(folder / "faces.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "identity", "gender", "race"])
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / f"{i}.png")
            w.writerow([f"{i}.png", f"s{seed}p{i}", "female" if i % 2 else "male", races[i % 4]])
    return f"manifest:{folder / 'faces.csv'}"


APPLY = [0.0]


def _timed_apply():
    from vlbias.mitigation.base import Transform

    inner = Transform.apply

    def apply(self, vectors, tower):
        t = time.perf_counter()
        try:
            return inner(self, vectors, tower)
        finally:
            APPLY[0] += time.perf_counter() - t

    Transform.apply = apply


def timed_pair(audit, raw, mitigated, options, repeats: int) -> tuple[float, float, float]:
    """Median wall time raw, mitigated, and the median time inside the transform per mitigated run."""
    audit.run(raw, options)
    audit.run(mitigated, options)  # warm-up: cache filled, transform fitted already
    t_raw, t_mit, t_apply = [], [], []
    for _ in range(repeats):
        for enc, out in ((raw, t_raw), (mitigated, t_mit)):
            APPLY[0] = 0.0
            t = time.perf_counter()
            audit.run(enc, options)
            out.append(time.perf_counter() - t)
        t_apply.append(APPLY[0])
    return statistics.median(t_raw), statistics.median(t_mit), statistics.median(t_apply)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    _timed_apply()
    from vlbias.audits.registry import get_audit
    from vlbias.mitigation import mitigate
    from vlbias.models import load_model

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        minilm = load_model("st:all-MiniLM-L6-v2", cache=tmp / "cache", device="cpu")
        eat_opts = {"tests": [f"sent-weat{i}" for i in range(1, 9)]}
        rows.append(("eat, MiniLM, 8 SEAT tests", "projection",
                     *timed_pair(get_audit("eat"), minilm, mitigate(minilm, "projection"), eat_opts, args.repeats)))  # fmt: skip
        clip = load_model("openclip:ViT-B-32/random", cache=tmp / "cache", device="cpu")
        evaluation = manifest(tmp / "eval", args.images, 0)
        fit = manifest(tmp / "fit", args.images // 2, 1)
        zs_opts = {"dataset": evaluation, "protocol": "birhane2024"}
        for spec in ("projection", f"clipclip:dataset={fit}"):
            pair = timed_pair(get_audit("zeroshot"), clip, mitigate(clip, spec), zs_opts, args.repeats)
            rows.append((f"zeroshot, ViT-B-32/random, {args.images} images", spec.split(":")[0], *pair))
    print("| audit (warm cache) | mitigation | raw | mitigated | wall difference | inside the transform |")
    print("|---|---|---:|---:|---:|---:|")
    for audit, method, b, a, inside in rows:
        print(f"| {audit} | {method} | {b:.3f} s | {a:.3f} s | {100 * (a - b) / b:+.1f}% | "
              f"{1000 * inside:.2f} ms ({100 * inside / b:.2f}%) |")  # fmt: skip


if __name__ == "__main__":
    main()
