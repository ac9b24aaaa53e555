"""Permutation-test speed: vlbias's EAT vs plain per-permutation Python loops of the kind in published code.

Every figure is a ratio against a baseline measured in the same run, the two interleaved (vlbias, baseline,
vlbias, baseline, ...) ``--repeat`` times; the median ratio and its range are printed, so the figures hold on a
machine shared with other work. BLAS keeps the machine's default number of threads (vlbias pins its own
statistics to one thread), except in the recomputed loop.

Baselines (written here from the published descriptions, not copied):

- **loop, memoised** (sent-bias / iEAT style): ``s(w, A, B)`` is computed once per target; each permutation
  shuffles the pooled indices (``np.random.shuffle``), sums ``s`` over the first ``|X|`` and compares with the
  observed sum; the exact test iterates ``itertools.combinations`` the same way (when ``C(n, k)`` is within the
  budget, as vlbias does).
- **loop, recomputed** (WEFE style): each permutation recomputes ``s(w, A, B)`` of every target from the
  embeddings (cosine similarities to all attributes) before summing; run with BLAS on one thread, its best case.

The loops cannot do a million permutations in reasonable time, so they run a fraction and their per-permutation
time is extrapolated to the full budget (said in each line); their p-values on that fraction must agree with
vlbias's within Monte-Carlo error.

Cases (issue 18's targets in brackets):

1. sampled: 1,000,000 permutations of a 25-vs-25 test with 150-vs-150 attributes at d=512.
2. exact: all 184,756 partitions of a 10-vs-10 test (same attributes); the p-values must be identical.
3. sampled 350 vs 350 (SEAT-sized), 1,000,000 permutations [>= 25x the memoised loop].
4. sampled 1,000 vs 1,000, 1,000,000 permutations [>= 20x].
5. BLAS threads: the exact 10-vs-10 test with the machine's default BLAS threads against one thread [within
   1.2x], each call after 20 ms of other work (BLAS's threads idle, as between tests in a real run), and, to show
   why, the raw products of ``association()`` both ways.
6. the standard battery warm: ``eat`` with ``--battery standard`` (26 rows, 1,000,000 permutations and 2,000
   bootstrap resamples per row) end to end on a ``vectors:`` model that holds every battery text and iEAT image
   (built here: random 512-d vectors with a planted association), against the per-row loop (per row: ``s(w)``
   once per target, then the permutations; exact rows enumerated) run on ``--battery-fraction`` of each row's
   permutations and extrapolated [>= 25x]. Needs the fetched iEAT images (``--stimuli DIR``, default: the
   project's shared stimuli, as the tests find them); without them only the text rows run (said in the output).

    python benchmarks/bench_eat.py                 # every case, 5 repetitions
    python benchmarks/bench_eat.py --quick         # smaller loop fractions, 3 repetitions
    python benchmarks/bench_eat.py --cases 3,4,6   # some cases
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from math import comb
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from vlbias.stats.eat import association, eat


def embeddings(nx: int, ny: int, na: int, nb: int, dim: int, seed: int = 0, effect: float = 0.04):
    """Random unit vectors with a weak planted association (X and A share a direction), so p is not trivial."""
    rng = np.random.default_rng(seed)
    direction = rng.standard_normal(dim)
    direction /= np.linalg.norm(direction)
    sets = []
    for n, sign in ((nx, 1), (ny, -1), (na, 1), (nb, -1)):
        v = rng.standard_normal((n, dim)) / np.sqrt(dim) + sign * effect * direction
        sets.append(v / np.linalg.norm(v, axis=1, keepdims=True))
    return sets


def loop_memoised_sampled(X, Y, A, B, n_perm: int, seed: int = 0) -> tuple[float, int]:
    s = association(np.vstack([X, Y]), A, B)
    k = len(X)
    observed = s[:k].sum()
    np.random.seed(seed)
    count = 0
    for _ in range(n_perm):
        idx = np.arange(len(s))
        np.random.shuffle(idx)
        if s[idx[:k]].sum() >= observed:
            count += 1
    return (1 + count) / (1 + n_perm), count


def loop_recomputed_sampled(X, Y, A, B, n_perm: int, seed: int = 0) -> tuple[float, int]:
    W = np.vstack([X, Y])
    k = len(X)

    def s_of(rows):
        return (rows @ A.T).mean(axis=1) - (rows @ B.T).mean(axis=1)

    def stat(xi, yi):
        return s_of(W[xi]).sum() - s_of(W[yi]).sum()

    observed = stat(np.arange(k), np.arange(k, len(W)))
    np.random.seed(seed)
    count = 0
    for _ in range(n_perm):
        idx = np.arange(len(W))
        np.random.shuffle(idx)
        if stat(idx[:k], idx[k:]) >= observed:
            count += 1
    return (1 + count) / (1 + n_perm), count


def loop_memoised_exact(X, Y, A, B) -> tuple[float, int]:
    s = association(np.vstack([X, Y]), A, B)
    k = len(X)
    observed = s[:k].sum()
    count = total = 0
    for xi in itertools.combinations(range(len(s)), k):
        if s[list(xi)].sum() >= observed:
            count += 1
        total += 1
    return count / total, total


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def summary(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):7.1f}x (range {min(ratios):.1f}-{max(ratios):.1f}, {len(ratios)} runs)"


def target(ratios: list[float], goal: float, higher: bool = True) -> str:
    ok = statistics.median(ratios) >= goal if higher else statistics.median(ratios) <= goal
    return f"target {'>=' if higher else '<='} {goal:g}x {'met' if ok else 'NOT met'}"


def sampled_case(title, sets, N, n_loop, repeat, n_rec=0):
    """vlbias's eat() on N sampled permutations against the memoised loop (and optionally the recomputed one)."""
    X, Y, A, B = sets
    ratios, rec_ratios, t_vs, per_ms = [], [], [], []
    for _ in range(repeat):
        t_v, r = timed(lambda: eat(X, Y, A, B, permutations=N, n_bootstrap=0, seed=1))
        t_m, (p_m, _) = timed(lambda: loop_memoised_sampled(X, Y, A, B, n_loop))
        t_vs.append(t_v)
        per_ms.append(t_m / n_loop)
        ratios.append(t_m / n_loop * N / t_v)
        if n_rec:  # at its best: BLAS on one thread (default threads make its small products 100x slower here)
            with threadpool_limits(limits=1, user_api="blas"):
                t_r, (p_r, _) = timed(lambda: loop_recomputed_sampled(X, Y, A, B, n_rec))
            rec_ratios.append(t_r / n_rec * N / t_v)
    se = np.sqrt(r.p_value * (1 - r.p_value) / n_loop)
    t_v, per_m = statistics.median(t_vs), statistics.median(per_ms)
    print(f"\n{title}, {N:,} permutations (vlbias p = {r.p_value:.5f})")
    print(f"   vlbias eat():      {t_v:8.3f} s  ({t_v / N * 1e9:6.0f} ns/permutation; median)")
    print(
        f"   loop, memoised:    {per_m * 1e6:8.2f} us/permutation ({n_loop:,} run, {per_m * N:.1f} s for {N:,})  "
        f"p = {p_m:.5f} ({abs(p_m - r.p_value) / max(se, 1e-12):.1f} SE from vlbias)"
    )
    print(f"   vlbias vs memoised loop: {summary(ratios)}")
    if n_rec:
        print(f"   vlbias vs recomputed loop ({n_rec:,} run, BLAS on one thread): {summary(rec_ratios)}")
    return ratios


