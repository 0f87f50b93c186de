"""``segeval score`` is a thin shell over :func:`segeval.evaluate`: every option that is not an
output is a parameter of ``evaluate`` with the same name and default; a dead worker process is
one line naming the file, exit 1, within seconds; the library's errors name parameters and the
command says its flags."""

from __future__ import annotations

import inspect
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import segeval
from segeval.cli import cli
from segeval.cli.score import OUTPUT_OPTIONS, score
from segeval.errors import UsageError
from tests.conftest import kill_on, random_labels, write_png


def test_every_score_option_is_an_evaluate_parameter_with_the_same_default() -> None:
    params = inspect.signature(segeval.evaluate).parameters
    doc = inspect.getdoc(segeval.evaluate) or ""
    checked = []
    for option in score.params:
        if option.name in OUTPUT_OPTIONS:
            continue
        name = option.name
        assert name in params, f"--{name.replace('_', '-')} is not a parameter of evaluate"
        default = params[name].default
        if name == "class_names":  # the CLI takes the file, evaluate a file or the names
            assert option.default is None and default is None
        elif option.required:
            assert default is inspect.Parameter.empty, name
        else:
            assert option.default == default, (name, option.default, default)
        assert name in doc, f"evaluate's docstring does not document {name}"
        checked.append(name)
    assert {"decoder", "missing", "absent", "ignore_index", "jobs", "scheduler", "device",
            "pred_ids", "iiou", "backend", "keep_bbox", "task", "split"} <= set(checked)
    # and nothing of evaluate is missing from the command (progress is the bar; per_image is
    # --per-image FILE)
    flags = {o.name for o in score.params} | {"per_image", "progress"}
    assert set(params) <= flags, set(params) - flags


def test_library_errors_name_parameters_and_the_command_says_flags(tmp_path: Path) -> None:
    write_png(tmp_path / "gt" / "a.png", np.zeros((4, 4), np.uint8))
    write_png(tmp_path / "pred" / "a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(UsageError, match=r"^pred_ids: not an option of the folder format$"):
        segeval.evaluate(tmp_path / "pred", tmp_path / "gt", "folder", num_classes=2,
                         pred_ids="train")
    with pytest.raises(UsageError, match=r"^The 'missing' parameter must be 'error' or 'zero'\. "
                                         r"Got 'nope' instead\.$"):
        segeval.evaluate(tmp_path / "pred", tmp_path / "gt", "folder", num_classes=2,
                         missing="nope")  # type: ignore[arg-type]
    r = CliRunner().invoke(cli, ["score", "--pred", str(tmp_path / "pred"), "--gt",
                                 str(tmp_path / "gt"), "--num-classes", "2", "--pred-ids",
                                 "train"])
    assert r.exit_code == 2
    assert r.stderr == "segeval: error: --pred-ids: not an option of the folder format\n"


def test_a_killed_worker_is_one_line_and_exit_1_not_a_hang(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    for i in range(6):
        gt = random_labels(rng, (20, 30), 4)
        write_png(tmp_path / "gt" / f"im{i}.png", gt)
        name = "poison" if i == 3 else f"im{i}"
        write_png(tmp_path / "pred" / f"{name}.png", gt)
    (tmp_path / "gt" / "im3.png").rename(tmp_path / "gt" / "poison.png")
    import segeval.formats.semantic as semantic

    kill_on(monkeypatch, semantic, "read_label", "poison")
    signal.alarm(60)  # a hang fails this test instead of stopping the suite
    try:
        r = CliRunner().invoke(cli, ["score", "--pred", str(tmp_path / "pred"), "--gt",
                                     str(tmp_path / "gt"), "--num-classes", "4", "-j", "2",
                                     "--json", str(tmp_path / "out.json")])
    finally:
        signal.alarm(0)
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "poison.png: the worker process scoring it died (killed by " \
        "signal 9, SIGKILL)" in lines[0], r.stderr
    assert not (tmp_path / "out.json").exists()


_SLOW_SCORE = """
import os, sys, time
import segeval.formats.semantic as semantic
from segeval.cli import main
read = semantic.read_label
def slow(file, **kw):
    with open(sys.argv[1], "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(30)
    return read(file, **kw)
semantic.read_label = slow
main(["score", "--pred", sys.argv[2], "--gt", sys.argv[3], "--num-classes", "4", "-j", "2"])
"""


@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGTERM, 143, "terminated"),
                                                    (signal.SIGINT, 130, "aborted")])
def test_sigterm_and_sigint_stop_the_workers_without_a_traceback(tmp_path: Path, sig, code,
                                                                 word) -> None:
    import subprocess
    import sys
    import time

    rng = np.random.default_rng(3)
    for i in range(4):
        gt = random_labels(rng, (20, 30), 4)
        write_png(tmp_path / "gt" / f"im{i}.png", gt)
        write_png(tmp_path / "pred" / f"im{i}.png", gt)
    pids = tmp_path / "pids.txt"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SCORE, str(pids), str(tmp_path / "pred"),
                             str(tmp_path / "gt")], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not pids.exists()
                                           or len(pids.read_text().split()) < 2):
        time.sleep(0.05)
    workers = [int(p) for p in pids.read_text().split()]
    assert len(workers) == 2 and proc.pid not in workers
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == code
    assert stderr.strip() == f"segeval: {word}"  # (click starts a new line after a ^C)
    time.sleep(0.5)
    for pid in workers:  # the workers are gone (reaped by their parent, which waited for them)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
