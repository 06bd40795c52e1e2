"""Persisted operations: GraphQL documents kept under their SHA-256, so a client sends
the hash instead of the document (Apollo's automatic persisted queries).

One small interface, `PersistedStore`: the database's table (shared by every process
on it), or Redis when NUMBRA_REDIS_URL is set; a process keeps the documents it has
seen in memory in front of either, so a known hash costs no round trip.
"""

import hashlib
import re
from collections import OrderedDict
from typing import Protocol

import sqlalchemy as sa

from domain.clock import Clock
from models.database import Database
from models.persisted import PersistedQuery

SHA256 = re.compile(r"[0-9a-f]{64}")
REDIS_PREFIX = "numbra:persisted:"
MEMORY_SIZE = 1_024  # documents a process keeps in memory


def sha256_of(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


class PersistedStore(Protocol):
    async def get(self, sha256: str) -> str | None: ...

    async def add(self, sha256: str, document: str) -> bool:
        """Keep the document; False if the store is full (it keeps what it has)."""
        ...


class DatabaseStore:
    def __init__(self, db: Database, clock: Clock, capacity: int) -> None:
        self.db = db
        self.clock = clock
        self.capacity = capacity

    async def get(self, sha256: str) -> str | None:
        async with self.db.read_statements() as session:
            found = await session.scalar(
                sa.select(PersistedQuery.document).where(PersistedQuery.sha256 == sha256)
            )
        return found

    async def add(self, sha256: str, document: str) -> bool:
        async with self.db.write() as session:
            if await session.get(PersistedQuery, sha256) is not None:
                return True
            held = await session.scalar(sa.select(sa.func.count()).select_from(PersistedQuery))
            if (held or 0) >= self.capacity:
                return False
            session.add(
                PersistedQuery(sha256=sha256, document=document, created_at=self.clock.now())
            )
        return True


class RedisStore:
    def __init__(self, url: str, capacity: int) -> None:
        import redis.asyncio

        self.redis = redis.asyncio.Redis.from_url(url)
        self.capacity = capacity

    async def get(self, sha256: str) -> str | None:
        found = await self.redis.get(REDIS_PREFIX + sha256)
        return found.decode() if isinstance(found, bytes) else found

    async def add(self, sha256: str, document: str) -> bool:
        if await self.redis.scard(REDIS_PREFIX + "keys") >= self.capacity:
            return bool(await self.redis.sismember(REDIS_PREFIX + "keys", sha256))
        await self.redis.set(REDIS_PREFIX + sha256, document)
        await self.redis.sadd(REDIS_PREFIX + "keys", sha256)
        return True


class RememberingStore:
    """Another store, with the documents this process has seen kept in memory."""

    def __init__(self, store: PersistedStore, size: int = MEMORY_SIZE) -> None:
        self.store = store
        self.size = size
        self._seen: OrderedDict[str, str] = OrderedDict()

    async def get(self, sha256: str) -> str | None:
        document = self._seen.get(sha256)
        if document is None:
            document = await self.store.get(sha256)
            if document is not None:
                self._remember(sha256, document)
        else:
            self._seen.move_to_end(sha256)
        return document

    async def add(self, sha256: str, document: str) -> bool:
        if sha256 in self._seen:
            return True
        added = await self.store.add(sha256, document)
        if added:
            self._remember(sha256, document)
        return added

    def _remember(self, sha256: str, document: str) -> None:
        self._seen[sha256] = document
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)


def store_for(db: Database, clock: Clock, redis_url: str | None, capacity: int) -> PersistedStore:
    """Redis when there is one, else the database; remembered in memory either way."""
    inner: PersistedStore = (
        RedisStore(redis_url, capacity) if redis_url else DatabaseStore(db, clock, capacity)
    )
    return RememberingStore(inner)
