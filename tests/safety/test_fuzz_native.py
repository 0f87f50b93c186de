"""The native PNG kernels under AddressSanitizer and UndefinedBehaviorSanitizer.

``fuzz/build.sh standalone`` builds the fuzz target ``fuzz/fuzz_png.c`` with gcc, both
sanitizers and every error fatal, linked with the replay-and-mutate driver
``fuzz/standalone.c``; the test replays the seed corpus ``fuzz/corpus/`` and runs a bounded,
deterministic number of mutated inputs (a few seconds). The target checks every result against
its own reference decoder as well, so that the run catches wrong pixels and counts, not only
memory errors. Builds with a planted bug (a wrong Paeth shortcut, a write past a row, a
missing length check) show that the run fails when the kernels are wrong. See
``docs/fuzzing.md`` for the long libFuzzer run.

gcc is required (it is on every CI runner): without it the test fails, saying so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

FUZZ = REPO / "fuzz"
NATIVE = REPO / "segeval" / "core" / "kernels" / "native"
ITERATIONS = 20_000


def build(out: Path, native: Path = NATIVE) -> Path:
    """The standalone sanitizer build of the fuzz target in ``out``, from the kernel sources
    in ``native``."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc is not installed: the native fuzz test builds the PNG kernels with "
                    "gcc -fsanitize=address,undefined (install gcc to run it)")
    env = {**os.environ, "OUT": str(out), "NATIVE": str(native)}
    done = subprocess.run(["sh", str(FUZZ / "build.sh"), "standalone"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, f"the sanitizer build failed:\n{done.stdout}\n{done.stderr}"
    return out / "fuzz_png_standalone"


def run(binary: Path, iterations: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UBSAN_OPTIONS": "print_stacktrace=1"}
    return subprocess.run([str(binary), str(FUZZ / "corpus"), str(iterations)],
                          capture_output=True, text=True, env=env, timeout=600)


def test_the_kernels_survive_the_corpus_and_mutations_under_sanitizers(tmp_path: Path) -> None:
    binary = build(tmp_path)
    done = run(binary, ITERATIONS)
    assert done.returncode == 0, done.stderr[-4000:]
    seeds = sum(1 for p in (FUZZ / "corpus").iterdir() if not p.name.startswith("."))
    assert seeds >= 40
    assert f"replayed {seeds} corpus files, ran {ITERATIONS} mutated inputs" in done.stdout
    assert "runtime error" not in done.stderr  # UBSan: fatal anyway, said twice


def test_the_corpus_can_be_regenerated_and_is_what_is_committed(tmp_path: Path) -> None:
    """``fuzz/make_corpus.py`` writes the committed seeds, byte for byte."""
    import sys

    subprocess.run([sys.executable, str(FUZZ / "make_corpus.py"), str(tmp_path)], check=True,
                   capture_output=True)
    made = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_bytes() for p in (FUZZ / "corpus").iterdir()}
    assert made == committed


@pytest.mark.parametrize(("file", "old", "new", "expect"), [
    # a Paeth pixel with zero filtered bytes keeps its left neighbour only if b == c
    ("png_filters.h", "if (xx == 0 && bb == c) {",
     "if (xx == 0) { /* planted bug */", r"fuzz_png\.c:\d+: check failed"),
    # the span a Paeth pixel starts goes on one word past where the row above changes
    ("png_filters.h", "| (segpng_word(prev + j) ^ segpng_word(prev + j - 1))) == 0) {",
     "| (segpng_word(prev + j + 1) ^ segpng_word(prev + j))) == 0) { /* planted bug */",
     r"fuzz_png\.c:\d+: check failed|AddressSanitizer"),
    # a None row of one-byte pixels copies one byte too many: past the output's last row
    ("png_filters.h", "for (i = 0; i < n; i++)\n            cur[i] = x[i];",
     "for (i = 0; i <= n; i++) /* planted bug */\n            cur[i] = x[i];",
     r"AddressSanitizer: heap-buffer-overflow"),
    # the raw length is no longer checked against the header
    ("png_filters.c", "!segpng_image_bytes(h, w, bpp, stride, &total) || total != raw_len",
     "!segpng_image_bytes(h, w, bpp, stride, &total)",
     r"AddressSanitizer: heap-buffer-overflow|check failed: status == SEGPNG_BAD_LENGTH"),
])
def test_a_planted_bug_is_caught(tmp_path: Path, file: str, old: str, new: str,
                                 expect: str) -> None:
    native = tmp_path / "native"
    shutil.copytree(NATIVE, native)
    source = (native / file).read_text()
    assert old in source
    (native / file).write_text(source.replace(old, new))
    done = run(build(tmp_path / "out", native), 5_000)
    assert done.returncode != 0
    assert re.search(expect, done.stderr), done.stderr[-2000:]
