"""Prompt sets: texts that differ only in the protected attribute, the text fit data of the mitigations.

A prompt set is YAML (packaged: ``vlbias/data/mitigation/prompts/<name>.yaml``; or a file of the same form)::

    attribute: gender
    groups: [female, male]                  # the attribute's values
    words:                                  # one row per thing, its word for each group, in group order
      - [woman, man]
      - [girl, boy]
    templates: ["a photo of a {w}."]        # attribute prompts: every word in every template
    concept_templates: ["a photo of a {w} {c}."]
    concepts: [doctor, nurse]               # concept pairs: each row x concept x concept template

See the packaged ``gender.yaml`` for which method reads which texts. Every text is filled literally (``{w}``, ``{c}``
replaced; no article rule), so what is written is what is embedded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from vlbias.errors import StimulusError
from vlbias.utils.io import load_yaml, stable_hash

_FOLDER = ("mitigation", "prompts")


@dataclass(frozen=True)
class PromptSet:
    name: str
    source: str  # "package" or the file
    attribute: str
    groups: tuple[str, ...]
    words: tuple[tuple[str, ...], ...]
    templates: tuple[str, ...]
    concept_templates: tuple[str, ...] = ()
    concepts: tuple[str, ...] = ()
    title: str = ""

    def attribute_prompts(self) -> list[tuple[str, str]]:
        """(text, group) for every word of every row in every template."""
        return [
            (t.replace("{w}", w), g) for t in self.templates for row in self.words for w, g in zip(row, self.groups)
        ]

    def definitional_pairs(self) -> list[tuple[str, ...]]:
        """Per row and template, one text per group (in group order)."""
        return [tuple(t.replace("{w}", w) for w in row) for t in self.templates for row in self.words]

    def concept_pairs(self) -> list[tuple[tuple[str, ...], str]]:
        """Per row, concept and concept template: one text per group, and the concept."""
        return [
            (tuple(t.replace("{c}", c).replace("{w}", w) for w in row), c)
            for c in self.concepts
            for t in self.concept_templates
            for row in self.words
        ]

    def texts(self) -> list[str]:
        """Every text the set makes, each once."""
        out = [t for t, _ in self.attribute_prompts()]
        out += [t for pair in self.definitional_pairs() for t in pair]
        out += [t for pair, _ in self.concept_pairs() for t in pair]
        return list(dict.fromkeys(out))

    def record(self) -> dict[str, Any]:
        """The set as a fit record holds it: its name, source, what it makes, and their hash."""
        texts = self.texts()
        return {
            "name": self.name,
            "source": self.source,
            "attribute": self.attribute,
            "groups": list(self.groups),
            "n_texts": len(texts),
            "sha256": stable_hash(
                {
                    "groups": self.groups,
                    "attribute": self.attribute_prompts(),
                    "pairs": self.definitional_pairs(),
                    "concepts": self.concept_pairs(),
                },
                64,
            ),  # fmt: skip
            "texts": texts,
        }


def prompt_set_names() -> list[str]:
    folder = resources.files("vlbias.data").joinpath(*_FOLDER)
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_prompt_set(name_or_path: str | os.PathLike) -> PromptSet:
    """A packaged prompt set by name, or a prompt-set YAML file."""
    text_name = str(name_or_path)
    if text_name in prompt_set_names():
        raw_text = resources.files("vlbias.data").joinpath(*_FOLDER, f"{text_name}.yaml").read_text(encoding="utf-8")
        name, source = text_name, "package"
    else:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise StimulusError(
                f"prompt set {text_name!r} is neither a packaged set ({', '.join(prompt_set_names())}) nor a file; "
                f"give a name or a YAML file"
            )
        raw_text = path.read_text(encoding="utf-8")
        name, source = path.stem, str(path)
    raw = load_yaml(raw_text, f"prompt set {text_name}", StimulusError)
    return parse_prompt_set(raw, name, source)


def parse_prompt_set(raw: Any, name: str, source: str) -> PromptSet:
    where = f"prompt set {name}"
    if not isinstance(raw, dict):
        raise StimulusError(f"{where} must be a mapping with groups, words and templates")
    groups = _strings(raw.get("groups"), f"{where}: groups")
    if len(groups) < 2 or len(set(groups)) != len(groups):
        raise StimulusError(f"{where}: groups must name at least two different values of the attribute")
    rows = raw.get("words")
    if not isinstance(rows, list) or not rows:
        raise StimulusError(f"{where}: words must be a list of rows, one word per group in each")
    words = []
    for i, row in enumerate(rows):
        row = _strings(row, f"{where}: words row {i + 1}")
        if len(row) != len(groups):
            raise StimulusError(f"{where}: words row {i + 1} {row} has {len(row)} words for {len(groups)} groups")
        words.append(tuple(row))
    templates = _strings(raw.get("templates"), f"{where}: templates")
    if not templates or any("{w}" not in t for t in templates):
        raise StimulusError(f"{where}: give templates, each with {{w}} where the word goes")
    concept_templates = _strings(raw.get("concept_templates") or [], f"{where}: concept_templates")
    if any("{w}" not in t or "{c}" not in t for t in concept_templates):
        raise StimulusError(f"{where}: each concept template needs {{w}} (the word) and {{c}} (the concept)")
    concepts = _strings(raw.get("concepts") or [], f"{where}: concepts")
    if bool(concepts) != bool(concept_templates):
        raise StimulusError(f"{where}: give concepts and concept_templates together")
    return PromptSet(
        name=name,
        source=source,
        attribute=str(raw.get("attribute") or name),
        groups=tuple(groups),
        words=tuple(words),
        templates=tuple(templates),
        concept_templates=tuple(concept_templates),
        concepts=tuple(concepts),
        title=str(raw.get("title") or ""),
    )


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise StimulusError(f"{where} must be a list of non-empty strings")
    return [v.strip() for v in value]
