"""The Dramatiq broker: Redis when NUMBRA_REDIS_URL is set, otherwise in-process (a stub).

It is set here, at import, before any actor module is imported, as Dramatiq requires:
`jobs.actors` imports this module first.
"""

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from settings import Settings, get_settings

# Fail fast when Redis is unreachable instead of hanging: the scheduler logs and tries
# again next interval; workers reconnect on their own.
REDIS_CONNECT_TIMEOUT_SECONDS = 5
REDIS_SOCKET_TIMEOUT_SECONDS = 30


def make_broker(settings: Settings) -> dramatiq.Broker:
    if settings.redis_url:
        pool = redis.ConnectionPool.from_url(
            settings.redis_url,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
            socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        )
        return RedisBroker(connection_pool=pool)  # type: ignore[no-untyped-call]
    return StubBroker()


broker = make_broker(get_settings())
dramatiq.set_broker(broker)
