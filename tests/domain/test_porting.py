"""Porting (DESIGN.md, "Porting"): port-in and port-out orders, their moves, and a
cancelled port-out putting each number back exactly as it was, column by column."""

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from domain import ids, porting
from domain.clock import ManualClock
from domain.errors import DomainError, ErrorCode
from domain.lifecycle import STATE_COLUMNS
from domain.sweep import sweep
from models import (
    DeletionReason,
    Number,
    NumberState,
    OrganizationKind,
    PortOrder,
    PortOrderNumber,
    PortOrderStatus,
)
from models.database import Database
from models.porting import REMEMBERED
from tests.support.lifecycle import (
    PORT_OUT_FROM,
    SETUP_STATES,
    SETUPS,
    Actions,
    attempt,
    state_problems,
)
from tests.support.world import World

NUMBER = "+6561000001"
OrderAction = porting.OrderAction
# Every state a port-out takes numbers from, as the lifecycle tests set them up.
PORT_OUT_SETUPS = PORT_OUT_FROM


@pytest.fixture
async def world(db: Database, clock: ManualClock) -> World:
    return await World.create(db, clock)


@pytest.fixture
async def actions(world: World) -> Actions:
    return Actions(world, await world.org("Customer", OrganizationKind.CUSTOMER))


def columns(row: Number) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in sa.inspect(Number).column_attrs}


async def port_out(world: World, numbers: list[str], **more: Any) -> str:
    order: PortOrder = await world.run(
        porting.create_port_out, numbers, carrier="Gaining", reference="R-1", remark=None, **more
    )
    return ids.encode(porting.TYPE_NAME, order.uuid)


async def port_in(world: World, numbers: list[str], **more: Any) -> str:
    request = porting.PortInRequest(
        numbers, carrier="Losing", vendor="V", country="SG", sku="sku-1", **more
    )
    order: PortOrder = await world.run(porting.create_port_in, request)
    return ids.encode(porting.TYPE_NAME, order.uuid)


async def act(world: World, order: str, action: porting.OrderAction, **more: Any) -> PortOrder:
    found: PortOrder = await world.run(porting.act, order, action, remark=None, **more)
    return found


async def confirm(world: World, order: str) -> PortOrder:
    await act(world, order, OrderAction.SUBMIT)
    return await act(
        world, order, OrderAction.CONFIRM, foc_date=world.clock.now() + timedelta(days=5)
    )


def test_a_port_out_remembers_every_state_column() -> None:
    assert set(REMEMBERED) == {"state", "state_changed_at", *STATE_COLUMNS}


@pytest.mark.parametrize("start", PORT_OUT_SETUPS)
@pytest.mark.parametrize("closing", [OrderAction.CANCEL, OrderAction.REJECT])
async def test_a_cancelled_port_out_restores_every_column(
    world: World, actions: Actions, clock: ManualClock, start: str, closing: OrderAction
) -> None:
    await world.add_named([NUMBER])
    for step in SETUPS[start]:
        assert await attempt(getattr(actions, step)(NUMBER)) is None
    before = columns(await world.row(NUMBER))
    assert before["state"].value == SETUP_STATES[start]
    clock.advance(timedelta(hours=1))
    order = await port_out(world, [NUMBER])
    porting_row = await world.row(NUMBER)
    assert porting_row.state is NumberState.PORTING_OUT
    assert state_problems(porting_row) == []
    assert all(getattr(porting_row, column) is None for column in STATE_COLUMNS)
    clock.advance(timedelta(hours=1))
    if closing is OrderAction.REJECT:
        await act(world, order, OrderAction.SUBMIT)
    await act(world, order, closing)
    after = columns(await world.row(NUMBER))
    for column, value in before.items():
        assert after[column] == value, column
    actions_recorded = [event.action for event in await world.events(NUMBER)]
    assert actions_recorded[-2:] in (
        ["PORT_OUT_STARTED", "PORT_CANCELLED"],
        ["PORT_CANCELLED", "PORT_OUT_STARTED"],
    )