def exact_case(sets, repeat):
    X, Y, A, B = sets
    ratios = []
    for _ in range(repeat):
        t_v, r = timed(lambda: eat(X, Y, A, B, n_bootstrap=0))
        t_m, (p_m, total) = timed(lambda: loop_memoised_exact(X, Y, A, B))
        ratios.append(t_m / t_v)
    assert r.exact and r.n_permutations == total == comb(len(X) + len(Y), len(X))
    same = "identical" if p_m == r.p_value else f"DIFFERENT ({p_m!r} vs {r.p_value!r})"
    print(f"\n2. exact: |X|=|Y|=10, |A|=|B|=150, d=512, all {total:,} partitions")
    print(f"   vlbias eat():      {t_v * 1e3:8.2f} ms   p = {r.p_value!r} ({same} to the loop's)")
    print(f"   loop, memoised:    {t_m:8.3f} s")
    print(f"   vlbias vs memoised loop: {summary(ratios)}")
    return ratios


def blas_threads() -> int:
    return max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=1)


def busy(seconds: float) -> None:
    """Pure-Python work, during which BLAS's worker threads go idle (as between tests in a real run)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def thread_case(sets, repeat):
    """eat() (which pins BLAS itself) under the default threads and under one thread, interleaved, each call after
    20 ms of other work; then, to show why, the raw products of association() the same way."""
    X, Y, A, B = sets
    W = np.vstack([X, Y])
    reps = 8 * repeat
    eat_default, eat_one, raw_default, raw_one = [], [], [], []
    for _ in range(reps):
        busy(0.02)
        eat_default.append(timed(eat, X, Y, A, B, n_bootstrap=0)[0])
        busy(0.02)
        with threadpool_limits(limits=1, user_api="blas"):
            eat_one.append(timed(eat, X, Y, A, B, n_bootstrap=0)[0])
    for _ in range(reps):
        busy(0.02)
        raw_default.append(timed(lambda: (W @ A.T, W @ B.T))[0])
        busy(0.02)
        with threadpool_limits(limits=1, user_api="blas"):
            raw_one.append(timed(lambda: (W @ A.T, W @ B.T))[0])
    ratios = [a / b for a, b in zip(eat_default, eat_one)]
    med = statistics.median

    def ms(ts):
        return f"{med(ts) * 1e3:6.2f} ms (range {min(ts) * 1e3:.2f}-{max(ts) * 1e3:.2f})"

    print(
        f"\n5. BLAS threads (default here: {blas_threads()}), exact 10 vs 10, {reps} interleaved runs each, every call "
        f"after 20 ms of other work"
    )
    print(f"   vlbias eat(), default threads: {ms(eat_default)}   one thread: {ms(eat_one)}")
    print(f"   default / one, run by run: {summary(ratios)};  ratio of medians {med(eat_default) / med(eat_one):.2f}x")
    print(f"   (why) the products of association() unpinned, default threads: {ms(raw_default)}   one: {ms(raw_one)}")
    return ratios


# ---------------------------------------------------------------------------------------------------- battery
def default_stimuli() -> Path | None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    try:
        from tests.eat_fixtures import ieat_stimuli
    except ImportError:
        return None
    return ieat_stimuli()


def battery_model(folder: Path, stimuli: Path | None) -> tuple[str, dict]:
    """A vectors: file with every text of the standard battery and every iEAT image (keyed by its path under the
    iEAT folder): random 512-d unit vectors, pleasant words and the first set of each concept nudged together."""
    from vlbias.audits.eat import _options, plan
    from vlbias.stimuli import ieat

    opts = {"battery": "standard", "stimuli_dir": str(stimuli) if stimuli else None}
    rows, _ = plan(_options(opts))
    texts = {}
    for r in rows:
        for role, side in (r.sides or {}).items():
            for t in side.texts or ():
                texts[t] = role
    keys = list(texts)
    roles = list(texts.values())
    if stimuli:
        for e in ieat.manifest():
            keys.append(e.path)
            roles.append("A" if "/pleasant" in e.path else "X" if e.path.endswith(("flower", "male")) else "Y")
    rng = np.random.default_rng(0)
    direction = rng.standard_normal(512)
    direction /= np.linalg.norm(direction)
    vecs = rng.standard_normal((len(keys), 512)) / np.sqrt(512)
    vecs += 0.03 * np.array([1 if r in "XA" else -1 for r in roles])[:, None] * direction
    path = folder / "battery.npz"
    np.savez(path, keys=np.array(keys), vectors=vecs.astype(np.float32))
    return f"vectors:{path}", opts


def battery_sets(enc, opts) -> list[list[np.ndarray]]:
    """Each runnable row's X, Y, A, B vectors, as the audit gets them (rows with an unresolvable image side are left
    out, as the audit skips them)."""
    from vlbias.audits.eat import _options, plan, resolve_images

    rows, _ = plan(_options(opts))
    out = []
    for row in rows:
        if not row.sides:
            continue
        sets = []
        for role in "XYAB":
            side = row.sides[role]
            if side.modality == "text":
                sets.append(enc.encode_texts(list(side.texts)))
                continue
            res = resolve_images(side.images, opts["stimuli_dir"], {})
            if not res.paths:
                break
            sets.append(enc.try_encode_images(res.paths, root=res.root).full())
        if len(sets) == 4:
            out.append([v.astype(np.float64) for v in sets])
    return out


def battery_case(repeat: int, fraction: float, stimuli: Path | None):
    from vlbias.audits.eat import AUDIT
    from vlbias.models import load_model

    N = 1_000_000
    n_loop = max(200, int(N * fraction))
    with tempfile.TemporaryDirectory() as tmp:
        spec, opts = battery_model(Path(tmp), stimuli)
        opts = {**opts, "permutations": N}

        def run():
            return AUDIT.run(load_model(spec), opts)

        df = run().results  # warm-up: imports and first-call set-ups (the timed runs below are all warm)
        rows = battery_sets(load_model(spec), opts)
        t_vs, t_loops = [], []
        for rep in range(repeat):
            t_vs.append(timed(run)[0])
            t_loop = 0.0
            for X, Y, A, B in rows:
                if comb(len(X) + len(Y), len(X)) <= N:
                    t_loop += timed(loop_memoised_exact, X, Y, A, B)[0]
                    continue
                t_assoc = timed(association, np.vstack([X, Y]), A, B)[0]
                t_part = timed(loop_memoised_sampled, X, Y, A, B, n_loop, seed=rep)[0]
                t_loop += t_assoc + (t_part - t_assoc) / n_loop * N
            t_loops.append(t_loop)
    ok = df[df["status"] == "ok"]
    assert len(rows) == len(ok), (len(rows), len(ok))
    ratios = [b / a for a, b in zip(t_vs, t_loops)]
    sizes = ok.groupby(["x_size", "y_size"]).size()
    skipped = "; ".join(sorted({r.split(":")[0] for r in df[df["status"] != "ok"]["reason"]}))
    print(
        f"\n6. the standard battery, warm: {len(df)} rows, {len(ok)} run ({len(df) - len(ok)} skipped: {skipped}); "
        f"{N:,} permutations and 2,000 bootstrap resamples per row; {len(sizes)} distinct target sizes, "
        f"{int((sizes > 1).sum())} of them shared by several rows"
    )
    if stimuli is None:
        print("   (no iEAT images found: the image rows are skipped; pass --stimuli DIR)")
    print(
        f"   vlbias, end to end (load the vectors, plan, look up, test every row): "
        f"{statistics.median(t_vs):6.2f} s (range {min(t_vs):.2f}-{max(t_vs):.2f})"
    )
    print(
        f"   per-row loop, memoised ({n_loop:,} permutations per sampled row, extrapolated to {N:,}; exact rows "
        f"enumerated): {statistics.median(t_loops):6.1f} s (range {min(t_loops):.1f}-{max(t_loops):.1f})"
    )
    print(f"   vlbias vs per-row loop: {summary(ratios)}")
    return ratios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller loop fractions and 3 repetitions")
    ap.add_argument("--permutations", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=None, help="interleaved repetitions (default 5, --quick 3)")
    ap.add_argument("--cases", default="1,2,3,4,5,6", help="comma-separated case numbers")
    ap.add_argument(
        "--battery-fraction", type=float, default=None, help="share of each row's permutations the loop runs"
    )
    ap.add_argument("--stimuli", type=Path, default=None, help="folder holding ieat/ (default: the shared stimuli)")
    args = ap.parse_args()
    repeat = args.repeat or (3 if args.quick else 5)
    cases = {int(c) for c in args.cases.split(",")}
    N = args.permutations
    n_mem = 10_000 if args.quick else 50_000
    out = {}
    if 1 in cases:
        sets = embeddings(25, 25, 150, 150, 512)
        out["sampled 25 v 25"] = (
            sampled_case("1. sampled: |X|=|Y|=25, |A|=|B|=150, d=512", sets, N, n_mem, repeat, n_rec=100),
            None,
        )
    if 2 in cases:
        out["exact 10 v 10"] = (exact_case(embeddings(10, 10, 150, 150, 512, seed=2), repeat), None)
    if 3 in cases:
        sets = embeddings(350, 350, 150, 150, 512, seed=3, effect=0.01)
        title = "3. SEAT-sized: |X|=|Y|=350, |A|=|B|=150, d=512"
        out["sampled 350 v 350"] = (sampled_case(title, sets, N, n_mem // 5, repeat), 25)
    if 4 in cases:
        sets = embeddings(1000, 1000, 150, 150, 512, seed=4, effect=0.005)
        title = "4. |X|=|Y|=1,000, |A|=|B|=150, d=512"
        out["sampled 1000 v 1000"] = (sampled_case(title, sets, N, n_mem // 10, repeat), 20)
    if 5 in cases:
        ratios = thread_case(embeddings(10, 10, 150, 150, 512, seed=2), repeat)
        out["exact 10 v 10, default / one BLAS thread"] = (ratios, -1.2)
    if 6 in cases:
        fraction = args.battery_fraction or (0.002 if args.quick else 0.005)
        stimuli = args.stimuli or default_stimuli()
        out["standard battery, warm"] = (battery_case(repeat, fraction, stimuli), 25)
    print("\nsummary (median ratio, range over interleaved runs)")
    for name, (ratios, goal) in out.items():
        line = f"  {name:42s}{summary(ratios)}"
        if goal:
            line += "   " + (target(ratios, goal) if goal > 0 else target(ratios, -goal, higher=False))
        print(line)


if __name__ == "__main__":
    main()
