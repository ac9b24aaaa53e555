"""Configs and input files as a careless or hostile user writes them: a sweep config never runs code, a file with
a key twice or an alias bomb is refused with one line, and a sweep whose tasks fail says so in its exit status."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlbias.cli import main

PAYLOADS = [
    "@pd.io.common.os.system('touch PWNED') == 0",
    "__import__('os').system('touch PWNED') == 0",
    "spec.__class__.__mro__[1].__subclasses__() == 0",
    "(lambda: __import__('os').system('touch PWNED'))() == 0",
    "__builtins__ == 0",
    "spec == 'x' or " * 300 + "spec == 'x'",
    "not " * 60 + "fine_tuned",
]


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_sweep_config_filter_never_runs_code(payload, dry_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "cfg.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump({"models": [{"where": payload}], "audits": {"eat": {}}}), encoding="utf-8")
    code, out, err = run(["sweep", cfg, *(["--dry-run"] if dry_run else [])], capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml"]  # no PWNED, no output folder
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"vlbias: error: {cfg}: models: where: ")
