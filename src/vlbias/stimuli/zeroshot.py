"""Zero-shot protocols and named model sets: package data in ``vlbias/data/zeroshot/``.

A protocol (``protocols/<name>.yaml``, sources cited in each file) is a list of tasks. A task is a zero-shot
classification: class names, templates (``{c}``), the article rule, the groupings to summarise by, optional
categories (classes counted together, e.g. crime-related) and optionally the dataset column that holds each image's
true class (then accuracy is reported too). A task with a true class may ask for ``recall``: per class and group, the
share of the class's images classified as the class, and the differences between named pairs of groups
(``contrasts``: FACET's disparity, recall of one group minus recall of the other). A custom protocol is built from a class-names file and a templates
file in the CLIP_benchmark convention (see :mod:`vlbias.stimuli.prompts`).

Named model sets (``model_sets.yaml``) list model specs with the facts a comparison groups them by.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from vlbias.errors import StimulusError
from vlbias.models.catalogue import model_facts as catalogue_facts
from vlbias.stimuli.prompts import ARTICLES, fill, normalise_template, read_classnames, read_templates, split_tasks
from vlbias.utils.io import load_yaml, stable_hash

#: labels whose use on photographs of people is offensive by design; outputs that use them carry a warning
OFFENSIVE_LABELS = frozenset(
    {"animal", "gorilla", "chimpanzee", "orangutan", "ape", "monkey", "thief", "criminal", "suspicious person"}
)
CONTENT_WARNING = (
    "CONTENT WARNING: this audit's label set pairs photographs of people with dehumanising and criminalising labels "
    "(e.g. 'gorilla', 'criminal'). They are offensive by design: the audit measures how often a model applies them, "
    "and broken down by group, whether it applies them unequally. The labels are not endorsed."
)


@dataclass(frozen=True)
class Recall:
    """Per-class recall by group: ``contrasts`` maps a grouping column to the pairs of its groups whose recall is
    compared (first minus second); ``min_people``: a contrast needs at least this many people of the class in each
    of its two groups. A grouping without contrasts gets the gap between its highest and lowest group."""

    contrasts: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    min_people: int = 1

    def describe(self) -> dict[str, Any]:
        return {
            "contrasts": {k: [list(p) for p in v] for k, v in self.contrasts.items()},
            "min_people": self.min_people,
        }


@dataclass(frozen=True)
class Task:
    name: str
    classes: tuple[str, ...]
    templates: tuple[str, ...] | dict[str, tuple[str, ...]]  # templates with {c}, or per-class prompts
    article: str = "grammatical"
    group_by: tuple[tuple[str, ...], ...] = ()
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    truth: tuple[str, ...] = ()  # dataset column(s) holding the true class
    truth_labels: dict[str, str] | None = None  # column value(s) joined by "/" -> class name
    binary: str | None = None  # score accuracy as "is <binary>" vs not (DataComp's white vs non-white)
    classes_by_dataset: dict[str, tuple[str, ...]] = field(default_factory=dict)
    recall: Recall | None = None  # per-class recall by group and its contrasts (needs truth)

    @property
    def per_class_prompts(self) -> bool:
        return isinstance(self.templates, dict)

    def for_dataset(self, dataset: str | None) -> Task:
        classes = self.classes_by_dataset.get(dataset or "", self.classes)
        return replace(self, classes=tuple(classes), classes_by_dataset={})

    def template_list(self) -> list[str]:
        if self.per_class_prompts:
            n = {len(v) for v in self.templates.values()}
            if len(n) != 1:
                raise StimulusError(
                    f"task {self.name!r}: per-class prompts differ in number, so they cannot be reported per template; "
                    f"use template_mode ensemble"
                )
            return [f"prompt {i + 1}" for i in range(n.pop())]
        return list(self.templates)

    def prompts(self) -> dict[str, list[str]]:
        """Class -> its prompts, in template order."""
        if self.per_class_prompts:
            return {c: list(self.templates[c]) for c in self.classes}
        return {c: [fill(t, c, self.article) for t in self.templates] for c in self.classes}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "classes": list(self.classes),
            "templates": {k: list(v) for k, v in self.templates.items()}
            if self.per_class_prompts
            else list(self.templates),
            "article": self.article,
            "group_by": [list(g) for g in self.group_by],
            "categories": {k: list(v) for k, v in self.categories.items()},
            "truth": list(self.truth),
            "binary": self.binary,
            **({"recall": self.recall.describe()} if self.recall is not None else {}),
        }


@dataclass(frozen=True)
class Protocol:
    name: str
    tasks: tuple[Task, ...]
    title: str = ""
    citation: str = ""
    content_warning: bool = False
    datasets: tuple[str, ...] = ()
    scale: float = 100.0
    model_set: str | None = None
    source: str = ""  # "package" or the file it came from

    @property
    def offensive(self) -> bool:
        return self.content_warning or any(c.lower() in OFFENSIVE_LABELS for t in self.tasks for c in t.classes)

    def for_dataset(self, dataset: str | None) -> Protocol:
        return replace(self, tasks=tuple(t.for_dataset(dataset) for t in self.tasks))

    def with_overrides(self, group_by: list[list[str]] | None = None, article: str | None = None) -> Protocol:
        tasks = self.tasks
        if group_by is not None:
            tasks = tuple(replace(t, group_by=tuple(tuple(g) for g in group_by)) for t in tasks)
        if article is not None:
            if article not in ARTICLES:
                raise StimulusError(f"unknown article rule {article!r}; use {' or '.join(ARTICLES)}")
            tasks = tuple(replace(t, article=article) for t in tasks)
        return replace(self, tasks=tasks)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "citation": self.citation,
            "scale": self.scale,
            "tasks": [t.describe() for t in self.tasks],
        }

    @property
    def version(self) -> str:
        return stable_hash(self.describe(), n=12)


def _data_dir():
    return resources.files("vlbias.data").joinpath("zeroshot")


def protocol_names() -> list[str]:
    folder = _data_dir().joinpath("protocols")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _tuple_list(value, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(x, (str, int, float)) for x in value):
        raise StimulusError(f"{what} must be a list of strings")
    return tuple(str(x) for x in value)


def _recall(raw: Any, where: str, exact_truth: bool) -> Recall | None:
    """A task's ``recall:`` entry (``true``, or ``{contrasts: {column: [[a, b], ...]}, min_people: N}``), checked."""
    if raw is None or raw is False:
        return None
    if not exact_truth:
        raise StimulusError(f"{where}: recall needs 'truth' (the column of each image's class) and no binary accuracy")
    if raw is True:
        return Recall()
    if not isinstance(raw, dict) or set(raw) - {"contrasts", "min_people"}:
        raise StimulusError(f"{where}: recall must be true or a mapping with 'contrasts' and 'min_people'")
    contrasts: dict[str, tuple[tuple[str, str], ...]] = {}
    for column, pairs in (raw.get("contrasts") or {}).items():
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise StimulusError(f"{where}: recall contrasts of {column} must be a list of [group, group] pairs")
        contrasts[str(column)] = tuple((str(a), str(b)) for a, b in pairs)
    min_people = raw.get("min_people", 1)
    if isinstance(min_people, bool) or not isinstance(min_people, int) or min_people < 1:
        raise StimulusError(f"{where}: recall min_people must be a whole number of at least 1")
    return Recall(contrasts=contrasts, min_people=min_people)


