"""Cost model of a full open_clip zoo sweep (the catalogue's pairs), on this machine, one GPU, or a Ray cluster.

Each pair's cost is made from figures measured on a reference model (random-init ViT-B-32 by default) and the
catalogue's per-pair compute (``gflops_image``, ``gflops_text``, ``n_params``):

- text encoding: the workload's texts at the reference's measured texts/s, scaled by the pair's text GFLOPs. Causal
  text towers read at the end-of-text token run on batches cut to their longest prompt (see
  ``vlbias.models.backends.openclip.CausalText``); the others (SigLIP, CLIPA, MobileCLIP, CoCa, Hugging Face text
  towers) run padded, at the reference's padded rate (``--ref-padded-texts-per-s``) scaled the same way;
- image encoding: the workload's images at the reference's images/s scaled by the pair's image GFLOPs, but never
  faster than decoding and preprocessing allow (``--decode-images-per-s``, the DataLoader workers' rate);
- loading: ``--load-s-per-gparam`` seconds per billion parameters (reading the weights and building the model);
- statistics and sweep overhead: ``--stats-s`` per model (the audits' own computation on cached vectors, plus the
  sweep's parts, statuses and ingestion; measured by benchmarks/bench_zoo.py).

One GPU runs the models one after another (the next model's weights download meanwhile, so downloads are left
out); a Ray cluster of ``--gpus`` GPUs runs one model per GPU at a time, so it takes the longer of the total over
the GPUs and the slowest single model (plus the driver's one ingestion at the end).

The reference rates default to this project's 2-core CPU measurements (README, Benchmarks). For a GPU, measure
them on the GPU and pass them:

    python benchmarks/bench_encode.py --device cuda --n 2048      # images/s: "vlbias end to end, cold cache"
    python benchmarks/bench_text.py --device cuda --n all         # texts/s of both paths
    python benchmarks/zoo_cost.py --ref-images-per-s 2500 --ref-texts-per-s 9000 --ref-padded-texts-per-s 3000 \\
        --decode-images-per-s 1500 --load-s-per-gparam 4 --gpus 8
"""

from __future__ import annotations

import argparse
import math
import statistics


def text_is_cut(arch: str) -> bool:
    """Whether the pair's text tower runs cut to the batch's longest prompt: the rule of
    ``vlbias.models.backends.openclip.causal_text``, read from the architecture's config (no model is built)."""
    import open_clip

    cfg = open_clip.get_model_config(arch) or {}
    text = cfg.get("text_cfg", {})
    if text.get("hf_model_name") or text.get("no_causal_mask") or text.get("embed_cls"):
        return False
    if "coca" in arch.lower():
        return False
    return text.get("pool_type", "argmax") in ("argmax", "eos")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=3349, help="texts per model (the standard battery: 3,349)")
    ap.add_argument("--images", type=int, default=10954, help="images per model (FairFace validation: 10,954)")
    ap.add_argument("--reference", default="ViT-B-32", help="the architecture the rates were measured on")
    ap.add_argument("--ref-texts-per-s", type=float, default=11.5, help="reference texts/s, cut padding")
    ap.add_argument("--ref-padded-texts-per-s", type=float, default=3.0, help="reference texts/s, padded to 77")
    ap.add_argument("--ref-images-per-s", type=float, default=15.4, help="reference images/s, end to end")
    ap.add_argument("--decode-images-per-s", type=float, default=60.0, help="decode+preprocess ceiling, images/s")
    ap.add_argument("--load-s-per-gparam", type=float, default=10.0, help="seconds to load a billion parameters")
    ap.add_argument("--stats-s", type=float, default=5.0, help="audit statistics and sweep overhead per model, s")
    ap.add_argument("--gpus", type=int, default=1, help="GPUs of a Ray cluster (1: one GPU, or this machine)")
    args = ap.parse_args()

    from vlbias.models.backends.openclip import pretrained_table

    rows = [r for r in pretrained_table() if r.get("gflops_image") and r.get("gflops_text")]
    ref = next(r for r in rows if r["architecture"] == args.reference)
    g_img0, g_txt0 = float(ref["gflops_image"]), float(ref["gflops_text"])
    costs = []
    for r in rows:
        cut = text_is_cut(r["architecture"])
        rate = args.ref_texts_per_s if cut else args.ref_padded_texts_per_s
        t_text = args.texts / rate * float(r["gflops_text"]) / g_txt0
        img_rate = min(args.ref_images_per_s * g_img0 / float(r["gflops_image"]), args.decode_images_per_s)
        t_img = args.images / img_rate
        t_load = args.load_s_per_gparam * float(r["n_params"] or 0) / 1e9
        costs.append(
            (f"{r['architecture']}/{r['tag']}", cut, t_load, t_text, t_img, t_load + t_text + t_img + args.stats_s)
        )
    total = sum(c[-1] for c in costs)
    longest = max(costs, key=lambda c: c[-1])
    makespan = max(total / args.gpus, longest[-1])
    n_cut = sum(c[1] for c in costs)
    print(
        f"{len(costs)} pairs with published GFLOPs ({n_cut} with cut text padding); per model {args.texts:,} texts and "
        f"{args.images:,} images; reference {args.reference}: {args.ref_texts_per_s:g} texts/s cut, "
        f"{args.ref_padded_texts_per_s:g} padded, {args.ref_images_per_s:g} images/s (decode ceiling "
        f"{args.decode_images_per_s:g}/s)\n"
    )
    for name, i in (("loading", 2), ("text encoding", 3), ("image encoding", 4)):
        print(f"{name:<16}{sum(c[i] for c in costs) / 3600:8.1f} h")
    print(f"{'statistics':<16}{args.stats_s * len(costs) / 3600:8.1f} h")
    print(f"{'total':<16}{total / 3600:8.1f} h   (median model {statistics.median(c[-1] for c in costs) / 60:.1f} min)")
    print(f"slowest model: {longest[0]}, {longest[-1] / 3600:.2f} h")
    print(
        f"on {args.gpus} worker(s): {makespan / 3600:.1f} h"
        + (f" ({math.ceil(total / longest[-1])} workers or more: the slowest model bounds it)" if args.gpus > 1 else "")
    )


if __name__ == "__main__":
    main()
