"""The error policy's answers, one failure at a time, without breaking a real database.

tests/test_faults.py meets the same failures for real (a stopped PostgreSQL, a full
disk); tests/test_limits.py the masking of an unexpected error through the app.
"""

import json
import logging
import sqlite3

import httpx
import pytest
import sqlalchemy as sa
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response

from domain.clock import ManualClock
from domain.csv import imports
from domain.errors import DomainError, ErrorCode, Problem
from models.database import Database
from schema.errors import EXCEPTION_HANDLERS, public_error, refusal
from settings import Settings
from web.app import create_app

SQLITE_FULL = 13


def disk_full() -> sa.exc.DBAPIError:
    cause = sqlite3.OperationalError("database or disk is full")
    cause.sqlite_errorcode = SQLITE_FULL
    return sa.exc.DBAPIError("INSERT", {}, cause)


def raised(original: Exception) -> GraphQLError:
    return GraphQLError("raw", path=["addNumbers"], original_error=original)


def body(response: Response) -> object:
    return json.loads(bytes(response.body))


async def handled(exc: Exception) -> Response:
    scope = {"type": "http", "method": "POST", "path": "/import/numbers", "headers": []}
    return await EXCEPTION_HANDLERS[type(exc)](Request(scope), exc)


async def test_a_database_failure_outside_graphql_is_told_plainly() -> None:
    gone = await handled(ConnectionError("refused"))
    full = await handled(disk_full())

    assert (gone.status_code, gone.headers.get("retry-after")) == (503, "1")
    assert body(gone) == {
        "errors": [
            {
                "message": "The database is unavailable; try again shortly.",
                "extensions": {"code": "UNAVAILABLE"},
            }
        ]
    }
    assert (full.status_code, full.headers.get("retry-after")) == (507, None)
    assert body(full) == {
        "errors": [
            {
                "message": "The database's disk is full: nothing was written. "
                "Try again once space is freed.",
                "extensions": {"code": "STORAGE_FULL"},
            }
        ]
    }


async def test_any_other_database_error_outside_graphql_is_not_answered_here() -> None:
    other = sa.exc.DBAPIError("SELECT", {}, sqlite3.OperationalError("no such table"))
    with pytest.raises(sa.exc.DBAPIError):
        await handled(other)


def test_a_graphql_error_shows_a_domain_error_and_masks_the_rest() -> None:
    refused = public_error(
        raised(DomainError.one(ErrorCode.NOT_FOUND, "no such number", ["input", "id"])), "r1"
    )
    full = public_error(raised(disk_full()), "r2")
    internal = public_error(raised(RuntimeError("secret-7f3a")), "r3")

    assert (refused.message, refused.path, refused.extensions) == (
        "no such number",
        ["addNumbers"],
        {"code": "NOT_FOUND", "field": ["input", "id"]},
    )
    assert full.extensions == {"code": "STORAGE_FULL", "requestId": "r2"}
    assert internal.message == "Internal error; quote request id r3 when reporting it."
    assert internal.extensions == {"code": "INTERNAL", "requestId": "r3"}


@pytest.mark.parametrize(
    ("codes", "status"),
    [
        ([ErrorCode.VALIDATION], 400),
        ([ErrorCode.VALIDATION, ErrorCode.NOT_FOUND], 404),
        ([ErrorCode.CONFLICT, ErrorCode.FORBIDDEN], 403),
    ],
)
def test_a_refusal_over_http_has_the_status_of_its_gravest_problem(
    codes: list[ErrorCode], status: int
) -> None:
    response = refusal(
        DomainError([Problem(code, code.value, number="+6561000001") for code in codes])
    )
    assert response.status_code == status
    assert body(response) == {
        "errors": [
            {"code": code.value, "message": code.value, "field": None, "number": "+6561000001"}
            for code in codes
        ]
    }


async def test_an_unexpected_error_outside_graphql_is_a_json_500_with_the_request_id(
    db: Database,
    settings: Settings,
    clock: ManualClock,
    root_token: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret-7f3a")

    monkeypatch.setattr(imports, "import_csv", broken)
    app = create_app(settings, db=db, clock=clock)
    # As a server answers it: the app's exception is not raised into the test.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://numbra.test") as client:
        with caplog.at_level(logging.ERROR, logger="numbra"):
            response = await client.post(
                "/import/numbers",
                files={"file": ("numbers.csv", b"number\n", "text/csv")},
                headers={"Authorization": f"Bearer {root_token}"},
            )

    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert response.json() == {
        "errors": [
            {
                "message": f"Internal error; quote request id {request_id} when reporting it.",
                "extensions": {"code": "INTERNAL", "requestId": request_id},
            }
        ]
    }
    assert "secret-7f3a" not in response.text
    [record] = [r for r in caplog.records if request_id in r.getMessage()]
    assert record.exc_info is not None
