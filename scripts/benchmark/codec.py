"""JSON parsing for the client: orjson when installed (cheaper, so the client stays light), else json."""
from __future__ import annotations

import json
from typing import Any, Callable

try:
    import orjson
except ImportError:  # pragma: no cover - the bench extra installs it
    orjson = None

loads: Callable[[bytes | str], Any] = orjson.loads if orjson is not None else json.loads
