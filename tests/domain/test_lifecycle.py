"""The lifecycle table, exhaustively: every action from every state, through the domain layer.

The expected table (tests/support/lifecycle.py) is written from DESIGN.md by hand, not read
from the code.
"""

import pytest

from domain.allowed import NumberAction, allowed_actions
from domain.clock import ManualClock
from domain.errors import ErrorCode
from domain.lifecycle import RETURNS, TRANSITIONS, Action
from models import NumberState, OrganizationKind
from models.database import Database
from tests.support.lifecycle import (
    ACTIONS,
    ALSO_REFUSED_WITH,
    EXPECTED,
    SETUP_STATES,
    SETUPS,
    SUBSCRIPTION,
    Actions,
    attempt,
    state_problems,
)
from tests.support.world import World

NUMBER = "+6561000001"
# The actions a client names per number (allowedActions), by the test's name for them.
OFFERED = {
    "reserve": NumberAction.RESERVE,
    "extend": NumberAction.EXTEND,
    "release": NumberAction.RELEASE,
    "assign": NumberAction.ASSIGN,
    "lock": NumberAction.LOCK,
    "unlock": NumberAction.UNLOCK,
    "delete": NumberAction.DELETE,
    "recover": NumberAction.RECOVER,
    "edit": NumberAction.EDIT,
    "cancel": NumberAction.CANCEL,
    "restore": NumberAction.RESTORE,
    "renew": NumberAction.RENEW,
    "set_cycles": NumberAction.SET_BILLING_CYCLES,
    "block": NumberAction.BLOCK,
    "unblock": NumberAction.UNBLOCK,
}


@pytest.fixture
async def world(db: Database, clock: ManualClock) -> World:
    return await World.create(db, clock)


@pytest.fixture
async def actions(world: World) -> Actions:
    return Actions(world, await world.org("Customer", OrganizationKind.CUSTOMER))


# The fast loop (`make test-fast`) runs every action from each plain state; the variants
# of a state (paid terms, porting, blocks over a term) run with the slow tests.
PLAIN_STARTS = {"AVAILABLE", "RESERVED", "HELD", "LOCKED", "ASSIGNED", "DELETED", "BLOCKED"}


@pytest.mark.parametrize(
    "start",
    [
        start if start in PLAIN_STARTS else pytest.param(start, marks=pytest.mark.slow)
        for start in SETUPS
    ],
)
@pytest.mark.parametrize("action", ACTIONS)
async def test_every_action_from_every_state(
    world: World, actions: Actions, start: str, action: str
) -> None:
    await world.add_named([NUMBER])
    for step in SETUPS[start]:
        assert await attempt(getattr(actions, step)(NUMBER)) is None
    before = await world.row(NUMBER)
    events_before = await world.history_length(NUMBER)
    offered = allowed_actions(before, world.caller.viewer)

    error = await attempt(getattr(actions, action)(NUMBER))

    after = await world.row(NUMBER)
    expected = EXPECTED.get((start, action))
    if action in OFFERED:
        # allowedActions (an ADMIN's: every role) offers exactly the moves that work.
        assert (OFFERED[action] in offered) == (expected is not None), offered
    if expected is None:
        assert error is not None, f"{action} from {start} should be refused"
        # Subscription events select numbers by subscription: one that is not on it
        # is simply not found; anything else named directly is an invalid transition.
        assert {p.code for p in error.problems} <= {
            ErrorCode.INVALID_TRANSITION,
            ErrorCode.NOT_FOUND,
            *([ALSO_REFUSED_WITH[action]] if action in ALSO_REFUSED_WITH else []),
        }
        assert after.state is before.state
        assert after.state_changed_at == before.state_changed_at
        assert await world.history_length(NUMBER) == events_before
    else:
        assert error is None, error
        assert after.state.value == expected
        assert await world.history_length(NUMBER) == events_before + 1
    assert state_problems(after) == []


