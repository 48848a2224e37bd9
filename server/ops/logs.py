"""Logging set-up for `serve`: plain lines or one JSON object a line, with the process id and the connection id."""
from __future__ import annotations

import datetime
import json
import logging
import re
import sys

from aiohttp.http_exceptions import HttpProcessingError

PLAIN = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"

# Defence in depth: no code path logs credentials, but a library's message might quote a URL or a header.
SECRETS = re.compile(
    r"(?P<keep>[?&]token=|Authorization:\s*\w+\s+|password=|dashboard_session=)[^&\s\"';]+"  # query, headers
    r"|(?<![0-9a-f])[0-9a-f]{40}(?![0-9a-f])"                           # anything shaped like a token
)
# What a client may put in a path or a header must not start a line of its own (a forged log line):
# control characters are written as nginx writes them, \x0A.
CONTROLS = re.compile(r"[\x00-\x1f\x7f\x80-\x9f\u2028\u2029]")


def redact(text: str) -> str:
    return SECRETS.sub(lambda match: (match.group("keep") or "") + "[redacted]", text)


def escape_controls(text: str) -> str:
    return CONTROLS.sub(lambda match: f"\\x{ord(match.group()):02X}", text)


class PlainFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)  # the message only: a traceback keeps its lines
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class ClientErrorsInOneLine(logging.Filter):
    """A malformed request is the client's fault, not a fault of ours: aiohttp logs it with a traceback
    (and the offending header line, cookie and all); one line with the reason is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            reason = (str(error.message or error).strip().splitlines() or [type(error).__name__])[0]
            record.msg, record.args = f"bad request from a client: {type(error).__name__}: %s", (reason,)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


class JsonFormatter(logging.Formatter):
    """time, level, logger, pid, message; `connection` when the record carries one; an access line's
    remote, method, path, status, bytes and ms; `exception` text."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
                                     .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": redact(record.getMessage()),
        }
        connection = getattr(record, "connection", None)
        if connection is not None:
            entry["connection"] = connection
        access = getattr(record, "access", None)  # an access line: its fields, for a log shipper to index
        if isinstance(access, dict):
            entry.update({key: redact(value) if isinstance(value, str) else value for key, value in access.items()})
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(log_format: str = "plain", level: int = logging.INFO) -> None:
    """Everything to stderr (journald keeps it under systemd), in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else PlainFormatter(PLAIN))
    handler.addFilter(ClientErrorsInOneLine())
    logging.basicConfig(level=level, handlers=[handler], force=True)
