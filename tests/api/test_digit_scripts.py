"""An E.164 number is ASCII: a number written in another digit script is the same number.

Full-width, Arabic-Indic, Devanagari and the other decimal digits of Unicode, and the
full-width plus, are read as ASCII wherever a number enters: addNumbers,
the named-number mutations, the number query, filters and patterns, CSV import (its
fast path, ranges and duplicates within a file) and series prefixes. None is ever
stored; the invariants checker flags a stored one, and migration 0008 reports them.
"""

import asyncio
import io
import logging
import unicodedata
from typing import Any

import phonenumbers
import pytest
import sqlalchemy as sa
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import phone
from domain.clock import ManualClock
from domain.csv import imports
from migrations import alembic_config, upgrade_async
from models import Number
from models.database import Database
from tests.support import invariants
from tests.support.api import Api
from tests.support.mutations import NumberMutations, codes
from tests.support.world import World

ASCII = "+6561000101"
# The zero of each script of decimal digits the tests write numbers in: full-width,
# Arabic-Indic, extended Arabic-Indic, Devanagari, Bengali, NKo, Thai, Lao, and
# mathematical bold.
FULL_WIDTH, ARABIC_INDIC, EXTENDED_ARABIC_INDIC, DEVANAGARI = "\uff10", "\u0660", "\u06f0", "\u0966"
ZEROS = [
    "0",
    FULL_WIDTH,
    ARABIC_INDIC,
    EXTENDED_ARABIC_INDIC,
    DEVANAGARI,
    "\u09e6",
    "\u07c0",
    "\u0e50",
    "\u0ed0",
    "\U0001d7ce",
]
FULL_WIDTH_PLUS = "\uff0b"


def in_script(text: str, zero: str) -> str:
    """`text` with its ASCII digits written in the script whose zero is `zero`."""
    return "".join(chr(ord(zero) + int(c)) if c in "0123456789" else c for c in text)


# The same number written otherwise: (name, text).
WRITTEN = [
    ("full-width digits", "+6561" + in_script("000101", FULL_WIDTH)),
    ("full-width plus and digits", FULL_WIDTH_PLUS + in_script("6561000101", FULL_WIDTH)),
    ("Arabic-Indic digits", in_script(ASCII, ARABIC_INDIC)),
    ("extended Arabic-Indic digits", in_script(ASCII, EXTENDED_ARABIC_INDIC)),
    ("Devanagari digits", in_script(ASCII, DEVANAGARI)),
    (
        "mixed scripts and spaces",
        "+65 61"
        + in_script("0", FULL_WIDTH)
        + in_script("0", ARABIC_INDIC)
        + " 0"
        + in_script("1", DEVANAGARI)
        + "01",
    ),
]
IDS = [name for name, _ in WRITTEN]
TEXTS = [text for _, text in WRITTEN]
FULL = TEXTS[0]

MUTATIONS = NumberMutations("fragment N on Number { e164 state }")


# ---- the rule ----


@pytest.mark.parametrize("text", TEXTS, ids=IDS)
def test_every_normalisation_gives_ascii(text: str) -> None:
    assert phone.normalise(text) == ASCII
    assert phone.normalise_valid(text) == ASCII
    assert phone.normalise_for_country(text, "SG") == ASCII


def test_the_fast_paths_take_ascii_digits_only() -> None:
    assert phone.CANONICAL.fullmatch(FULL) is None
    assert not phone.rule_for("SG").valid(in_script("61000101", FULL_WIDTH))
    assert phone.rule_for("SG").valid("61000101")


@settings(max_examples=300, deadline=None)
@given(
    zeros=st.lists(st.sampled_from(ZEROS), min_size=10, max_size=10),
    national=st.sampled_from(["61000101", "91234567", "63000400", "80012345"]),
    plus=st.sampled_from(["+", FULL_WIDTH_PLUS]),
)
def test_any_mix_of_digit_scripts_normalises_as_ascii_does(
    zeros: list[str], national: str, plus: str
) -> None:
    ascii_text = "+65" + national
    mixed = plus + "".join(
        in_script(c, zero) for c, zero in zip(ascii_text[1:], zeros, strict=True)
    )
    for normalise in (phone.normalise, phone.normalise_valid):
        assert normalise(mixed) == normalise(ascii_text), mixed
    assert phone.normalise_for_country(mixed, "SG") == phone.normalise_for_country(ascii_text, "SG")
    found = phone.normalise(mixed)
    assert found is None or found.isascii()