async def test_a_reservation_that_ended_while_porting_lapses_on_the_next_sweep(
    world: World, actions: Actions, clock: ManualClock
) -> None:
    await world.add_named([NUMBER])
    await actions.reserve(NUMBER)
    ends = (await world.row(NUMBER)).expires_at
    assert ends is not None
    order = await port_out(world, [NUMBER])
    clock.set(ends + timedelta(minutes=1))
    await act(world, order, OrderAction.CANCEL)
    row = await world.row(NUMBER)
    assert (row.state, row.expires_at) == (NumberState.RESERVED, ends)
    from domain.notices import NoticeRules

    await sweep(world.db, clock, NoticeRules())
    assert (await world.row(NUMBER)).state is NumberState.AVAILABLE


async def test_a_completed_port_out_deletes_the_numbers(world: World, actions: Actions) -> None:
    await world.add_named([NUMBER, "+6561000002"])
    await actions.assign(NUMBER)
    order = await port_out(world, [NUMBER, "+6561000002"])
    confirmed = await confirm(world, order)
    assert confirmed.status is PortOrderStatus.FOC_CONFIRMED
    done = await act(world, order, OrderAction.COMPLETE)
    assert done.status is PortOrderStatus.COMPLETED
    assert done.closed_at is not None
    for e164 in (NUMBER, "+6561000002"):
        row = await world.row(e164)
        assert (row.state, row.deletion_reason) == (NumberState.DELETED, DeletionReason.PORTED_OUT)
        assert row.subscription_uuid is None
        assert [e.action for e in await world.events(e164, "PORTED_OUT")] == ["PORTED_OUT"]


async def test_port_in_creates_numbers_that_nothing_may_use_until_completed(
    world: World, actions: Actions
) -> None:
    await world.add_named(["+6561000009"])
    await world.delete(["+6561000009"])
    order = await port_in(world, [NUMBER, "+6561000009"])
    for e164 in (NUMBER, "+6561000009"):
        row = await world.row(e164)
        assert row.state is NumberState.PORTING_IN
        assert not row.ported_in
        assert row.deletion_reason is None
        assert [e.action for e in await world.events(e164, "PORT_IN_STARTED")] == [
            "PORT_IN_STARTED"
        ]
    for step in ("reserve", "assign", "lock", "delete", "port_out"):
        error = await attempt(getattr(actions, step)(NUMBER))
        assert error is not None
        assert error.problems[0].code is ErrorCode.INVALID_TRANSITION
    await actions.edit(NUMBER)
    await confirm(world, order)
    await act(world, order, OrderAction.COMPLETE)
    for e164 in (NUMBER, "+6561000009"):
        row = await world.row(e164)
        assert (row.state, row.ported_in) == (NumberState.AVAILABLE, True)
        assert [e.action for e in await world.events(e164, "PORTED_IN")] == ["PORTED_IN"]
        assert state_problems(row) == []


@pytest.mark.parametrize("closing", [OrderAction.CANCEL, OrderAction.REJECT])
async def test_a_cancelled_or_rejected_port_in_deletes_its_numbers(
    world: World, closing: OrderAction
) -> None:
    order = await port_in(world, [NUMBER])
    await act(world, order, OrderAction.SUBMIT)
    done = await act(world, order, closing)
    assert done.status.value == {"cancel": "CANCELLED", "reject": "REJECTED"}[closing.value]
    row = await world.row(NUMBER)
    assert (row.state, row.deletion_reason) == (
        NumberState.DELETED,
        DeletionReason.PORT_CANCELLED,
    )
    # A port-in may bring it back.
    await port_in(world, [NUMBER])
    assert (await world.row(NUMBER)).state is NumberState.PORTING_IN


async def test_a_port_in_refuses_numbers_in_the_inventory_and_changes_nothing(
    world: World,
) -> None:
    await world.add_named([NUMBER])
    error = await attempt(port_in(world, [NUMBER, "+6561000002", "+65 6100 0002", "12"]))
    assert error is not None
    codes = [(p.code, p.number) for p in error.problems]
    assert (ErrorCode.ALREADY_EXISTS, NUMBER) in codes
    assert (ErrorCode.VALIDATION, "+6561000002") in codes
    assert await world.count(Number.state == NumberState.PORTING_IN) == 0
    async with world.db.read() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(PortOrder)) == 0