def parse_protocol(data: dict, source: str) -> Protocol:
    """A protocol from its YAML mapping; every mistake is a one-line error naming the source."""
    if not isinstance(data, dict) or "tasks" not in data or "name" not in data:
        raise StimulusError(f"protocol {source} must be a mapping with 'name' and 'tasks'")
    tasks = []
    for i, t in enumerate(data["tasks"] or []):
        where = f"protocol {source}, task {i + 1}"
        if not isinstance(t, dict) or "classes" not in t or "templates" not in t:
            raise StimulusError(f"{where} needs 'classes' and 'templates'")
        classes = _tuple_list(t["classes"], f"{where}: classes")
        by_dataset = {
            k: _tuple_list(v, f"{where}: classes_by_dataset.{k}")
            for k, v in (t.get("classes_by_dataset") or {}).items()
        }
        templates = tuple(normalise_template(x) for x in _tuple_list(t["templates"], f"{where}: templates"))
        categories = {str(k): _tuple_list(v, f"{where}: category {k}") for k, v in (t.get("categories") or {}).items()}
        all_classes = set(classes).union(*by_dataset.values()) if by_dataset else set(classes)
        for cat, members in categories.items():
            bad = [m for m in members if m not in all_classes]
            if bad:
                raise StimulusError(f"{where}: category {cat!r} names unknown class(es) {', '.join(map(repr, bad))}")
        group_by = t.get("group_by") or []
        group_by = tuple(_tuple_list(g, f"{where}: group_by") for g in group_by)
        truth = _tuple_list(t["truth"], f"{where}: truth") if t.get("truth") else ()
        labels = t.get("truth_labels")
        if labels is not None:
            labels = {str(k): str(v) for k, v in labels.items()}
            bad = [v for v in labels.values() if v not in all_classes]
            if bad:
                raise StimulusError(f"{where}: truth_labels map to unknown class(es) {', '.join(map(repr, bad))}")
        binary = (t.get("accuracy") or {}).get("binary")
        recall = _recall(t.get("recall"), where, bool(truth) and not binary)
        article = t.get("article", "grammatical")
        if article not in ARTICLES:
            raise StimulusError(f"{where}: article must be {' or '.join(ARTICLES)}")
        tasks.append(
            Task(
                name=str(t.get("name") or f"task{i + 1}"),
                classes=classes,
                templates=templates,
                article=article,
                group_by=group_by,
                categories=categories,
                truth=truth,
                truth_labels=labels,
                binary=binary,
                classes_by_dataset=by_dataset,
                recall=recall,
            )
        )
    if not tasks:
        raise StimulusError(f"protocol {source} has no tasks")
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise StimulusError(f"protocol {source} has two tasks with the same name")
    return Protocol(
        name=str(data["name"]),
        tasks=tuple(tasks),
        title=str(data.get("title", "")),
        citation=" ".join(str(data.get("citation", "")).split()),
        content_warning=bool(data.get("content_warning", False)),
        datasets=tuple(data.get("datasets") or ()),
        scale=float(data.get("scale", 100)),
        model_set=data.get("model_set"),
        source=source,
    )


