"""The one JSON codec of both transports: strict decoding, /ws/ frames and envelopes, DRF's HTTP rendering."""
from __future__ import annotations

import json
import math
from typing import Any

from server.errors import BadRequest


class FrameError(BadRequest):
    """A frame the server cannot route; answered with 400 and `"stream": null`."""

    def __init__(self, message: str) -> None:
        super().__init__([message])


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"Out of range float values are not JSON compliant: {name!r}")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999 would come back out as the non-JSON `Infinity`
        raise ValueError(f"Out of range float values are not JSON compliant: {text!r}")
    return value


# One decoder for everything received: json.loads(text, parse_constant=...) would build a new one each call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
MAX_DEPTH = 32  # arrays and objects within each other, in anything received: no request needs more
NESTED = f"Nested too deeply (at most {MAX_DEPTH} levels)"


def decode(text: str) -> Any:
    """Standard JSON only: NaN, the infinities and numbers beyond a double are refused, and so is
    anything nested more than MAX_DEPTH deep (ValueError), before any work is done with it."""
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise ValueError(NESTED) from None
    # Only text with that many brackets can be that deep: most frames skip the walk.
    if text.count("[") + text.count("{") > MAX_DEPTH and too_deep(value):
        raise ValueError(NESTED)
    return value


def too_deep(value: Any) -> bool:
    """Whether arrays and objects nest more than MAX_DEPTH deep (iteratively: no recursion to exhaust)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > MAX_DEPTH:
                    return True
                pending.append((child, depth + 1))
    return False


def parse_frame(text: str) -> tuple[str, dict[str, Any]]:
    """Return (stream, payload) of a client frame, or raise FrameError saying why not."""
    try:
        frame = decode(text)
    except ValueError as exc:
        if str(exc) == NESTED:
            raise FrameError(f"Invalid frame: {NESTED.lower()}.") from None
        raise FrameError("Invalid frame: not valid JSON.") from None
    if not isinstance(frame, dict) or "stream" not in frame or "payload" not in frame:
        raise FrameError('Invalid frame: expected a JSON object with "stream" and "payload".')
    if not isinstance(frame["stream"], str):
        raise FrameError('Invalid frame: "stream" must be a string.')
    if not isinstance(frame["payload"], dict):
        raise FrameError('Invalid frame: "payload" must be an object.')
    return frame["stream"], frame["payload"]


def envelope(status: int, data: Any = None, errors: list[Any] | None = None,
             action: Any = None, request_id: Any = None) -> dict[str, Any]:
    """The five reply keys, in the protocol's order."""
    return {"errors": errors or [], "data": data, "action": action,
            "response_status": status, "request_id": request_id}


def encode(stream: str | None, payload: dict[str, Any]) -> str:
    """The outgoing frame, byte for byte as the old stack's json.dumps wrote it."""
    return json.dumps({"stream": stream, "payload": payload})


def encode_push(stream_json: str, data_json: str, action: str, status: int, request_id_json: str,
                cursor: str | None = None) -> str:
    """A push frame from parts already in JSON, so that a change going to many sockets is
    serialized once; byte for byte what encode() writes for the same envelope (+ `cursor`)."""
    tail = "" if cursor is None else f", \"cursor\": {json.dumps(cursor)}"
    return (f'{{"stream": {stream_json}, "payload": {{"errors": [], "data": {data_json}, '
            f'"action": {json.dumps(action)}, "response_status": {status}, '
            f'"request_id": {request_id_json}{tail}}}}}')


def render(data: Any, indent: int | None = None) -> str:
    """DRF's JSONRenderer: no spaces after separators (or `indent`, as Accept asked), non-ASCII
    left as is except U+2028 and U+2029, escaped as DRF does (JavaScript once refused them raw)."""
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(data, separators=separators, indent=indent, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
