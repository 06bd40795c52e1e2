"""Live updates: events reach subscribers after their commit, from whichever process.

A write transaction remembers the ids of the events it wrote (`remember`); once it has
committed, SQLAlchemy's after_commit hook hands them to the sinks attached for its
database: the process's own hub (no Redis), or a Redis publisher whose channel every
process's hub listens to. A hub loads the events once (one query per commit, whatever
the number of subscribers) and gives each subscriber those its scope selects. A
rolled-back transaction hands nothing on.

The same hook tells the webhook senders (`on_outbox`) that a commit wrote events
(each may have deliveries, written by the database with it) or deliveries (a ping, a
redelivery; `outbox_written`), so they send at once rather than at the next sweep.
"""

import asyncio
import contextlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from domain import events
from domain.errors import DomainError, ErrorCode
from domain.events import LiveEvent, Scope
from models.database import Database

log = logging.getLogger(__name__)

_EVENT_IDS = "numbra_event_ids"
_OUTBOX = "numbra_outbox_written"
# Ids per message: a bulk import publishes its events in slices.
CHUNK = 1_000
# Events a subscriber may fall behind by before its subscription is ended.
QUEUE_SIZE = 10_000
REDIS_RETRY_SECONDS = 1.0

Sink = Callable[[list[int]], object]
_sinks: dict[str, list[Sink]] = defaultdict(list)
Kick = Callable[[], object]
_kicks: dict[str, list[Kick]] = defaultdict(list)
_tasks: set[asyncio.Task[Any]] = set()


def database_key(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)


def _key_of(bind: Any) -> str | None:
    url = getattr(bind, "url", None)
    return database_key(url) if url is not None else None


def attach(db: Database, sink: Sink) -> Callable[[], None]:
    """Hand the event ids each commit on `db` writes to `sink`; returns the detacher."""
    key = database_key(db.url)
    _sinks[key].append(sink)

    def detach() -> None:
        with contextlib.suppress(ValueError):
            _sinks[key].remove(sink)

    return detach


def on_outbox(db: Database, kick: Kick) -> Callable[[], None]:
    """Call `kick` once after each commit on `db` that wrote events or webhook deliveries,
    whatever their number; returns the detacher. Called on the committing thread: it
    must only hand the work on."""
    key = database_key(db.url)
    _kicks[key].append(kick)

    def detach() -> None:
        with contextlib.suppress(ValueError):
            _kicks[key].remove(kick)

    return detach


def outbox_written(session: AsyncSession) -> None:
    """The transaction wrote events or webhook deliveries: kick the senders after commit."""
    session.info[_OUTBOX] = True


def wanted(session: AsyncSession) -> bool:
    """Whether anyone listens for this database's events (else ids are not collected)."""
    return bool(_sinks.get(_key_of(session.bind) or ""))


def remember(session: AsyncSession, event_ids: Sequence[int]) -> None:
    session.info.setdefault(_EVENT_IDS, []).extend(event_ids)


def spawn(coroutine: Any) -> None:
    """Run a coroutine in the background, kept referenced until it ends."""
    task = asyncio.get_running_loop().create_task(coroutine)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


@sa.event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    ids: list[int] | None = session.info.pop(_EVENT_IDS, None)
    written = session.info.pop(_OUTBOX, False)
    if not ids and not written:
        return
    key = _key_of(session.bind) or ""
    if ids:
        for sink in list(_sinks.get(key, ())):
            for start in range(0, len(ids), CHUNK):
                sink(ids[start : start + CHUNK])
    for kick in list(_kicks.get(key, ())):
        try:
            kick()
        except Exception:
            log.exception("webhooks: could not kick the senders; the sweep will send")


@sa.event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_EVENT_IDS, None)
    session.info.pop(_OUTBOX, None)


def channel_for(db: Database) -> str:
    """Processes on one database share a channel; other databases on the Redis don't."""
    return f"numbra:live:{db.url.database}"


def publish_from_worker(db: Database, redis_url: str) -> Callable[[], None]:
    """A worker process's commits (lapses, notices) published for every process's hub."""
    import redis

    client = redis.Redis.from_url(redis_url)
    channel = channel_for(db)

    def publish(ids: list[int]) -> None:
        try:
            client.publish(channel, _dumps(ids))
        except redis.RedisError:
            log.exception("live updates: could not publish %d events", len(ids))

    detach = attach(db, publish)

    def close() -> None:
        detach()
        client.close()

    return close


class Overflow(Exception):
    """The subscriber fell too far behind."""


class Subscriber:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue(QUEUE_SIZE)

    def offer(self, event: LiveEvent) -> None:
        if not self.scope.matches(event):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.queue = asyncio.Queue(1)
            self.queue.put_nowait(None)

    async def next(self) -> LiveEvent:
        event = await self.queue.get()
        if event is None:
            raise Overflow
        return event


class Hub:
    """One per process and database: its subscribers, and the events it hands them."""

    def __init__(self, db: Database, max_per_token: int) -> None:
        self.db = db
        self.max_per_token = max_per_token
        self.subscribers: set[Subscriber] = set()
        self.per_token: Counter[int] = Counter()
        self._detach: Callable[[], None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._redis: Any = None

    async def start(self, redis_url: str | None) -> None:
        # Commits happen on this loop, and on the in-process jobs' threads' own loops:
        # whichever it was, the work is handed to this loop.
        loop = asyncio.get_running_loop()
        if redis_url is None:
            self._detach = attach(
                self.db, lambda ids: loop.call_soon_threadsafe(spawn, self.deliver(ids))
            )
            return
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(redis_url)
        channel = self.channel
        publisher = self._redis
        self._detach = attach(
            self.db,
            lambda ids: loop.call_soon_threadsafe(spawn, publisher.publish(channel, _dumps(ids))),
        )
        ready = asyncio.Event()
        self._listener = asyncio.create_task(self._listen(ready))
        await ready.wait()

    async def stop(self) -> None:
        if self._detach is not None:
            self._detach()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._redis is not None:
            await self._redis.aclose()

    @property
    def channel(self) -> str:
        return channel_for(self.db)

    async def _listen(self, ready: asyncio.Event) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await self.deliver(json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live updates: the Redis channel failed; listening again")
                ready.set()
                await asyncio.sleep(REDIS_RETRY_SECONDS)

    async def deliver(self, event_ids: list[int]) -> None:
        if not self.subscribers:
            return
        async with self.db.read_statements() as session:
            found = await events.committed(session, event_ids)
        for event in found:
            for subscriber in list(self.subscribers):
                subscriber.offer(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, token_id: int, scope: Scope) -> AsyncIterator[Subscriber]:
        """A subscriber for the token's subscription, within the token's bound."""
        if self.per_token[token_id] >= self.max_per_token:
            raise DomainError.one(
                ErrorCode.LIMIT_EXCEEDED,
                f"at most {self.max_per_token} subscriptions per token at once",
            )
        subscriber = Subscriber(scope)
        self.per_token[token_id] += 1
        self.subscribers.add(subscriber)
        try:
            yield subscriber
        finally:
            self.subscribers.discard(subscriber)
            self.per_token[token_id] -= 1
            if not self.per_token[token_id]:
                del self.per_token[token_id]


def _dumps(ids: list[int]) -> str:
    return json.dumps(ids, separators=(",", ":"))
