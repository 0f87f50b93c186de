"""The console script (``segeval.cli.entry``): the exit code is main()'s, the output is all
there, the ``atexit`` handlers run, a live thread is waited for, the start-up settings are made
(the garbage-collector thresholds; the OpenBLAS thread timeout unless the user set one), and
``score`` imports only the modules of what it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import tomllib

from tests.conftest import REPO

VOC = REPO / "examples" / "voc"
SCORE = ["score", "--format", "voc", "--gt", str(VOC / "VOC2012"), "--pred",
         str(VOC / "predictions"), "-j", "1"]


def run_entry(argv: list[str], before: str = "", env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    """``entry()`` in a fresh interpreter with ``sys.argv = ['segeval', *argv]``, after the
    Python code ``before``."""
    code = (f"import sys\n{before}\nsys.argv = ['segeval', *{argv!r}]\n"
            "from segeval.cli import entry\nentry()\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=env)


def test_console_script_is_entry() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["segeval"] == "segeval.cli:entry"
    assert "entry()" in (REPO / "segeval" / "cli" / "__main__.py").read_text()


def test_output_to_a_pipe_is_complete() -> None:
    done = run_entry([*SCORE, "--json", "-", "-q"])
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # the whole document, flushed before the fast exit
    assert result["num_images"] > 0 and len(result["per_class"]) == 21


def test_exit_codes_are_mains() -> None:
    assert run_entry(["score", "--bogus"]).returncode == 2
    missing = run_entry(["score", "--format", "voc", "--gt", str(VOC / "VOC2012"),
                         "--pred", str(REPO / "no-such-folder")])
    assert missing.returncode == 2 and missing.stderr.startswith("segeval: error: ")
    assert run_entry(["--version"]).returncode == 0


def test_atexit_handlers_run_and_settings_are_made() -> None:
    before = ("import atexit, gc, os\n"
              "atexit.register(lambda: print('atexit', gc.get_threshold(), "
              "os.environ.get('OPENBLAS_THREAD_TIMEOUT'), flush=True))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    done = run_entry(["--version"], before, env)
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1] == "atexit (10000, 50, 50) 4"
    done = run_entry(["--version"], before, {**env, "OPENBLAS_THREAD_TIMEOUT": "9"})
    assert done.stdout.splitlines()[-1] == "atexit (10000, 50, 50) 9"  # the user's setting


def test_a_live_thread_is_waited_for() -> None:
    before = ("import threading, time\n"
              "threading.Thread(target=lambda: (time.sleep(0.5), print('thread done', "
              "flush=True))).start()")
    done = run_entry(["score", "--bogus"], before)
    assert done.returncode == 2  # the normal exit, which joins the thread first
    assert done.stdout.strip() == "thread done"


def test_score_imports_only_what_it_runs() -> None:
    before = ("import atexit\n"
              "atexit.register(lambda: print(sorted({'segeval.cli.leaderboard', "
              "'segeval.cli.model', 'multiprocessing', 'segeval.engine.pool'} & "
              "set(sys.modules))))")
    done = run_entry([*SCORE[:-2], "-j", "2", "--scheduler", "threads", "-q"], before)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
    done = run_entry([*SCORE[:-2], "-j", "2", "-q"], before)  # the process pool needs its own
    assert done.stdout.splitlines()[-1] == "['multiprocessing', 'segeval.engine.pool']"
    done = run_entry(["leaderboard", "--help"], before)
    assert done.returncode == 0 and "segeval.cli.leaderboard" in done.stdout.splitlines()[-1]
