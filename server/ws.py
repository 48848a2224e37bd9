"""The /ws/ endpoint: authenticate before the upgrade, then route each frame to its resource."""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from typing import Any, Mapping

from aiohttp import WSMsgType, web

from server.auth import authenticate
from server.errors import ApiError, Forbidden, MethodNotAllowed
from server.keys import CONFIG, DB, LISTENER, METRICS, REPLYING, RESOURCES, SOCKET_COUNTER, SUBSCRIPTIONS, WEBSOCKETS
from server.limits import CLOSE_POLICY, FrameThrottle
from server.observe import connection_closed, connection_opened, frame_received, frame_sent, request_answered
from server.outbox import Outbox
from server.protocol import FrameError, encode, envelope, parse_frame
from server.resources.base import Call, Resource, permitted
from server.subscriptions import LiveClient
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
        if not permitted(call.resource, call.user, name):
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


async def handle_frame(app: web.Application, user: User, message: Any, connection: int = 0,
                       live: LiveClient | None = None) -> str:
    """One inbound WebSocket message in, one outbound frame (text) back; counted, timed, failures logged."""
    started = time.perf_counter()
    frame_received(app)
    stream, reply = await reply_to(app, user, message, live)
    request_answered(app, connection, stream, reply, time.perf_counter() - started)
    return encode(stream, reply)


async def reply_to(app: web.Application, user: User, message: Any,
                   live: LiveClient | None) -> tuple[str | None, dict[str, Any]]:
    """The (stream, envelope) answering one inbound message, whatever went wrong."""
    try:
        if message.type != WSMsgType.TEXT:
            raise FrameError("Invalid frame: binary frames are not supported; send JSON text.")
        stream, payload = parse_frame(message.data)
    except FrameError as exc:
        return None, envelope(400, errors=[str(exc)])
    resource: Resource | None = app[RESOURCES].get(stream)
    if resource is None:
        return stream, envelope(404, errors=[f'Unknown stream "{stream}".'],
                                action=payload.get("action"), request_id=payload.get("request_id"))
    call = Call(app[DB], user, resource, app[CONFIG].max_page_size, live)
    return stream, await run_action(call, payload)


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    """Upgrade an authenticated request, then answer its frames in order until it closes.

    Replies and pushes leave through the socket's outbox (one writer task, bounded queue)."""
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
    outbox = Outbox(ws, request, config.outbound_queue, on_sent=lambda: frame_sent(app),
                    on_overflow=lambda: app[METRICS].count_throttled("queue"))
    live = LiveClient(app[LISTENER], app[SUBSCRIPTIONS], user, outbox, config.outbound_queue)
    connection_opened(app, connection, user.username, request.remote)
    try:
        await ws.prepare(request)
        app[WEBSOCKETS][ws] = principal  # server/sockets.py re-checks the credential while it is open
        app[REPLYING][ws] = (replying, outbox)  # server/drain.py: shutdown sends the reply in flight
        async for message in ws:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                async with replying:
                    if ws.closed:
                        break
                    refusal = throttle.check(message)  # server/limits.py: before the frame is dispatched
                    if refusal and refusal.close:
                        app[METRICS].count_throttled("rate")
                        await ws.close(code=CLOSE_POLICY, message=b"Request rate limit exceeded")
                        break
                    live.hold()  # pushes wait for this reply
                    reply = refusal.reply if refusal else await handle_frame(app, user, message, connection, live)
                    await outbox.put_paced(reply)
                    await live.release()
    finally:
        # Bookkeeping first: a handler cancelled while closing (the peer vanished) stops at the await.
        release()
        live.close()
        app[REPLYING].pop(ws, None)
        app[WEBSOCKETS].pop(ws, None)
        connection_closed(app, connection, ws.close_code)
        await outbox.close()
    return ws