async def test_a_port_in_takes_at_most_a_thousand_numbers(world: World) -> None:
    error = await attempt(port_in(world, [f"+656100{i:04d}" for i in range(1001)]))
    assert error is not None
    assert [p.code for p in error.problems] == [ErrorCode.LIMIT_EXCEEDED]


async def test_order_moves_follow_the_table(world: World) -> None:
    await world.add_named([NUMBER])
    order = await port_out(world, [NUMBER])
    for action in (OrderAction.COMPLETE, OrderAction.REJECT, OrderAction.CONFIRM):
        more = {"foc_date": world.clock.now() + timedelta(days=1)} if action == "confirm" else {}
        error = await attempt(act(world, order, action, **more))
        assert error is not None, action
        assert [p.code for p in error.problems] == [ErrorCode.INVALID_TRANSITION]
    await act(world, order, OrderAction.SUBMIT)
    error = await attempt(
        act(world, order, OrderAction.CONFIRM, foc_date=world.clock.now() - timedelta(hours=1))
    )
    assert error is not None
    assert [p.field for p in error.problems] == [("input", "focDate")]
    await confirm_again(world, order)
    await act(world, order, OrderAction.CANCEL)
    for action in OrderAction:
        more = {"foc_date": world.clock.now() + timedelta(days=1)} if action == "confirm" else {}
        error = await attempt(act(world, order, action, **more))
        assert error is not None
        assert error.problems[0].code is ErrorCode.INVALID_TRANSITION
    assert (await world.row(NUMBER)).state is NumberState.AVAILABLE


async def confirm_again(world: World, order: str) -> None:
    """Confirmed, then confirmed for another date: both are FOC_CONFIRMED."""
    for days in (3, 4):
        found = await act(
            world, order, OrderAction.CONFIRM, foc_date=world.clock.now() + timedelta(days=days)
        )
        assert found.status is PortOrderStatus.FOC_CONFIRMED


async def test_a_number_is_in_one_open_order_at_most(world: World, actions: Actions) -> None:
    await world.add_named([NUMBER, "+6561000002"])
    await port_out(world, [NUMBER])
    error = await attempt(port_out(world, ["+6561000002", NUMBER]))
    assert error is not None
    assert [(p.code, p.number) for p in error.problems] == [(ErrorCode.INVALID_TRANSITION, NUMBER)]
    assert (await world.row("+6561000002")).state is NumberState.AVAILABLE
    # The database refuses a second open order of its own accord.
    number = await world.row(NUMBER)
    with pytest.raises(IntegrityError):  # noqa: PT012 (the flush at the block's end raises)
        async with world.db.write() as session:
            other = PortOrder(
                direction="OUT",
                status=PortOrderStatus.DRAFT,
                organization_id=number.organization_id,
                carrier="x",
                created_at=world.clock.now(),
                updated_at=world.clock.now(),
            )
            session.add(other)
            await session.flush()
            session.add(PortOrderNumber(order_id=other.id, number_id=number.id))


async def test_a_port_out_takes_numbers_of_one_pool(world: World, actions: Actions) -> None:
    await world.add_named([NUMBER])
    await world.add_named(["+6561000002"], pool=actions.customer)
    error = await attempt(port_out(world, [NUMBER, "+6561000002"]))
    assert error is not None
    assert [(p.code, p.number) for p in error.problems] == [(ErrorCode.VALIDATION, "+6561000002")]


async def test_an_unknown_order_is_not_found(world: World) -> None:
    made_up = ids.encode(porting.TYPE_NAME, "00000000-0000-4000-8000-000000000009")
    error = await attempt(act(world, made_up, OrderAction.SUBMIT))
    assert isinstance(error, DomainError)
    assert [p.code for p in error.problems] == [ErrorCode.NOT_FOUND]
