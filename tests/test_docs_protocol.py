"""Every example in docs/protocol.md, replayed against a real server and database."""
# The document's examples are fenced code blocks whose info string names their format.
# Each block runs in its own test, on a fresh database and a fresh server.
#
# ```jsonl    one socket, opened with ?token=<key> for a signed-in user "nurse":
#   >>> TEXT                   a text frame the client sends, exactly TEXT (it need not be JSON)
#   >>> [binary] TEXT          a binary frame carrying TEXT's UTF-8 bytes
#   >>> [N bytes] TEXT         a text frame of exactly N bytes: the one "…" in TEXT is padded with x
#   <<< JSON                   the next frame the server sends, written exactly as it writes it
#   <<< [close CODE]           the server closes the socket with CODE (and an empty reason)
#   <<< [close CODE: REASON]   ... with that reason
#   !!! EVENT                  something happens on the server side (see EVENTS), or
#   !!! psql: SQL              ... SQL runs on the block's database, as psql would run it
#   # ...                      a comment
# ```wscat    a wscat session: "$ wscat -c URL [-H HEADER]...", then "> TEXT" sends, "< JSON" expects.
# ```http     raw HTTP/1.1 exchanges: a request (up to its blank line) and the response: the status
#             line, the headers that matter (others are not checked) and the exact body, if any.
#             "!!! EVENT" and "# ..." lines may come before a request.
#
# "<key>" anywhere stands for the user's valid token. Reply frames are compared as text, so key
# order, number types and escapes all count; the only values the document may invent are the
# server-set timestamps under "created_at" and "updated_at": each documented value stands for one
# real value, the same one wherever it appears, and documented values are ordered as real ones;
# and the cursors under "cursor" (one to one as well, unordered). A sent frame may quote a cursor
# the server sent earlier in the block (as "since"): the real one is sent.
# After a jsonl or wscat block that leaves its socket open, one more frame proves that the server
# had nothing else to say and that the socket is still up.
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import re
import shlex
from typing import Any, Awaitable, Callable, Iterator
from urllib.parse import urlsplit

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config import PROJECT_DIR, Config
from tests.live import prune_log
from tests.pg import admin, database_name

DOC = PROJECT_DIR / "docs" / "protocol.md"
EXECUTABLE = ("jsonl", "wscat", "http")
STAMP_KEYS = ("created_at", "updated_at")
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")
FENCE = re.compile(r"^( *)(`{3,}|~{3,})\s*([^`\s]*)")
SIZED = re.compile(r"\[(\d+) bytes\] (.*)")
REQUEST_LINE = re.compile(r"[A-Z]+ /\S* HTTP/1\.1$")
EXAMPLE_LINE = re.compile(r" *(>>> |<<< |\$ wscat |[A-Z]+ /\S* HTTP/1\.1$)")
WSCAT_CONNECTED = "Connected (press CTRL+C to quit)"
CLOSE = re.compile(r"\[close (\d+)(?:: (.*))?\]")
# Sent after a block to prove the socket is still up and nothing else was queued for the client.
END_FRAME = '{"stream": "docs-end", "payload": {}}'
END_REPLY = ('{"stream": "docs-end", "payload": {"errors": ["Unknown stream \\"docs-end\\"."], "data": null, '
             '"action": null, "response_status": 404, "request_id": null}}')


class DocError(Exception):
    """An executable block that the replayer cannot understand."""


@dataclasses.dataclass(frozen=True)
class Block:
    kind: str
    first_line: int          # line number of the block's first content line in the document
    lines: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.kind}@L{self.first_line}"

    def where(self, index: int) -> str:
        return f"{DOC.name}:{self.first_line + index}"


@dataclasses.dataclass(frozen=True)
class Send:
    text: str
    binary: bool = False


@dataclasses.dataclass(frozen=True)
class Expect:
    text: str
    where: str


@dataclasses.dataclass(frozen=True)
class ExpectClose:
    code: int
    reason: str
    where: str


@dataclasses.dataclass(frozen=True)
class Event:
    name: str


@dataclasses.dataclass(frozen=True)
class Connect:
    path: str
    headers: tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class Exchange:
    request: tuple[str, ...]
    status_line: str
    headers: tuple[tuple[str, str], ...]
    body: str | None
    where: str


