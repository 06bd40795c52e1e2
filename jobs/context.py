"""What actors run with in this process: settings, clock and mailer, set once at start.

Actors take ids only; everything else comes from here. `numbra worker` uses the
defaults (NUMBRA_* settings, the system clock); `numbra serve` and tests configure it.
"""

from dataclasses import dataclass

from domain.clock import Clock, SystemClock
from domain.mail import Mailer, mailer_from_settings
from domain.notices import NoticeRules
from settings import Settings, get_settings


@dataclass(frozen=True)
class JobContext:
    settings: Settings
    clock: Clock
    mailer: Mailer

    @property
    def rules(self) -> NoticeRules:
        return NoticeRules.from_settings(self.settings)


_context: JobContext | None = None


def configure(settings: Settings, clock: Clock | None = None, mailer: Mailer | None = None) -> None:
    global _context
    _context = JobContext(
        settings, clock or SystemClock(), mailer or mailer_from_settings(settings)
    )


def current() -> JobContext:
    if _context is None:
        configure(get_settings())
    assert _context is not None
    return _context
