"""Round trips per request: a search is the token lookup and the search, and no more.

On PostgreSQL reads of plain SELECTs run in autocommit (Database.read_statements): no
BEGIN and ROLLBACK around each. SQLite reads skip them already.
"""

from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from domain.clock import ManualClock
from models import Role
from models.database import Database
from settings import Settings
from tests.api.test_access import revoke
from tests.support.api import Api
from tests.support.databases import StatementCounter

SEARCH = (
    '{ numbers(filter: {pattern: "+6561", states: [AVAILABLE]}, first: 5) '
    "{ edges { node { e164 } } } }"
)


@pytest.fixture
def transactions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every transaction asyncpg starts (a BEGIN round trip, and a ROLLBACK or COMMIT)."""
    started: list[str] = []
    start = asyncpg.transaction.Transaction.start

    async def counted(self: Any) -> None:
        started.append("BEGIN")
        await start(self)

    monkeypatch.setattr(asyncpg.transaction.Transaction, "start", counted)
    return started


async def test_a_search_is_two_statements_and_no_transaction(
    api: Api, statements: StatementCounter, transactions: list[str]
) -> None:
    await api.gql(SEARCH)  # warm: the schema's first request
    statements.reset()
    transactions.clear()

    answer = await api.gql(SEARCH)

    assert answer == {"numbers": {"edges": []}}
    assert statements.count == 2  # the token, the page
    assert transactions == []


async def test_a_revoked_token_is_refused_on_the_next_request(api: Api) -> None:
    token = await api.token_for(await api.root(), Role.ADMIN)
    assert (await api.post(SEARCH, token=token)).status_code == 200
    await revoke(api, token)
    assert (await api.post(SEARCH, token=token)).status_code == 401


async def test_a_token_lookup_that_cannot_reach_the_database_is_answered_503(
    clock: ManualClock,
) -> None:
    """The autocommit path fails as the transactional one did: connection refused."""
    from web.app import create_app

    url = "postgresql+asyncpg://numbra:numbra@127.0.0.1:9/numbra"  # nothing listens on 9
    gone = Database(url, pool_size=1)
    app = create_app(Settings(_env_file=None, database_url=url), db=gone, clock=clock)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://numbra.test") as client:
            response = await client.post(
                "/graphql", json={"query": SEARCH}, headers={"Authorization": "Bearer nbr_x"}
            )
    finally:
        await gone.dispose()
    assert (response.status_code, response.headers.get("retry-after")) == (503, "1")
    assert response.json()["errors"][0]["extensions"] == {"code": "UNAVAILABLE"}