Step = Send | Expect | ExpectClose | Event | Connect | Exchange


def fenced_blocks(text: str) -> Iterator[Block]:
    """Every fenced code block of a Markdown text (also inside list items), with its info word."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        indent, fence, kind, start = len(opening.group(1)), opening.group(2), opening.group(3), index
        while index < len(lines) and not (lines[index].strip().startswith(fence)
                                          and not lines[index].strip().strip(fence[0])):
            index += 1
        content = (line[indent:] if line[:indent].isspace() else line.lstrip() for line in lines[start:index])
        yield Block(kind, start + 1, tuple(content))
        index += 1


def executable_blocks() -> list[Block]:
    return [block for block in fenced_blocks(DOC.read_text(encoding="utf-8")) if block.kind in EXECUTABLE]


def _sent_frame(rest: str, where: str) -> Send:
    if rest.startswith("[binary] "):
        return Send(rest.removeprefix("[binary] "), binary=True)
    sized = SIZED.fullmatch(rest)
    if sized is None:
        return Send(rest)
    size, text = int(sized.group(1)), sized.group(2)
    if text.count("…") != 1:
        raise DocError(f'{where}: a sized frame needs exactly one "…" to pad')
    padding = size - len(text.encode()) + len("…".encode())
    if padding < 0:
        raise DocError(f"{where}: the frame is already longer than {size} bytes")
    return Send(text.replace("…", "x" * padding))


def _expected_frame(rest: str, where: str) -> Expect | ExpectClose:
    close = CLOSE.fullmatch(rest)
    if close is not None:
        return ExpectClose(int(close.group(1)), close.group(2) or "", where)
    try:
        json.loads(rest)
    except ValueError:
        raise DocError(f"{where}: a reply must be one JSON value: {rest[:60]}") from None
    return Expect(rest, where)


def _frame_steps(block: Block, send_prefix: str, expect_prefix: str, start: int) -> list[Step]:
    steps: list[Step] = []
    for index in range(start, len(block.lines)):
        line, where = block.lines[index], block.where(index)
        if not line.strip() or line.startswith("# ") or line == ">":
            continue  # blank, a comment, or wscat's last idle prompt
        if line.startswith("!!! "):
            steps.append(Event(line.removeprefix("!!! ")))
        elif line.startswith(send_prefix):
            steps.append(_sent_frame(line.removeprefix(send_prefix), where))
        elif line.startswith(expect_prefix):
            steps.append(_expected_frame(line.removeprefix(expect_prefix), where))
        else:
            raise DocError(f"{where}: not a frame, event or comment: {line[:60]}")
    return steps


def _header(text: str) -> tuple[str, str]:
    name, _, value = text.partition(":")
    return name.strip(), value.strip()


def _wscat_connect(block: Block) -> Connect:
    words = shlex.split(block.lines[0]) if block.lines else []
    if words[:2] != ["$", "wscat"] or "-c" not in words:
        raise DocError(f"{block.where(0)}: a wscat block starts with: $ wscat -c URL")
    url = urlsplit(words[words.index("-c") + 1])
    headers = tuple(_header(words[i + 1]) for i, word in enumerate(words) if word == "-H")
    return Connect(url.path + (f"?{url.query}" if url.query else ""), headers)


def _http_steps(block: Block) -> list[Step]:
    steps: list[Step] = []
    lines, index = block.lines, 0

    def take_until_blank() -> list[str]:
        nonlocal index
        taken = []
        while index < len(lines) and lines[index].strip():
            taken.append(lines[index])
            index += 1
        index += 1
        return taken

    while index < len(lines):
        line = lines[index]
        if not line.strip() or line.startswith("# "):
            index += 1
        elif line.startswith("!!! "):
            steps.append(Event(line.removeprefix("!!! ")))
            index += 1
        elif REQUEST_LINE.match(line):
            request = take_until_blank()
            where = block.where(index)
            response = take_until_blank()
            if not response or not response[0].startswith("HTTP/1.1 "):
                raise DocError(f"{where}: a request must be followed by a blank line and its response")
            headers = tuple(_header(header) for header in response[1:])
            body = None
            if index < len(lines) and lines[index].strip() and not lines[index].startswith(("# ", "!!! ")) \
                    and not REQUEST_LINE.match(lines[index]):
                body = lines[index]
                index += 1
            steps.append(Exchange(tuple(request), response[0], headers, body, where))
        else:
            raise DocError(f"{block.where(index)}: expected a request line, an event or a comment: {line[:60]}")
    return steps


def parse_block(block: Block) -> list[Step]:
    """The block's steps; raises DocError for anything the replayer would not check."""
    if block.kind == "http":
        steps = _http_steps(block)
    elif block.kind == "wscat":
        if block.lines[1:2] != (WSCAT_CONNECTED,):
            raise DocError(f"{block.where(1)}: wscat says {WSCAT_CONNECTED!r} after its command line")
        steps = [_wscat_connect(block)] + _frame_steps(block, "> ", "< ", start=2)
    else:
        steps = _frame_steps(block, ">>> ", "<<< ", start=0)
    for step in steps:
        if isinstance(step, Event) and step.name not in EVENTS and not step.name.startswith(PSQL):
            raise DocError(f"{DOC.name}:{block.first_line}: unknown event {step.name!r}; known: {', '.join(EVENTS)}")
    if not steps:
        raise DocError(f"{DOC.name}:{block.first_line}: an empty {block.kind} block")
    _check_sends_are_answered(block, steps)
    return steps


