"""A hypothesis state machine over paid terms, on both databases: assign with a term,
cancel, restore, renew, set cycles, and the clock moving the sweep's renewals and service
ends. After every sweep it checks what a customer relies on: a term's paid-until only
moves forward; cycles never go below 0; a renewing term renews every period that fell due
and never ends; a cancelled or 0-cycle term never renews; a refused action changes nothing."""

import asyncio
from collections.abc import Coroutine
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from domain import numbers, terms
from domain.clock import ManualClock
from domain.notices import NoticeRules
from domain.policy import Policy
from domain.sweep import sweep
from domain.terms import TermInput, add_months
from models import Number, NumberState, Organization, OrganizationKind
from models.database import Database
from tests.support.databases import empty, pg_database
from tests.support.lifecycle import attempt, state_problems
from tests.support.world import World

pytestmark = pytest.mark.slow

NUMBERS = ["+6562000001", "+6562000002", "+6562000003"]
POLICY = Policy()
T = TypeVar("T")


@dataclass(frozen=True)
class Seen:
    """What the machine needs of a number to judge the next step."""

    state: NumberState
    paid_until: datetime | None
    period: int | None
    cycles: int | None
    cancelled: bool
    renewed: int
    ended: int

    @property
    def in_service(self) -> bool:
        return self.state is NumberState.ASSIGNED and self.paid_until is not None


async def _world(url: str, clock: ManualClock) -> tuple[World, Organization]:
    db = Database(url, pool_size=2)
    await empty(db)
    world = await World.create(db, clock)
    customer = await world.org("Customer", OrganizationKind.CUSTOMER)
    await world.add_named(NUMBERS)
    return world, customer


class TermsMachine(RuleBasedStateMachine):
    database_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock(datetime(2027, 1, 31, 12, 0, tzinfo=UTC))
        self.world, self.customer = self._run(_world(self.database_url, self.clock))

    def teardown(self) -> None:
        self._run(self.world.db.dispose())
        self.loop.close()

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(call)

    def _seen(self, e164: str) -> Seen:
        row: Number = self._run(self.world.row(e164))
        renewed = len(self._run(self.world.events(e164, "RENEWED")))
        ended = len(self._run(self.world.events(e164, "SERVICE_ENDED")))
        return Seen(
            row.state,
            row.paid_until,
            row.billing_period_months,
            row.billing_cycles,
            row.cancelled_at is not None,
            renewed,
            ended,
        )

    def _act(self, e164: str, operation: object, **kw: object) -> None:
        """Run an action; if it is refused, nothing about the number may have changed."""
        before = self._seen(e164)
        error = self._run(attempt(self.world.run(operation, [e164], **kw)))  # type: ignore[arg-type]
        after = self._seen(e164)
        if error is not None:
            assert after == before, (error, before, after)
        elif before.paid_until is not None and after.paid_until is not None:
            assert after.paid_until >= before.paid_until, (before, after)

    @initialize(
        chosen=st.lists(
            st.tuples(st.sampled_from(terms.PERIODS), st.none() | st.integers(0, 3)),
            min_size=len(NUMBERS),
            max_size=len(NUMBERS),
        )
    )
    def every_number_starts_in_service(self, chosen: list[tuple[int, int | None]]) -> None:
        for e164, (period, cycles) in zip(NUMBERS, chosen, strict=True):
            self.assign(e164, period, cycles)
            assert self._seen(e164).in_service

    @rule(
        e164=st.sampled_from(NUMBERS),
        period=st.sampled_from(terms.PERIODS),
        cycles=st.none() | st.integers(0, 3),
    )
    def assign(self, e164: str, period: int, cycles: int | None) -> None:
        self._act(
            e164,
            numbers.assign,
            subscription_uuid=uuid4(),
            owner_uuid=self.customer.uuid,
            remark=None,
            billing=TermInput(period, None, cycles),
        )

    @rule(e164=st.sampled_from(NUMBERS))
    def cancel(self, e164: str) -> None:
        self._act(e164, terms.cancel, remark=None)

    @rule(e164=st.sampled_from(NUMBERS))
    def restore(self, e164: str) -> None:
        self._act(e164, terms.restore, remark=None)

    @rule(e164=st.sampled_from(NUMBERS), periods=st.integers(1, 3))
    def renew(self, e164: str, periods: int) -> None:
        self._act(e164, terms.renew, periods=periods, remark=None)

    @rule(e164=st.sampled_from(NUMBERS), cycles=st.none() | st.integers(0, 3))
    def set_cycles(self, e164: str, cycles: int | None) -> None:
        self._act(e164, terms.set_cycles, cycles=cycles, remark=None)

    @rule(days=st.integers(1, 200))
    def time_passes_and_the_sweep_runs(self, days: int) -> None:
        before = {e164: self._seen(e164) for e164 in NUMBERS}
        self.clock.advance(timedelta(days=days))
        now = self.clock.now()
        self._run(sweep(self.world.db, self.clock, NoticeRules(), POLICY))
        for e164, old in before.items():
            new = self._seen(e164)
            renewed, ended = new.renewed - old.renewed, new.ended - old.ended
            if not old.in_service:
                assert (renewed, ended) == (0, 0), (old, new)
                continue
            assert old.paid_until is not None
            assert old.period is not None
            due, paid = 0, old.paid_until
            while paid <= now:
                due, paid = due + 1, add_months(paid, old.period)
            if old.cancelled or old.cycles == 0:
                assert renewed == 0, ("a term that does not renew renewed", old, new)
                assert ended == (1 if due else 0), (old, new)
            elif old.cycles is None:
                assert (renewed, ended) == (due, 0), ("a renewing term", old, new)
                assert new.paid_until == paid
            else:
                assert renewed == min(due, old.cycles), (old, new)
                assert ended == (1 if due > old.cycles else 0), (old, new)
            if new.in_service:
                assert new.paid_until is not None
                assert new.paid_until >= old.paid_until

    @invariant()
    def every_number_is_consistent(self) -> None:
        for e164 in NUMBERS:
            row: Number = self._run(self.world.row(e164))
            assert state_problems(row) == []
            assert row.billing_cycles is None or row.billing_cycles >= 0


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_random_term_sequences_keep_their_promises(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        if backend == "sqlite":
            path = tmp_path / "terms.db"
            path.write_bytes(request.getfixturevalue("sqlite_template").read_bytes())
            url = f"sqlite+aiosqlite:///{path}"
        else:
            url = stack.enter_context(pg_database("numbra_terms_machine"))
        machine = type("Machine", (TermsMachine,), {"database_url": url})
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=12,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
