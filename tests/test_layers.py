"""The architecture: the layers contract in pyproject.toml holds (lint-imports), and there is no import cycle
(function-level imports included), in vlbias.models above all."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import vlbias

SRC = Path(vlbias.__file__).resolve().parents[1]  # the folder holding the vlbias package
ROOT = Path(__file__).resolve().parents[1]  # the project: pyproject.toml with the contract


def _lint_imports_command() -> list[str]:
    script = Path(sys.executable).with_name("lint-imports")  # the console script of the running environment
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"]


def test_the_layers_contract_holds():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [*_lint_imports_command(), "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, f"lint-imports: a contract is broken\n{run.stdout}\n{run.stderr}"
    assert "Contracts: 2 kept, 0 broken." in run.stdout  # both contracts were read and checked


# ---------------------------------------------------------------------------------------------------- cycles


def _modules(package: str) -> dict[str, Path]:
    base = SRC.joinpath(*package.split("."))
    out = {}
    for path in sorted(base.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` (they never run, so they make no cycle)."""
    skip = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and (
            (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
        ):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports, wherever the import statement is (module level or inside a
    function); ``from P import name`` imports the module ``P.name`` when there is one, else ``P``."""
    modules = _modules(package)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_blocks(tree)
        here = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    source = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
            else:
                continue
            graph[module] |= {t for t in targets if t in modules and t != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return path[path.index(n) :] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_models_have_no_import_cycle():
    graph = import_graph("vlbias.models")
    assert "vlbias.models.backends.openclip" in graph and len(graph) >= 12
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in vlbias.models: " + " -> ".join(cycle)
    # the encoder knows nothing of the catalogue; rebuilding the catalogue belongs to the openclip backend
    assert "vlbias.models.catalogue" not in graph["vlbias.models.base"]
    assert "vlbias.models.catalogue" in graph["vlbias.models.backends.openclip"]


def test_vlbias_has_no_import_cycle():
    """Across layers the contract forbids cycles; within a package this does (typing-only imports aside)."""
    cycle = find_cycle(import_graph("vlbias"))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "demo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from demo import b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import demo.b\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    graph = import_graph("demo")
    assert graph == {
        "demo": set(),
        "demo.a": {"demo.b"},
        "demo.b": {"demo.sub.c"},
        "demo.sub": set(),
        "demo.sub.c": set(),
    }
    assert find_cycle(graph) is None
    (pkg / "sub" / "c.py").write_text("def g():\n    import demo.a\n")
    assert find_cycle(import_graph("demo")) == ["demo.a", "demo.b", "demo.sub.c", "demo.a"]
