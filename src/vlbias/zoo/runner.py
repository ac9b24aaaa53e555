"""Running a sweep: each model once for all its tasks, resumable, on this machine or on a Ray cluster.

The unit of work handed to an executor is one model with its unfinished tasks (:func:`run_model_tasks`): the
encoder is made once, loads its weights at most once (lazily, on the first embedding the cache lacks, so a model
whose embeddings are all cached never loads), runs every task, and is released. Each finished task writes its part
atomically; a failing task is recorded with its error and the others go on; a model whose weights cannot be had
fails all its tasks with that one error. The local executor downloads the next model's weights in a background
thread while the current model computes.

A rerun skips every task whose part exists for the same model identity, so a killed sweep, run again, does only
what is missing and ends with exactly the parts an uninterrupted run writes.
"""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlbias import __version__
from vlbias.audits.base import AuditResult
from vlbias.audits.registry import get_audit
from vlbias.errors import ModalityError, SpecError, VlbiasError, WeightsUnavailableError
from vlbias.mitigation import Mitigated, fit_transform
from vlbias.models import load_model
from vlbias.models.layers import Layers, layer_encoders
from vlbias.utils.io import sha256_file, write_json
from vlbias.zoo.accuracy import fetch_openclip_results, load_accuracy
from vlbias.zoo.plan import SweepConfig, Task, plan, shard_tasks, task_identity
from vlbias.zoo.store import ResultsStore

if TYPE_CHECKING:
    from vlbias.audits.registry import AuditSpec

EXECUTORS = ("local", "ray")


@dataclass
class Outcome:
    task: Task
    status: str  # done | failed | skipped
    seconds: float = 0.0
    error: str | None = None
    error_type: str | None = None


@dataclass
class SweepState:
    """Counts over the whole grid (or this shard's part of it), for progress displays."""

    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    running: int = 0
    run_seconds: list[float] = field(default_factory=list)
    workers: int = 1

    @property
    def remaining(self) -> int:
        return self.total - self.done - self.failed - self.skipped

    def eta(self) -> float | None:
        """Seconds left: the mean time of the tasks run so far, times the tasks left, over the workers."""
        if not self.run_seconds:
            return None
        mean = sum(self.run_seconds) / len(self.run_seconds)
        return mean * self.remaining / max(1, self.workers)

    def line(self) -> str:
        eta = self.eta()
        left = "" if eta is None or not self.remaining else f" · about {_duration(eta)} left"
        return (
            f"{self.done} done · {self.running} running · {self.failed} failed · {self.skipped} skipped · "
            f"{self.remaining} remaining of {self.total}{left}"
        )


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


@dataclass
class SweepSummary:
    out: Path
    total: int
    already_done: int
    outcomes: list[Outcome]
    state: SweepState
    ingest: Any = None

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]


# ---------------------------------------------------------------------------------------------- one model
def _release(enc) -> None:
    """Free a model's weights before the next model loads (a full collection only if weights were loaded)."""
    if enc is None or not enc.is_loaded:
        return
    device = str(getattr(enc, "__dict__", {}).get("device", ""))
    del enc
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def _error_info(e: BaseException) -> dict[str, Any]:
    info = {"error_type": type(e).__name__, "error": str(e) or type(e).__name__}
    if not isinstance(e, VlbiasError):  # a bug somewhere: keep the traceback for the report
        info["traceback"] = "".join(traceback.format_exception(type(e), e, e.__traceback__))[-8000:]
    return info