def test_the_table_has_exactly_the_moves_of_the_design() -> None:
    by_action = {
        "reserve": Action.RESERVE,
        "extend": Action.EXTEND,
        "release": Action.RELEASE,
        "assign": Action.ASSIGN,
        "lock": Action.LOCK,
        "unlock": Action.UNLOCK,
        "delete": Action.DELETE,
        "recover": Action.RECOVER,
        "edit": Action.EDIT,
        "expire_subscription": Action.SUBSCRIPTION_EXPIRED,
        "terminate_subscription": Action.SUBSCRIPTION_TERMINATED,
        "reactivate_subscription": Action.SUBSCRIPTION_REACTIVATED,
        "cancel": Action.CANCEL,
        "restore": Action.RESTORE,
        "renew": Action.RENEW,
        "set_cycles": Action.SET_BILLING_CYCLES,
        "port_in": Action.PORT_IN,
        "port_out": Action.PORT_OUT,
        "block": Action.BLOCK,
        "unblock": Action.UNBLOCK,
        "set_registration": Action.SET_REGISTRATION,
        "set_feature": Action.SET_FEATURE,
    }
    # Closing a port order: one action per direction; cancelling a port-out returns.
    closing = {
        ("complete_port", "PORTING_IN"): Action.COMPLETE_PORT_IN,
        ("complete_port", "PORTING_OUT"): Action.COMPLETE_PORT_OUT,
        ("cancel_port", "PORTING_IN"): Action.CANCEL_PORT,
    }
    by_action.update({f"{name} {start}": action for (name, start), action in closing.items()})
    expected = {
        (
            by_action.get(action, by_action.get(f"{action} {start}")),
            NumberState(SETUP_STATES[start]),
        ): NumberState(to)
        for (start, action), to in EXPECTED.items()
        if (start, action) != ("PORTING_OUT", "cancel_port")
    }
    implemented = {
        (action, start): to
        for action, moves in TRANSITIONS.items()
        if action in by_action.values()
        for start, to in moves.items()
    }
    assert implemented == expected
    assert TRANSITIONS[Action.SERVICE_END] == {
        NumberState.ASSIGNED: NumberState.RESERVED,
        NumberState.BLOCKED: NumberState.RESERVED,
    }
    # A swap takes a blocked number out of its subscription as it takes an assigned one.
    assert TRANSITIONS[Action.SWAP_OUT] == {
        NumberState.ASSIGNED: NumberState.RESERVED,
        NumberState.BLOCKED: NumberState.RESERVED,
    }
    assert TRANSITIONS[Action.LAPSE] == {
        NumberState.RESERVED: NumberState.AVAILABLE,
        NumberState.LOCKED: NumberState.AVAILABLE,
    }
    # A subscription, cancellation or swap hold lapses into its after-hold state (the sweep).
    assert TRANSITIONS[Action.LOCK_AFTER_HOLD] == {NumberState.RESERVED: NumberState.LOCKED}
    assert TRANSITIONS[Action.RETIRE] == {NumberState.RESERVED: NumberState.DELETED}
    # A cancelled port-out returns to any state port-out leaves, and to no other.
    port_out_sources = {
        NumberState(SETUP_STATES[start]) for start, action in EXPECTED if action == "port_out"
    }
    assert {a: dict(m) for a, m in RETURNS.items()} == {
        Action.CANCEL_PORT: {NumberState.PORTING_OUT: tuple(TRANSITIONS[Action.PORT_OUT])}
    }
    assert set(TRANSITIONS[Action.PORT_OUT]) == port_out_sources


async def test_a_reactivation_after_the_hold_lapsed_is_refused(
    world: World, actions: Actions, clock: ManualClock
) -> None:
    await world.add_named([NUMBER])
    await actions.assign(NUMBER)
    await actions.expire_subscription(NUMBER)
    clock.advance(world.caller.policy.expired_hold)
    error = await attempt(actions.reactivate_subscription(NUMBER))
    assert error is not None
    assert [p.code for p in error.problems] == [ErrorCode.NOT_FOUND]
    assert (await world.row(NUMBER)).state is NumberState.RESERVED


async def test_subscription_expiry_holds_the_number_for_its_owner(
    world: World, actions: Actions
) -> None:
    await world.add_named([NUMBER])
    await actions.assign(NUMBER)
    await actions.expire_subscription(NUMBER)
    row = await world.row(NUMBER)
    assert row.reserved_for_id == actions.customer.id
    assert row.held_for_subscription_uuid == SUBSCRIPTION
    assert row.expires_at == world.clock.now() + world.caller.policy.expired_hold
