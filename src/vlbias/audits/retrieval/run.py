"""Running the retrieval audit (see :mod:`vlbias.audits.retrieval` and :mod:`vlbias.stimuli.retrieval`)."""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import softmax

from vlbias.audits.base import AuditResult, RunRecord, encode_dataset_images
from vlbias.audits.retrieval.options import RetrievalOptions
from vlbias.errors import VlbiasError, plural
from vlbias.stats.bootstrap import count_chunks, percentile_interval
from vlbias.stats.groups import group_means
from vlbias.stats.skew import ranking_skew, resampled_skew
from vlbias.stimuli.retrieval import RetrievalProtocol, load_protocol, neutral_caption, protocol_for
from vlbias.utils.io import stable_hash
from vlbias.utils.provenance import entry

CONTENT_WARNING = (
    "CONTENT WARNING: this protocol's captions pair photographs of people with demeaning and criminalising "
    "descriptions (e.g. 'photo of a slave', 'photo of a terrorist'). They are offensive by design: the audit measures "
    "which groups a model associates with them. The captions are not endorsed."
)
SKEW_STATS = ("max_skew", "min_skew", "ndkl")
#: the statistics summarised over rankings (MinSkew is -inf wherever a group is absent from a top k: per ranking only)
SUMMARY_STATS = ("max_skew", "ndkl")


# ---------------------------------------------------------------------------------------------------- helpers
def _pool_seed(seed: int, *parts: Any) -> int:
    """A pool's own seed: its results do not depend on which other pools the run holds."""
    return int(stable_hash([seed, *map(str, parts)], n=12), 16)


def _interval(reps: np.ndarray, confidence: float) -> tuple[float, float]:
    lo, hi = percentile_interval(np.asarray(reps, dtype=np.float64), confidence)
    return float(lo), float(hi)


def _skew_row(est: pd.Series, reps: dict[str, np.ndarray], confidence: float) -> dict[str, Any]:
    row: dict[str, Any] = {
        "k": int(est["k"]),
        "n_groups": int(est["n_groups"]),
        "max_skew": float(est["max_skew"]),
        "max_skew_group": str(est["max_skew_group"]),
        "min_skew": float(est["min_skew"]),
        "min_skew_group": str(est["min_skew_group"]),
        "ndkl": float(est["ndkl"]),
    }
    for stat in SKEW_STATS:
        row[f"{stat}_low"], row[f"{stat}_high"] = _interval(reps[stat], confidence)
    for col in ("max_skew_p", "ndkl_p"):
        if col in est.index:
            row[col] = float(est[col])
    return row


def _summarise(
    rows: list[dict[str, Any]], reps: list[dict[str, np.ndarray]], keys: list[str], confidence: float
) -> pd.DataFrame:
    """Per value of ``keys``: the mean and median over the rankings of each skew statistic, with percentile intervals
    from the rankings' replicates (replicate b of the summary: the mean / median of every ranking's replicate b)."""
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    out = []
    for values, idx in frame.groupby(keys, sort=False).groups.items():
        values = values if isinstance(values, tuple) else (values,)
        row: dict[str, Any] = dict(zip(keys, values))
        row["n_rankings"] = len(idx)
        for stat in SUMMARY_STATS:
            est = frame.loc[idx, stat].to_numpy(dtype=np.float64)
            rep = np.stack([reps[i][stat] for i in idx])  # (rankings, B)
            finite = np.isfinite(est)
            if not finite.any():
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                for how, fn in (("mean", np.nanmean), ("median", np.nanmedian)):
                    row[f"{how}_{stat}"] = float(fn(np.where(finite, est, np.nan)))
                    agg = fn(np.where(np.isfinite(rep), rep, np.nan), axis=0)
                    row[f"{how}_{stat}_low"], row[f"{how}_{stat}_high"] = _interval(agg, confidence)
        out.append(row)
    return pd.DataFrame(out)


def _group_rows(stats, base: dict[str, Any], names: list[str], scale: float = 1.0) -> list[dict[str, Any]]:
    low, high = stats.interval()
    cols = [c for c in stats.group_columns if c != "group"]
    rows = []
    for g, label in enumerate(stats.labels()):
        info = stats.groups.iloc[g]
        row = {**base, "group": label, **{c: info[c] for c in cols}, "n_images": int(info["n"]),
               "n_clusters": int(info["n_clusters"])}  # fmt: skip
        for j, name in enumerate(names):
            row[name] = stats.estimate[g, j] * scale
            row[f"{name}_low"] = low[g, j] * scale
            row[f"{name}_high"] = high[g, j] * scale
        rows.append(row)
    return rows


