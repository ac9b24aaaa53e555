"""Running the EAT audit: planning the rows of a run, resolving and encoding its stimuli, testing each row (see
:mod:`vlbias.audits.eat`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from vlbias.audits.base import AuditResult, RunRecord
from vlbias.audits.eat.options import NRC_WORD_LISTS, EATOptions
from vlbias.errors import MissingKeysError, StimulusError, VlbiasError
from vlbias.stats.eat import (
    EATInputError,
    EATResult,
    beyond_null,
    eat_many,
    effect_size,
    sc_eat,
)
from vlbias.stimuli import ieat, mmbias
from vlbias.stimuli.eat_tests import (
    ORDERS,
    ROLES,
    EATTest,
    ImageSide,
    StimulusSet,
    expand,
    get_test,
    read_test_file,
    templates,
)
from vlbias.stimuli.imagesets import image_source
from vlbias.stimuli.valence import extreme_oasis_images, extreme_words
from vlbias.utils.io import load_yaml, sha256_file, stable_hash
from vlbias.utils.progress import progress
from vlbias.utils.provenance import entry

BATTERIES = ("standard", "mmbias")
RESULT_COLUMNS = [
    "concept",
    "test",
    "order",
    "status",
    "reason",
    "x_name",
    "y_name",
    "a_name",
    "b_name",
    "x_size",
    "y_size",
    "a_size",
    "b_size",
    "target_modality",
    "attribute_modality",
    "effect_size",
    "p_value",
    "n_permutations",
    "exact",
    "alternative",
    "ci_low",
    "ci_high",
    "confidence",
    "dropped",
    # the random-init null (null_seeds): the smallest and largest d of the random copies, and whether d is beyond
    # them in the direction of the alternative
    "null_d_low",
    "null_d_high",
    "beyond_null",
]

ITEM_COLUMNS = ["concept", "test", "order", "role", "item", "association", "sc_effect_size", "sc_p_value"]


# ---------------------------------------------------------------------------------------------------- planning
@dataclass
class Side:
    """One of the four sets of a row, in one modality."""

    name: str
    modality: str  # text | image
    texts: tuple[str, ...] | None = None
    images: ImageSide | None = None

    def identity(self) -> str:
        if self.modality == "text":
            return "text:" + stable_hash(list(self.texts or ()))
        return "image:" + (self.images.identity() if self.images else "")


@dataclass
class RowPlan:
    concept: str
    test: str
    order: str
    sides: dict[str, Side] | None  # None: the row cannot run (reason says why)
    reason: str = ""
    names: dict[str, str] = field(default_factory=dict)
    signs: dict[str, int] = field(default_factory=dict)  # the sign a study reports d in (EATTest.reported_sign)

    def key(self) -> tuple:
        if self.sides is None:
            return (self.concept, self.test, self.order)
        return (self.order, *(self.sides[r].identity() for r in ROLES))


def _side(s: StimulusSet, modality: str) -> Side:
    if modality == "text":
        return Side(s.name, "text", texts=s.texts)
    return Side(s.name, "image", images=s.images)


_ORDER_MODALITIES = {
    "all-text": ("text", "text"),
    "all-image": ("image", "image"),
    "image-as-target": ("image", "text"),
    "text-as-target": ("text", "image"),
}


def plan_test(test: EATTest, orders: list[str] | None, concept: str = "") -> list[RowPlan]:
    available = test.orders()
    wanted = orders if orders is not None else available
    rows = []
    signs = dict(test.reported_sign)
    for order in wanted:
        names = {r: s.name for r, s in test.sets().items()}
        if order not in available:
            tm, am = _ORDER_MODALITIES[order]
            why = f"test {test.name} has no {tm} targets or {am} attributes"
            rows.append(RowPlan(concept, test.name, order, None, why, names, signs))
            continue
        tm, am = _ORDER_MODALITIES[order]
        sides = {r: _side(getattr(test, r), tm if r in "XY" else am) for r in ROLES}
        rows.append(RowPlan(concept, test.name, order, sides, names=names, signs=signs))
    return rows


def _battery_spec(name: str) -> dict[str, Any]:
    if name not in BATTERIES or name == "mmbias":
        raise VlbiasError(f"unknown battery {name!r}; batteries: {', '.join(BATTERIES)}")
    text = resources.files("vlbias.data").joinpath("eat/battery.yaml").read_text(encoding="utf-8")
    return load_yaml(text, "vlbias/data/eat/battery.yaml")


def _image_side(entry: dict[str, Any]) -> StimulusSet:
    side = ImageSide(ref=entry.get("ref"), key=entry.get("key"), missing=entry.get("missing"))
    return StimulusSet(name=entry["name"], images=side)


def _nrc_words(options: EATOptions, n: int) -> tuple[list[str], list[str]]:
    """The NRC-VAD words of the nrc-oasis variant: a packaged list (ghate2025), or the lexicon's extremes."""
    if options.nrc_vad in NRC_WORD_LISTS:
        t = get_test(NRC_WORD_LISTS[options.nrc_vad])
        return list(t.A.words or ()), list(t.B.words or ())
    return extreme_words(options.nrc_vad, n)


