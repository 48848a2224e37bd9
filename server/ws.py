"""The /ws/ endpoint: authenticate before the upgrade, then route each frame to its resource."""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
from typing import Any, Mapping

from aiohttp import WSMsgType, web

from server.auth import authenticate
from server.errors import ApiError, Forbidden, MethodNotAllowed
from server.keys import CONFIG, DB, REPLYING, RESOURCES, SOCKET_COUNTER, WEBSOCKETS
from server.limits import CLOSE_POLICY, FrameThrottle
from server.protocol import FrameError, encode, envelope, parse_frame
from server.resources.base import Call, Resource
from server.users import User

log = logging.getLogger(__name__)
connection_ids = itertools.count(1)


def _action_name(action: Any) -> str:
    return action if isinstance(action, str) else json.dumps(action)


async def run_action(call: Call, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Check and run one request; always returns an envelope, whatever went wrong."""
    action, request_id = payload.get("action"), payload.get("request_id")
    try:
        if "action" not in payload:
            raise MethodNotAllowed(["Unable to find action in message body."])
        name = _action_name(action)
        if not call.resource.allows(call.user, name):
            raise Forbidden()
        handler = call.resource.actions.get(name) if isinstance(action, str) else None
        if handler is None:
            raise MethodNotAllowed([f'Method "{name}" not allowed.'])
        status, data = await handler(call, payload)
    except ApiError as exc:
        return envelope(exc.status, errors=exc.errors, action=action, request_id=request_id)
    except Exception:
        log.exception("request failed: stream %s action %r", call.resource.name, action)
        return envelope(500, errors=["Internal server error"], action=action, request_id=request_id)
    return envelope(status, data=data, action=action, request_id=request_id)


async def handle_frame(app: web.Application, user: User, message: Any) -> str:
    """One inbound WebSocket message in, one outbound frame (text) back."""
    try:
        if message.type != WSMsgType.TEXT:
            raise FrameError("Invalid frame: binary frames are not supported; send JSON text.")
        stream, payload = parse_frame(message.data)
    except FrameError as exc:
        return encode(None, envelope(400, errors=[str(exc)]))
    resource: Resource | None = app[RESOURCES].get(stream)
    if resource is None:
        return encode(stream, envelope(404, errors=[f'Unknown stream "{stream}".'],
                                       action=payload.get("action"), request_id=payload.get("request_id")))
    call = Call(app[DB], user, resource, app[CONFIG].max_page_size)
    return encode(stream, await run_action(call, payload))


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    """Upgrade an authenticated request, then answer its frames in order until it closes."""
    app = request.app
    config = app[CONFIG]
    principal = await authenticate(request, app[DB], query_token=True, origins=config.allowed_origins)
    user = principal.user
    ws = web.WebSocketResponse(max_msg_size=config.max_frame_bytes + 1, heartbeat=config.heartbeat_seconds,
                               compress=False)
    if not ws.can_prepare(request).ok:
        raise web.HTTPUpgradeRequired(text='{"detail":"Use a WebSocket client."}',
                                      content_type="application/json", headers={"Upgrade": "websocket"})
    release = app[SOCKET_COUNTER].claim(user.id)  # server/limits.py: 503 / 429, before the upgrade
    connection, throttle, replying = next(connection_ids), FrameThrottle(config), asyncio.Lock()
    try:
        await ws.prepare(request)
        log.info("ws %d open: user %s from %s", connection, user.username, request.remote)
        app[WEBSOCKETS][ws] = principal  # server/sockets.py re-checks the credential while it is open
        app[REPLYING][ws] = replying  # server/drain.py: shutdown waits for the reply in flight
        async for message in ws:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                async with replying:
                    if ws.closed:
                        break
                    refusal = throttle.check(message)  # server/limits.py: before the frame is dispatched
                    if refusal and refusal.close:
                        await ws.close(code=CLOSE_POLICY, message=b"Request rate limit exceeded")
                        break
                    await ws.send_str(refusal.reply if refusal else await handle_frame(app, user, message))
    finally:
        release()
        app[REPLYING].pop(ws, None)
        app[WEBSOCKETS].pop(ws, None)
        log.info("ws %d closed: code %s", connection, ws.close_code)
    return ws
