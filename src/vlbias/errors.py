"""User-facing errors.

Every error a user can cause (a bad spec, a missing file, an image that does not decode, a key that a
``vectors:`` file lacks) is a :class:`VlbiasError`. Its message is one line that names the input and says what
to do. The command line prints that line and exits non-zero; it never shows a traceback for these.
Anything that is not a ``VlbiasError`` is a bug in vlbias and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence


class VlbiasError(Exception):
    """An error caused by the user's input, with a one-line message saying what to do."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))  # always one line


class SpecError(VlbiasError):
    """A model spec that does not parse or names an unknown backend, architecture or tag."""


class WeightsUnavailableError(VlbiasError):
    """Model weights that cannot be downloaded or found on disk."""


class ModalityError(VlbiasError):
    """A model asked for a modality it does not have (e.g. images from a text-only model)."""


class StimulusError(VlbiasError):
    """A bad stimulus: missing file, undecodable image, empty list, malformed test file."""


class ImageDecodeError(StimulusError):
    """One or more images could not be read or decoded."""

    def __init__(self, message: str, bad: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.bad = list(bad)


class MissingKeysError(VlbiasError):
    """Texts or images that a ``vectors:`` file has no vector for."""

    def __init__(self, source: str, kind: str, missing: Sequence[str], hint: str = "add them to the file"):
        self.source = source
        self.kind = kind
        self.missing = list(missing)
        shown = ", ".join(repr(m) for m in self.missing[:8])
        more = f" and {len(self.missing) - 8} more" if len(self.missing) > 8 else ""
        super().__init__(f"{source} has no vector for {len(self.missing)} {kind}(s): {shown}{more}; {hint}")


class OptionError(VlbiasError):
    """An option with an unknown name or a value of the wrong type or range (audit, dataset or command line)."""


class CacheError(VlbiasError):
    """The embedding cache cannot be used (e.g. the directory is not writable)."""


class TasksFailedError(VlbiasError):
    """A sweep ran, and some of its tasks failed (each with its error recorded); exit status 1, not 2."""

    exit_code = 1


class VlbiasWarning(UserWarning):
    """Something the user should know that does not stop the command, in one line (issued with
    :func:`warnings.warn`; the command line prints it as ``vlbias: warning: ...``)."""


class DeprecatedOption(VlbiasWarning, FutureWarning):
    """An option given by its old name: it still works, for one release; the warning names the new one."""


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def closest(word: str, choices, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """The ``choices`` nearest to a mistyped ``word`` (at most ``n``, best first), compared without case, for a
    "did you mean" in an error message; empty when none is near."""
    import difflib

    by_lower: dict[str, str] = {}
    for c in choices:
        by_lower.setdefault(str(c).lower(), str(c))
    return [by_lower[m] for m in difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=cutoff)]


def did_you_mean(names: list[str]) -> str:
    """``did you mean A, B or C?`` (empty for no names)."""
    if not names:
        return ""
    return f"did you mean {', '.join(names[:-1])} or {names[-1]}?" if len(names) > 1 else f"did you mean {names[0]}?"