def _nrc_oasis_sets(options: EATOptions, spec: dict[str, Any]) -> dict[str, StimulusSet]:
    n = int(spec.get("top", 25))
    top, bottom = _nrc_words(options, n)
    template = spec.get("template", "the_word")
    good, bad = extreme_oasis_images(options.oasis, n, ties=options.oasis_ties)
    root = good[0].parent
    return {
        "A_text": StimulusSet("Pleasant (NRC-VAD)", texts=tuple(expand(tuple(top), template, {})), words=tuple(top)),
        "B_text": StimulusSet(
            "Unpleasant (NRC-VAD)", texts=tuple(expand(tuple(bottom), template, {})), words=tuple(bottom)
        ),
        "A_image": StimulusSet(
            "Pleasant images (OASIS)", images=ImageSide(files=tuple(p.name for p in good), root=root)
        ),
        "B_image": StimulusSet(
            "Unpleasant images (OASIS)", images=ImageSide(files=tuple(p.name for p in bad), root=root)
        ),
    }


def plan_mmbias(options: EATOptions) -> tuple[list[RowPlan], dict[str, Any]]:
    """MMBias's tests (:mod:`vlbias.stimuli.mmbias`), each in every order (the orders option: those), a row whose
    sides the user's release lacks planned with the reason; and the battery's provenance entry."""
    release = mmbias.read_release(options.mmbias)
    wanted = _orders(options) or list(ORDERS)
    rows: list[RowPlan] = []
    for category, test, lacking in mmbias.battery_tests(release):
        for row in plan_test(test, wanted, concept=category):
            if row.sides is None and lacking:
                row.reason = "; ".join([row.reason, *lacking])
            rows.append(row)
    made = entry(
        "battery",
        "mmbias",
        release=str(release.root),
        phrases_sha256=release.phrases_sha256,
        sha256=stable_hash([r.key() for r in rows], 64),
    )
    return rows, made


def plan_battery(name: str, options: EATOptions) -> list[RowPlan]:
    """The battery's rows: every text test (sentence version) of every concept in the four orders, with rows that
    repeat an earlier row's four sides counted once."""
    spec = _battery_spec(name)
    variant = options.valence
    valence = spec["valence"][variant]
    nrc = _nrc_oasis_sets(options, valence) if variant == "nrc-oasis" else None
    if nrc is None:
        val_a, val_b = _image_side(valence["images"]["A"]), _image_side(valence["images"]["B"])
    else:
        val_a, val_b = nrc["A_image"], nrc["B_image"]
    rows: list[RowPlan] = []
    seen: set[tuple] = set()
    for concept in spec["concepts"]:
        img_x, img_y = _image_side(concept["images"]["X"]), _image_side(concept["images"]["Y"])
        for text_name in concept["text"]:
            t = get_test(f"sent-{text_name}", published=options.seat_sentences == "published")
            a_text, b_text = (t.A, t.B) if nrc is None else (nrc["A_text"], nrc["B_text"])
            combined = replace(
                t,
                X=replace(t.X, images=img_x.images),
                Y=replace(t.Y, images=img_y.images),
                A=replace(a_text, images=val_a.images),
                B=replace(b_text, images=val_b.images),
            )
            for row in plan_test(combined, _orders(options), concept["name"]):
                if row.sides is not None:
                    for role, img in (("X", img_x), ("Y", img_y), ("A", val_a), ("B", val_b)):
                        if row.sides[role].modality == "image":
                            row.sides[role].name = img.name
                if row.order == "all-image":
                    row.test = f"ieat-{concept['name']}"
                if row.key() in seen:
                    continue
                seen.add(row.key())
                rows.append(row)
    return sorted(rows, key=lambda r: ORDERS.index(r.order))  # stable: concepts keep their order