def load_protocol(name_or_path: str) -> Protocol:
    """A packaged protocol by name, or a protocol YAML file by path."""
    if name_or_path in protocol_names():
        text = _data_dir().joinpath("protocols", f"{name_or_path}.yaml").read_text(encoding="utf-8")
        return parse_protocol(load_yaml(text, f"protocol {name_or_path}", StimulusError), name_or_path)
    path = Path(name_or_path).expanduser()
    if path.suffix.lower() in (".yaml", ".yml"):
        if not path.is_file():
            raise StimulusError(f"protocol file not found: {path}; check the path")
        data = load_yaml(path.read_text(encoding="utf-8"), f"protocol file {path}", StimulusError)
        return parse_protocol(data, str(path))
    raise StimulusError(
        f"unknown protocol {name_or_path!r}; use one of {', '.join(protocol_names())}, a protocol .yaml file, "
        f"or --classes FILE --templates FILE for a custom audit"
    )


def custom_protocol(
    classes: str | Path,
    templates: str | Path | None = None,
    *,
    dataset: str | None = None,
    group_by: list[list[str]] | None = None,
    article: str = "grammatical",
) -> Protocol:
    """A protocol from a class-names file and a templates file (CLIP_benchmark convention)."""
    names = read_classnames(classes, dataset)
    tpl = read_templates(templates, dataset) if templates is not None else ["a photo of a {c}."]
    tasks: list[Task] = []
    split = split_tasks(names, tpl) if isinstance(tpl, list) else None
    if split is not None:
        for task_name, (cls, tt) in split.items():
            tasks.append(Task(name=task_name, classes=tuple(cls), templates=tuple(tt), article=article))
    else:
        if isinstance(tpl, dict):
            missing = [c for c in names if c not in tpl]
            if missing:
                raise StimulusError(
                    f"templates file {templates} has no prompts for class(es) {', '.join(map(repr, missing[:5]))}"
                )
            task_templates: Any = {c: tuple(tpl[c]) for c in names}
        else:
            task_templates = tuple(tpl)
        tasks.append(Task(name="custom", classes=tuple(names), templates=task_templates, article=article))
    if group_by:
        tasks = [replace(t, group_by=tuple(tuple(g) for g in group_by)) for t in tasks]
    source = f"{classes}" + (f" + {templates}" if templates else "")
    proto = Protocol(name="custom", tasks=tuple(tasks), title="Custom zero-shot audit", source=source)
    return replace(proto, content_warning=proto.offensive)


