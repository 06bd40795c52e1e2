"""The Dramatiq broker: Redis when NUMBRA_REDIS_URL is set, otherwise in-process.

It is set before any actor module is imported, as Dramatiq requires.
"""

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from settings import Settings, get_settings


def make_broker(settings: Settings) -> dramatiq.Broker:
    if settings.redis_url:
        return RedisBroker(url=settings.redis_url)  # type: ignore[no-untyped-call]
    return StubBroker()


broker = make_broker(get_settings())
dramatiq.set_broker(broker)