# ---------------------------------------------------------------------------------------------------- resolving
@dataclass
class ResolvedImages:
    paths: list[Path] | None
    root: Path | None
    reason: str = ""
    expected: dict[str, str] | None = None  # path -> sha256 for manifest-backed (iEAT) sets


def resolve_images(side: ImageSide, stimuli_dir, image_sets: dict[str, str]) -> ResolvedImages:
    supplied = next((image_sets[k] for k in (side.key, side.ref) if k and k in image_sets), None)
    if supplied is None and side.key:  # a set the user keeps in the stimuli folder: <stimuli dir>/<key>/
        folder = ieat.ieat_dir(stimuli_dir).parent / side.key
        supplied = folder if folder.is_dir() else None
    if supplied is not None:  # the user's own folder for this set (by its key, or its iEAT name)
        src = image_source(supplied)
        return ResolvedImages(src.paths, src.root)
    if side.missing:
        return ResolvedImages(None, None, " ".join(side.missing.split()))
    if side.files is not None:
        root = side.root or Path.cwd()
        paths = [Path(f) if Path(f).is_absolute() else root / f for f in side.files]
        absent = [str(p) for p in paths if not p.is_file()]
        if absent:
            raise StimulusError(
                f"image not found: {absent[0]}" + (f" (and {len(absent) - 1} more)" if len(absent) > 1 else "")
            )
        return ResolvedImages(paths, root)
    ref = side.ref or ""
    if ref.startswith("ieat/"):
        rel = ref[len("ieat/") :].strip("/")
        root = ieat.ieat_dir(stimuli_dir)
        entries = [e for e in ieat.manifest() if e.path.rsplit("/", 1)[0] == rel]
        if not entries:
            raise StimulusError(f"{ref} is not an iEAT set vlbias knows; known: {', '.join(ieat.manifest_sets())}")
        paths = [root / e.path for e in entries]
        absent = [p for p in paths if not p.is_file()]
        if absent:
            what = "not fetched" if len(absent) == len(paths) else f"{len(absent)} of {len(paths)} images missing"
            return ResolvedImages(None, root, f"iEAT images {rel} {what} under {root}; run `vlbias stimuli fetch ieat`")
        return ResolvedImages(paths, root, expected={str(root / e.path): e.sha256 for e in entries})
    path = Path(ref).expanduser()
    if not path.is_absolute() and side.root is not None:
        path = side.root / path
    src = image_source(path)
    if src.non_images:
        raise StimulusError(f"{src.non_images[0]} in image set {path} is not an image; remove it")
    return ResolvedImages(src.paths, src.root)


# ---------------------------------------------------------------------------------------------------- running
def _orders(opts: EATOptions) -> list[str] | None:
    return list(opts.orders) if opts.orders is not None else None


