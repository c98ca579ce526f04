"""The documentation's code runs as written.

Every ```python block of README.md, README.zh-CN.md and docs/*.md is executed: each file in
one fresh namespace, its blocks in order (a block may use names from earlier ones), with the
working directory set to a temporary directory so files the examples write land there.

Two conventions, both invisible on a rendered page:

- A ```text block that directly follows a ```python block (only blank lines between) is
  that block's printed output, and must match what the block prints.
- ``<!-- needs: python:graphviz program:dot -->`` on the line before a block skips that
  block (with a warning) when the named module is not importable or the program is not on
  PATH. Nothing else skips a block.

A failure names the file, the block and its line; tracebacks point into the Markdown file.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shutil
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = sorted(
    [p for p in (ROOT / "README.md", ROOT / "README.zh-CN.md") if p.exists()]
    + list((ROOT / "docs").glob("*.md"))
)

_FENCE = re.compile(r"^(```+)\s*([\w+-]*)")
_NEEDS = re.compile(r"^<!--\s*needs:(.*?)-->\s*$")


@dataclass
class Block:
    lang: str
    line: int  # 1-based line of the first code line in the Markdown file
    code: str
    needs: list[str]
    output: str | None = None  # the expected stdout, from a ```text block right after


def parse_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, with their markers attached."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    last_block_end = None  # index just past the closing fence of the previous block
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        start = i + 1
        end = start
        while end < len(lines) and not lines[end].startswith(fence):
            end += 1
        if end == len(lines):
            raise ValueError(f"unclosed ``` block opened at line {i + 1}")
        prev = i - 1
        while prev >= 0 and not lines[prev].strip():
            prev -= 1
        needs: list[str] = []
        if prev >= 0 and (n := _NEEDS.match(lines[prev].strip())):
            needs = n.group(1).split()
        code = "\n".join(lines[start:end]) + "\n"
        only_blank_between = last_block_end is not None and all(
            not line.strip() for line in lines[last_block_end:i]
        )
        if lang == "text" and only_blank_between and blocks and blocks[-1].lang == "python":
            blocks[-1].output = code
        else:
            blocks.append(Block(lang, start + 1, code, needs))
        last_block_end = end + 1
        i = end + 1
    return blocks


def missing(needs: list[str]) -> list[str]:
    """The requirements in ``needs`` that this machine does not meet."""
    absent = []
    for need in needs:
        kind, _, name = need.partition(":")
        if kind == "python":
            ok = importlib.util.find_spec(name) is not None
        elif kind == "program":
            ok = shutil.which(name) is not None
        else:
            raise ValueError(f"unknown requirement {need!r}: use python:NAME or program:NAME")
        if not ok:
            absent.append(need)
    return absent


def _normalise(out: str) -> str:
    return "\n".join(line.rstrip() for line in out.strip("\n").splitlines())


def _label(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", DOC_FILES, ids=_label)
def test_python_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _label(path)
    blocks = [b for b in parse_blocks(path.read_text(encoding="utf-8")) if b.lang == "python"]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    skipped = []
    for number, block in enumerate(blocks, 1):
        where = f"{name}, python block {number} (line {block.line})"
        absent = missing(block.needs)
        if absent:
            skipped.append(f"{where}: needs {', '.join(absent)}")
            continue
        # Leading newlines make traceback line numbers those of the Markdown file.
        source = "\n" * (block.line - 1) + block.code
        stdout = io.StringIO()
        try:
            with contextlib.redirect_stdout(stdout):
                exec(compile(source, str(path), "exec"), namespace)
        except Exception:
            pytest.fail(f"{where} raised:\n{traceback.format_exc()}", pytrace=False)
        if block.output is not None and _normalise(stdout.getvalue()) != _normalise(block.output):
            pytest.fail(
                f"{where} printed something other than the ```text block after it.\n"
                f"--- expected\n{block.output}--- printed\n{stdout.getvalue()}",
                pytrace=False,
            )
    for message in skipped:
        warnings.warn(f"skipped {message}", stacklevel=1)


def test_docs_have_examples() -> None:
    for path in DOC_FILES:
        blocks = parse_blocks(path.read_text(encoding="utf-8"))
        assert any(b.lang == "python" for b in blocks), f"{_label(path)} has no python block"


def test_translation_keeps_code_identical() -> None:
    english, chinese = ROOT / "README.md", ROOT / "README.zh-CN.md"
    assert chinese.exists(), "README.zh-CN.md, the Chinese translation, is missing"
    ours = [(b.lang, b.code) for b in parse_blocks(english.read_text(encoding="utf-8"))]
    theirs = [(b.lang, b.code) for b in parse_blocks(chinese.read_text(encoding="utf-8"))]
    assert ours == theirs, "README.zh-CN.md's code blocks must match README.md's exactly"
    assert "README.zh-CN.md" in english.read_text(encoding="utf-8")
    assert "README.md" in chinese.read_text(encoding="utf-8")


def test_parser_conventions() -> None:
    text = (
        "<!-- needs: python:no_such_module_xyz program:no-such-program-xyz -->\n"
        "```python\nprint(1)\n```\n\n```text\n1\n```\n\nprose\n\n```text\nnot output\n```\n"
    )
    first, second = parse_blocks(text)
    assert (first.lang, first.line, first.output) == ("python", 3, "1\n")
    assert missing(first.needs) == ["python:no_such_module_xyz", "program:no-such-program-xyz"]
    assert (second.lang, second.output) == ("text", None)
