"""One root error type for problems the user can fix, with fixed exit codes.

Exit codes (DESIGN.md section 4): 0 ok; 1 the command ran and found a breach;
2 a usage, configuration or input error. Library code raises these with a
one-line message naming the file, line and value; the CLI prints them without
a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BREACH = 1
EXIT_USAGE = 2


class TokenauditError(Exception):
    """A problem the user can fix. The message is shown as is."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class InputError(TokenauditError):
    """A file that cannot be read or recognised."""


class ConfigError(TokenauditError):
    """A configuration, pricing or budgets file that is invalid."""


class DatabaseError(TokenauditError):
    """The database file cannot be opened (locked, corrupt, newer version)."""


class BreachError(TokenauditError):
    """The command ran and found a breach (``check``, ``--fail-*`` options)."""

    exit_code = EXIT_BREACH