def run_model_tasks(
    model: str,
    tasks: list[Task],
    root: str,
    encoder_kwargs: dict[str, Any],
    audits: dict[str, AuditSpec],
    on_event: Callable[[str, Task, Outcome | None], None] | None = None,
) -> list[Outcome]:
    """Run every task of one model with one encoder; returns one outcome per task. Never raises for a task."""

    store = ResultsStore(root)
    emit = on_event or (lambda *a: None)
    outcomes: list[Outcome] = []
    host = socket.gethostname()

    def record(task: Task, status: str, seconds: float, identity: str | None, info: dict[str, Any]) -> None:
        store.write_status(
            task,
            status,
            {"model_identity": identity, "seconds": seconds, "finished": time.time(), "host": host, **info},
        )
        o = Outcome(task, status, seconds, info.get("error") or info.get("reason"), info.get("error_type"))
        outcomes.append(o)
        emit(status, task, o)

    enc = None
    try:
        try:
            enc = load_model(model, **encoder_kwargs)
            views = _layer_views(enc, tasks)
        except Exception as e:  # noqa: BLE001 - a model that cannot even be set up fails all its tasks
            info = _error_info(e)
            for task in tasks:
                record(task, "failed", 0.0, None, info)
            return outcomes
        model_error: dict[str, Any] | None = None
        transforms: dict[str, Any] = {}
        for task in tasks:
            encoder = views[(task.layer, task.reading or "lens")] if task.layer is not None else enc
            identity = encoder.identity
            if model_error is not None:
                record(task, "failed", 0.0, identity, model_error)
                continue
            emit("start", task, None)
            audit = audits[task.audit]
            missing = [m for m in audit.modalities if m not in encoder.modalities]
            if missing:
                reason = f"{model} has no {' or '.join(missing)} encoder; audit {task.audit!r} needs {', '.join(audit.modalities)}"
                if task.layer is not None and missing[0] in enc.modalities:
                    try:
                        encoder._require(missing[0])  # the layer encoder's own reason (a tower too shallow)
                    except ModalityError as e:
                        reason = str(e)
                record(task, "skipped", 0.0, identity, {"reason": reason, "error": reason})
                continue
            t0 = time.perf_counter()
            try:
                task_enc = encoder
                if task.mitigation:  # fitted once per model and mitigation, then reused by its tasks
                    if task.mitigation not in transforms:
                        transforms[task.mitigation] = fit_transform(encoder, task.mitigation)
                    task_enc = Mitigated(encoder, transforms[task.mitigation])
                result = audit.run(task_enc, task.options_dict)
                if not isinstance(result, AuditResult):
                    raise TypeError(f"audit {task.audit!r} returned {type(result).__name__}, not an AuditResult")
                seconds = time.perf_counter() - t0
                facts = enc.facts()  # what the loaded encoder knows (architecture, parameters), for the models table
                store.write_part(
                    task,
                    result,
                    {"model_identity": identity, "seconds": seconds, "finished": time.time(), "host": host}
                    | ({"model_facts": facts} if facts else {}),
                    transforms.get(task.mitigation) if task.mitigation else None,
                )
                store.clear_status(task.task_id)
                o = Outcome(task, "done", seconds)
                outcomes.append(o)
                emit("done", task, o)
            except ModalityError as e:
                record(task, "skipped", time.perf_counter() - t0, identity, {"reason": str(e), "error": str(e)})
            except (WeightsUnavailableError, SpecError) as e:
                model_error = _error_info(e)
                record(task, "failed", time.perf_counter() - t0, identity, model_error)
            except Exception as e:  # noqa: BLE001 - one failing task must not stop the sweep
                record(task, "failed", time.perf_counter() - t0, identity, _error_info(e))
    finally:
        _release(enc)
    return outcomes


def _layer_views(enc, tasks: list[Task]) -> dict[tuple[int, str], Any]:
    """(layer, reading) -> the encoder of that layer, for the layers the tasks read; those of one reading are one
    family, so every forward pass fills all of them (vlbias.models.layers)."""
    wanted: dict[str, list[int]] = {}
    for t in tasks:
        if t.layer is not None:
            wanted.setdefault(t.reading or "lens", []).append(t.layer)
    views: dict[tuple[int, str], Any] = {}
    for reading, layers in wanted.items():
        for view in layer_encoders(enc, Layers(tuple(dict.fromkeys(layers)), reading)):
            views[(view.layer, reading)] = view
    return views


def _write_model_facts(store: ResultsStore, identities: dict[str, str | None], extra_catalogues=()) -> None:
    """Each model's catalogue facts (the config's catalogue files included), refreshed at every sweep, in the driver
    (workers only run tasks)."""
    store.refresh_model_facts(identities, extra_catalogues)


def _import_accuracy(store: ResultsStore, source: str) -> None:
    """The config's downstream accuracy into the store, unless the same file is already there."""
    import pandas as pd

    path = fetch_openclip_results() if source == "openclip" else Path(source)
    name = "openclip" if source == "openclip" else path.stem
    existing = store.accuracy_path(name)
    if existing.is_file() and path.is_file():
        have = set(pd.read_parquet(existing, columns=["source_sha256"])["source_sha256"])
        if have == {sha256_file(path)}:
            return
    store.write_accuracy(load_accuracy(str(path)), name)


def _prefetch(model: str, encoder_kwargs: dict[str, Any]) -> None:
    """Download a model's weights (no loading); any failure is left for the real load to report."""
    try:
        load_model(model, **encoder_kwargs).prefetch()
    except Exception:  # noqa: BLE001
        pass


# ---------------------------------------------------------------------------------------------- executors
def _local(groups, root, encoder_kwargs, audits, on_event) -> list[Outcome]:
    outcomes: list[Outcome] = []
    prefetcher: threading.Thread | None = None
    for k, (model, tasks) in enumerate(groups):
        if prefetcher is not None:
            prefetcher.join()  # this model's download, started while the previous model computed
        prefetcher = None
        if k + 1 < len(groups):
            prefetcher = threading.Thread(
                target=_prefetch, args=(groups[k + 1][0], encoder_kwargs), name="vlbias-prefetch", daemon=True
            )
            prefetcher.start()
        outcomes += run_model_tasks(model, tasks, root, encoder_kwargs, audits, on_event)
    if prefetcher is not None:
        prefetcher.join()
    return outcomes


def _require_ray():
    try:
        import ray
    except ImportError:
        raise VlbiasError("--executor ray needs Ray: pip install 'vlbias[ray]'") from None
    return ray


