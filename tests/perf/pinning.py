"""Servers on one CPU, clients on the other, so a figure measures the server alone (when
taskset is there and this process may use both CPUs; otherwise nothing is pinned)."""

import contextlib
import functools
import os
import shutil
from collections.abc import Iterator

SERVER_CPU = "0"
CLIENT_CPU = "1"


@functools.cache
def can_pin() -> bool:
    cpus = {int(SERVER_CPU), int(CLIENT_CPU)}
    return (
        shutil.which("taskset") is not None
        and hasattr(os, "sched_getaffinity")
        and cpus <= os.sched_getaffinity(0)
    )


def pinned(cpu: str, command: list[str]) -> list[str]:
    """`command` run on `cpu` only, when pinning is possible."""
    return ["taskset", "-c", cpu, *command] if can_pin() else command


@contextlib.contextmanager
def this_process_on(cpu: str) -> Iterator[None]:
    if not can_pin():
        yield
        return
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(cpu)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, affinity)
