"""The docs run as written: every fenced shell command and Python block of ``README.md``,
``docs/*.md`` and ``examples/README.md`` is run, and what a block shows as output is what it
prints.

How a page is read (the conventions the docs follow, so that a drift fails here):

* Every fence names its language. ``sh`` / ``console`` and ``python`` blocks are run; ``text``,
  ``json``, ``yaml``, ``csv`` and ``toml`` blocks are not (file contents, listings, output).
* A shell block whose first line starts with ``$ `` is a terminal transcript: each ``$ ``
  line (with ``\\``-continued lines) is a command, the lines up to the next ``$ `` are what it
  prints (stdout and stderr together), compared line by line; a line ``...`` stands for any
  lines, and ``...`` inside a line for any text. A command must exit 0, unless what it prints
  ends with ``segeval: error: ...``. Any other shell block is run as one ``bash -e`` script.
* A Python block starting with ``>>>`` is a doctest; any other Python block is executed, and a
  ``text`` block right after it (nothing but blank lines between) is what it must print.
* The blocks of a page run in order, in one fresh folder holding a copy of ``examples/`` (the
  commands' paths are relative to the repository root), with ``segeval`` and ``python`` on the
  ``PATH`` (this interpreter, this checkout), and the Python blocks share one namespace.
* An HTML comment on the line right before a fence changes that: ``<!-- not run: REASON -->``
  (a GPU, a real cluster, your own data; the reason is visible in the page's source),
  ``<!-- run reduced: "OLD" -> "NEW"; ... (REASON) -->`` (the same commands on less work, e.g.
  one training epoch instead of minutes), ``<!-- run in: conformance/SUITE -->`` (in that
  folder of the conformance corpora), ``<!-- output not compared: REASON -->`` (timings).
"""

from __future__ import annotations

import contextlib
import doctest
import io
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, conformance_root

PAGES = ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md")),
         "examples/README.md"]
RUN = {"sh", "console", "python"}
TEXT = {"text", "json", "yaml", "csv", "toml"}
_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
_MARKER = re.compile(r"^\s*<!--\s*(not run|run reduced|run in|output not compared)\s*:\s*(.*?)"
                     r"\s*-->\s*$")


@dataclass
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    marker: tuple[str, str] | None
    output: str | None = None  # a Python block's expected output (the text block after it)

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: str) -> list[Block]:
    """The fenced blocks of ``page``, with their markers; a Python block's output attached."""
    lines = (REPO / page).read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    spans: list[tuple[int, int]] = []  # (opening fence, closing fence) line indices
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang = len(m.group(1)), m.group(2)
        j = i + 1
        while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
            j += 1
        body = [line[indent:] if line[:indent].strip() == "" else line for line in lines[i + 1:j]]
        mk = _MARKER.match(lines[i - 1]) if i else None
        found.append(Block(page, i + 1, lang, "\n".join(body) + "\n",
                           (mk.group(1), mk.group(2)) if mk else None))
        spans.append((i, j))
        i = j + 1
    for k in range(len(found) - 1):
        block, after = found[k], found[k + 1]
        between = lines[spans[k][1] + 1:spans[k + 1][0]]
        if (block.lang == "python" and not block.text.lstrip().startswith(">>>")
                and after.lang == "text" and all(not line.strip() for line in between)):
            block.output = after.text
    return found


def test_every_fence_names_its_language() -> None:
    bad = [b.where for page in PAGES for b in blocks(page) if b.lang not in RUN | TEXT]
    assert not bad, f"fences without a known language (sh, python, text, ...): {bad}"


def test_every_marker_says_why() -> None:
    for page in PAGES:
        for b in blocks(page):
            if b.marker and b.marker[0] in ("not run", "output not compared"):
                assert len(b.marker[1]) > 10, f"{b.where}: say why ({b.marker})"
            if b.marker and b.marker[0] == "run reduced":
                assert _substitutions(b.marker[1]), f"{b.where}: no substitution"


def _substitutions(spec: str) -> list[tuple[str, str]]:
    return re.findall(r'"([^"]*)"\s*->\s*"([^"]*)"', spec)


