"""models/sqlite_inline.py against the SQLAlchemy and aiosqlite it was written for.

The inline connection stands in for an aiosqlite connection inside SQLAlchemy's aiosqlite
adapter, which reaches into aiosqlite's private parts (`_conn`, `_tx`, `_connection`).
A release whose adapter reaches for anything the stand-in lacks, or uses it differently,
fails this test by name.
"""

import inspect
import re
import sqlite3
from pathlib import Path
from types import ModuleType

import aiosqlite
import sqlalchemy as sa
from sqlalchemy.connectors import asyncio as async_adapter
from sqlalchemy.dialects.sqlite import aiosqlite as aiosqlite_adapter

from models.database import Database
from models.sqlite_inline import InlineConnection

WRITTEN_AGAINST = "SQLAlchemy 2.1 with aiosqlite 0.22"
# Cursor methods the adapter has that Numbra's reads never reach: several result sets,
# input sizes, server-side cursors.
UNREACHED = {"nextset", "setinputsizes", "__aiter__"}


def broken(what: str) -> str:
    return (
        f"models/sqlite_inline.py was written against {WRITTEN_AGAINST}; "
        f"SQLAlchemy {sa.__version__} with aiosqlite {aiosqlite.__version__} {what}"
    )


def reached(attribute: str, *modules: ModuleType) -> set[str]:
    """What the adapter's source reads off `self.<attribute>`."""
    pattern = re.compile(rf"self\.{attribute}\.(\w+)")
    return {name for module in modules for name in pattern.findall(inspect.getsource(module))}


async def test_sqlalchemy_reads_through_the_inline_connection(tmp_path: Path) -> None:
    stand_in = InlineConnection(sqlite3.connect(":memory:"))
    cursor = await stand_in.cursor()
    lacking = sorted(
        {
            f"connection.{name}"
            for name in reached("_connection", async_adapter, aiosqlite_adapter)
            if not hasattr(stand_in, name)
        }
        | {
            f"cursor.{name}"
            for name in reached("_cursor", async_adapter) - UNREACHED
            if not hasattr(cursor, name)
        }
    )
    await stand_in.close()
    assert not lacking, broken(f"has an adapter reaching for {lacking}, which the stand-in lacks")

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    try:
        async with db.write() as session:
            await session.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            await session.execute(sa.text("INSERT INTO t VALUES (1), (2)"))
        async with db.read() as session:
            raw = await (await session.connection()).get_raw_connection()
            driver = raw.driver_connection
            rows = (await session.execute(sa.text("SELECT x FROM t ORDER BY x"))).all()
    finally:
        await db.dispose()
    assert isinstance(driver, InlineConnection), broken(
        f"reads through {type(driver).__name__}, not the inline connection"
    )
    assert [tuple(row) for row in rows] == [(1,), (2,)], broken(f"read {rows}")