def _check_sends_are_answered(block: Block, steps: list[Step]) -> None:
    unanswered, closed = 0, False
    for step in steps:
        if isinstance(step, Send):
            if closed:
                raise DocError(f"{DOC.name}:{block.first_line}: a frame sent after the socket was closed")
            unanswered += 1
        elif isinstance(step, (Expect, ExpectClose)):
            unanswered = max(0, unanswered - 1)
            closed = closed or isinstance(step, ExpectClose)
    if unanswered:
        raise DocError(f"{DOC.name}:{block.first_line}: {unanswered} sent frame(s) without a reply (<<<) after them")
    if block.kind == "http" and not any(isinstance(step, Exchange) for step in steps):
        raise DocError(f"{DOC.name}:{block.first_line}: an http block without a request")


class Stamps:
    """Documented timestamps stand for real ones: one to one, and in the same order; so do cursors."""

    def __init__(self) -> None:
        self.real_of: dict[str, str] = {}
        self.cursors: dict[str, str] = {}

    def bind_cursor(self, documented: str, real: str, where: str) -> str:
        if documented in self.cursors:
            assert self.cursors[documented] == real, (
                f"{where}: cursor {documented} stood for {self.cursors[documented]} before, now {real}")
            return documented
        earlier = [other for other, other_real in self.cursors.items() if other_real == real]
        assert not earlier, f"{where}: the server sent cursor {real} again, documented as {earlier[0]} before"
        self.cursors[documented] = real
        return documented

    def real_frame(self, text: str) -> str:
        """A frame to send, with each documented cursor replaced by the real one."""
        for documented, real in self.cursors.items():
            text = text.replace(json.dumps(documented), json.dumps(real))
        return text

    def bind(self, documented: str, real: str, where: str) -> str:
        if documented in self.real_of:
            assert self.real_of[documented] == real, (
                f"{where}: {documented} stood for {self.real_of[documented]} before, now the server sent {real}")
            return documented
        earlier = [other for other, other_real in self.real_of.items() if other_real == real]
        assert not earlier, f"{where}: the server sent {real} again, which the document wrote as {earlier[0]} before"
        for other, other_real in self.real_of.items():
            assert (_instant(documented) < _instant(other)) == (_instant(real) < _instant(other_real)), (
                f"{where}: documented {documented} vs {other}, but the server's {real} vs {other_real} "
                "are in the other order")
        self.real_of[documented] = real
        return documented

    def translate(self, documented: Any, real: Any, where: str) -> Any:
        """The real value with each server-set timestamp replaced by the documented one."""
        if isinstance(real, dict) and isinstance(documented, dict):
            translated = {}
            for key, value in real.items():
                expected = documented.get(key)
                if key in STAMP_KEYS and _is_stamp(expected) and _is_stamp(value):
                    translated[key] = self.bind(expected, value, where)
                elif key == "cursor" and isinstance(expected, str) and isinstance(value, str):
                    translated[key] = self.bind_cursor(expected, value, where)
                else:
                    translated[key] = self.translate(expected, value, where)
            return translated
        if isinstance(real, list) and isinstance(documented, list):
            return [self.translate(d, r, where) for d, r in zip(documented, real)] + real[len(documented):]
        return real


