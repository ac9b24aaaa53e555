from __future__ import annotations

import sys
from pathlib import Path

import click

from vlbias.cli._common import DEVICES, console
from vlbias.errors import plural


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder [default: the config's out:, else a folder named after the config, beside it].",
)
@click.option("--shard", default=None, metavar="I/N", help="Run shard I of N (1-based; whole models per shard).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", default=None, help="Ray cluster address (with --executor ray) [default: a local instance].")
@click.option("--dry-run", is_flag=True, help="Print the task grid and what is done; run nothing.")
@click.option("--status", "show_status", is_flag=True, help="Print progress over the whole grid and the failures.")
@click.option("--no-retry-failed", is_flag=True, help="Leave tasks that failed before alone.")
@click.option("--device", type=click.Choice(DEVICES), default=None, help="Override the config's encoder device.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Embedding cache folder (overrides the config's encoder.cache_dir and $VLBIAS_CACHE).",
)
def sweep(config, out, shard, executor, address, dry_run, show_status, no_retry_failed, device, cache_dir):
    """Run audits over a model zoo: CONFIG (YAML) names models, audits with options, and datasets.

    \b
    models:                                   # specs, patterns, catalogue filters, or all
      - openclip:ViT-B-32/laion2b_s34b_b79k
      - openclip:ViT-B-*/laion*
      - where: "dataset_family == 'laion'"
    audits:
      eat: {}
      zeroshot: [{protocol: birhane2024}]
    datasets: [cfd:/data/CFD]

    Each (model, audit, options) task runs once: run the same command again after a kill or a crash and it
    does only what is missing. Results go to OUT/results.duckdb (`vlbias results query`). The exit status is 1
    when any task failed (`--status` shows their errors) and 2 for a config error.
    """
    from vlbias.utils.io import check_out
    from vlbias.zoo.plan import load_config, parse_shard, plan, shard_tasks
    from vlbias.zoo.runner import run_sweep

    cfg = load_config(config)
    if device is not None:
        cfg.encoder["device"] = device
    if cache_dir is not None:
        cfg.encoder["cache_dir"] = str(cache_dir)
    shard_t = parse_shard(shard) if shard else None
    root = Path(out or cfg.out)
    if dry_run or show_status:
        grid = plan(cfg)
        mine = shard_tasks(grid, *shard_t) if shard_t else grid
        _print_status(root, cfg, mine, show_tasks=dry_run)
        return
    check_out(root, "sweep", option="--out" if out else None)
    printer = _Printer()
    summary = run_sweep(
        cfg,
        out=root,
        shard=shard_t,
        executor=executor,
        address=address,
        retry_failed=not no_retry_failed,
        on_event=printer,
    )
    printer.close()
    s = summary.state
    click.echo(
        f"sweep: {s.done} done, {s.failed} failed, {s.skipped} skipped of {plural(summary.total, 'task')} "
        f"({summary.already_done} {'was' if summary.already_done == 1 else 'were'} already done); results in "
        f"{summary.out / 'results.duckdb'}",
        err=True,
    )
    if s.failed:
        from vlbias.errors import TasksFailedError

        status = f"vlbias sweep {config}" + (f" --out {out}" if out else "") + " --status"
        raise TasksFailedError(
            f"{s.failed} of {plural(summary.total, 'task')} failed; see their errors with `{status}`, "
            f"and run the same command again to retry them"
        )


class _Printer:
    """Whole-grid progress: a live line on a terminal, one line per finished task otherwise (logs, SLURM)."""

    def __init__(self):
        from vlbias.utils.progress import progress_enabled

        self.live = None
        self.tty = progress_enabled() and sys.stderr.isatty()

    def __call__(self, kind, task, outcome, state):
        if kind == "plan":
            click.echo(f"sweep: {plural(state.total, 'task')}; {state.line()}", err=True)
            if self.tty:
                from rich.live import Live

                self.live = Live(console=console(stderr=True), transient=True, refresh_per_second=4)
                self.live.start()
            return
        if kind == "start":
            if self.live:
                self.live.update(self._status(state, f"\n  running {task.label()}"))
            return
        n = state.total - state.remaining
        msg = {"done": "done   ", "failed": "FAILED ", "skipped": "skipped"}[kind]
        tail = f" ({outcome.seconds:.1f} s)" if kind == "done" else f": {outcome.error}"
        line = f"[{n}/{state.total}] {msg} {task.label()}{tail}"
        if self.live:
            self.live.console.print(line, markup=False, highlight=False)
            self.live.update(self._status(state))
        else:
            click.echo(line, err=True)

    @staticmethod
    def _status(state, tail: str = ""):
        """The live status line; plain Text, so a task label (a model spec, a dataset path) is never markup."""
        from rich.text import Text

        return Text.assemble(("sweep", "bold"), f" {state.line()}{tail}")

    def close(self):
        if self.live:
            self.live.stop()


def _print_status(root: Path, cfg, tasks, show_tasks: bool) -> None:
    from collections import Counter

    from vlbias.models import load_model
    from vlbias.zoo.store import ResultsStore

    store = ResultsStore(root)
    identities = {}
    for model in dict.fromkeys(t.model for t in tasks):
        try:
            identities[model] = load_model(model, **cfg.encoder_kwargs()).identity
        except Exception:  # noqa: BLE001
            identities[model] = None
    states = {t.task_id: store.state(t, identities[t.model]) for t in tasks}
    n_models = len(identities)
    click.echo(
        f"{plural(len(tasks), 'task')}: {plural(n_models, 'model')} x {plural(len(cfg.audits), 'audit setting')}, "
        f"into {root}"
    )
    by_audit: dict[str, Counter] = {}
    for t in tasks:
        by_audit.setdefault(t.audit, Counter())[states[t.task_id]] += 1
    for audit, c in by_audit.items():
        click.echo(f"  {audit}: {c['done']} done, {c['failed']} failed, {c['skipped']} skipped, {c['todo']} to do")
    if show_tasks:
        for t in tasks:
            opts = {k: v for k, v in t.options if k != "dataset"}
            click.echo(f"  [{states[t.task_id]:>7}] {t.label()} {opts if opts else ''}".rstrip())
    failed = [t for t in tasks if states[t.task_id] == "failed"]
    for t in failed[:20]:
        st = store.status(t.task_id) or {}
        click.echo(f"  FAILED {t.label()}: {st.get('error_type', '')}: {st.get('error', '')}")
    if len(failed) > 20:
        click.echo(f'  ... and {len(failed) - 20} more failures (vlbias results query "select * from tasks")')
