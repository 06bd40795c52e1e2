"""Expected failures of `numbra` commands, told in one line; `numbra --debug` shows the traceback.

A bug still ends in a traceback: only the failures a user can act on are listed here.
"""

import redis
import sqlalchemy as sa
from pydantic import ValidationError


class Failure(Exception):
    """A failure the user can act on; its message says what to do."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def explain(error: Exception) -> Failure | None:
    """The one line to show for an expected failure, or None for a bug."""
    if isinstance(error, Failure):
        return error
    if isinstance(error, ValidationError) and error.title == "Settings":
        problems = "; ".join(
            f"NUMBRA_{'_'.join(map(str, problem['loc'])).upper()}: {problem['msg']}"
            for problem in error.errors()
        )
        return Failure(f"Bad setting: {problems}.")
    if isinstance(error, sa.exc.DBAPIError):
        return Failure(f"The database failed: {first_line(error.orig or error)}", exit_code=1)
    if isinstance(error, redis.RedisError):
        return Failure(f"Redis failed: {first_line(error)}", exit_code=1)
    if isinstance(error, OSError):
        # A file named on the command line, or a server that cannot be reached.
        where = f"{error.filename}: " if error.filename else ""
        return Failure(f"{where}{error.strerror or first_line(error)}", exit_code=1)
    return None


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
