"""The operators' rules in numbers: periods and batch limits, taken from settings once.

The periods here are the defaults; an organization may set its own (domain/number_policy.py)."""

from dataclasses import dataclass
from datetime import timedelta

from models import AfterHold
from settings import Settings


@dataclass(frozen=True)
class Policy:
    free_reservation: timedelta = timedelta(days=28)
    expired_hold: timedelta = timedelta(days=56)
    terminated_hold: timedelta = timedelta(days=28)
    swap_hold: timedelta = timedelta(days=1)
    # Held for the owner after a cancelled paid term ended (NUMBRA_CANCELLED_HOLD_DAYS).
    cancelled_hold: timedelta = timedelta(days=28)
    lock: timedelta = timedelta(days=90)
    notice: timedelta = timedelta(days=7)
    after_hold: AfterHold = AfterHold.AVAILABLE
    max_batch: int = 1_000
    max_add: int = 50
    # Answers about numbers held elsewhere a token may get a day (NUMBRA_INTAKE_REFUSALS_PER_DAY).
    intake_refusals_per_day: int = 100
    # Levels of organizations below the provider (NUMBRA_MAX_TREE_DEPTH).
    max_tree_depth: int = 50
    max_import_numbers: int = 2_000_000

    @classmethod
    def from_settings(cls, settings: Settings) -> "Policy":
        return cls(
            free_reservation=timedelta(days=settings.free_reservation_days),
            expired_hold=timedelta(days=settings.expired_hold_days),
            terminated_hold=timedelta(days=settings.terminated_hold_days),
            swap_hold=timedelta(days=settings.swap_hold_days),
            cancelled_hold=timedelta(days=settings.cancelled_hold_days),
            lock=timedelta(days=settings.lock_days),
            notice=timedelta(days=settings.notice_days_before),
            after_hold=AfterHold(settings.after_hold),
            max_batch=settings.max_batch_size,
            max_tree_depth=settings.max_tree_depth,
            intake_refusals_per_day=settings.intake_refusals_per_day,
            max_import_numbers=settings.max_import_numbers,
        )
