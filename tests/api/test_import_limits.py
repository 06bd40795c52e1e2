"""What one import file may ask of the server, and ranges written as people write them.

- The numbers a file names (a range counts as the numbers it would expand to) are
  capped by NUMBRA_MAX_IMPORT_NUMBERS. They are summed before anything is expanded,
  checked or written: a file over the cap is refused whole (HTTP 413, naming the line
  where the cap was passed), in every mode, without a statement to the database. A
  file at the cap goes in.
- A range's ends may be written in any notation a single number may (international
  with spaces or dashes, 00, national), joined by " - " (or "-" before a "+").
- A number named twice in a file is reported naming the line that named it first.
"""

import io
from typing import Any

import pytest
import sqlalchemy as sa

from domain.access import Caller
from domain.clock import ManualClock
from domain.csv import imports
from domain.errors import DomainError, ErrorCode
from domain.policy import Policy
from models import Number
from models.database import Database
from settings import Settings
from tests.support.api import Api
from tests.support.databases import StatementCounter
from tests.support.world import World

HEADER = "number,vendor,country,sku\n"
CAP = 25


def ranges(count: int, size: int, first: int = 6561000000) -> str:
    """`count` rows of a range of `size` numbers each, one after another."""
    rows = []
    for n in range(count):
        start = first + n * size
        rows.append(f"+{start}-+{start + size - 1},Singtel,SG,DID\n")
    return "".join(rows)


# The probe's file: 80 ranges of 100,000 numbers, 2.5 KB naming 8,000,000 numbers.
PROBE = HEADER + ranges(80, 100_000).replace(",Singtel,SG,DID", ",V,SG,D")


async def stored(db: Database) -> int:
    async with db.read() as session:
        return (await session.execute(sa.select(sa.func.count()).select_from(Number))).scalar_one()


def caller(world: World, cap: int | None = None) -> Caller:
    policy = Policy() if cap is None else Policy(max_import_numbers=cap)
    return Caller(world.caller.viewer, world.clock, policy)


MODES = [
    pytest.param({}, id="atomic"),
    pytest.param({"partial": True}, id="partial"),
    pytest.param({"dry_run": True}, id="dry-run"),
]


# ---- the cap ----


@pytest.mark.parametrize("mode", MODES)
async def test_the_probes_file_is_refused_before_any_statement(
    db: Database, clock: ManualClock, statements: StatementCounter, mode: dict[str, Any]
) -> None:
    assert len(PROBE) < 2_600
    world = await World.create(db, clock)
    statements.reset()

    with pytest.raises(DomainError) as refused:
        await imports.import_csv(db, caller(world), io.StringIO(PROBE), **mode)

    [problem] = refused.value.problems
    assert problem.code is ErrorCode.LIMIT_EXCEEDED
    assert problem.field == ("file",)
    # 20 ranges make the default cap of 2,000,000 exactly; the 21st, on line 22, passes it.
    assert problem.message.startswith("line 22: "), problem.message
    assert "2000000" in problem.message.replace(",", "")
    assert "NUMBRA_MAX_IMPORT_NUMBERS" in problem.message
    assert problem.number == "+6563000000-+6563099999"
    assert statements.count == 0
    assert await stored(db) == 0


@pytest.mark.parametrize("mode", MODES)
async def test_a_file_at_the_cap_goes_in_and_one_number_more_is_refused_whole(
    db: Database, clock: ManualClock, mode: dict[str, Any]
) -> None:
    world = await World.create(db, clock)
    singles = "".join(f"+65620000{n:02d},Singtel,SG,DID\n" for n in range(5))
    at_cap = HEADER + ranges(2, 10) + singles

    over = at_cap + "+6562000099,Singtel,SG,DID\n"
    with pytest.raises(DomainError) as refused:
        await imports.import_csv(db, caller(world, CAP), io.StringIO(over), **mode)
    assert refused.value.problems[0].message.startswith("line 9: "), refused.value.problems
    assert await stored(db) == 0

    report = await imports.import_csv(db, caller(world, CAP), io.StringIO(at_cap), **mode)
    assert (report.valid, report.bad_rows) == (CAP, [])
    assert await stored(db) == (0 if mode.get("dry_run") else CAP)


async def test_a_range_that_passes_the_cap_is_named_and_bad_rows_count_as_named(
    db: Database, clock: ManualClock
) -> None:
    world = await World.create(db, clock)
    text = HEADER + "12345,Singtel,SG,DID\n" + ranges(1, 24) + ranges(1, 2, first=6562000000)
    with pytest.raises(DomainError) as refused:
        await imports.import_csv(db, caller(world, CAP), io.StringIO(text))
    [problem] = refused.value.problems
    assert problem.message.startswith("line 4: "), problem.message
    assert problem.number == "+6562000000-+6562000001"


