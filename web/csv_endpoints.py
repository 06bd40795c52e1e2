"""CSV over HTTP: GET /export/numbers.csv and POST /import/numbers.

Both need a bearer token, as /graphql does: web/auth.py checks it before they run.
Expected failures are JSON `{"errors": [{code, message, field, number}]}` with a
400-level status.
"""

import dataclasses
import io
import json
from collections.abc import AsyncIterator, Iterable, Sequence

import sqlalchemy as sa
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from domain import organizations, search
from domain.access import Caller, Viewer
from domain.clock import Clock
from domain.csv import exports, imports, parameters, sources
from domain.errors import DomainError, ErrorCode, Problems
from domain.policy import Policy
from models import Role
from models.database import BULK_ROWS, Database
from schema.errors import refusal
from settings import Settings
from web.auth import viewer_of
from web.graphql import NO_STORE


def csv_routes(
    db: Database, settings: Settings, clock: Clock, authentication: Sequence[Middleware]
) -> list[Route]:
    endpoints = CsvEndpoints(db, settings, clock)
    return [
        Route(
            "/export/numbers.csv",
            endpoints.export_numbers,
            methods=["GET"],
            middleware=authentication,
        ),
        Route(
            "/import/numbers",
            endpoints.import_numbers,
            methods=["POST"],
            middleware=authentication,
        ),
    ]


def authenticated_viewer(request: Request) -> Viewer:
    viewer = viewer_of(request.scope)
    assert viewer is not None, "the routes' authentication lets no request without one in"
    return viewer


class CsvEndpoints:
    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.policy = Policy.from_settings(settings)
        self.clock = clock

    async def export_numbers(self, request: Request) -> Response:
        """Every number the filter in the query string selects, as CSV, streamed."""
        viewer = authenticated_viewer(request)
        problems = Problems()
        spec = parameters.filter_from_params(request.query_params.multi_items(), problems)
        try:
            async with self.db.read() as session:
                where = await search.build(session, viewer, spec, problems)
            problems.raise_if_any()
        except DomainError as error:
            refused = refusal(error)
            refused.headers["Cache-Control"] = NO_STORE
            return refused
        return StreamingResponse(
            self._csv(where),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": 'attachment; filename="numbers.csv"',
                # A tenant's inventory: no cache keeps it.
                "Cache-Control": NO_STORE,
            },
        )

    async def _csv(self, where: Sequence[sa.ColumnElement[bool]]) -> AsyncIterator[str]:
        """The CSV, chunk by chunk. The filter was checked whole before the first byte; a
        failure after it (the database gone) is raised on: it is logged with the request
        id (schema/errors.py), and the server ends the connection without the last chunk,
        so the client sees a transfer cut short (httpx's RemoteProtocolError, curl's exit
        18), never a file that looks whole."""
        async with self.db.read() as session:
            async for chunk in exports.csv_chunks(session, where):
                yield chunk

    async def import_numbers(self, request: Request) -> Response:
        """Load the multipart field `file`; answer with the import's report: 200, or 422
        if it wrote nothing because of bad rows (not a dry run)."""
        viewer = authenticated_viewer(request)
        try:
            viewer.require(Role.ADMIN)
            _check_import_params(request.query_params.multi_items())
            dry_run, partial = (_flag(request, name) for name in ("dry_run", "partial"))
        except DomainError as error:
            return refusal(error)
        organization_id = request.query_params.get("organization_id")
        if organization_id is not None:
            organization_id = parameters.global_id(organization_id, organizations.TYPE_NAME)
        try:
            async with request.form(max_files=1, max_fields=MAX_FORM_FIELDS) as form:
                _check_form_fields(form.keys())
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    raise DomainError.one(
                        ErrorCode.VALIDATION, "send the CSV as the multipart field 'file'", ["file"]
                    )
                mapping = _mapping(form.get("mapping"))
                sheet = form.get("sheet")
                if sheet is not None and not isinstance(sheet, str):
                    raise DomainError.one(ErrorCode.VALIDATION, "sheet must be text", ["sheet"])
                caller = Caller(viewer, self.clock, self.policy)
                head = upload.file.read(len(sources.XLSX_MAGIC))
                upload.file.seek(0)
                if sources.is_xlsx(head):
                    workbook = sources.Workbook(upload.file, sheet)
                    workbook.check()
                    report = await imports.import_csv(
                        self.db,
                        caller,
                        workbook,
                        organization_id=organization_id,
                        mapping=mapping,
                        dry_run=dry_run,
                        partial=partial,
                    )
                else:
                    if sheet is not None:
                        message = "sheet is for .xlsx files; this one is CSV"
                        raise DomainError.one(ErrorCode.VALIDATION, message, ["sheet"])
                    # utf-8-sig: a byte-order mark (as spreadsheets save one) is no column name.
                    text = io.TextIOWrapper(upload.file, encoding="utf-8-sig", newline="")
                    try:
                        report = await imports.import_csv(
                            self.db,
                            caller,
                            text,
                            organization_id=organization_id,
                            mapping=mapping,
                            dry_run=dry_run,
                            partial=partial,
                        )
                    finally:
                        # The form closes the upload; the wrapper must not close it first.
                        text.detach()
        except MultiPartException as exc:
            return refusal(DomainError.one(ErrorCode.VALIDATION, exc.message, ["file"]))
        except DomainError as error:
            response = refusal(error)
            if any(problem.code is ErrorCode.LIMIT_EXCEEDED for problem in error.problems):
                # The file names more numbers than one import may: too large, whatever else.
                response.status_code = 413
            return response
        if report.added >= BULK_ROWS:
            await self.db.refresh_statistics()
        refused = report.bad_row_count > 0 and report.added == 0 and not report.dry_run
        return JSONResponse(dataclasses.asdict(report), status_code=422 if refused else 200)


