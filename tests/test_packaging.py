"""What an installed vlbias holds: a wheel built from this checkout, as pip would install it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel of a copy of the checkout (so the build leaves nothing in it), built offline."""
    pytest.importorskip("setuptools", reason="building the wheel offline needs setuptools in this environment")
    src = tmp_path_factory.mktemp("checkout")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
        check=True,
        capture_output=True,
    )
    (path,) = dist.glob("vlbias-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_ships_py_typed_for_type_checkers(wheel):
    """PEP 561: the marker that tells mypy and pyright to read vlbias's own annotations."""
    assert "vlbias/py.typed" in wheel.namelist()
    assert (ROOT / "src" / "vlbias" / "py.typed").is_file()


def test_the_wheel_ships_the_packaged_data(wheel):
    names = set(wheel.namelist())
    assert {"vlbias/data/eat/ieat-manifest.csv", "vlbias/data/models/openclip_pretrained.csv"} <= names