def _is_stamp(value: Any) -> bool:
    return isinstance(value, str) and STAMP.fullmatch(value) is not None


def _instant(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


@dataclasses.dataclass
class Stage:
    """The live server of one block: its client, database and the user's token."""

    client: TestClient
    database_url: str
    pg_server: str
    token: str
    database_down: bool = False


async def _database_down(stage: Stage) -> None:
    name = database_name(stage.database_url)
    stage.database_down = True
    admin(stage.pg_server, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    admin(stage.pg_server, f"SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '{name}'")  # until gone: their goodbye sent
    # Until the server has noticed (its change listener lost): before that, a token it checked
    # moments ago may still open a socket from the handshake's cache (docs/protocol.md).
    async with asyncio.timeout(10):
        while (await stage.client.get("/readyz")).status != 503:
            await asyncio.sleep(0.05)


async def _database_up(stage: Stage) -> None:
    admin(stage.pg_server, f'ALTER DATABASE "{database_name(stage.database_url)}" ALLOW_CONNECTIONS true')
    stage.database_down = False


async def _schema_broken(stage: Stage) -> None:
    # A fault the server does not expect: a column renamed behind its back.
    admin(stage.database_url, "ALTER TABLE patients RENAME COLUMN last_name TO surname")


async def _account_disabled(stage: Stage) -> None:
    admin(stage.database_url, "UPDATE users SET is_active = false")


async def _server_shutdown(stage: Stage) -> None:
    await stage.client.server.close()


async def _nothing(stage: Stage) -> None:
    pass  # takes effect when the block's user is made (see stage)


async def _history_pruned(stage: Stage) -> None:
    # Every change committed so far is past retention (as if a week had gone by), pruned as another
    # server process would: the server under test learns of it from the database.
    await prune_log(stage.database_url, retain_seconds=0, retain_rows=0)


EVENTS: dict[str, Callable[[Stage], Awaitable[None]]] = {
    "database down": _database_down,
    "database up": _database_up,
    "schema broken": _schema_broken,
    "account disabled": _account_disabled,
    "server shutdown": _server_shutdown,
    "viewer": _nothing,
    "history pruned": _history_pruned,
}
PSQL = "psql: "


def event(name: str) -> Callable[[Stage], Awaitable[None]]:
    if name.startswith(PSQL):
        async def psql(stage: Stage) -> None:
            admin(stage.database_url, name.removeprefix(PSQL))
        return psql
    return EVENTS[name]


async def expect_frame(ws: Any, step: Expect | ExpectClose, stamps: Stamps) -> None:
    message = await ws.receive(timeout=10)
    if isinstance(step, ExpectClose):
        assert (message.type, message.data, message.extra or "") == (WSMsgType.CLOSE, step.code, step.reason), (
            f"{step.where}: expected close {step.code}, got {message.type.name} {message.data!r}")
        return
    assert message.type == WSMsgType.TEXT, f"{step.where}: expected a text frame, got {message.type.name} {message.data!r}"
    real = json.loads(message.data)
    assert message.data == json.dumps(real), f"{step.where}: not in json.dumps' default format: {message.data}"
    assert json.dumps(stamps.translate(json.loads(step.text), real, step.where)) == step.text, step.where


async def replay_frames(stage: Stage, steps: list[Step]) -> None:
    connect = steps[0] if isinstance(steps[0], Connect) else Connect(f"/ws/?token={stage.token}", ())
    path = connect.path.replace("<key>", stage.token)
    headers = {name: value.replace("<key>", stage.token) for name, value in connect.headers}
    stamps, closed = Stamps(), False
    async with stage.client.ws_connect(path, headers=headers) as ws:
        for step in steps:
            if isinstance(step, Event):
                await event(step.name)(stage)
            elif isinstance(step, Send):
                text = stamps.real_frame(step.text)
                await (ws.send_bytes(text.encode()) if step.binary else ws.send_str(text))
            elif isinstance(step, (Expect, ExpectClose)):
                await expect_frame(ws, step, stamps)
                closed = closed or isinstance(step, ExpectClose)
        if not closed:
            await ws.send_str(END_FRAME)
            message = await ws.receive(timeout=10)
            assert message.data == END_REPLY, f"an unexpected frame after the block's last reply: {message.data!r}"


async def http_exchange(stage: Stage, step: Exchange) -> None:
    reader, writer = await asyncio.open_connection(stage.client.server.host, stage.client.server.port)
    try:
        request = "".join(f"{line}\r\n" for line in step.request) + "\r\n"
        writer.write(request.replace("<key>", stage.token).encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        received = {}
        for header in head[1:]:
            if header:
                name, _, value = header.partition(":")
                received[name.strip().lower()] = value.strip()
        length = int(received.get("content-length", "0"))
        body = (await reader.readexactly(length)).decode() if length else None
    finally:
        writer.close()
        await writer.wait_closed()
    assert head[0] == step.status_line, step.where
    for name, value in step.headers:
        assert received.get(name.lower()) == value, f"{step.where}: header {name}"
    assert body == step.body, step.where


@pytest.fixture
async def stage(request: pytest.FixtureRequest, aiohttp_client: Any, config: Config, database_url: str,
                pg_server: str, token_for: Any) -> Stage:
    steps = request.param or []
    role = "viewer" if Event("viewer") in steps else "editor"
    app: web.Application = create_app(dataclasses.replace(config, database_url=database_url))
    client = await aiohttp_client(app)
    return Stage(client, database_url, pg_server, await token_for(client, "nurse", role))


def _parsed_or_none(block: Block) -> list[Step] | None:
    try:
        return parse_block(block)
    except DocError:
        return None  # reported by test_the_document_keeps_its_examples_checked


BLOCKS = executable_blocks()


@pytest.mark.parametrize(("block", "stage"), [(block, _parsed_or_none(block)) for block in BLOCKS],
                         ids=[block.id for block in BLOCKS], indirect=["stage"])
async def test_example(block: Block, stage: Stage) -> None:
    steps = parse_block(block)
    try:
        if block.kind == "http":
            for step in steps:
                await (event(step.name)(stage) if isinstance(step, Event) else http_exchange(stage, step))
        else:
            await replay_frames(stage, steps)
    finally:
        if stage.database_down:
            await _database_up(stage)


def test_the_document_keeps_its_examples_checked() -> None:
    assert BLOCKS, f"{DOC} has no executable ({', '.join(EXECUTABLE)}) blocks"
    kinds = {block.kind for block in BLOCKS}
    assert kinds == set(EXECUTABLE), f"expected examples of every kind, found only {sorted(kinds)}"
    problems = []
    for block in BLOCKS:
        try:
            parse_block(block)
        except DocError as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems)


def test_no_example_hides_outside_an_executable_block() -> None:
    # An example in a ```json or ```console block, or outside any block, would look checked but never run.
    checked = {block.first_line + index for block in BLOCKS for index in range(len(block.lines))}
    lines = DOC.read_text(encoding="utf-8").splitlines()
    hidden = [f"{DOC.name}:{number}: {line.strip()[:60]}" for number, line in enumerate(lines, 1)
              if EXAMPLE_LINE.match(line) and number not in checked]
    assert not hidden, "example lines outside executable blocks:\n" + "\n".join(hidden)


def test_the_checker_catches_an_unanswered_frame() -> None:
    request = '>>> {"stream": "patients", "payload": {"action": "list", "request_id": 1}}'
    reply = ('<<< {"stream": "patients", "payload": {"errors": [], "data": [], "action": "list", '
             '"response_status": 200, "request_id": 1}}')
    assert len(parse_block(Block("jsonl", 1, (request, reply)))) == 2
    for lines in ((request,), (request, reply, request), (reply, request), ("<< oops",)):
        with pytest.raises(DocError):
            parse_block(Block("jsonl", 1, lines))
