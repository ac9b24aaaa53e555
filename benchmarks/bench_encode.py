"""Image encoding throughput: vlbias end to end vs the bare model, a one-at-a-time loop, and a warm cache.

All four are measured in the same run on the same JPEG files, so the ratios hold even on a noisy machine:

- bare forward: ``model.encode_image`` on tensors that were decoded and preprocessed beforehand (the ceiling);
- vlbias end to end: ``encoder.encode_images(paths)`` with an empty cache: hashing, parallel decode and
  preprocessing in DataLoader workers, batched forward, normalisation and cache writes;
- one at a time: the loop published code often uses (open, preprocess, forward one image);
- warm cache: the same call again with a new encoder on the filled cache.

    python benchmarks/bench_encode.py                # random-init ViT-B-32 on the CPU, 256 images
    python benchmarks/bench_encode.py --device cuda --n 2048 --model openclip:ViT-B-32/random
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLBIAS_PROGRESS", "0")


def make_jpegs(folder: Path, n: int, size: tuple[int, int]) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    paths = []
    for i in range(n):
        base = (np.sin(xx / (7 + i % 13)) + np.cos(yy / (5 + i % 11))) * 60 + 128
        arr = np.stack([base, base[::-1], base[:, ::-1]], axis=-1) + rng.normal(0, 12, (h, w, 3))
        p = folder / f"img{i:05d}.jpg"
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(p, quality=90)
        paths.append(p)
    return paths


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="openclip:ViT-B-32/random")
    ap.add_argument("--n", type=int, default=256, help="images for the batched runs")
    ap.add_argument("--n-single", type=int, default=64, help="images for the one-at-a-time loop")
    ap.add_argument("--size", default="512x384", help="JPEG size WxH")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", help="fp32, fp16 or bf16 (half precision needs a GPU)")
    args = ap.parse_args()

    import torch

    from vlbias.models import load_model
    from vlbias.models.images import ImageRef, open_image

    w, h = (int(x) for x in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="vlbias-bench-"))
    (tmp / "imgs").mkdir()
    paths = make_jpegs(tmp / "imgs", args.n, (w, h))

    kw = dict(device=args.device, batch_size=args.batch_size, num_workers=args.workers, precision=args.precision)
    enc = load_model(args.model, cache=tmp / "cache", **kw).load()
    model, preprocess = enc._model, enc._preprocess
    dev = enc.device
    dtype = getattr(enc, "_input_dtype", None) or torch.float32

    def to_dev(x):
        return x.to(dev, dtype=dtype)

    print(
        f"model {args.model} on {dev}, {args.precision}; {args.n} JPEGs {w}x{h}; batch {args.batch_size}; "
        f"torch threads {torch.get_num_threads()}; loader workers {enc._loader_workers(args.n)}"
    )

    # warm-up: first-call allocations and kernel selection stay out of the numbers
    with torch.inference_mode():
        model.encode_image(to_dev(torch.stack([preprocess(open_image(ImageRef(p))) for p in paths[:8]])))

    # 1. bare forward on ready tensors
    tensors = torch.stack([preprocess(open_image(ImageRef(p))) for p in paths])

    def bare():
        with torch.inference_mode():
            for i in range(0, len(tensors), args.batch_size):
                model.encode_image(to_dev(tensors[i : i + args.batch_size]))
        if dev.startswith("cuda"):
            torch.cuda.synchronize()

    t_bare = timed(bare)

    # 2. vlbias end to end, cold cache (decode + preprocess in workers, forward, normalise, cache writes)
    vectors = {}

    def e2e():
        vectors["cold"] = enc.encode_images(paths)

    t_e2e = timed(e2e)

    # 3. one image at a time, as a plain loop
    single = paths[: args.n_single]

    def one_at_a_time():
        from PIL import Image

        with torch.inference_mode():
            for p in single:
                x = to_dev(preprocess(Image.open(p).convert("RGB")).unsqueeze(0))
                f = model.encode_image(x)
                (f / f.norm(dim=-1, keepdim=True)).cpu().numpy()

    t_single = timed(one_at_a_time)

    # 4. warm cache: a new encoder (as a second command would build), everything from the cache
    def warm():
        load_model(args.model, cache=tmp / "cache", **kw).encode_images(paths)

    t_warm = timed(warm, repeat=3)

    ips = {
        "bare forward (ceiling)": args.n / t_bare,
        "vlbias end to end, cold cache": args.n / t_e2e,
        "one image at a time": len(single) / t_single,
        "vlbias warm cache": args.n / t_warm,
    }
    print(f"\n{'':34s} {'images/s':>10s}")
    for k, v in ips.items():
        print(f"{k:34s} {v:10.1f}")
    e2e = ips["vlbias end to end, cold cache"]
    print("\nratios (same run):")
    print(f"  end to end / bare forward      {e2e / ips['bare forward (ceiling)']:6.2f}   (target >= 0.85)")
    print(f"  end to end / one at a time     {e2e / ips['one image at a time']:6.2f}   (target >= 3)")
    print(f"  warm cache / cold end to end   {ips['vlbias warm cache'] / e2e:6.1f}   (target >= 50)")
    if args.precision != "fp32":  # how far half precision moves the vectors (same weights: random init is seeded)
        full = load_model(args.model, cache=False, **(kw | {"precision": "fp32"})).encode_images(paths)
        half = np.asarray(vectors["cold"], dtype=np.float64)
        cos = np.sum(half * full, axis=1) / np.linalg.norm(half, axis=1) / np.linalg.norm(full, axis=1)
        print(
            f"\n{args.precision} vs fp32 on the same images: largest per-coordinate difference "
            f"{np.abs(half - full).max():.2e}, smallest cosine {cos.min():.6f}"
        )


if __name__ == "__main__":
    main()
