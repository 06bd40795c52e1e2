"""Budgets per minute: how much of a limit each key (a token, a client address) has used
in the current clock minute, checked and charged in one step.

One small interface, `Budgets`: in this process's memory, or in Redis when
NUMBRA_REDIS_URL is set, so every process charges the same budget. A window is the clock
minute: it resets at the start of the next one. While Redis cannot be reached, each
process keeps budgets of its own (as without Redis) rather than refuse every request.
"""

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

log = logging.getLogger("numbra.budgets")
REDIS_PREFIX = "numbra:budget:"
# A Redis that does not answer within this costs a request no more than it.
REDIS_TIMEOUT_SECONDS = 1.0
WINDOW = timedelta(minutes=1)
# A window's key outlives its minute by this much in Redis, then goes.
REDIS_KEEP_SECONDS = 120

# Adds `amount` to the window's count unless that would pass `limit`; answers whether it
# did and the count after. One script: two processes can never both take the last unit.
_CHARGE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if used + amount > tonumber(ARGV[2]) then
  return {0, used}
end
used = redis.call('INCRBY', KEYS[1], amount)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {1, used}
"""


def window_of(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def seconds_to_reset(now: datetime) -> int:
    """Whole seconds until the window of `now` ends; at least 1 (a Retry-After)."""
    return max(1, math.ceil((window_of(now) + WINDOW - now).total_seconds()))


@dataclass(frozen=True)
class Charge:
    """What a charge did: granted or not, and where the budget stands after it."""

    granted: bool
    requested: int
    used: int
    limit: int
    reset_at: datetime

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


class Budgets(Protocol):
    async def charge(self, key: str, amount: int, limit: int, now: datetime) -> Charge:
        """Add `amount` to the key's count for the minute of `now`, unless that passes
        `limit` (then nothing is added)."""
        ...

    async def used(self, key: str, now: datetime) -> int:
        """The key's count for the minute of `now`."""
        ...


class MemoryBudgets:
    """Counts for the current minute only; an older minute's are dropped whole."""

    def __init__(self) -> None:
        self._window: datetime | None = None
        self._used: dict[str, int] = {}

    def _counts(self, now: datetime) -> dict[str, int]:
        window = window_of(now)
        if window != self._window:
            self._window, self._used = window, {}
        return self._used

    async def charge(self, key: str, amount: int, limit: int, now: datetime) -> Charge:
        counts = self._counts(now)
        used = counts.get(key, 0)
        granted = used + amount <= limit
        if granted:
            used += amount
            counts[key] = used
        return Charge(granted, amount, used, limit, window_of(now) + WINDOW)

    async def used(self, key: str, now: datetime) -> int:
        return self._counts(now).get(key, 0)


class RedisBudgets:
    def __init__(
        self, url: str, prefix: str = REDIS_PREFIX, timeout_seconds: float = REDIS_TIMEOUT_SECONDS
    ) -> None:
        import redis.asyncio

        self.redis = redis.asyncio.Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
        )
        self.prefix = prefix
        self._charge = self.redis.register_script(_CHARGE)
        self._unreachable = (redis.RedisError, OSError)
        self._fallback = MemoryBudgets()
        self._down = False

    def _key(self, key: str, now: datetime) -> str:
        return f"{self.prefix}{key}:{int(window_of(now).timestamp())}"

    async def charge(self, key: str, amount: int, limit: int, now: datetime) -> Charge:
        try:
            granted, used = await self._charge(
                keys=[self._key(key, now)], args=[amount, limit, REDIS_KEEP_SECONDS]
            )
        except self._unreachable as error:
            self._went_down(error)
            return await self._fallback.charge(key, amount, limit, now)
        self._came_back()
        return Charge(bool(granted), amount, int(used), limit, window_of(now) + WINDOW)

    async def used(self, key: str, now: datetime) -> int:
        try:
            found = await self.redis.get(self._key(key, now))
        except self._unreachable as error:
            self._went_down(error)
            return await self._fallback.used(key, now)
        self._came_back()
        return int(found) if found is not None else 0

    def _went_down(self, error: BaseException) -> None:
        if not self._down:
            log.warning("Redis unreachable (%r): budgets are per process until it answers", error)
            self._down = True

    def _came_back(self) -> None:
        if self._down:
            log.warning("Redis answers again: budgets are shared again")
            self._down = False

    async def close(self) -> None:
        await self.redis.aclose()


def budgets_for(redis_url: str | None) -> Budgets:
    """Shared through Redis when there is one, else this process's own."""
    return RedisBudgets(redis_url) if redis_url else MemoryBudgets()