def plan(opts: EATOptions) -> tuple[list[RowPlan], list[dict[str, Any]]]:
    """Rows to run and the stimuli provenance of the run."""
    rows: list[RowPlan] = []
    provenance: list[dict[str, Any]] = []
    published = opts.seat_sentences == "published"
    tests = [get_test(n, published=published) for n in opts.tests] + [read_test_file(f) for f in opts.test_files]
    battery = opts.battery or (None if tests else "standard")
    for t in tests:
        rows += plan_test(t, _orders(opts), concept="")
        provenance.append(entry("test", t.name, origin=t.origin, sha256=stable_hash(_test_payload(t), 64)))
    own_images = rows  # rows whose image sides are iEAT sets or the user's (MMBias's are the user's release)
    if battery == "mmbias":
        battery_rows, made = plan_mmbias(opts)
        own_images = list(rows)
        rows += battery_rows
        provenance.append(made)
    elif battery:
        battery_rows = plan_battery(battery, opts)
        rows += battery_rows
        made = entry(
            "battery",
            battery,
            valence=opts.valence,
            # the exact texts and image sets of every row, and the sentence templates they were made with
            sha256=stable_hash([r.key() for r in battery_rows], 64),
            templates=stable_hash(templates(), 16),
        )
        if opts.valence == "nrc-oasis":
            oasis = Path(opts.oasis)
            if opts.nrc_vad in NRC_WORD_LISTS:
                made["nrc_words"] = f"{opts.nrc_vad} (packaged: {NRC_WORD_LISTS[opts.nrc_vad]}.A, .B)"
            else:
                made["nrc_vad_sha256"] = sha256_file(Path(opts.nrc_vad))
            made["oasis_csv_sha256"] = sha256_file(oasis / "OASIS.csv" if oasis.is_dir() else oasis)
        provenance.append(made)
    if any(r.sides and any(s.modality == "image" for s in r.sides.values()) for r in own_images):
        manifest = stable_hash([e.sha256 for e in ieat.manifest()], 64)
        provenance.append(entry("images", "ieat", version=ieat.IEAT_COMMIT, manifest=manifest))
    if not rows:
        raise VlbiasError("no test to run; give --test NAME, --test-file FILE or --battery standard")
    return rows, provenance


def _test_payload(t: EATTest) -> dict[str, Any]:
    return {
        r: {"name": s.name, "texts": list(s.texts or ()), "images": s.images.identity() if s.images else None}
        for r, s in t.sets().items()
    }


