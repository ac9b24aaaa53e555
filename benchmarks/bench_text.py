"""Text encoding of the cold standard battery: padding cut to each batch's longest prompt vs padded to 77 tokens.

The standard battery (`vlbias eat --battery standard`) encodes 3,348 distinct texts; their longest is 12 tokens, and
open_clip pads every one to the context length (77). vlbias now encodes texts in batches sorted by length and runs
causal text towers on each batch cut after its last end-of-text token (``vlbias.models.backends.openclip.CausalText``;
the same model, mathematically). Both paths run in the same process, interleaved, on the same texts:

- padded (the path before): ``model.encode_text`` on the tokenizer's 77-token batches of ``--batch-size``, in input
  order, then L2 normalisation;
- vlbias: ``encoder.encode_texts(texts)`` with no cache (sorting, cutting, normalisation).

Printed: each repetition's seconds, medians and ranges, the speed-up (median of the per-repetition ratios, and its
range), texts per second, and the largest per-coordinate difference between the two paths' vectors.

    python benchmarks/bench_text.py                         # 512 of the battery's texts, 5 repetitions, CPU
    python benchmarks/bench_text.py --n all --repeat 5      # all 3,348 texts
    python benchmarks/bench_text.py --device cuda --n all   # on a GPU
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLBIAS_PROGRESS", "0")


def battery_texts() -> list[str]:
    from vlbias.audits.eat.options import EATOptions
    from vlbias.audits.eat.run import plan

    rows, _ = plan(EATOptions.parse({}))
    texts = (t for r in rows for s in (r.sides or {}).values() if s.modality == "text" for t in (s.texts or ()))
    return list(dict.fromkeys(texts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="openclip:ViT-B-32/random")
    ap.add_argument("--n", default="512", help="texts: a seeded sample of the battery's texts, or 'all'")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's]")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from vlbias.models import load_model

    texts = battery_texts()
    n_all = len(texts)
    if args.n != "all":
        rng = np.random.default_rng(0)
        texts = [texts[i] for i in sorted(rng.choice(n_all, size=min(int(args.n), n_all), replace=False))]
    enc = load_model(args.model, cache=False, device=args.device, batch_size=args.batch_size).load()
    model, tokenizer, dev = enc._model, enc._tokenizer, enc.device
    tokens = tokenizer(texts)
    print(
        f"model {args.model} on {dev}; {len(texts)} of the standard battery's {n_all} texts; batch {args.batch_size}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; tokens per text: longest "
        f"{int(tokens.argmax(-1).max()) + 1}, mean {float((tokens.argmax(-1) + 1).float().mean()):.1f}, "
        f"padded to {tokens.shape[1]}"
    )
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)

    def padded() -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), args.batch_size):
                out.append(model.encode_text(tokenizer(texts[i : i + args.batch_size]).to(dev)).float().cpu().numpy())
        sync()
        v = np.concatenate(out)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def vlbias() -> np.ndarray:
        v = enc.encode_texts(texts)
        sync()
        return v

    vlbias(), padded()  # warm-up (and the one-time check of the cut forward pass)
    times: dict[str, list[float]] = {"padded to 77 (before)": [], "vlbias, cut padding": []}
    diff = 0.0
    for r in range(args.repeat):
        order = [("padded to 77 (before)", padded), ("vlbias, cut padding", vlbias)]
        if r % 2:
            order.reverse()  # interleaved, alternating which goes first
        got = {}
        for name, fn in order:
            t = time.perf_counter()
            got[name] = fn()
            times[name].append(time.perf_counter() - t)
        diff = max(diff, float(np.abs(got["padded to 77 (before)"] - got["vlbias, cut padding"]).max()))
        print(f"  repetition {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)

    print(f"\n{'path':<26}{'median s':>10}{'range s':>18}{'texts/s':>10}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<26}{med:>10.2f}{f'{min(ts):.2f}-{max(ts):.2f}':>18}{len(texts) / med:>10.1f}")
    ratios = [a / b for a, b in zip(times["padded to 77 (before)"], times["vlbias, cut padding"])]
    print(
        f"\nspeed-up (per repetition): median {statistics.median(ratios):.2f}x, range "
        f"{min(ratios):.2f}-{max(ratios):.2f}x   (target >= 3)"
    )
    print(f"largest per-coordinate difference between the two paths' vectors: {diff:.2e}   (bound 1e-6)")
    if args.n != "all":
        per_text = statistics.median(times["vlbias, cut padding"]) / len(texts)
        print(f"all {n_all} battery texts at this rate: about {per_text * n_all:.0f} s")


if __name__ == "__main__":
    main()
