"""The notice before a port order's FOC date: once per (order, focDate), through the outbox.

The sweep derives it from the orders: a FOC_CONFIRMED order whose date falls within the
lead (NUMBRA_PORT_NOTICE_DAYS) gets a PORT_FOC_NEAR notice keyed by (order, kind,
focDate); a second sweep finds the key taken. Confirming a new date leaves the pending
notice about the old one matching nothing: it is cancelled, and the new date gets its
own. The pool's owner e-mail and the support e-mail of the nearest partner at or above
the pool are told (`addressees`); `domain.notice_delivery` sends it.
"""

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain import notices
from domain.mail import mail_address, one_line
from models import (
    Notice,
    NoticeKind,
    NoticeStatus,
    Organization,
    OrganizationKind,
    PortOrder,
    PortOrderStatus,
)

KIND = NoticeKind.PORT_FOC_NEAR


def applies(order: PortOrder, foc_date: datetime) -> bool:
    """Whether a notice about `foc_date` still applies to the order."""
    return order.status is PortOrderStatus.FOC_CONFIRMED and order.foc_date == foc_date


async def schedule(session: AsyncSession, now: datetime, before: timedelta) -> int:
    """Add the notices now due: confirmed orders whose FOC date is within `before`."""
    if before <= timedelta(0):
        return 0
    noticed = sa.exists().where(
        Notice.port_order_id == PortOrder.id,
        Notice.kind == KIND,
        Notice.expires_at == PortOrder.foc_date,
    )
    query = sa.select(PortOrder.id, PortOrder.foc_date).where(
        PortOrder.status == PortOrderStatus.FOC_CONFIRMED,
        PortOrder.foc_date > now,
        PortOrder.foc_date <= now + before,
        ~noticed,
    )
    rows = []
    for order_id, foc_date in await session.execute(query):
        assert foc_date is not None  # the range above excludes orders without one
        row = notices.new_row(0, KIND, foc_date, foc_date - before, now)
        row.update(number_id=None, port_order_id=order_id)
        rows.append(row)
    if not rows:
        return 0
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = dialect.insert(Notice.__table__).on_conflict_do_nothing(
        index_elements=["port_order_id", "kind", "expires_at"]
    )
    await session.execute(statement, rows)
    return len(rows)


async def cancel_stale(session: AsyncSession, order_id: int | None = None) -> int:
    """Cancel pending notices whose order was closed or got another FOC date."""
    still_applies = sa.exists().where(
        PortOrder.id == Notice.port_order_id,
        PortOrder.status == PortOrderStatus.FOC_CONFIRMED,
        PortOrder.foc_date == Notice.expires_at,
    )
    query = sa.update(Notice).where(
        Notice.kind == KIND, Notice.status == NoticeStatus.PENDING, ~still_applies
    )
    if order_id is not None:
        query = query.where(Notice.port_order_id == order_id)
    result = await session.execute(
        query.values(status=NoticeStatus.CANCELLED).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def addressees(session: AsyncSession, order: PortOrder) -> tuple[str, list[str], str | None]:
    """(the pool's name, addresses, why there are none): the pool's owner e-mail and the
    support e-mail of the nearest partner at or above the pool."""
    pool = await session.get(Organization, order.organization_id)
    assert pool is not None
    line = [*pool.ancestor_ids, pool.id]
    found = await session.scalars(sa.select(Organization).where(Organization.id.in_(line)))
    by_id = {org.id: org for org in found}
    partner = next(
        (by_id[i] for i in reversed(line) if by_id[i].kind is OrganizationKind.PARTNER), None
    )
    given = [pool.owner_email, partner.support_email if partner is not None else None]
    unique = [a for a in dict.fromkeys(a for a in given if a) if mail_address(a) is not None]
    pool_name = one_line(pool.name)
    if not unique:
        return pool_name, [], f"neither {pool_name} nor a partner above it has an e-mail address"
    return pool_name, unique, None
