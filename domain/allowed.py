"""What a viewer may do to a number now: the lifecycle table and the viewer's role, for the
number's state, before any input is known (Number.allowedActions)."""

import enum

from domain.access import Viewer
from domain.lifecycle import TRANSITIONS, Action
from domain.terms import ENDED
from models import NumberState, Role
from models.numbers import NumberRecord


class NumberAction(enum.StrEnum):
    """Everything a client may ask Numbra to do to one number (the contract's names)."""

    RESERVE = "RESERVE"
    EXTEND = "EXTEND"
    RELEASE = "RELEASE"
    ASSIGN = "ASSIGN"
    LOCK = "LOCK"
    UNLOCK = "UNLOCK"
    DELETE = "DELETE"
    RECOVER = "RECOVER"
    EDIT = "EDIT"
    ALLOCATE = "ALLOCATE"
    WITHDRAW = "WITHDRAW"
    CANCEL = "CANCEL"
    RESTORE = "RESTORE"
    RENEW = "RENEW"
    SET_BILLING_CYCLES = "SET_BILLING_CYCLES"
    BLOCK = "BLOCK"
    UNBLOCK = "UNBLOCK"
    PORT_OUT = "PORT_OUT"


# Each action a client asks for: the table's action and the least role the mutation needs.
# PORT_OUT has no row in this table yet (porting): it is never offered.
_RULES: dict[NumberAction, tuple[Action, Role]] = {
    NumberAction.RESERVE: (Action.RESERVE, Role.OPERATOR),
    NumberAction.EXTEND: (Action.EXTEND, Role.OPERATOR),
    NumberAction.RELEASE: (Action.RELEASE, Role.OPERATOR),
    NumberAction.ASSIGN: (Action.ASSIGN, Role.OPERATOR),
    NumberAction.LOCK: (Action.LOCK, Role.ADMIN),
    NumberAction.UNLOCK: (Action.UNLOCK, Role.ADMIN),
    NumberAction.DELETE: (Action.DELETE, Role.ADMIN),
    NumberAction.RECOVER: (Action.RECOVER, Role.ADMIN),
    NumberAction.EDIT: (Action.EDIT, Role.OPERATOR),
    NumberAction.ALLOCATE: (Action.ALLOCATE, Role.ADMIN),
    NumberAction.WITHDRAW: (Action.WITHDRAW, Role.ADMIN),
    NumberAction.CANCEL: (Action.CANCEL, Role.OPERATOR),
    NumberAction.RESTORE: (Action.RESTORE, Role.OPERATOR),
    NumberAction.RENEW: (Action.RENEW, Role.OPERATOR),
    NumberAction.SET_BILLING_CYCLES: (Action.SET_BILLING_CYCLES, Role.OPERATOR),
    NumberAction.BLOCK: (Action.BLOCK, Role.ADMIN),
    NumberAction.UNBLOCK: (Action.UNBLOCK, Role.ADMIN),
}
_TERM_ACTIONS = {
    NumberAction.CANCEL,
    NumberAction.RESTORE,
    NumberAction.RENEW,
    NumberAction.SET_BILLING_CYCLES,
}


def _term_allows(action: NumberAction, row: NumberRecord) -> bool:
    """The term actions' guards that read only the number: it has a term (or, RESERVED, is
    held after one ended); cancel only an uncancelled one, restore only a cancelled one."""
    if row.billing_period_months is None:
        return False
    if row.state is NumberState.RESERVED:
        return action is NumberAction.RENEW and row.reservation_reason in ENDED
    if action is NumberAction.CANCEL:
        return row.cancelled_at is None
    if action is NumberAction.RESTORE:
        return row.cancelled_at is not None
    return True


def allowed_actions(row: NumberRecord, viewer: Viewer) -> list[NumberAction]:
    found = []
    for action, (table_action, needs) in _RULES.items():
        if not viewer.has_role(needs) or row.state not in TRANSITIONS[table_action]:
            continue
        if action in _TERM_ACTIONS and not _term_allows(action, row):
            continue
        found.append(action)
    return found