def _matches(expected: str, actual: str) -> bool:
    """Line by line; an expected line ``...`` matches any lines, ``...`` in a line any text
    (tabs printed are expanded as a terminal shows them, ``ls -C``'s)."""
    want = [line.rstrip() for line in expected.rstrip("\n").splitlines()]
    got = [line.expandtabs().rstrip() for line in actual.rstrip("\n").splitlines()]

    def line_ok(w: str, g: str) -> bool:
        return re.fullmatch(".*".join(re.escape(p) for p in w.split("...")), g) is not None

    def match(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(got)
        if want[i] == "...":
            return any(match(i + 1, k) for k in range(j, len(got) + 1))
        return j < len(got) and line_ok(want[i], got[j]) and match(i + 1, j + 1)

    return match(0, 0)


def _transcript(text: str) -> list[tuple[str, str]]:
    """``[(command, expected output)]`` of a ``$ `` transcript."""
    steps: list[tuple[str, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            command = [line[2:]]
            while command[-1].endswith("\\") and i + 1 < len(lines):
                i += 1
                command.append(lines[i])
            steps.append(("\n".join(command), []))
        elif steps:
            steps[-1][1].append(line)
        i += 1
    return [(c, "\n".join(out)) for c, out in steps]


class Page:
    """One page's run: its folder, environment and Python namespace."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "work"
        shutil.copytree(REPO / "examples", self.dir / "examples",
                        ignore=shutil.ignore_patterns("__pycache__"))
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        (bin_dir / "segeval").write_text(
            f"#!/bin/sh\nexec '{sys.executable}' -c 'from segeval.cli import main; main()' "
            f'"$@"\n')
        (bin_dir / "segeval").chmod(0o755)
        (bin_dir / "python").write_text(f"#!/bin/sh\nexec '{sys.executable}' \"$@\"\n")
        (bin_dir / "python").chmod(0o755)
        self.env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                    "PYTHONPATH": str(REPO), "COLUMNS": "80", "NO_COLOR": "1"}
        self.env.pop("SEGEVAL_PNG_DECODER", None)
        self.namespace: dict[str, object] = {"__name__": "__docs__"}
        self.failures: list[str] = []
        self.skipped: list[str] = []

    def shell(self, command: str, cwd: Path) -> tuple[int, str]:
        r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", command], cwd=cwd,
                           env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=600)
        return r.returncode, r.stdout

    def run(self, block: Block) -> None:
        kind, arg = block.marker or ("", "")
        if kind == "not run":
            return
        text = block.text
        if kind == "run reduced":
            for old, new in _substitutions(arg):
                if old not in text:
                    self.failures.append(f"{block.where}: run reduced: {old!r} not in the block")
                text = text.replace(old, new)
        cwd = self.dir
        if kind == "run in":
            root = conformance_root()
            if root is None or not root.is_dir():
                self.skipped.append(f"{block.where}: no conformance corpora")
                return
            cwd = root / arg.removeprefix("conformance/")
        if block.lang == "python":
            self.python(block, text, cwd)
        elif text.startswith("$ "):
            for command, expected in _transcript(text):
                code, out = self.shell(command, cwd)
                error = expected.strip().splitlines()[-1:] and \
                    expected.strip().splitlines()[-1].startswith("segeval: error:")
                if (code != 0) != bool(error):
                    self.failures.append(f"{block.where}: $ {command}\nexit {code}:\n{out}")
                elif kind != "output not compared" and not _matches(expected, out):
                    self.failures.append(f"{block.where}: $ {command}\nprinted:\n{out}\n"
                                         f"documented:\n{expected}")
        else:
            code, out = self.shell(text, cwd)
            if code != 0:
                self.failures.append(f"{block.where}: exit {code}:\n{text}\n{out}")

    def python(self, block: Block, text: str, cwd: Path) -> None:
        old = Path.cwd()
        os.chdir(cwd)
        try:
            if text.lstrip().startswith(">>>"):
                test = doctest.DocTestParser().get_doctest(text, self.namespace, block.where,
                                                           block.page, block.line)
                out = io.StringIO()
                runner = doctest.DocTestRunner(
                    optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
                runner.run(test, out=out.write, clear_globs=False)
                if runner.failures:
                    self.failures.append(f"{block.where}: doctest\n{out.getvalue()}")
                return
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out):
                    exec(compile(text, block.where, "exec"), self.namespace)
            except Exception as e:  # reported as the block's failure
                self.failures.append(f"{block.where}: {type(e).__name__}: {e}")
                return
            if block.output is not None and not _matches(block.output, out.getvalue()):
                self.failures.append(f"{block.where}: printed:\n{out.getvalue()}\n"
                                     f"documented:\n{block.output}")
        finally:
            os.chdir(old)


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_as_written(page: str, tmp_path: Path) -> None:
    run = Page(tmp_path)
    ran = 0
    for block in blocks(page):
        if block.lang in RUN:
            run.run(block)
            ran += block.marker is None or block.marker[0] != "not run"
    assert not run.failures, "\n\n".join(run.failures)
    if run.skipped and ran == len(run.skipped):
        pytest.skip("; ".join(run.skipped))


def test_transcripts_are_matched_strictly() -> None:
    """The matcher itself: ``...`` lines and in-line ``...``, nothing else loose."""
    assert _matches("a\n...\nd\n", "a\nb\nc\nd\n")
    assert _matches("mIoU ...  (17 of 21 classes)", "mIoU 0.5897  (17 of 21 classes)")
    assert not _matches("a\nd\n", "a\nb\nd\n")
    assert not _matches("mIoU 0.5897", "mIoU 0.5898")
    assert _transcript("$ a \\\n  b\nout\n$ c\n") == [("a \\\n  b", "out"), ("c", "")]


def test_cli_options_table_lists_every_option_and_format() -> None:
    """docs/cli.md's table of ``segeval score`` options names every option and every format."""
    from segeval.cli.score import score
    from segeval.formats.registry import FORMATS

    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    table = text[text.index("### Options"):text.index("### Example")]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    flags = " ".join(line.split(" | ")[0] for line in rows)
    for param in score.params:
        for flag in param.opts:
            assert f"`{flag}" in flags or f", {flag}" in flags or f"/ {flag}" in flags, flag
    format_row = next(line for line in rows if line.startswith("| `--format "))
    assert set(format_row.split(" | ")[0].strip("| `").split(" ", 1)[1].split("\\|")) == \
        set(FORMATS)
