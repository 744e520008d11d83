"""Linear-time regular expressions for patterns that come from inputs (spec files, imported notebooks).

Python's ``re`` backtracks: ``(a+)+$`` against a long cell of ``a``s takes exponential time, and one such rule in
a spec stalled a whole run.  RE2 (``google-re2``) matches in time linear in the text and bounds its own memory,
so every pattern read from an input is compiled here.  RE2 has no backreferences or lookaround; a pattern that
needs them is refused with :class:`RegexError` (one line naming the pattern and the cause), never run slowly.
Semantics otherwise follow ``re.search``: leftmost-first, ``(?i)`` / ``ignore_case`` for case folding; ``\\d``
and ``\\b`` are ASCII in RE2 (Unicode in ``re``).
"""

from __future__ import annotations

import functools

import re2

MAX_PATTERN_CHARS = 10_000        # longer patterns are refused (they are never needed for a spec rule)
MAX_PROGRAM_BYTES = 8 << 20       # RE2's compiled-program memory bound (its default; explicit here)


class RegexError(ValueError):
    """A pattern from an input that the linear-time engine refuses (syntax it lacks, or too large)."""

    def __init__(self, pattern: str, cause: str, where: str = ""):
        self.pattern, self.cause, self.where = pattern, cause, where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}regular expression {pattern[:80]!r}: {cause}")

    def __reduce__(self):  # picklable across Dask workers
        return (type(self), (self.pattern, self.cause, self.where))


def _options(ignore_case: bool) -> re2.Options:
    opts = re2.Options()
    opts.case_sensitive = not ignore_case
    opts.log_errors = False  # RE2 would print every refused pattern to stderr
    opts.max_mem = MAX_PROGRAM_BYTES
    return opts


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str, ignore_case: bool):
    return re2.compile(pattern, _options(ignore_case))


def compile(pattern: str, ignore_case: bool = False, where: str = ""):  # noqa: A001 - mirrors re.compile
    """A compiled RE2 pattern with ``search``/``match``/``fullmatch`` (``re``-like match objects).

    Raises :class:`RegexError` for a non-string, an over-long pattern or syntax RE2 does not support.
    """
    if not isinstance(pattern, str):
        raise RegexError(repr(pattern), "a pattern must be a string", where)
    if len(pattern) > MAX_PATTERN_CHARS:
        raise RegexError(pattern, f"longer than {MAX_PATTERN_CHARS} characters (MAX_PATTERN_CHARS)", where)
    try:
        return _compile(pattern, bool(ignore_case))
    except re2.error as exc:
        msg = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise RegexError(pattern, f"not supported by the linear-time engine (RE2: {msg}); rewrite it without "
                                  "backreferences or lookaround", where) from None


def check(pattern: str, where: str = "") -> None:
    """Raise :class:`RegexError` if ``pattern`` cannot run on the linear-time engine (for spec validation)."""
    compile(pattern, where=where)
