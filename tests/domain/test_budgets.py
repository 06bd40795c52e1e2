"""Budgets per minute, in memory and in Redis: a charge that would pass the limit adds
nothing, the count resets with the clock minute, and racing charges never take more than
the limit (in Redis: from any number of clients at once)."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from domain.budgets import Budgets, MemoryBudgets, RedisBudgets, seconds_to_reset
from tests.support.databases import service_unavailable
from tests.support.job_processes import REDIS_URL

NOW = datetime(2026, 3, 2, 9, 0, 42, 500_000, tzinfo=UTC)


@pytest.fixture(params=["memory", "redis"])
async def budgets(request: pytest.FixtureRequest) -> AsyncIterator[Budgets]:
    if request.param == "memory":
        yield MemoryBudgets()
        return
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except (redis.RedisError, OSError) as exc:
        service_unavailable("Redis", exc)
    # Keys of this test's own: the Redis server is shared, never flushed here.
    # A loaded test machine may keep Redis's answers past the second a server waits.
    store = RedisBudgets(REDIS_URL, prefix=f"numbra-test:{uuid.uuid4()}:", timeout_seconds=30)
    try:
        yield store
    finally:
        await store.close()


async def test_a_charge_past_the_limit_adds_nothing(budgets: Budgets) -> None:
    first = await budgets.charge("t", 7, 10, NOW)
    assert (first.granted, first.used, first.remaining) == (True, 7, 3)
    assert first.reset_at == datetime(2026, 3, 2, 9, 1, tzinfo=UTC)
    refused = await budgets.charge("t", 4, 10, NOW)
    assert (refused.granted, refused.requested, refused.remaining) == (False, 4, 3)
    assert (await budgets.charge("t", 3, 10, NOW)).remaining == 0
    assert await budgets.used("t", NOW) == 10
    assert await budgets.used("other", NOW) == 0


async def test_the_count_resets_with_the_minute(budgets: Budgets) -> None:
    await budgets.charge("t", 10, 10, NOW)
    later = NOW + timedelta(seconds=18)
    assert (await budgets.charge("t", 1, 10, later)).granted
    assert await budgets.used("t", later) == 1
    assert seconds_to_reset(NOW) == 18
    assert seconds_to_reset(datetime(2026, 3, 2, 9, 0, 59, 999_999, tzinfo=UTC)) == 1


async def test_racing_charges_never_take_more_than_the_limit(budgets: Budgets) -> None:
    charges = await asyncio.gather(*(budgets.charge("t", 1, 20, NOW) for _ in range(50)))
    assert sum(charge.granted for charge in charges) == 20
    assert await budgets.used("t", NOW) == 20


async def test_without_redis_each_process_keeps_budgets_of_its_own() -> None:
    store = RedisBudgets("redis://127.0.0.1:1/0", prefix="numbra-test:")
    try:
        assert (await store.charge("t", 8, 10, NOW)).granted
        assert not (await store.charge("t", 3, 10, NOW)).granted
        assert await store.used("t", NOW) == 8
    finally:
        await store.close()
