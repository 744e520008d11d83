"""The errors a user can fix and the exit codes of the command line, defined in one place.

A :class:`UserError` is a problem with what the user gave us (a path that does not exist, a spec typo, a
scheduler that does not answer): the CLI prints ``str(err)`` as one line (``file:line: cause``) and exits with
the error's ``exit_code``; ``--debug`` adds the traceback.  Failures of single cohorts or problems are not
errors: they are recorded in the stage's summary and turn the exit code into :data:`EXIT_PARTIAL`.
"""

from __future__ import annotations

EXIT_OK = 0            # every stage ran and every cohort/problem it attempted finished
EXIT_PARTIAL = 1       # the run finished but some cohorts or problems failed (see the summary / run_summary.json)
EXIT_USAGE = 2         # a user error: bad argument, missing path, invalid spec, unreadable metadata
EXIT_CLUSTER = 3       # the Dask scheduler cannot be reached, or every worker stays paused (memory)
EXIT_INTERRUPTED = 130  # Ctrl-C: finished work is kept, rerun the same command to resume

EXIT_CODES = {
    EXIT_OK: "all done",
    EXIT_PARTIAL: "finished, but some cohorts or problems failed (listed in the summary)",
    EXIT_USAGE: "usage or input error (one line: file, line, cause)",
    EXIT_CLUSTER: "Dask scheduler unreachable, or every worker paused at its memory limit",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); rerun the same command to resume",
}


class UserError(ValueError):
    """Something the user can fix; ``str()`` reads ``file:line: cause`` (or ``file: cause``, or ``cause``)."""

    exit_code = EXIT_USAGE

    def __init__(self, cause: str, file: str | None = None, line: int | None = None):
        self.cause, self.file, self.line = str(cause), file, line
        where = "" if file is None else (f"{file}:{line}: " if line is not None else f"{file}: ")
        super().__init__(where + self.cause)

    def __reduce__(self):  # picklable across Dask workers with its fields
        return (type(self), (self.cause, self.file, self.line))


class ClusterUnreachable(UserError):
    """The scheduler address does not answer (checked before any work is submitted)."""

    exit_code = EXIT_CLUSTER


def exit_code_table() -> str:
    """The exit codes as text for ``--help`` and the README."""
    return "\n".join(f"  {code:>3}  {what}" for code, what in EXIT_CODES.items())