class _Embeddings:
    """Encodes every text and image side once, recording what had to be dropped."""

    def __init__(self, encoder, opts: EATOptions):
        self.encoder = encoder
        self.opts = opts
        self.text_vectors: dict[str, np.ndarray] = {}
        self.dropped_texts: set[str] = set()
        # side identity -> (item labels, vectors, reason it cannot run, items dropped)
        self.images: dict[str, tuple[list[str] | None, np.ndarray | None, str, int]] = {}
        self.skipped: list[tuple[str, str]] = []

    def prepare_texts(self, texts: list[str]) -> None:
        texts = list(dict.fromkeys(texts))
        if not texts:
            return
        missing = self.encoder.missing_texts(texts)
        if missing:
            if not self.opts.drop_missing:
                raise MissingKeysError(
                    str(self.encoder.spec),
                    "text",
                    missing,
                    "add them to the file, or pass --drop-missing to leave them out",
                )
            self.dropped_texts = set(missing)
            for t in missing:
                self.skipped.append((t, "text has no vector in the model (dropped by --drop-missing)"))
            texts = [t for t in texts if t not in self.dropped_texts]
        if texts:
            vecs = self.encoder.encode_texts(texts)
            self.text_vectors = dict(zip(texts, vecs))

    def text_side(self, side: Side) -> tuple[list[str], np.ndarray, int]:
        kept = [t for t in side.texts or () if t in self.text_vectors]
        dropped = len(side.texts or ()) - len(kept)
        vecs = np.stack([self.text_vectors[t] for t in kept]) if kept else np.zeros((0, 1))
        return kept, vecs, dropped

    def prepare_images(self, sides: list[Side]) -> None:
        """Resolve every image side, then encode all images that share a root in one call (fuller batches, one
        loader), so each image is decoded and encoded once per run."""
        resolved: dict[str, tuple[Side, ResolvedImages]] = {}
        for side in sides:
            ident = side.identity()
            if ident in resolved or ident in self.images:
                continue
            res = resolve_images(side.images, self.opts.stimuli_dir, dict(self.opts.image_sets))
            if res.paths is None:
                self.images[ident] = (None, None, res.reason, 0)
                continue
            if not res.paths:
                raise StimulusError(f"image set {side.name} is empty; give it at least two images")
            resolved[ident] = (side, res)
        by_root: dict[Path | None, list[Path]] = {}
        for _, res in resolved.values():
            by_root.setdefault(res.root, []).extend(res.paths)
        skip = self.opts.skip_bad_images or self.opts.drop_missing
        found: dict[Path, tuple[np.ndarray | None, str | None]] = {}
        for root, paths in by_root.items():
            paths = list(dict.fromkeys(paths))
            enc = self.encoder.try_encode_images(paths, root=root, skip_bad=skip)
            full = enc.full()
            keys = enc.keys or [None] * len(paths)
            for i, p in enumerate(paths):
                found[p] = (full[i] if enc.ok[i] else None, keys[i])
            for _i, item, why in enc.skipped:
                self.skipped.append((item, f"image skipped: {why}"))
        for ident, (_side, res) in resolved.items():
            labels = [_image_label(p, res.root) for p in res.paths]
            reason = ""
            if res.expected is not None:
                bad = [
                    p.name
                    for p in res.paths
                    if isinstance(found[p][1], str)
                    and len(found[p][1]) == 64
                    and found[p][1] != res.expected.get(str(p))
                ]
                if bad:
                    reason = (
                        f"iEAT image {bad[0]} in {res.paths[0].parent} does not match the iEAT manifest; "
                        f"run `vlbias stimuli fetch ieat` again"
                    )
            kept = [(lab, found[p][0]) for lab, p in zip(labels, res.paths) if found[p][0] is not None]
            vecs = np.stack([v for _, v in kept]) if kept else np.zeros((0, 1), dtype=np.float32)
            self.images[ident] = ([lab for lab, _ in kept], vecs, reason, len(labels) - len(kept))

    def image_side(self, side: Side) -> tuple[list[str] | None, np.ndarray | None, int, str]:
        keys, vecs, reason, dropped = self.images[side.identity()]
        return keys, vecs, dropped, reason


def _image_label(path: Path, root: Path | None) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix() if root else path.as_posix()
    except ValueError:
        return path.as_posix()


def run(encoder, opts: EATOptions) -> AuditResult:
    import pandas as pd

    rows, provenance = plan(opts)
    has_images = "image" in tuple(getattr(encoder, "modalities", ("text", "image")))
    emb = _Embeddings(encoder, opts)
    emb.prepare_texts([t for r in rows if r.sides for s in r.sides.values() if s.modality == "text" for t in s.texts])
    if has_images:
        emb.prepare_images([s for r in rows if r.sides for s in r.sides.values() if s.modality == "image"])
    sets = [_row_sets(row, emb, opts, has_images) for row in rows]
    # rows of equal target sizes share their drawn partitions (each p-value is the one the row gets alone)
    tested = eat_many(
        [tuple(vecs[r] for r in ROLES) for _, _, vecs in sets if vecs],
        permutations=opts.permutations,
        alternative=opts.alternative,
        seed=opts.seed,
        n_bootstrap=opts.n_bootstrap,
        confidence=opts.confidence,
        sampler=opts.sampler,
    )
    results, items = [], []
    with progress("association tests", len(rows), "tests") as bar:
        for row, (rec, labels, vecs) in zip(rows, sets):
            record, row_items = _run_row(row, rec, labels, vecs, next(tested) if vecs else None, opts)
            results.append(record)
            items += row_items
            bar.advance(1)
    null_models, null_notes = [], []
    if opts.null_seeds:
        null_models, null_notes = _null(encoder, opts, rows, sets, results, has_images)
    table = pd.DataFrame(results, columns=result_columns(opts))
    for col in ("exact", "beyond_null"):  # True/False, and missing where the row did not run
        table[col] = table[col].astype("boolean")
    items_table = pd.DataFrame(items, columns=ITEM_COLUMNS)
    skipped = [(f"{r['test']} [{r['order']}]", r["reason"]) for r in results if r["status"] == "skipped"]
    skipped += emb.skipped + null_notes
    record = RunRecord(
        audit="eat",
        model={"spec": str(encoder.spec), "identity": encoder.identity},
        options=opts.to_dict(),
        seed=opts.seed,
        stimuli=provenance,
        resolved={"null_models": null_models} if null_models else {},
    )
    return AuditResult(
        audit="eat",
        tables={"results": table, "items": items_table},
        record=record,
        skipped=pd.DataFrame(skipped, columns=["item", "reason"]),
    )


