"""The page's JavaScript tests (tests/js/, `node --test`), run by the Python suite so that CI runs them."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

JS_TESTS = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node")


def node_version() -> tuple[int, ...]:
    output = subprocess.run([NODE, "--version"], capture_output=True, text=True, check=True).stdout
    return tuple(int(part) for part in re.findall(r"\d+", output)[:2])


@pytest.mark.skipif(NODE is None, reason="node is not installed (the NEWS2 chart tests need node >= 20.19)")
def test_node_tests_pass() -> None:
    # 20.19 loads an ES module from a .js file with no package.json (the page's files are served as they are).
    if node_version() < (20, 19):
        pytest.skip(f"node {'.'.join(map(str, node_version()))} is older than 20.19")
    files = sorted(str(path) for path in JS_TESTS.glob("*.test.mjs"))
    assert files, "no JavaScript tests found"
    result = subprocess.run([NODE, "--test", *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^# fail 0$", result.stdout, re.MULTILINE), result.stdout
