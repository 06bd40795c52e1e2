"""Logging for every `numbra` process: text for people, or one JSON object per line for a
log collector (NUMBRA_LOG_FORMAT=json); and the access line written for every request.

The access line names the viewer by organization and token id, never by the token's text,
and the path without its query string, its control characters escaped (a line each).
"""

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from web.request_id import (
    MONITORING_ROUTES,
    Finished,
    RequestIdLogFilter,
    current_request_id,
)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

access_log = logging.getLogger("numbra.access")

# What every LogRecord carries; any other attribute came in `extra` and is written as a field.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            # `numbra serve --workers N` and `numbra worker` run several processes.
            "process": record.process,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id.get(),
        }
        entry.update(
            (key, value) for key, value in record.__dict__.items() if key not in _RECORD_ATTRIBUTES
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str, log_format: str) -> None:
    """Send every record of this process to stderr, in the format the settings ask for."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdLogFilter())
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler], force=True)


# What would end a line of a text log (or hide part of it): a client's path may hold them.
_BREAKING = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(text: str) -> str:
    """`text` on one line: each control character or line break as Python escapes it."""
    return _BREAKING.sub(lambda found: repr(found.group())[1:-1], text)


def log_request(finished: Finished) -> None:
    """The access line: a RequestIdMiddleware observer, called as the request ends."""
    fields: dict[str, Any] = {
        "request_id": finished.request_id,
        "method": finished.method,
        "path": finished.path,
        "status": finished.status,
        "duration_ms": round(finished.seconds * 1000, 1),
    }
    if finished.operation is not None:
        fields["operation"] = finished.operation
    if finished.viewer is not None:
        fields["viewer_org_id"] = finished.viewer.org_id
        fields["viewer_token_id"] = finished.viewer.token_id
    # Probes and scrapes come every few seconds: their lines are kept for DEBUG.
    level = logging.DEBUG if finished.route in MONITORING_ROUTES else logging.INFO
    described = " ".join(
        f"{key}={_escaped(str(value))}" for key, value in fields.items() if key != "request_id"
    )
    access_log.log(level, "%s", described, extra=fields)
