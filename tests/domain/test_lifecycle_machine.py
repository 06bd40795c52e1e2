"""A hypothesis state machine drives random actions on a few numbers, on both databases,
and after every step checks the invariants against a model of the lifecycle table.

Port orders are among the actions (one number each): a port-in of a DELETED number, a
port-out, an order completed or cancelled; the model remembers what a port-out left."""

import asyncio
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from domain.access import Caller
from domain.clock import ManualClock
from models import OrganizationKind
from models.database import Database
from tests.support import invariants
from tests.support.databases import empty, pg_database
from tests.support.lifecycle import EXPECTED, Actions, attempt, state_problems
from tests.support.world import World

pytestmark = pytest.mark.slow

NUMBERS = ["+6561000001", "+6561000002", "+6561000003"]
ACTIONS = sorted({action for _, action in EXPECTED} | {"delete", "recover"})
SUBSCRIPTION_ACTIONS = {"expire_subscription", "terminate_subscription", "reactivate_subscription"}


@dataclass
class Modelled:
    state: str
    held: bool = False
    expires_at: datetime | None = None
    events: int = 1  # ADDED
    # What a port-out left (state, held, end): a cancelled port-out returns to it.
    prior: tuple[str, bool, datetime | None] | None = None


async def _fresh_world(url: str, clock: ManualClock) -> Actions:
    db = Database(url, pool_size=2)
    await empty(db)
    world = await World.create(db, clock)
    customer = await world.org("Customer", OrganizationKind.CUSTOMER)
    for number in NUMBERS:
        await world.add_named([number])
    return Actions(world, customer)


class LifecycleMachine(RuleBasedStateMachine):
    database_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock(datetime(2026, 3, 2, 9, 0).astimezone())
        self.actions = self.loop.run_until_complete(_fresh_world(self.database_url, self.clock))
        self.world = self.actions.world
        self.model = {number: Modelled("AVAILABLE") for number in NUMBERS}

    def teardown(self) -> None:
        self.loop.run_until_complete(self.world.db.dispose())
        self.loop.close()

    @property
    def policy(self) -> Caller:
        return self.world.caller

    def _predict(self, number: str, action: str) -> set[str]:
        """The numbers the action should move; empty if it should be refused."""
        now = self.clock.now()
        if action == "reactivate_subscription":
            return {
                n
                for n, m in self.model.items()
                if m.state == "RESERVED" and m.held and m.expires_at and m.expires_at > now
            }
        if action in SUBSCRIPTION_ACTIONS:
            # A blocked number's subscription ends as an assigned one's does.
            return {n for n, m in self.model.items() if m.state in ("ASSIGNED", "BLOCKED")}
        modelled = self.model[number]
        key = "HELD" if modelled.state == "RESERVED" and modelled.held else modelled.state
        if (key, action) not in EXPECTED:
            return set()
        if (
            action == "extend"
            and modelled.expires_at
            and modelled.expires_at >= now + timedelta(days=60)
        ):
            return set()  # the new end must be later than the current one
        return {number}

    def _apply_to_model(self, number: str, action: str) -> None:
        now, policy = self.clock.now(), self.policy.policy
        modelled = self.model[number]
        key = "HELD" if modelled.state == "RESERVED" and modelled.held else modelled.state
        new_state = EXPECTED[(key, action)]
        modelled.events += 1
        if action == "port_out":
            modelled.prior = (modelled.state, modelled.held, modelled.expires_at)
        if action == "cancel_port" and modelled.state == "PORTING_OUT":
            assert modelled.prior is not None
            modelled.state, modelled.held, modelled.expires_at = modelled.prior
            modelled.prior = None
            return
        if new_state != modelled.state:
            modelled.held, modelled.expires_at = False, None
        modelled.state = new_state
        if action == "reserve":
            modelled.expires_at = now + policy.free_reservation
        elif action == "extend":
            modelled.expires_at = now + timedelta(days=60)
        elif action == "lock":
            modelled.expires_at = now + policy.lock
        elif action == "expire_subscription":
            modelled.held, modelled.expires_at = True, now + policy.expired_hold
        elif action == "terminate_subscription":
            modelled.held, modelled.expires_at = True, now + policy.terminated_hold

    @rule(number=st.sampled_from(NUMBERS), action=st.sampled_from(ACTIONS))
    def act(self, number: str, action: str) -> None:
        moved = self._predict(number, action)
        before = {n: self.loop.run_until_complete(self.world.row(n)) for n in NUMBERS}
        error = self.loop.run_until_complete(attempt(getattr(self.actions, action)(number)))
        if not moved:
            assert error is not None, f"{action} on {number} should be refused: {self.model}"
            for n in NUMBERS:
                after = self.loop.run_until_complete(self.world.row(n))
                assert (after.state, after.expires_at) == (before[n].state, before[n].expires_at)
            return
        assert error is None, (action, number, error, self.model)
        for n in moved:
            self._apply_to_model(n, action)

    @rule(hours=st.integers(min_value=1, max_value=24 * 40))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(timedelta(hours=hours))

    @invariant()
    def numbers_agree_with_the_model(self) -> None:
        for number, modelled in self.model.items():
            row = self.loop.run_until_complete(self.world.row(number))
            assert state_problems(row) == []
            assert row.state.value == modelled.state
            assert row.expires_at == modelled.expires_at
            history = self.loop.run_until_complete(self.world.history_length(number))
            assert history == modelled.events
        # Across numbers and tables: counters, history, port orders.
        assert self.loop.run_until_complete(invariants.check(self.world.db)) == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_random_action_sequences_keep_the_invariants(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        if backend == "sqlite":
            path = tmp_path / "machine.db"
            path.write_bytes(request.getfixturevalue("sqlite_template").read_bytes())
            url = f"sqlite+aiosqlite:///{path}"
        else:
            # A database of its own: the machine leaves its last inventory behind.
            url = stack.enter_context(pg_database("numbra_machine"))
        machine = type("Machine", (LifecycleMachine,), {"database_url": url})
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=12,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
