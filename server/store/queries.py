"""Loads the named queries of sql/*.sql: blocks that start with `-- name: <query>`."""
from __future__ import annotations

import re
from pathlib import Path

NAME_LINE = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_queries(text: str, namespace: str) -> dict[str, str]:
    """Split one file into {"<namespace>.<name>": sql}, without its whole-line comments.

    Dropping them matters: a {fragment} or %(param)s named in a comment would be filled in there too,
    and a value holding a carriage return ends a `--` comment, so the rest of it would run as SQL."""
    parts = NAME_LINE.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2]):
        key = f"{namespace}.{name}"
        body = body.strip()
        if key in queries:
            raise ValueError(f"duplicate query {key}")
        if not any(line.strip() and not line.lstrip().startswith("--") for line in body.splitlines()):
            raise ValueError(f"empty query {key}")
        queries[key] = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("--"))
    return queries


def load_queries(sql_dir: Path) -> dict[str, str]:
    """Every named query of every sql_dir/*.sql file, keyed "<file stem>.<name>"."""
    queries: dict[str, str] = {}
    for path in sorted(sql_dir.glob("*.sql")):
        queries.update(parse_queries(path.read_text(encoding="utf-8"), path.stem))
    return queries