async def test_ranges_over_the_row_limit_are_not_counted_as_expanded(
    db: Database, clock: ManualClock
) -> None:
    """A range over MAX_RANGE is a bad row, never expanded: it counts as one row."""
    world = await World.create(db, clock)
    text = HEADER + "+6561000000-+6562000000,Singtel,SG,DID\n" + ranges(1, 20)
    report = await imports.import_csv(db, caller(world, CAP), io.StringIO(text), partial=True)
    assert [bad.line for bad in report.bad_rows] == [2]
    assert report.added == 20


class TestOverHttp:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(_env_file=None, database_url=database_url, max_import_numbers=CAP)

    async def test_a_file_over_the_cap_is_a_413_naming_the_line(self, api: Api) -> None:
        modes: list[dict[str, Any]] = [{}, {"partial": True}, {"dry_run": True}]
        for params in modes:
            response = await api.upload_csv(HEADER + ranges(3, 10), **params)
            assert response.status_code == 413, response.text
            [error] = response.json()["errors"]
            assert error["code"] == "LIMIT_EXCEEDED"
            assert error["message"].startswith("line 4: "), error
            assert error["field"] == ["file"]
        assert await stored(api.db) == 0

        response = await api.upload_csv(HEADER + ranges(2, 10) + ranges(1, 5, first=6562000000))
        assert response.status_code == 200, response.text
        assert response.json()["added"] == CAP


# ---- ranges in any notation ----


async def test_a_range_may_be_written_in_any_notation_on_both_ends(
    db: Database, clock: ManualClock
) -> None:
    world = await World.create(db, clock)
    text = HEADER + (
        "+65 6100 0400 - +65 6100 0402,Singtel,SG,DID\n"
        "6100 0500 - 6100 0501,Singtel,SG,DID\n"
        "0065 6100 0600 \u2013 0065 6100 0601,Singtel,SG,DID\n"
        "+65-6100-0700-+65-6100-0701,Singtel,SG,DID\n"
        "+65 6100 0800 - 6100 0801,Singtel,SG,DID\n"
        "(+65) 6100.0900 - (+65) 6100.0901,Singtel,SG,DID\n"
        "+65 6100-1000,Singtel,SG,DID\n"
        "+65 6100 - 1100,Singtel,SG,DID\n"
    )
    report = await imports.import_csv(db, world.caller, io.StringIO(text))
    assert report.bad_rows == []
    async with db.read() as session:
        found = sorted(await session.scalars(sa.select(Number.e164)))
    assert found == [
        "+6561000400",
        "+6561000401",
        "+6561000402",
        "+6561000500",
        "+6561000501",
        "+6561000600",
        "+6561000601",
        "+6561000700",
        "+6561000701",
        "+6561000800",
        "+6561000801",
        "+6561000900",
        "+6561000901",
        "+6561001000",
        "+6561001100",
    ]


async def test_a_range_in_notation_is_checked_as_one_in_e164_is(
    db: Database, clock: ManualClock
) -> None:
    world = await World.create(db, clock)
    text = HEADER + (
        "+65 6100 0410 - +65 6100 0400,Singtel,SG,DID\n"
        "+65 6100 0400 - +65 6100 04000,Singtel,SG,DID\n"
        "+44 20 7946 0000 - +44 20 7946 0009,Singtel,SG,DID\n"
        "+65 6100 0400 - nonsense,Singtel,SG,DID\n"
    )
    report = await imports.import_csv(db, world.caller, io.StringIO(text))
    reasons = {bad.line: bad.reason for bad in report.bad_rows}
    assert "range runs backwards: +6561000410 is after +6561000400" in reasons[2]
    assert "range ends +6561000400 and +65610004000 differ in length" in reasons[3]
    assert "+442079460000 and 9 more numbers of the range are not valid for SG" in reasons[4]
    assert "is not a valid number of SG" in reasons[5]


async def test_a_number_named_twice_is_reported_with_the_line_that_named_it_first(
    db: Database, clock: ManualClock
) -> None:
    world = await World.create(db, clock)
    text = HEADER + (
        "+6561000001,Singtel,SG,DID\n"
        "+65 6100 0000 - +65 6100 0009,Singtel,SG,DID\n"
        "+6561000020,Singtel,SG,DID\n"
        "+65 6100 0020,Singtel,SG,DID\n"
    )
    report = await imports.import_csv(db, world.caller, io.StringIO(text), partial=True)
    reasons = {bad.line: (bad.number, bad.reason) for bad in report.bad_rows}
    assert reasons == {
        3: ("+6561000001", "+6561000001 is named twice: first on line 2"),
        5: ("+6561000020", "+6561000020 is named twice: first on line 4"),
    }
