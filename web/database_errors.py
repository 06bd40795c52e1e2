"""Database failures outside any GraphQL resolver, such as the token lookup that runs
before one, or a CSV import: a database that is not there (restarting, crashed) gets
503 with Retry-After, a full disk 507, each with a clear message, never a 500.

Inside resolvers, schema/extensions.py reports the same failures with the same words.
"""

import logging

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from schema.extensions import DATABASE_FAILURES

log = logging.getLogger("numbra.web")
STATUS = {"UNAVAILABLE": 503, "STORAGE_FULL": 507}
HEADERS = {"UNAVAILABLE": {"Retry-After": "1"}}


async def database_failed(request: Request, exc: Exception) -> Response:
    for applies, code, message in DATABASE_FAILURES:
        if applies(exc):
            log.warning("%s for %s %s: %r", code, request.method, request.url.path, exc)
            return JSONResponse(
                {"errors": [{"message": message, "extensions": {"code": code}}]},
                status_code=STATUS[code],
                headers=HEADERS.get(code),
            )
    raise exc


EXCEPTION_HANDLERS = {
    ConnectionError: database_failed,
    sa.exc.DBAPIError: database_failed,
}