@lru_cache(maxsize=1)
def _model_sets() -> dict[str, Any]:
    text = _data_dir().joinpath("model_sets.yaml").read_text(encoding="utf-8")
    return load_yaml(text, "vlbias/data/zeroshot/model_sets.yaml", StimulusError)


def model_set_names() -> list[str]:
    return sorted(_model_sets())


def model_set(name: str) -> dict[str, Any]:
    """A named model set: ``title``, ``citation``, ``compare`` defaults and ``models`` (spec + facts)."""
    sets = _model_sets()
    if name not in sets:
        raise StimulusError(f"unknown model set {name!r}; known sets: {', '.join(model_set_names())}")
    return sets[name]


def model_facts(spec: str) -> dict[str, Any]:
    """Facts about a model spec: the model catalogue's (pretraining_dataset, dataset_family, dataset_size,
    architecture, ...; see vlbias.models.catalogue), with a named set's facts over them where a set lists it."""

    facts = {k: v for k, v in catalogue_facts(spec).items() if v is not None and k != "spec"}
    for s in _model_sets().values():
        for m in s["models"]:
            if m["spec"] == spec:
                return {**facts, **{k: v for k, v in m.items() if k != "spec"}}
    return facts


def model_set_of(specs: list[str]) -> str | None:
    """The first named set that lists every one of the specs, if any."""
    for name, s in sorted(_model_sets().items()):
        listed = {m["spec"] for m in s["models"]}
        if set(specs) <= listed:
            return name
    return None


#: how a model comparison sets models against each other (see vlbias.audits.zeroshot.run.compare_runs)
COMPARE_KEYS = ("by", "baseline", "pair_by", "within")


def comparison_settings(
    specs: list[str], given: dict[str, Any], *, model_set_name: str | None = None, by: str = "pretraining_data"
) -> dict[str, Any]:
    """A model comparison's ``by``, ``baseline``, ``pair_by`` and ``within``: those given, over the ``compare:``
    defaults of the named set (``model_set_name``, else the set that lists every spec), over ``by`` alone.

    A given ``by`` other than the set's drops the set's baseline (a level of another fact); a given ``pair_by`` or
    ``within`` replaces the set's choice of the two (they exclude each other).
    """
    given = {k: v for k, v in given.items() if k in COMPARE_KEYS and v not in (None, "")}
    name = model_set_name or model_set_of(specs)
    defaults = {k: v for k, v in (model_set(name).get("compare") or {}).items()} if name else {}
    if "by" in given and given["by"] != defaults.get("by"):
        defaults.pop("baseline", None)
    if "pair_by" in given or "within" in given:
        defaults.pop("pair_by", None)
        defaults.pop("within", None)
    return {"by": by, "baseline": None, "pair_by": None, "within": None, **defaults, **given}