def test_unicode_digits_are_exactly_what_is_folded() -> None:
    """Every decimal digit of Unicode folds to its value; nothing else changes."""
    for code in range(0x110000):
        char = chr(code)
        folded = phone.ascii_digits(char)
        if unicodedata.category(char) == "Nd":
            assert folded == str(unicodedata.decimal(char)), hex(code)
        elif char == FULL_WIDTH_PLUS:
            assert folded == "+"
        else:
            assert folded == char, hex(code)


# ---- through the API ----


async def add(api: Api, numbers: list[str]) -> dict[str, Any]:
    fields = {"vendor": "Singtel", "country": "SG", "sku": "DID", "numbers": numbers}
    return await MUTATIONS.call(api, "addNumbers", fields)


@pytest.mark.parametrize("text", TEXTS, ids=IDS)
async def test_adding_a_number_held_in_ascii_in_another_script_is_already_exists(
    api: Api, text: str
) -> None:
    assert (await add(api, [ASCII]))["userErrors"] == []

    payload = await add(api, [text])

    assert payload["numbers"] == []
    assert codes(payload["userErrors"]) == {("ALREADY_EXISTS", ("input", "numbers", "0"), ASCII)}
    assert await stored(api) == [ASCII]


async def test_a_number_added_in_another_script_is_stored_in_ascii_and_found_by_any(
    api: Api,
) -> None:
    payload = await add(api, [FULL, in_script("+6561000102", ARABIC_INDIC)])
    assert payload["userErrors"] == []
    assert sorted(n["e164"] for n in payload["numbers"]) == [ASCII, "+6561000102"]
    assert await stored(api) == [ASCII, "+6561000102"]

    # Named again in any script, they are the same numbers: found, moved, filtered.
    for text in TEXTS:
        found = await api.gql("query($e: String!) { number(e164: $e) { e164 } }", {"e": text})
        assert found["number"] == {"e164": ASCII}, text
    locked = await MUTATIONS.ok(api, "lockNumbers", {"numbers": [TEXTS[2]], "remark": "x"})
    assert locked == [{"e164": ASCII, "state": "LOCKED"}]
    payload = await MUTATIONS.call(
        api,
        "addNumbers",
        {"vendor": "Singtel", "country": "SG", "sku": "DID", "numbers": [ASCII, TEXTS[0]]},
    )
    assert ("VALIDATION", ("input", "numbers", "1"), ASCII) in codes(payload["userErrors"])

    search = (
        "query($f: NumberFilter) { numbers(filter: $f, first: 10) { edges { node { e164 } } } }"
    )
    for spec in (
        {"numbers": [TEXTS[1]]},
        {"pattern": FULL},
        {"pattern": FULL_WIDTH_PLUS + in_script("6561*1", FULL_WIDTH)},
        {"pattern": in_script("000101", ARABIC_INDIC)},
    ):
        edges = (await api.gql(search, {"f": spec}))["numbers"]["edges"]
        assert [edge["node"]["e164"] for edge in edges] == [ASCII], spec


async def test_a_pattern_of_other_digits_finds_what_its_ascii_finds_through_the_export(
    api: Api,
) -> None:
    assert (await add(api, [ASCII, "+6561000102", "+6561000201"]))["userErrors"] == []
    for pattern, expected in (
        ("+6561" + in_script("0001*", FULL_WIDTH), 2),
        (in_script("*201", FULL_WIDTH), 1),
        (in_script("65", DEVANAGARI), 3),
    ):
        response = await api.client.get(
            "/export/numbers.csv", params={"pattern": pattern}, headers=api.auth()
        )
        assert response.status_code == 200, response.text
        assert len(response.text.strip().splitlines()) - 1 == expected, pattern


async def stored(api: Api) -> list[str]:
    async with api.db.read() as session:
        return sorted(await session.scalars(sa.select(Number.e164)))


# ---- CSV import ----

HEADER = "number,vendor,country,sku\n"


@pytest.mark.parametrize("text", TEXTS, ids=IDS)
async def test_importing_a_number_held_in_ascii_in_another_script_is_a_bad_row(
    api: Api, text: str
) -> None:
    assert (await add(api, [ASCII]))["userErrors"] == []

    response = await api.upload_csv(f"{HEADER}{text},Singtel,SG,DID\n")

    report = response.json()
    assert [(bad["line"], bad["number"]) for bad in report["bad_rows"]] == [(2, ASCII)], report
    assert "already in the inventory" in report["bad_rows"][0]["reason"]
    assert report["added"] == 0
    assert await stored(api) == [ASCII]


