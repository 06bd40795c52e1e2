"""Every Dramatiq actor Numbra runs; `numbra worker` loads this module.

The broker module is imported first so actors bind to the configured broker.
"""

from jobs.broker import broker

__all__ = ["broker"]
