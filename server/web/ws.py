"""The /ws/ endpoint: the handshake (credentials and limits before the upgrade), then the read loop."""
from __future__ import annotations

from aiohttp import WSMsgType, web

from server.errors import ApiError, UpgradeRequired
from server.web.authenticate import authenticate
from server.web.keys import CONNECTIONS

FRAMES = (WSMsgType.TEXT, WSMsgType.BINARY)


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    """Upgrade an authenticated request, then hand each frame to its connection until it closes."""
    connections = request.app[CONNECTIONS]
    config = connections.config
    try:
        principal = await authenticate(request, connections.db, query_token=True, origins=config.allowed_origins,
                                       tokens=connections.tokens)
        ws = web.WebSocketResponse(max_msg_size=config.max_frame_bytes + 1, heartbeat=config.heartbeat_seconds,
                                   compress=False)
        if not ws.can_prepare(request).ok:
            raise UpgradeRequired()
        release = connections.counter.claim(principal.user.id)  # 503 / 429 before the upgrade
    except (ApiError, web.HTTPException) as exc:
        connections.metrics.handshake_rejected(exc.status)
        raise
    connection = connections.connect(ws, request, principal)
    try:
        await ws.prepare(request)
        connections.add(connection)
        async for message in ws:
            if message.type in FRAMES and not await connection.answer(message):
                break
    finally:
        release()
        await connection.finish()
    return ws
