"""Expected errors: a bad recipe, a bad input file, a missing stage output, a backend that is down.

Every error a user can fix derives from `PsycoprefError`; the CLI prints those as one clear line
(the message names the file, row, key or endpoint). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import signal


class PsycoprefError(Exception):
    """An error the user can act on; its message says what is wrong and where."""


class RecipeError(PsycoprefError, ValueError):
    """A recipe that cannot be used; the message names the file and the key."""


class StageError(PsycoprefError, RuntimeError):
    """A stage that stopped early; every finished model call is kept in the cache."""


class MissingInput(PsycoprefError, FileNotFoundError):
    """An earlier stage's output is missing; the message names the command that writes it."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped the run; the message says what was kept. The CLI exits with
    128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM), as shells do."""

    def __init__(self, message: str = "", signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)
