"""Budgets per minute: how much of a limit each key (a token, a client address) has used
in the current clock minute, checked and charged in one step.

One small interface, `Budgets`: in this process's memory, or in Redis when
NUMBRA_REDIS_URL is set, so every process charges the same budget. A window is the clock
minute: it resets at the start of the next one.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

REDIS_PREFIX = "numbra:budget:"
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
    def __init__(self, url: str, prefix: str = REDIS_PREFIX) -> None:
        import redis.asyncio

        self.redis = redis.asyncio.Redis.from_url(url)
        self.prefix = prefix
        self._charge = self.redis.register_script(_CHARGE)

    def _key(self, key: str, now: datetime) -> str:
        return f"{self.prefix}{key}:{int(window_of(now).timestamp())}"

    async def charge(self, key: str, amount: int, limit: int, now: datetime) -> Charge:
        granted, used = await self._charge(
            keys=[self._key(key, now)], args=[amount, limit, REDIS_KEEP_SECONDS]
        )
        return Charge(bool(granted), amount, int(used), limit, window_of(now) + WINDOW)

    async def used(self, key: str, now: datetime) -> int:
        found = await self.redis.get(self._key(key, now))
        return int(found) if found is not None else 0

    async def close(self) -> None:
        await self.redis.aclose()


def budgets_for(redis_url: str | None) -> Budgets:
    """Shared through Redis when there is one, else this process's own."""
    return RedisBudgets(redis_url) if redis_url else MemoryBudgets()
