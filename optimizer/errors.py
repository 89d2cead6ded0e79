"""One error hierarchy for the whole tool, and the one table that turns errors into user words.

The CLI and the app both call :func:`user_message`; no traceback ever reaches a user.
"""

from __future__ import annotations


class OptimizerError(Exception):
    """Base of every error this package raises on purpose."""


class InputRejected(OptimizerError):
    """An upload (model or data) was refused before anything ran."""


class ModelRejected(InputRejected):
    """The model file is unsafe, unreadable or of an unsupported kind."""


class DataRejected(InputRejected):
    """The data file is unsafe, unreadable or does not fit the model."""


class UnsafeArchive(InputRejected):
    """A zip upload has entries that could escape the job folder or exhaust memory/disk."""


class InvalidOption(OptimizerError):
    """A variant spec or run option has a value outside its allowed range."""


class VariantFailed(OptimizerError):
    """One variant could not be produced or measured; the run goes on without it."""


class WorkerFailed(OptimizerError):
    """A child process crashed, ran out of memory or time; the caller lives on."""


class TargetError(OptimizerError):
    """A measuring target (this host or one over SSH) could not be reached or could not run a variant; the
    reason is one sentence, and the run goes on with the other targets and variants."""


class StoreUnavailable(OptimizerError):
    """The runs folder cannot be written (read-only, full, missing): nothing was half-written."""


def folder_unwritable(folder: object, error: BaseException, what: str, remedy: str) -> StoreUnavailable:
    """The one sentence for a folder that cannot be written ("cannot write runs to /x: read-only file
    system; free some space, fix its permissions or set STUDIO_RUNS_DIR ..."), whichever layer noticed it."""
    reason = folder_problem(folder)
    if reason is None:
        import os

        if isinstance(error, OSError) and error.errno is not None:
            reason = os.strerror(error.errno).lower()
        else:
            reason = str(error).lower() or type(error).__name__
    return StoreUnavailable(f"cannot write {what} to {folder}: {reason}; free some space, fix its permissions "
                            f"or {remedy}")


def folder_problem(folder: object) -> str | None:
    """What the file system says is wrong with writing under ``folder`` (read-only, full, not a folder, no
    permission), looked up on its nearest existing ancestor; None when it sees nothing wrong."""
    import os
    from pathlib import Path

    path = Path(str(folder))
    while not path.exists() and path != path.parent:
        path = path.parent
    if not path.is_dir():
        return "not a directory"
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    if stats.f_flag & os.ST_RDONLY:
        return "read-only file system"
    if stats.f_bavail * stats.f_frsize < 64 * 1024:
        return "no space left on device"
    if not os.access(path, os.W_OK):
        return "permission denied"
    return None


_TITLES: dict[type[OptimizerError], str] = {
    ModelRejected: "Model refused",
    DataRejected: "Data refused",
    UnsafeArchive: "Archive refused",
    InvalidOption: "Invalid option",
    VariantFailed: "Variant failed",
    WorkerFailed: "Worker failed",
    StoreUnavailable: "Runs folder unavailable",
    TargetError: "Target failed",
    InputRejected: "Input refused",
    OptimizerError: "Error",
}


def user_message(error: BaseException) -> str:
    """One line for a user: a title for the kind of error, then what was expected and found."""
    for kind in type(error).__mro__:
        if issubclass(kind, OptimizerError) and kind in _TITLES:
            return f"{_TITLES[kind]}: {error}"
    return f"Unexpected error ({type(error).__name__}): {error}"
