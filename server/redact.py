"""Belt and braces for the logs: tokens and Authorization values are redacted from every record.

aiohttp's own error logs quote raw request lines (a LineTooLong shows the first 100 bytes of the URL,
`?token=` included); this filter, on the root handlers, catches those and anything else."""
from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
SECRETS = [
    re.compile(r"(?i)(\btoken=)[^&\s'\"\\]+"),                                   # ?token=<value>
    re.compile(r"(?i)(\bauthorization['\"]?\s*[:=,]\s*['\"]?(?:token|bearer)?\s*)[^\s'\",)]+"),
    re.compile(r"(?i)(\b(?:token|bearer)\s+)[0-9a-f]{20,}"),                     # "Token <key>"
    re.compile(r"()\b[0-9a-f]{40}\b"),                                           # a bare token's shape
]


def redact(text: str) -> str:
    for pattern in SECRETS:
        text = pattern.sub(lambda match: match.group(1) + REDACTED, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites the record's message and traceback text before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of the root logger (filters on loggers do not see propagated records)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(existing, RedactSecrets) for existing in handler.filters):
            handler.addFilter(RedactSecrets())
