"""One token's cost budget shared by two `numbra serve` processes through Redis: what one
process charged, the other counts, and the request past it is refused by either."""

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.databases import empty_postgresql, service_unavailable
from tests.support.job_processes import REDIS_URL
from tests.support.processes import run_cli, serving

pytestmark = pytest.mark.slow
BUDGET = 6
# A minute may turn while the requests run (the servers keep the system clock): then the
# answers name two reset times and the round is played again.
ROUNDS = 3


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_processes_charge_one_budget_through_redis(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except (redis.RedisError, OSError) as exc:
        service_unavailable("Redis", exc)
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/budget.db"
    else:
        url = str(request.getfixturevalue("pg_url"))
        asyncio.run(empty_postgresql(url))
    settings = {"NUMBRA_REDIS_URL": REDIS_URL, "NUMBRA_COST_BUDGET_PER_MINUTE": str(BUDGET)}
    try:
        run_cli(["migrate"], url, tmp_path)
        with serving(url, 2, tmp_path, settings=settings) as servers:
            for _ in range(ROUNDS):
                # A fresh token each round: a budget of its own, under its own UUID.
                token = run_cli(
                    [
                        "token",
                        "create",
                        "--org",
                        "ROOT",
                        "--role",
                        "VIEWER",
                        "--name",
                        f"partner {uuid.uuid4().hex[:6]}",
                    ],
                    url,
                    tmp_path,
                ).splitlines()[-1]
                answers = []
                for index in range(BUDGET + 2):
                    server = servers[index % 2]
                    answers.append(
                        httpx.post(
                            f"{server.base_url}/graphql",
                            json={"query": "{ __typename }"},
                            headers={"Authorization": f"Bearer {token}"},
                            timeout=10,
                        )
                    )
                costs = [a.json()["extensions"]["cost"] for a in answers]
                if len({c["resetAt"] for c in costs}) == 1:
                    break
            statuses = [a.status_code for a in answers]
            assert statuses == [200] * BUDGET + [429, 429], [a.text for a in answers]
            assert [c["remaining"] for c in costs] == [*range(BUDGET - 1, -1, -1), 0, 0]
            assert all(a.headers["retry-after"].isdigit() for a in answers[BUDGET:])
            assert [a.json()["errors"][0]["extensions"]["code"] for a in answers[BUDGET:]] == [
                "RATE_LIMITED"
            ] * 2
    finally:
        if backend == "postgresql":
            asyncio.run(empty_postgresql(url))