# What POST /import/numbers takes: these query parameters, and the form's field `file`.
IMPORT_PARAMS = ("dry_run", "partial", "organization_id")
IMPORT_FORM_FIELDS = ("file", "mapping", "sheet")
# A form holding more fields than this is refused without naming them.
MAX_FORM_FIELDS = 8


def _check_import_params(pairs: Sequence[tuple[str, str]]) -> None:
    """Every query parameter is one the import takes, given once."""
    problems = Problems()
    seen = set()
    for name, _ in pairs:
        if name not in IMPORT_PARAMS:
            message = f"{name!r} is not a parameter of the import: use {', '.join(IMPORT_PARAMS)}"
            problems.add(ErrorCode.VALIDATION, message, [name])
        elif name in seen:
            problems.add(ErrorCode.VALIDATION, f"{name} is given twice", [name])
        seen.add(name)
    problems.raise_if_any()


def _check_form_fields(names: Iterable[str]) -> None:
    problems = Problems()
    for name in dict.fromkeys(names):
        if name not in IMPORT_FORM_FIELDS:
            where = "a query parameter, not a form field" if name in IMPORT_PARAMS else "not taken"
            fields = ", ".join(map(repr, IMPORT_FORM_FIELDS))
            message = f"{name!r} is {where}: the form holds only the fields {fields}"
            problems.add(ErrorCode.VALIDATION, message, [name])
    problems.raise_if_any()


def _mapping(field: object) -> dict[str, str] | None:
    """The form's `mapping`: a JSON object of our column names to the file's headers."""
    if field is None:
        return None
    try:
        mapping = json.loads(field) if isinstance(field, str) else None
    except ValueError:
        mapping = None
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        message = 'mapping must be a JSON object of column names to headers: {"number": "DID"}'
        raise DomainError.one(ErrorCode.VALIDATION, message, ["mapping"])
    return mapping


def _flag(request: Request, name: str) -> bool:
    text = request.query_params.get(name)
    if text is None:
        return False
    flag = parameters.parse_bool(text)
    if flag is None:
        raise DomainError.one(ErrorCode.VALIDATION, f"{name} must be true or false", [name])
    return flag