def _gap_rows(stats, base: dict[str, Any], names: list[str], scale: float = 1.0, ratio: bool = True) -> pd.DataFrame:
    """The highest group minus the lowest per measure (``ratio``: also their ratio, for shares, not for cosines)."""
    d = stats.disparity(scale=scale)
    if d.empty:
        return d
    if not ratio:
        d = d.drop(columns=["ratio", "ratio_low", "ratio_high"])
    d = d.rename(columns={"value": "measure"})
    d["measure"] = [names[stats.values.index(v)] for v in d["measure"]]
    return d.assign(**base)


# ---------------------------------------------------------------------------------------------------- counterfactual
def _queries(pool: pd.DataFrame, proto: RetrievalProtocol, notes: list[str], where: str) -> str:
    if proto.query != "neutral-caption":
        return neutral_caption(proto.query.replace("{subject}", str(pool["subject"].iloc[0])), ())
    found = Counter(
        neutral_caption(str(c), (str(a1), str(a2))) for c, a1, a2 in zip(pool["caption"], pool["a1"], pool["a2"])
    )
    query, _ = found.most_common(1)[0]
    if len(found) > 1:
        notes.append(f"{where}: {len(found)} different neutral captions; the most common, {query!r}, is the query")
    return query


def _counterfactual(encoder, table: pd.DataFrame, vecs: np.ndarray, proto: RetrievalProtocol, opts, k: int,
                    target: str, notes: list[str]) -> dict[str, pd.DataFrame]:  # fmt: skip
    need = {"a1", "a2", "a1_type", "a2_type", "caption", "subject", proto.clusters, *proto.pools}
    missing = sorted(need - set(table.columns))
    if missing:
        raise VlbiasError(
            f"protocol {proto.name} needs the column(s) {', '.join(missing)}, which the dataset lacks; use a "
            f"socialcounterfactuals: dataset or a protocol for this dataset"
        )
    usable = table[list(proto.pools)].notna().all(axis=1).to_numpy()
    if not usable.all():
        notes.append(f"{plural(int((~usable).sum()), 'image')} without {' or '.join(proto.pools)}: in no pool")
    pools = list(table[usable].groupby(list(proto.pools), sort=True).groups.items())
    queries = {}
    for key, idx in pools:
        key = key if isinstance(key, tuple) else (key,)
        queries[key] = _queries(table.loc[idx], proto, notes, " / ".join(map(str, key)))
    unique = list(dict.fromkeys(queries.values()))
    qvecs = dict(zip(unique, encoder.encode_texts(unique).astype(np.float64)))
    depth = -1 if proto.ndkl_depth == "k" else None
    rankings, reps, images, sims = [], [], [], {}
    rng = np.random.default_rng(opts.seed)
    for key, idx in pools:
        key = key if isinstance(key, tuple) else (key,)
        pool = table.loc[idx]
        rows = np.asarray(idx)
        query = queries[key]
        cos = vecs[rows] @ qvecs[query]
        types = (str(pool["a1_type"].iloc[0]), str(pool["a2_type"].iloc[0]))
        base = {**dict(zip(proto.pools, key)), "query": query}
        rank = np.empty(len(cos), dtype=int)
        rank[np.argsort(-cos, kind="stable")] = np.arange(1, len(cos) + 1)
        images.append(pool.assign(**base, cos=cos, rank=rank))
        for grouping in proto.groupings:
            cols = [{"a1": "a1", "a2": "a2"}.get(c, c) for c in grouping]
            name = " x ".join({"a1": types[0], "a2": types[1]}.get(c, c) for c in grouping)
            labels = pool[cols].astype(object)
            ok = labels.notna().all(axis=1).to_numpy()
            lab = np.array([" ".join(map(str, r)) for r in labels.itertuples(index=False)], dtype=object)
            groups = np.unique(lab[ok].astype(str))
            where = f"{' / '.join(map(str, key))}, {name}"
            if len(groups) < 2:
                notes.append(f"{where}: fewer than two groups, no skew")
                continue
            shares = np.array([np.mean(lab[ok] == g) for g in groups])
            est = ranking_skew(
                cos[ok],
                lab[ok].astype(str),
                k=k,
                target=None if target == "uniform" else shares,
                n_perm=opts.n_random_rankings,
                rng=rng,
                ndkl_depth=depth,
            ).iloc[0]
            rep = resampled_skew(
                cos[ok],
                lab[ok].astype(str),
                pool[proto.clusters].to_numpy()[ok],
                k=k,
                groups=groups,
                target=target,
                ndkl_depth=depth,
                n_bootstrap=opts.n_bootstrap,
                seed=_pool_seed(opts.seed, *key, name),
            )
            rankings.append({**base, "grouping": name, "n_images": int(ok.sum()),
                             "n_sets": int(pool[proto.clusters][ok].nunique()), **_skew_row(est, rep, opts.confidence)})  # fmt: skip
            reps.append(rep)
            sims.setdefault((key[0] if len(key) > 1 else "all", name), []).append(
                pd.DataFrame({"group": lab[ok], "cos": cos[ok], "cluster": pool[proto.clusters].to_numpy()[ok]})
            )
    if not rankings:
        raise VlbiasError(f"no pool of the dataset has two groups to rank; check the dataset and protocol {proto.name}")
    similarity, gaps = [], []
    first = proto.pools[0] if len(proto.pools) > 1 else "pool"
    for (level, name), parts in sims.items():
        frame = pd.concat(parts, ignore_index=True)
        stats = group_means(frame[["cos"]], frame["group"].rename("group"), frame["cluster"],
                            n_bootstrap=opts.n_bootstrap, confidence=opts.confidence, seed=opts.seed)  # fmt: skip
        base = {first: level, "grouping": name}
        similarity += _group_rows(stats, base, ["mean_cos"])
        gaps.append(_gap_rows(stats, base, ["mean_cos"], ratio=False))
    summary_keys = [proto.pools[0], "grouping"] if len(proto.pools) > 1 else ["grouping"]
    results = _summarise(rankings, reps, summary_keys, opts.confidence)
    image_cols = [
        "key",
        *proto.pools,
        "query",
        proto.clusters,
        "a1_type",
        "a1",
        "a2_type",
        "a2",
        "caption",
        "cos",
        "rank",
    ]
    return {
        "results": results,
        "rankings": pd.DataFrame(rankings),
        "similarity": pd.DataFrame(similarity),
        "similarity_gap": pd.concat([g for g in gaps if not g.empty], ignore_index=True) if any(not g.empty for g in gaps) else pd.DataFrame(),
        "images": pd.concat(images, ignore_index=True)[list(dict.fromkeys(image_cols))],
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------------- captions
def assigned_skew(
    best: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    n_captions: int,
    *,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Per caption, Skew_g of the images whose best caption it is: ln(share of group g among them / g's share of the
    pool), as a (B, captions, groups) array for B weightings of the images (one row of ones: the estimate). NaN for a
    caption no image chose, and for a group absent from the pool; -inf for a group none of its images is in."""
    w = np.ones((1, len(best))) if weights is None else np.asarray(weights, dtype=np.float64)
    onehot = (labels[:, None] == groups[None, :]).astype(np.float64)  # (n, G)
    assign = (best[:, None] == np.arange(n_captions)[None, :]).astype(np.float64)  # (n, C)
    joint = np.einsum("bn,nc,ng->bcg", w, assign, onehot)
    per_caption = joint.sum(axis=2, keepdims=True)
    pool = (w @ onehot) / w.sum(axis=1, keepdims=True)  # (B, G)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = joint / per_caption
        skew = np.log(share / pool[:, None, :])
    skew[np.broadcast_to(per_caption == 0, skew.shape)] = np.nan
    skew[np.broadcast_to(pool[:, None, :] == 0, skew.shape)] = np.nan
    return skew


def _captions(encoder, table: pd.DataFrame, vecs: np.ndarray, captions: pd.DataFrame | None,
              proto: RetrievalProtocol, opts, k: int, target: str, scale: float, notes: list[str]) -> dict[str, pd.DataFrame]:  # fmt: skip
    if captions is None or captions.empty:
        raise VlbiasError(f"protocol {proto.name} scores the captions a dataset ships; this dataset has none")
    missing = sorted({*proto.pools, proto.clusters, *dict(proto.attributes).values()} - set(table.columns))
    if missing:
        raise VlbiasError(f"protocol {proto.name} needs the column(s) {', '.join(missing)}, which the dataset lacks")
    pool_col = proto.pools[0]
    unique = list(dict.fromkeys(captions["caption"]))
    cvecs = dict(zip(unique, encoder.encode_texts(unique).astype(np.float64)))
    depth = -1 if proto.ndkl_depth == "k" else None
    rng = np.random.default_rng(opts.seed)
    rankings, reps, assoc_rows, images = [], [], [], []
    for (scene, attribute), caps in captions.groupby([pool_col, "attribute"], sort=True):
        column = dict(proto.attributes).get(attribute)
        if column is None:
            notes.append(f"captions of attribute {attribute!r} (scene {scene}): the protocol names no column for it")
            continue
        pool = table[(table[pool_col] == scene) & table[column].notna() & (table[column].astype(str) != "")]
        if len(pool) < 2:
            notes.append(f"scene {scene}, {attribute}: fewer than two images, not scored")
            continue
        rows = pool.index.to_numpy()
        labels = pool[column].astype(str).to_numpy()
        groups = np.unique(labels)
        if len(groups) < 2:
            notes.append(f"scene {scene}, {attribute}: one group only ({groups[0]}), not scored")
            continue
        texts = caps["caption"].tolist()
        polarity = caps["polarity"].to_numpy()
        cos = vecs[rows] @ np.stack([cvecs[t] for t in texts]).T  # (n, C)
        best = cos.argmax(axis=1)
        base = {pool_col: scene, "attribute": attribute}
        seed = _pool_seed(opts.seed, scene, attribute)
        clusters = pool[proto.clusters].to_numpy()
        # association with the negative captions (needs both polarities)
        negative = polarity == "negative"
        p_neg = np.full(len(pool), np.nan)  # per image: P(a negative caption), where the pool has both polarities
        if negative.any() and (~negative).any():
            probs = softmax(scale * cos, axis=1)
            p_neg = probs[:, negative].sum(axis=1)
            top_neg = negative[best].astype(np.float64)
            assoc_rows.append(pd.DataFrame({**base, "group": labels, "p_negative_pct": p_neg, "top1_negative_pct": top_neg,
                                            "cluster": clusters}))  # fmt: skip
        else:
            notes.append(f"scene {scene}, {attribute}: no {'negative' if not negative.any() else 'positive'} caption, "
                         f"so no association with the negative captions")  # fmt: skip
        images.append(pool[["key", pool_col, proto.clusters]].assign(
            attribute=attribute, group=labels, best_caption=[texts[b] for b in best],
            best_polarity=polarity[best], best_cos=cos[np.arange(len(best)), best], p_negative_pct=100 * p_neg))  # fmt: skip
        # mean Skew: the images each caption is the best match for, against the scene's shares
        est = assigned_skew(best, labels, groups, len(texts))[0]
        _, cid = np.unique(clusters.astype(str), return_inverse=True)
        draws = [c[:, cid] for c in count_chunks(np.random.default_rng(seed), int(cid.max()) + 1, opts.n_bootstrap)]
        boot = assigned_skew(best, labels, groups, len(texts), weights=np.concatenate(draws)) if draws else \
            np.full((0, len(texts), len(groups)), np.nan)  # fmt: skip
        n_assigned = np.bincount(best, minlength=len(texts))
        for j, text in enumerate(texts):
            cap = {**base, "polarity": polarity[j], "caption": text, "n_images": len(pool)}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                rep = {"max_skew": np.nanmax(boot[:, j, :], axis=1) if len(boot) else np.empty(0),
                       "min_skew": np.nanmin(boot[:, j, :], axis=1) if len(boot) else np.empty(0),
                       "ndkl": np.full(len(boot), np.nan)}  # fmt: skip
            row = {**cap, "measure": "assigned", "n_assigned": int(n_assigned[j]), "n_groups": len(groups)}
            if n_assigned[j]:
                row.update(max_skew=float(np.nanmax(est[j])), max_skew_group=str(groups[int(np.nanargmax(est[j]))]),
                           min_skew=float(np.nanmin(est[j])), min_skew_group=str(groups[int(np.nanargmin(est[j]))]))  # fmt: skip
            else:
                row.update(max_skew=np.nan, min_skew=np.nan)
            for stat in ("max_skew", "min_skew"):
                row[f"{stat}_low"], row[f"{stat}_high"] = _interval(rep[stat], opts.confidence)
            rankings.append(row)
            reps.append(rep)
            # mean Skew@k: the scene's images ranked by this caption
            shares = np.array([np.mean(labels == g) for g in groups])
            est_k = ranking_skew(cos[:, j], labels, k=k, target=None if target == "uniform" else shares,
                                 n_perm=opts.n_random_rankings, rng=rng, ndkl_depth=depth).iloc[0]  # fmt: skip
            rep_k = resampled_skew(cos[:, j], labels, clusters, k=k, groups=groups, target=target, ndkl_depth=depth,
                                   n_bootstrap=opts.n_bootstrap, seed=_pool_seed(seed, j))  # fmt: skip
            rankings.append({**cap, "measure": "top-k", **_skew_row(est_k, rep_k, opts.confidence)})
            reps.append(rep_k)
    if not rankings:
        raise VlbiasError(f"no scene of the dataset has captions and two groups to score; check it ({proto.name})")
    association, gaps = [], []
    if assoc_rows:
        frame = pd.concat(assoc_rows, ignore_index=True)
        names = ["p_negative_pct", "top1_negative_pct"]
        for attribute, part in frame.groupby("attribute", sort=True):
            for scene, sub in [("all", part), *part.groupby(pool_col, sort=True)]:
                stats = group_means(sub[names], sub["group"].rename("group"), sub["cluster"],
                                    n_bootstrap=opts.n_bootstrap, confidence=opts.confidence, seed=opts.seed)  # fmt: skip
                base = {pool_col: scene, "attribute": attribute}
                association += _group_rows(stats, base, names, scale=100)
                gaps.append(_gap_rows(stats, base, names, scale=100))
    results = _summarise(rankings, reps, ["attribute", "polarity", "measure"], opts.confidence)
    gap_frames = [g for g in gaps if not g.empty]
    return {
        "results": results,
        "rankings": pd.DataFrame(rankings),
        "association": pd.DataFrame(association),
        "association_gap": pd.concat(gap_frames, ignore_index=True) if gap_frames else pd.DataFrame(),
        "images": pd.concat(images, ignore_index=True),
    }


# ---------------------------------------------------------------------------------------------------- the audit
def run(encoder, opts: RetrievalOptions) -> AuditResult:
    encoder._require("text")
    encoder._require("image")
    if opts.dataset is None:
        raise VlbiasError(
            "the retrieval audit needs a dataset: NAME:PATH, e.g. socialcounterfactuals:/data/SocialCounterfactuals "
            "or pata:/data/pata_dataset"
        )
    dataset = opts.dataset.load()
    proto = load_protocol(opts.protocol or protocol_for(dataset.name))
    k = opts.k or proto.k
    target = opts.target or proto.target
    scale = opts.scale or proto.scale
    notes: list[str] = []
    if proto.datasets and dataset.name not in proto.datasets:
        notes.append(f"protocol {proto.name} was published on {', '.join(proto.datasets)}, not {dataset.name}")
    table = dataset.table.reset_index(drop=True)
    ok, vecs, skipped_images = encode_dataset_images(encoder, dataset, table, opts.skip_bad_images)
    full = np.full((len(table), vecs.shape[1]), np.nan)
    full[ok] = vecs
    table = table[ok]  # the index still points into `full`
    if table.empty:
        raise VlbiasError(f"no image of {dataset.spec} could be encoded")
    if proto.kind == "counterfactual":
        tables = _counterfactual(encoder, table, full, proto, opts, k, target, notes)
    else:
        tables = _captions(encoder, table, full, dataset.captions, proto, opts, k, target, scale, notes)
    skipped = [dataset.report.as_frame(), skipped_images]
    if notes:
        skipped.append(pd.DataFrame([{"item": n, "reason": "notes"} for n in dict.fromkeys(notes)]))
    record = RunRecord(
        audit="retrieval",
        model=encoder.record(),
        options=opts.to_dict(),
        seed=opts.seed,
        resolved={"protocol": proto.name, "k": k, "target": target, "scale": scale, "dataset_options": dataset.options},
        stimuli=[
            dataset.provenance(int(ok.sum())),
            entry(
                "protocol",
                proto.name,
                version=proto.version,
                source=proto.source,
                citation=proto.citation,
                spec=proto.describe(),
            ),  # fmt: skip
        ],
    )
    return AuditResult(
        audit="retrieval",
        tables={name: df for name, df in tables.items()},
        record=record,
        skipped=pd.concat(skipped, ignore_index=True),
        content_warning=CONTENT_WARNING if proto.content_warning else None,
    )