def _null(encoder, opts: EATOptions, rows, sets, results, has_images) -> tuple[list[dict], list[tuple[str, str]]]:
    """The random-init null of every row that ran: its effect size in ``null_seeds`` random-init copies of the
    model's architecture (the same stimuli, encoded by each copy and cached like any model), whose smallest and
    largest d go into ``null_d_low`` and ``null_d_high`` of ``results`` (in place); ``beyond_null`` says whether the
    model's d exceeds the largest magnitude among them in the direction of the alternative
    (:func:`vlbias.stats.eat.beyond_null`). Returns the copies (spec, identity) and notes for the skipped table."""
    from vlbias.models import load_model

    specs = encoder.random_copies(opts.null_seeds)
    if not specs:
        why = f"{encoder.spec} has no random-init copies (open_clip models only), so no row has a random-init null"
        return [], [("null_seeds", why)]
    ran = [i for i, (_, _, vecs) in enumerate(sets) if vecs]
    null_d: dict[int, list[float]] = {i: [] for i in ran}
    models = []
    with progress("random-init null", len(specs), "models") as bar:
        for spec in specs:
            copy = load_model(spec, **encoder.settings())
            emb = _Embeddings(copy, opts)
            emb.prepare_texts([t for i in ran for s in rows[i].sides.values() if s.modality == "text" for t in s.texts])
            if has_images:
                emb.prepare_images([s for i in ran for s in rows[i].sides.values() if s.modality == "image"])
            for i in ran:
                _, _, vecs = _row_sets(rows[i], emb, opts, has_images)
                if vecs:
                    null_d[i].append(effect_size(*(vecs[r] for r in ROLES)))
            models.append({"spec": spec, "identity": copy.identity})
            del copy, emb
            bar.advance(1)
    for i, values in null_d.items():
        values = [v for v in values if np.isfinite(v)]
        rec = results[i]
        if len(values) < len(specs) or not np.isfinite(rec["effect_size"]):
            continue
        d = rec["effect_size"]
        rec.update(
            null_d_low=min(values), null_d_high=max(values), beyond_null=beyond_null(d, values, opts.alternative)
        )
    return models, []


#: columns a sign convention adds after effect_size (option sign_convention)
SIGN_COLUMNS = ["reported_sign", "effect_size_reported"]


def result_columns(opts: EATOptions) -> list[str]:
    """The results table's columns: RESULT_COLUMNS, and under a study's sign convention its sign and signed d."""
    if opts.sign_convention == "as-computed":
        return RESULT_COLUMNS
    at = RESULT_COLUMNS.index("effect_size") + 1
    return [*RESULT_COLUMNS[:at], *SIGN_COLUMNS, *RESULT_COLUMNS[at:]]


def _base_record(row: RowPlan) -> dict[str, Any]:
    names = {r: (row.sides[r].name if row.sides else row.names.get(r, "")) for r in ROLES}
    tm, am = _ORDER_MODALITIES[row.order]
    rec = dict.fromkeys(RESULT_COLUMNS)
    rec.update(
        concept=row.concept,
        test=row.test,
        order=row.order,
        status="skipped",
        reason=row.reason,
        x_name=names["X"],
        y_name=names["Y"],
        a_name=names["A"],
        b_name=names["B"],
        target_modality=tm,
        attribute_modality=am,
        alternative=None,
        exact=None,
        dropped=0,
    )
    for c in ("x_size", "y_size", "a_size", "b_size", "n_permutations"):
        rec[c] = 0
    for c in ("effect_size", "p_value", "ci_low", "ci_high", "confidence", "null_d_low", "null_d_high"):
        rec[c] = float("nan")
    return rec