def _ray(groups, root, encoder_kwargs, audits, on_event, address, state) -> list[Outcome]:
    ray = _require_ray()
    started_here = False
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = address or "a new local instance"
            raise VlbiasError(f"cannot connect to the Ray cluster at {where} ({e}); check --address") from None
        started_here = True
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        remote = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_retries=0)(run_model_tasks)
        state.workers = max(1, int(gpus) if gpus else int(ray.cluster_resources().get("CPU", 1)))
        pending = {}
        for model, tasks in groups:
            needed = {t.audit: audits[t.audit] for t in tasks}
            pending[remote.remote(model, tasks, root, encoder_kwargs, needed)] = (model, tasks)
        state.running = min(len(pending), state.workers)
        outcomes: list[Outcome] = []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            model, tasks = pending.pop(ref)
            try:
                results = ray.get(ref)
            except Exception as e:  # noqa: BLE001 - a worker that died (out of memory, node lost)
                info = _error_info(e)
                store = ResultsStore(root)
                results = []
                for t in tasks:
                    if store.state(t, None) != "done":
                        store.write_status(t, "failed", {**info, "finished": time.time()})
                        results.append(Outcome(t, "failed", 0.0, info["error"], info["error_type"]))
            state.running = min(len(pending), state.workers)
            for o in results:
                on_event(o.status, o.task, o)
            outcomes += results
        return outcomes
    finally:
        if started_here:
            ray.shutdown()


def run_sweep(
    config: SweepConfig,
    *,
    out: str | os.PathLike | None = None,
    shard: tuple[int, int] | None = None,
    executor: str = "local",
    address: str | None = None,
    retry_failed: bool = True,
    on_event: Callable[[str, Task, Outcome | None, SweepState], None] | None = None,
) -> SweepSummary:
    """Run the tasks of the grid (or of one shard) that are not done yet, then rebuild the database."""

    if executor not in EXECUTORS:
        raise VlbiasError(f"unknown executor {executor!r}; use {' or '.join(EXECUTORS)}")
    if executor == "ray":
        _require_ray()
    # everything a config can get wrong is found before the output folder is made
    grid = plan(config)
    mine = shard_tasks(grid, *shard) if shard else grid
    audits = {name: get_audit(name) for name in {t.audit for t in mine}}
    encoder_kwargs = config.encoder_kwargs()
    if encoder_kwargs["cache"] is None and os.environ.get("VLBIAS_CACHE"):
        encoder_kwargs["cache"] = os.environ["VLBIAS_CACHE"]  # workers elsewhere see the same cache folder
    root = Path(out or config.out or "vlbias-sweep")
    store = ResultsStore(root)
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    try:
        store.clean_temporaries()
        write_json(
            root / ("sweep.json" if not shard else f"sweep.shard-{shard[0]}-of-{shard[1]}.json"),
            {
                "config": str(config.source) if config.source else None,
                "models": config.models,
                "audits": [{"audit": a, "options": o} for a, o in config.audits],
                "datasets": config.datasets,
                "seed": config.seed,
                "shard": list(shard) if shard else None,
                "tasks": [t.to_dict() for t in mine],
                "vlbias_version": __version__,
            },
        )
    except BaseException:
        if created and root.is_dir() and not any(root.iterdir()):
            root.rmdir()  # only the folder this run made, and only while it is empty
        raise
    identities: dict[str, str | None] = {}
    for model in dict.fromkeys(t.model for t in mine):
        try:
            identities[model] = load_model(model, **encoder_kwargs).identity
        except Exception:  # noqa: BLE001 - the run records this model's error
            identities[model] = None
    _write_model_facts(store, identities, config.catalogue)
    state = SweepState(total=len(mine))
    todo: dict[str, list[Task]] = {}
    already = 0
    for t in mine:
        st = store.state(t, task_identity(t, identities[t.model]))
        if st == "done" or st == "skipped" or (st == "failed" and not retry_failed):
            setattr(state, st, getattr(state, st) + 1)
            already += 1
        else:
            todo.setdefault(t.model, []).append(t)
    groups = list(todo.items())

    def event(kind: str, task: Task, outcome: Outcome | None) -> None:
        if kind == "start":
            state.running = 1 if executor == "local" else state.running
        else:
            setattr(state, kind, getattr(state, kind) + 1)
            if kind == "done" and outcome is not None:
                state.run_seconds.append(outcome.seconds)
            if executor == "local":
                state.running = 0
        if on_event is not None:
            on_event(kind, task, outcome, state)

    if on_event is not None:
        on_event("plan", None, None, state)
    if executor == "local":
        outcomes = _local(groups, str(root), encoder_kwargs, audits, event)
    else:
        outcomes = _ray(groups, str(root), encoder_kwargs, audits, event, address, state)
    if config.accuracy:
        _import_accuracy(store, config.accuracy)
    summary = store.ingest()
    return SweepSummary(root, len(mine), already, outcomes, state, summary)
