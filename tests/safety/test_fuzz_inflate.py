"""The native fuzz target (``fuzz/fuzz_png.c``) finds bugs planted in the streaming inflater
(``native/png_inflate.c``) and in the mask pass's sparse rows (``native/png_passes.c``).

Each test copies the kernel sources, plants one bug, builds the target with
``fuzz/build.sh standalone`` (gcc, AddressSanitizer + UndefinedBehaviorSanitizer) and runs the
seed corpus and 5,000 deterministic mutations: the run must fail, by a sanitizer or by one of
the target's checks (its own deflate writer and reference decoder; zlib is not needed). gcc is
required, as for the other native fuzz test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FUZZ = REPO / "fuzz"
NATIVE = REPO / "segeval" / "core" / "kernels" / "native"

PLANTED = [
    # a distance before the start of the output is no longer refused
    ("png_inflate.c", "if (d > out)\n", "if (d > out + 70000) /* planted bug */\n",
     r"AddressSanitizer|check failed"),
    # a literal past the announced size is written
    ("png_inflate.c",
     "                if (out == total)\n                    FAIL(SEGPNG_INFLATE_TOO_LONG);\n"
     "                out++;",
     "                out++; /* planted bug */", r"AddressSanitizer|check failed"),
    # a non-zero literal is not marked: a row's span of non-zero bytes is wrong
    ("png_inflate.c", "                    mark_dirty(&o, out - 1, out);",
     "                    ; /* planted bug */", r"check failed"),
    # the window keeps 20000 bytes of history instead of 32 KiB
    ("png_inflate.c",
     "        size_t from = o->pos > HIST ? o->pos - HIST : 0, keep, data;",
     "        size_t from = o->pos > 20000 ? o->pos - 20000 : 0, keep, data; /* planted */",
     r"AddressSanitizer|check failed"),
    # an Average row's tail is cut one byte short (7 bytes are needed after the hull)
    ("png_passes.c", "    ext = hhi + (ft == 3 ? 8 : ft == 4 ? 1 : 0);",
     "    ext = hhi + (ft == 3 ? 6 : ft == 4 ? 1 : 0); /* planted bug */", r"check failed"),
    # a Paeth row's tail is not computed
    ("png_passes.c", "    ext = hhi + (ft == 3 ? 8 : ft == 4 ? 1 : 0);",
     "    ext = hhi + (ft == 3 ? 8 : 0); /* planted bug */", r"check failed"),
]


def build(out: Path, native: Path) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is not installed: the native fuzz test builds the PNG kernels with "
                    "gcc -fsanitize=address,undefined (install gcc to run it)")
    env = {**os.environ, "OUT": str(out), "NATIVE": str(native), "ZLIB": "0"}
    done = subprocess.run(["sh", str(FUZZ / "build.sh"), "standalone"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, f"the sanitizer build failed:\n{done.stdout}\n{done.stderr}"
    return out / "fuzz_png_standalone"


@pytest.mark.parametrize(("file", "old", "new", "expect"), PLANTED)
def test_a_planted_bug_is_caught(tmp_path: Path, file: str, old: str, new: str,
                                 expect: str) -> None:
    native = tmp_path / "native"
    shutil.copytree(NATIVE, native)
    source = (native / file).read_text()
    assert source.count(old) == 1
    (native / file).write_text(source.replace(old, new))
    binary = build(tmp_path / "out", native)
    done = subprocess.run([str(binary), str(FUZZ / "corpus"), "5000"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode != 0
    assert re.search(expect, done.stderr), done.stderr[-2000:]
