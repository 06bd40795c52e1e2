"""SQLite reads run inline on the event loop, not through aiosqlite's thread.

aiosqlite hands every call (cursor, execute, fetch, close) to its own thread and
back: four round trips per statement, about 1 to 2 ms, against microseconds for an
indexed read itself. For reads, which in WAL mode never wait for a lock, this
connection does the same calls directly. It offers what SQLAlchemy's aiosqlite
adapter uses of an aiosqlite connection, and is handed over through the
`async_creator` hook. Writes keep aiosqlite: they may wait for another process's
lock, and that wait must not stall the event loop.
"""

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine, Generator, Iterable, Sequence
from typing import Any


class _Cursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> "_Cursor":
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> "_Cursor":
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> "_Cursor":
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _PendingCursor:
    """What `cursor()` returns: awaitable, or usable as `async with`, like aiosqlite's."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    async def _open(self) -> _Cursor:
        return _Cursor(self._connection.cursor())

    def __await__(self) -> Generator[Any, None, _Cursor]:
        return self._open().__await__()

    async def __aenter__(self) -> _Cursor:
        return await self._open()

    async def __aexit__(self, *_exc: object) -> None:
        return None


class _RunNow:
    """Stands in for aiosqlite's work queue: the adapter's isolation_level setter
    puts (future, function) on it; here the function runs at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:
            future.set_exception(error)


class InlineConnection:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection = connection
        self._tx = _RunNow()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> _PendingCursor:
        return _PendingCursor(self._conn)

    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        """As aiosqlite's: a statement's rows in one call (models/prepared.py)."""
        return self._conn.execute(sql, parameters).fetchall()

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()

    def stop(self) -> None:
        self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)


def inline_creator(path: str) -> Callable[[], Coroutine[Any, Any, InlineConnection]]:
    async def connect() -> InlineConnection:
        return InlineConnection(sqlite3.connect(path, isolation_level=None))

    return connect
