"""One SQLAlchemy dialect, and so one cache of compiled SQL, per database backend for a
whole test run.

A Numbra process makes its engines once. The test suite makes two or three per test,
because every test gets a database of its own (`tests/conftest.py`), and SQLAlchemy keys
its cache of compiled statements by the dialect *instance* (sqlalchemy/sqlalchemy#5002):
each test's engines compiled every statement they ran afresh, a third of the fast loop's
time (1,089 tests: 79 s, 50 s with this). Engines of one dialect class on one machine
are alike (same SQLite library, same PostgreSQL server), so `install()` makes each engine
that `models.database` creates use the dialect and cache of an earlier one of its kind
(one that has connected, so its dialect knows its server). Nothing else is shared:
pools, connections and listeners stay per engine.
"""

from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import models.database

# Per dialect class, the dialect of an engine made earlier, and its compiled-SQL cache.
_SHARED: dict[type[Dialect], tuple[Dialect, Any]] = {}


def _create_engine(url: Any, **kwargs: Any) -> AsyncEngine:
    engine = create_async_engine(url, **kwargs)
    sync = engine.sync_engine
    shared = _SHARED.get(type(sync.dialect))
    if shared is not None and _initialized(shared[0]):
        sync.dialect, sync._compiled_cache = shared
        sync.pool._dialect = shared[0]
    else:
        # A dialect learns its server's settings on its engine's first connection; until
        # one has, the next engine's dialect is the candidate.
        _SHARED[type(sync.dialect)] = (sync.dialect, sync._compiled_cache)
    return engine


def _initialized(dialect: Dialect) -> bool:
    return getattr(dialect, "default_isolation_level", None) is not None


def install() -> None:
    """Share from now on, in this process (idempotent)."""
    models.database.create_async_engine = _create_engine  # type: ignore[attr-defined]