def _row_sets(row: RowPlan, emb: _Embeddings, opts: EATOptions, has_images: bool):
    """The row's record so far, and its item labels and vectors by role (vectors None: the row cannot run, and the
    record says why)."""
    rec = _base_record(row)
    if opts.sign_convention != "as-computed":
        rec.update(reported_sign=row.signs.get(opts.sign_convention, 1), effect_size_reported=float("nan"))
    if row.sides is None:
        return rec, {}, None
    if not has_images and any(s.modality == "image" for s in row.sides.values()):
        rec["reason"] = f"{emb.encoder.spec} is a text-only model"
        return rec, {}, None
    labels, vecs, dropped = {}, {}, 0
    for role, side in row.sides.items():
        if side.modality == "text":
            keys, v, d = emb.text_side(side)
        else:
            keys, v, d, reason = emb.image_side(side)
            if reason:
                rec["reason"] = reason
                return rec, {}, None
        labels[role], vecs[role] = keys, v
        dropped += d
        rec[f"{role.lower()}_size"] = len(keys)
    rec["dropped"] = dropped
    if opts.equal_sizes and len(labels["X"]) != len(labels["Y"]):
        rec["reason"] = (
            f"targets of unequal size ({len(labels['X'])} and {len(labels['Y'])}); equal_sizes asks for |X| = |Y|, "
            "as the code of Ghate et al. and SEAT requires"
        )
        return rec, labels, None
    dims = {r: v.shape[1] for r, v in vecs.items() if len(v)}
    if len(set(dims.values())) > 1:
        raise EATInputError(
            f"{row.test} [{row.order}]: embeddings of different dimensions "
            f"({', '.join(f'{r}: {d}' for r, d in dims.items())}); all four sets must come from one embedding space"
        )
    small = [r for r in ROLES if len(labels[r]) < 2]
    if small:
        r = small[0]
        rec["reason"] = (
            f"set {r} ({row.sides[r].name}) has {len(labels[r])} item(s) left"
            + (f" after dropping {dropped}" if dropped else "")
            + "; an association test needs at least 2"
        )
        return rec, labels, None
    return rec, labels, vecs


def _run_row(row: RowPlan, rec: dict[str, Any], labels, vecs, res: EATResult | None, opts: EATOptions):
    if res is None:
        return rec, []
    rec.update(
        status="ok",
        reason="",
        effect_size=res.effect_size,
        p_value=res.p_value,
        n_permutations=res.n_permutations,
        exact=res.exact,
        alternative=res.alternative,
        ci_low=res.ci_low,
        ci_high=res.ci_high,
        confidence=res.confidence,
    )
    if opts.sign_convention != "as-computed":
        rec["effect_size_reported"] = rec["reported_sign"] * res.effect_size
    scores = res.scores
    nx = len(labels["X"])
    items = []
    for role, group, offset in (("X", labels["X"], 0), ("Y", labels["Y"], nx)):
        for i, (item, s) in enumerate(zip(group, scores[offset : offset + len(group)])):
            d = p = float("nan")
            if opts.item_tests:  # SC-EAT of the item against A and B (same seed: same re-partitions)
                sc = sc_eat(
                    vecs[role][i],
                    vecs["A"],
                    vecs["B"],
                    permutations=opts.item_permutations,
                    alternative=opts.alternative,
                    seed=opts.seed,
                    n_bootstrap=0,
                )
                d, p = sc.effect_size, sc.p_value
            items.append((row.concept, row.test, row.order, role, item, float(s), d, p))
    return rec, items


__all__ = ["plan", "plan_battery", "plan_test", "result_columns", "run"]