async def test_an_imported_file_in_other_scripts_is_stored_in_ascii(api: Api) -> None:
    text = (
        HEADER
        + f"{FULL},Singtel,SG,DID\n"
        + in_script("+6561000200-+6561000204,Singtel,SG,DID\n", ARABIC_INDIC)
        + in_script("+65 6100 0300 - +65 6100 0301", FULL_WIDTH).replace("+", FULL_WIDTH_PLUS)
        + ",Singtel,SG,DID\n"
        + "+6561000101,Singtel,SG,DID\n"
    )
    report = (await api.upload_csv(text, partial=True)).json()

    assert report["added"] == 8, report
    [twice] = report["bad_rows"]
    assert (twice["line"], twice["number"]) == (5, ASCII)
    assert "named twice" in twice["reason"]
    assert "line 2" in twice["reason"]
    expected = [ASCII] + [f"+656100020{i}" for i in range(5)] + ["+6561000300", "+6561000301"]
    assert await stored(api) == expected


# ---- what is stored already ----

NON_ASCII = FULL
# The migration that reports them; the tests go back to the revision before it.
REPORTING = "0008"


async def store_non_ascii(db: Database, clock: ManualClock) -> None:
    """A number stored with full-width digits, as the unguarded pattern let in before."""
    world = await World.create(db, clock)
    await world.add_named([ASCII])
    async with db.write() as session:
        await session.execute(sa.update(Number).values(e164=NON_ASCII))
    await world.add_named([ASCII])


async def test_the_invariants_checker_flags_a_stored_non_ascii_number(
    db: Database, clock: ManualClock
) -> None:
    await store_non_ascii(db, clock)

    violations = await invariants.check(db)

    assert [line for line in violations if "not ASCII" in line and NON_ASCII in line], violations


async def test_migration_0008_reports_stored_non_ascii_numbers_and_changes_nothing(
    db: Database, clock: ManualClock, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await store_non_ascii(db, clock)
    config = alembic_config(database_url)
    await db.dispose()
    await asyncio.to_thread(command.downgrade, config, f"{REPORTING}-1")
    with caplog.at_level(logging.WARNING):
        await upgrade_async(database_url)

    reported = [r.getMessage() for r in caplog.records if r.name == "numbra.migrations"]
    assert len(reported) == 1, reported
    assert "1 number" in reported[0], reported
    assert repr(NON_ASCII) in reported[0], reported
    async with db.read() as session:
        assert sorted(await session.scalars(sa.select(Number.e164))) == sorted([ASCII, NON_ASCII])


async def test_migration_0008_is_silent_on_a_clean_inventory(
    db: Database, clock: ManualClock, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    world = await World.create(db, clock)
    await world.add_named([ASCII])
    await db.dispose()
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), f"{REPORTING}-1")
    with caplog.at_level(logging.INFO):
        await upgrade_async(database_url)

    assert [r for r in caplog.records if r.name == "numbra.migrations"] == []


# ---- series and the file reader ----


async def test_a_series_prefix_in_other_digits_is_stored_in_ascii(api: Api) -> None:
    query = """mutation($input: CreateSeriesInput!) {
      createSeries(input: $input) { series { prefix } userErrors { code message } }
    }"""
    payload = (
        await api.gql(
            query,
            {
                "input": {
                    "name": "SG 61",
                    "prefix": FULL_WIDTH_PLUS + in_script("6561", FULL_WIDTH),
                    "country": "SG",
                }
            },
        )
    )["createSeries"]
    assert payload == {"series": {"prefix": "+6561"}, "userErrors": []}


async def test_a_domain_import_of_other_digits_agrees_with_phonenumbers(
    db: Database, clock: ManualClock
) -> None:
    world = await World.create(db, clock)
    text = HEADER + "".join(
        f"{in_script('+656100' + f'{i:04d}', zero)},V,SG,DID\n" for i, zero in enumerate(ZEROS)
    )
    report = await imports.import_csv(db, world.caller, io.StringIO(text))
    assert (report.added, report.bad_rows) == (len(ZEROS), [])
    async with db.read() as session:
        found = sorted(await session.scalars(sa.select(Number.e164)))
    expected = sorted(
        phonenumbers.format_number(
            phonenumbers.parse(f"+656100{i:04d}"), phonenumbers.PhoneNumberFormat.E164
        )
        for i in range(len(ZEROS))
    )
    assert found == expected
