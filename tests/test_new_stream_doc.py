"""docs/new-stream.md cannot drift from the code: its file blocks are the real files, its sessions replay."""
# The convention, for whoever edits the walk-through:
#
#   ```sql title=sql/vitals.sql              the block is the WHOLE file sql/vitals.sql, byte for byte
#   ```python title=server/x.py excerpt      the block is an excerpt: its lines appear in server/x.py
#                                            as one contiguous run of whole lines, in this order
#   ```wscat                                 a wscat session, replayed against a real server exactly as
#                                            the ```wscat blocks of docs/protocol.md are
#                                            (tests/test_docs_protocol.py describes the format)
#
# The path is relative to the project root. Any other block (```bash, ```text, ...) is prose and
# is not checked, so never put a file's code in one. The walk-through must show every file of the
# four steps, and must have at least one labelled block.
from __future__ import annotations

import dataclasses
import re

import pytest

from server.config import PROJECT_DIR
from tests.test_docs_protocol import (
    Block,
    Stage,
    fenced_blocks,
    parse_block,
    replay_frames,
    stage,  # noqa: F401  (the fixture that starts a server per session)
)

DOC = PROJECT_DIR / "docs" / "new-stream.md"
OPENING = re.compile(r"^ *(`{3,}|~{3,})\s*(\S*)(.*)$")
LABEL = re.compile(r"\s*title=(\S+)(\s+excerpt)?\s*$")
STEP_FILES = {
    "sql/migrations/0005_vitals.sql", "sql/vitals.sql", "schemas/vitals.py", "server/resources/vitals.py",
    "server/resources/__init__.py",
}


@dataclasses.dataclass(frozen=True)
class FileBlock:
    path: str
    excerpt: bool
    line: int                  # the document line of the opening fence
    text: str                  # the block's content, each line ending in a newline


def file_blocks(text: str) -> list[FileBlock]:
    """Every fenced block whose info string names a file (title=PATH [excerpt])."""
    lines, found, index = text.splitlines(), [], 0
    while index < len(lines):
        opening = OPENING.match(lines[index])
        index += 1
        if opening is None:
            continue
        fence, start = opening.group(1), index
        while index < len(lines) and lines[index].strip() != fence:
            index += 1
        label = LABEL.fullmatch(opening.group(3))
        if label is not None:
            body = "".join(f"{line}\n" for line in lines[start:index])
            found.append(FileBlock(label.group(1), bool(label.group(2)), start, body))
        index += 1
    return found


BLOCKS = file_blocks(DOC.read_text(encoding="utf-8"))


def is_contiguous_run(excerpt: str, whole: str) -> bool:
    wanted, lines = excerpt.splitlines(), whole.splitlines()
    return any(lines[i:i + len(wanted)] == wanted for i in range(len(lines) - len(wanted) + 1))


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{block.path}@L{block.line}" for block in BLOCKS])
def test_each_file_block_is_the_real_file(block: FileBlock) -> None:
    path = PROJECT_DIR / block.path
    assert path.is_file(), f"new-stream.md:{block.line} names {block.path}, which does not exist"
    real = path.read_text(encoding="utf-8")
    if block.excerpt:
        assert block.text.strip() and is_contiguous_run(block.text, real), (
            f"new-stream.md:{block.line}: the excerpt is not a run of lines of {block.path}")
    else:
        assert block.text == real, f"new-stream.md:{block.line}: the block differs from {block.path}"


def test_the_walk_through_shows_every_step() -> None:
    assert BLOCKS, "docs/new-stream.md has no block labelled with a file (```lang title=PATH)"
    shown = {block.path for block in BLOCKS}
    assert STEP_FILES <= shown, f"files of the four steps not shown: {sorted(STEP_FILES - shown)}"
    whole = {block.path for block in BLOCKS if not block.excerpt}
    assert STEP_FILES - {"server/resources/__init__.py"} <= whole, "show each new file whole"


def test_the_checker_catches_drift() -> None:
    real = (PROJECT_DIR / "sql" / "vitals.sql").read_text(encoding="utf-8")
    assert is_contiguous_run("-- name: count\nSELECT count(*) FROM vitals WHERE {where};\n", real)
    assert not is_contiguous_run("-- name: count\nSELECT count(*) FROM vitals;\n", real)
    assert not is_contiguous_run("-- name: delete\n-- name: count\n", real)  # both real, not adjacent
    assert file_blocks("```sql title=a.sql\nx\n```\n```sql title=b.sql excerpt\ny\n```\n```sql\nz\n```\n") == [
        FileBlock("a.sql", False, 1, "x\n"), FileBlock("b.sql", True, 4, "y\n")]


SESSIONS = [block for block in fenced_blocks(DOC.read_text(encoding="utf-8")) if block.kind == "wscat"]


@pytest.mark.parametrize(("block", "stage"), [(block, parse_block(block)) for block in SESSIONS],
                         ids=[f"wscat@L{block.first_line}" for block in SESSIONS], indirect=["stage"])
async def test_the_try_it_session_replays(block: Block, stage: Stage) -> None:  # noqa: F811
    await replay_frames(stage, parse_block(block))


def test_there_is_a_session_to_try() -> None:
    assert SESSIONS, "docs/new-stream.md has no ```wscat session"
