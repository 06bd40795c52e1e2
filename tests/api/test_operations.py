"""Operations: /readyz, JSON logs and Prometheus /metrics, as an operator's tools see them."""

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from domain.clock import ManualClock
from domain.mail import LogMailer
from domain.notices import NoticeRules
from domain.sweep import sweep, sweep_and_deliver
from models import Organization, OrganizationKind, Token
from models.database import Database
from settings import Settings
from tests.support.api import Api
from tests.support.databases import service_unavailable
from tests.support.processes import free_port, serving
from tests.support.world import World
from web.app import create_app
from web.logging import TEXT_FORMAT, JsonFormatter

VIEWER = "query Viewer { viewer { tokenName organization { name } } }"
REDIS_URL = "redis://127.0.0.1:6379/12"
# Short, so the failing probes below are quick; what matters is that they end.
READY_TIMEOUT = 0.5
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
POSTGRESQL_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@asynccontextmanager
async def served(
    settings: Settings, db: Database, clock: ManualClock, token: str = ""
) -> AsyncIterator[Api]:
    async with Api.open(create_app(settings, db=db, clock=clock), token, db, clock) as api:
        yield api


@asynccontextmanager
async def database_at(url: str) -> AsyncIterator[Database]:
    db = Database(url, pool_size=1)
    try:
        yield db
    finally:
        await db.dispose()


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that takes connections and never answers: a hung database or Redis."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def unreachable(database_url: str, tmp_path: Path) -> str:
    """The same kind of database where none can be reached."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return str(url.set(database=str(tmp_path / "no such directory" / "numbra.db")))
    return url.set(port=free_port()).render_as_string(hide_password=False)


def redis_up() -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        service_unavailable("Redis", exc)
    finally:
        client.close()


def configured(database_url: str, **changes: Any) -> Settings:
    return Settings(_env_file=None, database_url=database_url, **changes)


async def ready(api: Api) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    response = await api.client.get("/readyz")
    return response.status_code, response.json(), time.monotonic() - started


# /readyz


async def test_ready_when_the_database_and_redis_answer(
    db: Database, settings: Settings, clock: ManualClock, database_url: str
) -> None:
    redis_up()
    async with served(settings, db, clock) as api:
        assert (await api.client.get("/healthz")).text == "ok"
        assert (await ready(api))[:2] == (200, {"status": "ready", "checks": {"database": "ok"}})
    with_redis = configured(database_url, redis_url=REDIS_URL)
    async with served(with_redis, db, clock) as api:
        status, body, _ = await ready(api)
    assert (status, body["checks"]) == (200, {"database": "ok", "redis": "ok"})


async def test_not_ready_when_the_database_cannot_be_reached(
    database_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    url = unreachable(database_url, tmp_path)
    settings = configured(url, ready_timeout_seconds=READY_TIMEOUT)
    async with database_at(url) as db, served(settings, db, clock) as api:
        status, body, seconds = await ready(api)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("unreachable (")
    assert seconds < READY_TIMEOUT + 1
    # Nothing of the configuration leaks to an unauthenticated caller.
    assert str(tmp_path) not in json.dumps(body)


async def test_not_ready_when_redis_cannot_be_reached(
    db: Database, database_url: str, clock: ManualClock
) -> None:
    down = configured(
        database_url,
        redis_url=f"redis://127.0.0.1:{free_port()}/12",
        ready_timeout_seconds=READY_TIMEOUT,
    )
    async with served(down, db, clock) as api:
        status, body, seconds = await ready(api)
    assert status == 503
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("unreachable (")
    assert seconds < READY_TIMEOUT + 1


@pytest.mark.slow
async def test_a_hung_database_and_redis_fail_the_probe_and_scrape_within_the_timeout(
    pg_url: str, clock: ManualClock
) -> None:
    with silent_port() as port:
        url = sa.make_url(pg_url).set(port=port).render_as_string(hide_password=False)
        settings = configured(
            url, redis_url=f"redis://127.0.0.1:{port}/12", ready_timeout_seconds=READY_TIMEOUT
        )
        async with database_at(url) as db, served(settings, db, clock) as api:
            status, body, seconds = await ready(api)
            started = time.monotonic()
            scraped = await api.client.get("/metrics")
            scrape_seconds = time.monotonic() - started
    assert status == 503
    assert body["checks"]["database"] == f"no answer within {READY_TIMEOUT:g} s"
    assert body["checks"]["redis"] != "ok"
    # Both checks run at once, each bounded.
    assert seconds < READY_TIMEOUT + 1
    # A scrape gives up on the backlog gauges as soon, and still serves the counters.
    assert scraped.status_code == 200
    assert "numbra_request_duration_seconds" in scraped.text
    assert "numbra_sweep_lag_seconds" not in scraped.text
    assert scrape_seconds < READY_TIMEOUT + 1


# Logs


async def test_each_request_writes_one_json_access_line_without_the_token(
    api: Api, root_token: str, root: Organization, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="numbra.access"):
        response = await api.post(VIEWER)
        unauthorized = await api.client.post("/graphql", json={"query": VIEWER})
    assert (response.status_code, unauthorized.status_code) == (200, 401)

    lines = [
        json.loads(JsonFormatter().format(record))
        for record in caplog.records
        if record.name == "numbra.access"
    ]
    assert len(lines) == 2
    served_line, refused_line = lines
    assert served_line["request_id"] == response.headers["x-request-id"]
    assert {key: served_line[key] for key in ("method", "path", "status", "operation")} == {
        "method": "POST",
        "path": "/graphql",
        "status": 200,
        "operation": "Viewer",
    }
    assert served_line["viewer_org_id"] == root.id
    assert isinstance(served_line["duration_ms"], float)
    assert served_line["duration_ms"] > 0
    assert refused_line["status"] == 401
    assert refused_line["request_id"] == unauthorized.headers["x-request-id"]
    assert "viewer_org_id" not in refused_line
    assert root_token not in json.dumps(lines)


async def test_the_csv_routes_access_lines_name_the_viewer(
    api: Api, root_token: str, root: Organization, caplog: pytest.LogCaptureFixture
) -> None:
    async with api.db.read() as session:
        token_id = await session.scalar(sa.select(Token.id).where(Token.name == "root admin"))
    with caplog.at_level(logging.INFO, logger="numbra.access"):
        exported = await api.client.get("/export/numbers.csv", headers=api.auth())
        imported = await api.upload_csv("number,vendor,country,sku\n", dry_run=True)
        refused = await api.upload_csv("number,vendor,country,sku\n", bogus=1)

    assert (exported.status_code, imported.status_code, refused.status_code) == (200, 200, 400)
    lines = [
        json.loads(JsonFormatter().format(record))
        for record in caplog.records
        if record.name == "numbra.access"
    ]
    assert [(line["method"], line["path"]) for line in lines] == [
        ("GET", "/export/numbers.csv"),
        ("POST", "/import/numbers"),
        ("POST", "/import/numbers"),
    ]
    for line in lines:
        assert (line["viewer_org_id"], line["viewer_token_id"]) == (root.id, token_id), line
    assert root_token not in json.dumps(lines)


async def test_an_access_line_stays_one_line_whatever_the_path_holds(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="numbra.access"):
        response = await api.client.get("/graphql%0A2026-03-02 INFO forged%0D%E2%80%A8x")

    assert response.status_code == 404
    [record] = [r for r in caplog.records if r.name == "numbra.access"]
    text = logging.Formatter(TEXT_FORMAT).format(record)
    assert len(text.splitlines()) == 1, text
    assert "path=/graphql\\n2026-03-02 INFO forged\\r\\u2028x" in text
    # The JSON line keeps the path as it was, escaped by JSON.
    assert json.loads(JsonFormatter().format(record))["path"] == (
        "/graphql\n2026-03-02 INFO forged\r\u2028x"
    )


# Metrics


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Each sample of a scrape, keyed by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests_total(found: dict[Any, float], operation: str, status: int) -> float:
    key = ("numbra_requests_total", (("operation", operation), ("status", str(status))))
    return found.get(key, 0.0)


async def scrape(api: Api, token: str | None = None) -> dict[Any, float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await api.client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_requests_are_counted_and_timed_by_operation_name(api: Api) -> None:
    before = await scrape(api)
    assert requests_total(before, "Viewer", 200) == 0
    for _ in range(2):
        await api.gql(VIEWER)
    await api.gql("{ viewer { role } }")
    assert (await api.post("query Broken {")).status_code == 400
    assert (await api.client.post("/graphql", json={"query": VIEWER})).status_code == 401
    assert (await api.client.get("/readyz")).status_code == 200

    found = await scrape(api)
    assert requests_total(found, "Viewer", 200) == 2
    assert requests_total(found, "anonymous", 200) == 1
    assert requests_total(found, "Broken", 400) == 1
    # Refused before the document is read: counted by route.
    assert requests_total(found, "/graphql", 401) == 1
    latency = ("numbra_request_duration_seconds_count", (("operation", "Viewer"),))
    assert found[latency] == 2
    # Probes and scrapes are not the API's traffic.
    assert not [key for key in found if ("operation", "/metrics") in key[1]]
    assert not [key for key in found if ("operation", "/readyz") in key[1]]


@SQLITE_ONLY
async def test_operation_labels_are_bounded(api: Api) -> None:
    for index in range(101):
        await api.gql(f"query Op{index} {{ __typename }}")
    await api.gql("{ __typename }")
    await api.gql(f"query {'A' * 65} {{ __typename }}")

    found = await scrape(api)
    operations = {
        dict(labels)["operation"] for name, labels in found if name == "numbra_requests_total"
    }
    assert len(operations) == 100 + 2  # the first 100 names, "anonymous", "other"
    assert requests_total(found, "Op0", 200) == 1
    assert requests_total(found, "Op99", 200) == 1
    # The 101st name, and a name too long to be one.
    assert requests_total(found, "other", 200) == 2


@SQLITE_ONLY
async def test_metrics_need_the_metrics_token_when_one_is_set(
    db: Database, database_url: str, clock: ManualClock, root_token: str
) -> None:
    guarded = configured(database_url, metrics_token="scrape-secret")
    async with served(guarded, db, clock) as api:
        assert (await api.client.get("/metrics")).status_code == 401
        for wrong in (root_token, "scrape-secre"):
            response = await api.client.get(
                "/metrics", headers={"Authorization": f"Bearer {wrong}"}
            )
            assert response.status_code == 401
        assert ("numbra_notices_failed", ()) in await scrape(api, "scrape-secret")


async def test_backlog_gauges_show_a_due_reservation_and_notices(
    db: Database, settings: Settings, clock: ManualClock
) -> None:
    inventory = await World.create(db, clock)
    billed = await inventory.org("Billed", OrganizationKind.CUSTOMER, billing_email="b@b.test")
    unbilled = await inventory.org("Nobill", OrganizationKind.CUSTOMER)
    rules = NoticeRules(before=timedelta(days=7))
    failing, pending, due = await inventory.add(3)
    # A notice to a customer with no billing address fails for good when it is sent.
    await inventory.reserve([failing], unbilled, clock.now() + timedelta(days=3))
    await sweep_and_deliver(db, clock, LogMailer(), rules)
    # A notice that the sweep has found due but no one has sent yet.
    await inventory.reserve([pending], billed, clock.now() + timedelta(days=2))
    await sweep(db, clock, rules)
    # A reservation that has ended, and no sweep since.
    await inventory.reserve([due], billed, clock.now() + timedelta(days=1))
    clock.advance(timedelta(days=1, seconds=90))

    async with served(settings, db, clock) as api:
        found = await scrape(api)
        assert found[("numbra_sweep_lag_seconds", ())] == 90
        assert found[("numbra_notices_pending", ())] == 1
        assert found[("numbra_notices_failed", ())] == 1

        await sweep(db, clock, rules)
        assert (await scrape(api))[("numbra_sweep_lag_seconds", ())] == 0


# A real server with several workers


@pytest.mark.slow
@POSTGRESQL_ONLY
async def test_served_by_two_workers_logs_are_json_and_counters_add_up(
    database_url: str, root_token: str, tmp_path: Path
) -> None:
    settings = {"NUMBRA_LOG_FORMAT": "json", "NUMBRA_LOG_LEVEL": "INFO"}
    with serving(database_url, 1, tmp_path, workers=2, settings=settings) as [server]:
        headers = {"Authorization": f"Bearer {root_token}"}

        async def viewer(client: httpx.AsyncClient) -> None:
            response = await client.post("/graphql", json={"query": VIEWER}, headers=headers)
            assert response.status_code == 200

        def access_lines() -> list[dict[str, Any]]:
            lines = [json.loads(line) for line in server.stderr().splitlines() if line.strip()]
            return [line for line in lines if line["logger"] == "numbra.access"]

        sent = 0
        deadline = time.monotonic() + 30
        # Until both workers have answered: concurrent requests on fresh connections.
        while len({line["process"] for line in access_lines()}) < 2:
            assert time.monotonic() < deadline, "one worker answered everything"
            async with httpx.AsyncClient(
                base_url=server.base_url, limits=httpx.Limits(max_keepalive_connections=0)
            ) as client:
                await asyncio.gather(*(viewer(client) for _ in range(8)))
            sent += 8

        async with httpx.AsyncClient(base_url=server.base_url) as client:
            for _ in range(4):
                response = await client.get("/metrics")
                assert requests_total(samples(response.text), "Viewer", 200) == sent

    log = server.stderr()
    assert root_token not in log
    # Every line, the workers' and uvicorn's included, is one JSON object.
    assert all(json.loads(line) for line in log.splitlines() if line.strip())


def test_the_log_level_is_read_in_any_case_and_an_unknown_one_is_refused() -> None:
    """NUMBRA_LOG_LEVEL=warning is WARNING (it stopped `numbra serve` with a traceback);
    a level that is not one is a settings error naming the levels."""
    import logging

    import pydantic

    from web.logging import configure_logging

    root = logging.getLogger()
    kept = (root.level, root.handlers[:])
    try:
        level = Settings(_env_file=None, log_level="warning").log_level
        configure_logging(level, "text")
        assert root.level == logging.WARNING
    finally:
        root.setLevel(kept[0])
        root.handlers[:] = kept[1]
    with pytest.raises(pydantic.ValidationError, match="WARNING"):
        Settings(_env_file=None, log_level="LOUD")
