"""The cost of every layer: ``--layer all`` against the model's final embedding alone, measured in the same run.

Both paths encode the same texts and JPEGs end to end from an empty cache (decode, preprocess, forward, normalise,
cache writes), on one loaded model:

- final: the model's embedding (``load_model(spec)``), what every audit reads without ``--layer``;
- all layers: ``load_layers(spec, layer="all")``: one forward pass whose hooks read every block of both towers,
  each batch's vectors of every layer written to that layer's cache as the batch comes; then every layer's
  encoder reads its vectors (from its cache, as an audit over all layers does).

The two are interleaved (final, all, final, all, ...) and repeated; the ratio is taken within each pair, so load
from other jobs on the machine hits both alike. ``--memory`` instead runs each path once in a fresh process and
reports its peak resident memory (and the all-layers path again with twice the images: memory stays bounded,
since no layer's vectors are held beyond a batch).

    python benchmarks/bench_layers.py                   # random-init ViT-B-32 on the CPU, 128 images, 256 texts
    python benchmarks/bench_layers.py --repeat 5 --n-images 256
    python benchmarks/bench_layers.py --memory
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLBIAS_PROGRESS", "0")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_encode import make_jpegs  # noqa: E402

WORDS = [
    f"{a} {b}" for a in ("a photo of a", "a picture of the", "an image of a", "a portrait of a") for b in range(64)
]


def texts(n: int) -> list[str]:
    return [f"{w} person number {i}" for i, w in enumerate((WORDS * (n // len(WORDS) + 1))[:n])]


def run_once(base, which: str, paths, prompts, cache_root: Path) -> float:
    """Seconds to get every vector of ``which`` (final or all) from an empty cache, on the loaded ``base``."""
    from vlbias.cache.store import EmbeddingCache
    from vlbias.models.layers import Layers, layer_encoders

    base._cache_store = EmbeddingCache(tempfile.mkdtemp(dir=cache_root))
    base._model_cache = None
    t = time.perf_counter()
    if which == "final":
        base.encode_images(paths)
        base.encode_texts(prompts)
    else:
        encoders = layer_encoders(base, Layers.parse("all"))
        for enc in encoders:  # the first fills every layer from one pass; the others read their caches
            if "image" in enc.modalities:
                enc.encode_images(paths)
            if "text" in enc.modalities:
                enc.encode_texts(prompts)
    return time.perf_counter() - t


def memory(args) -> None:
    """Peak resident memory of each path in a fresh process."""
    for which, n in (("final", args.n_images), ("all", args.n_images), ("all", 2 * args.n_images)):
        cmd = [sys.executable, __file__, "--child", which, "--n-images", str(n), "--n-texts", str(args.n_texts)]
        cmd += ["--model", args.model, "--batch-size", str(args.batch_size)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        print(f"{which:5s} {n:5d} images, {args.n_texts} texts: peak RSS {out}")


def child(args) -> None:
    from vlbias.models import load_model

    tmp = Path(tempfile.mkdtemp(prefix="vlbias-bench-"))
    (tmp / "imgs").mkdir()
    paths = make_jpegs(tmp / "imgs", args.n_images, (512, 384))
    base = load_model(args.model, device="cpu", batch_size=args.batch_size, cache=tmp / "c").load()
    run_once(base, args.child, paths, texts(args.n_texts), tmp)
    print(f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="openclip:ViT-B-32/random")
    ap.add_argument("--n-images", type=int, default=128)
    ap.add_argument("--n-texts", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3, help="pairs (final, all) measured")
    ap.add_argument("--memory", action="store_true", help="peak memory of each path, in fresh processes")
    ap.add_argument("--child", choices=["final", "all"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    if args.memory:
        return memory(args)

    import torch

    from vlbias.models import load_model

    tmp = Path(tempfile.mkdtemp(prefix="vlbias-bench-"))
    (tmp / "imgs").mkdir()
    paths = make_jpegs(tmp / "imgs", args.n_images, (512, 384))
    prompts = texts(args.n_texts)
    base = load_model(args.model, device="cpu", batch_size=args.batch_size, cache=tmp / "c").load()
    depths = base.tower_depths()
    print(
        f"model {args.model} on cpu ({depths['image']} image blocks, {depths['text']} text blocks); {args.n_images} "
        f"JPEGs 512x384 and {args.n_texts} texts; batch {args.batch_size}; torch threads {torch.get_num_threads()}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    run_once(base, "final", paths[:8], prompts[:8], tmp)  # warm-up: first-call allocations stay out of the numbers
    pairs = []
    for i in range(args.repeat):
        final = run_once(base, "final", paths, prompts, tmp)
        every = run_once(base, "all", paths, prompts, tmp)
        pairs.append((final, every))
        print(f"  pair {i + 1}: final {final:6.2f} s, all layers {every:6.2f} s, ratio {every / final:.3f}")
    ratios = [e / f for f, e in pairs]
    print(
        f"\nall layers / final: median {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}) "
        f"over {len(pairs)} interleaved pairs (target < 1.3); final median "
        f"{statistics.median(f for f, _ in pairs):.2f} s, all layers median {statistics.median(e for _, e in pairs):.2f} s"
    )


if __name__ == "__main__":
    main()
