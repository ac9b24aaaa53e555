"""The ``vlbias`` command line: a thin layer that parses options and calls the library.

Subcommands live in their own modules and are imported only when run, so ``vlbias --help`` and commands that
load no model start without importing torch, open_clip or transformers. A new command is one module here plus
one line in :data:`COMMANDS`.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import warnings
from collections.abc import Iterator

import click

from vlbias import __version__

#: command name -> (module, attribute, one-line help shown by `vlbias --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "models": ("vlbias.cli.models", "models", "List the backends and known models."),
    "embed": ("vlbias.cli.embed", "embed", "Embed texts or images with a model into a Parquet file."),
    "cache": ("vlbias.cli.cache", "cache", "Inspect or clear the embedding cache."),
    "eat": ("vlbias.cli.eat", "eat", "Run embedding association tests (WEAT, SEAT, iEAT, cross-modal battery)."),
    "stimuli": ("vlbias.cli.stimuli", "stimuli", "Fetch, verify and list stimuli (association tests, iEAT images)."),
    "zeroshot": ("vlbias.cli.zeroshot", "zeroshot", "Zero-shot misclassification audit of face images, by group."),
    "zeroshot-compare": (
        "vlbias.cli.zeroshot",
        "zeroshot_compare",
        "Compare zeroshot runs of models grouped by a fact.",
    ),
    "perception": (
        "vlbias.cli.perception",
        "perception",
        "Social perception of faces: Delta scores, factor effects, skew.",
    ),
    "retrieval": (
        "vlbias.cli.retrieval",
        "retrieval",
        "Retrieval skew and caption association by group (SocialCounterfactuals, PATA).",
    ),
    "mitigations": ("vlbias.cli.mitigations", "mitigations", "List the debiasing methods (--mitigation) and options."),
    "mitigation-compare": (
        "vlbias.cli.mitigations",
        "mitigation_compare",
        "Mitigations before and after on one audit, paired: bias bought, accuracy lost.",
    ),
    "sweep": ("vlbias.cli.sweep", "sweep", "Run audits over a model zoo, resumably (local or Ray)."),
    "results": ("vlbias.cli.results", "results", "Query, export and import into a sweep's results database."),
    "analyze": ("vlbias.cli.analyze", "analyze", "Upstream analyses of a sweep: mixed model, bias vs accuracy."),
    "report": ("vlbias.cli.report", "report", "Write a static HTML (or Markdown) report of audit results."),
    "demo": ("vlbias.cli.demo", "demo", "Write small synthetic demo datasets to try every audit offline."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, short) for name, (_, _, short) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", prog_name="vlbias", message="%(prog)s %(version)s")
def cli() -> None:
    """vlbias: audit social bias in vision-language embedding models.

    Models are named by one spec string everywhere, e.g. openclip:ViT-B-32/laion2b_s34b_b79k,
    hf:openai/clip-vit-base-patch32, st:all-MiniLM-L6-v2 or vectors:embeddings.parquet.
    """


@contextlib.contextmanager
def _user_warnings() -> Iterator[None]:
    """Print each :class:`~vlbias.errors.VlbiasWarning` as one line, ``vlbias: warning: ...`` (every time)."""
    from vlbias.errors import VlbiasWarning

    with warnings.catch_warnings():  # restores the filters and showwarning afterwards
        warnings.simplefilter("always", VlbiasWarning)
        show = warnings.showwarning

        def one_line(message, category, *args, **kwargs):
            if issubclass(category, VlbiasWarning):
                click.echo(f"vlbias: warning: {message}", err=True)
            else:
                show(message, category, *args, **kwargs)

        warnings.showwarning = one_line
        yield


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback."""
    from vlbias.errors import VlbiasError

    try:
        with _user_warnings():
            cli.main(args=argv, prog_name="vlbias", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("vlbias: aborted", err=True)
        return 1
    except click.exceptions.UsageError as e:
        where = e.ctx.command_path if e.ctx else "vlbias"
        click.echo(f"{where}: error: {e.format_message()} (see '{where} --help')", err=True)
        return e.exit_code
    except click.exceptions.ClickException as e:
        click.echo(f"vlbias: error: {e.format_message()}", err=True)
        return e.exit_code
    except VlbiasError as e:
        click.echo(f"vlbias: error: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("vlbias: interrupted; outputs are written atomically, so nothing was left half-written", err=True)
        return 130
    except BrokenPipeError:
        return 141
    return 0


def run() -> None:  # console-script entry point
    sys.exit(main())
