"""Submissions from strangers (issue 15): a worker killed by a submission is one failed row for
every ``jobs`` (``jobs=1`` included) and every task; non-UTF-8 and hostile names and error texts
are escaped in every report; stale report files go; each submission is cached as soon as it is
scored (a SIGKILL of the run loses only what was in flight, a re-run resumes); damaged cache rows
are scored again; workers die with the leaderboard, and Ctrl-C prints no traceback (Dask
included)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import segeval
from segeval.cli import cli
from segeval.leaderboard import run_leaderboard, write_reports
from segeval.leaderboard.challenge import evaluate
from segeval.leaderboard.report import md_text
from segeval.leaderboard.runner import WAVE, _waves, visible
from segeval.leaderboard.sources import SubmissionError
from tests.conftest import kill_on, random_labels, write_png
from tests.leaderboard.conftest import C, make_gt, make_submission

ROOT = Path(__file__).resolve().parents[2]


def by_name(board) -> dict:
    return {e["submission"]: e for e in board.entries}


def alarm(seconds: int):
    """Fail instead of hanging (SIGALRM raises in the test)."""

    def hang(signum, frame):
        raise TimeoutError("the leaderboard hangs")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    return previous


def unalarm(previous) -> None:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def gone(pid: int) -> bool:
    """The process has exited (a zombie that nobody reaps counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


# ---------------------------------------------------------------- item 2: a dying worker, jobs=1


def test_jobs_1_a_worker_that_dies_fails_only_its_semantic_submission(board_data,
                                                                      monkeypatch) -> None:
    """With ``jobs=1`` the submission is scored in one supervised worker process, not in this
    one: a prediction that kills it (SIGKILL, as the OOM killer does) is one failed row, and
    this process goes on to rank the others with their exact numbers."""
    import segeval.formats.semantic

    gt, subs, _ = board_data
    shutil.copytree(subs / "bravo", subs / "poisoned")
    kill_on(monkeypatch, segeval.formats.semantic, "read_label")
    previous = alarm(60)
    try:
        board = run_leaderboard(gt, subs, "folder", num_classes=C, jobs=1, resamples=50)
    finally:
        unalarm(previous)
    assert [e["submission"] for e in board.ranked()] == ["alpha", "bravo", "charlie", "delta"]
    assert by_name(board)["poisoned"]["error"] == (
        f"{subs / 'poisoned'}: the worker process scoring it died (killed by signal 9, SIGKILL)")
    monkeypatch.undo()
    for name in ("alpha", "delta"):
        expected = segeval.evaluate(subs / name, gt, "folder", num_classes=C, jobs=1).to_dict()
        assert board.outcomes[name].document == expected


def test_jobs_1_a_worker_that_dies_fails_only_its_panoptic_submission(tmp_path: Path,
                                                                      monkeypatch) -> None:
    import segeval.formats.coco.panoptic as coco_panoptic
    from tests.leaderboard.test_panoptic_task import make_board

    gt, subs, _ = make_board(tmp_path)
    shutil.copytree(subs / "team1", subs / "poisoned")
    kill_on(monkeypatch, coco_panoptic, "read_label")
    previous = alarm(60)
    try:
        board = run_leaderboard(gt, subs, "coco-panoptic", jobs=1, resamples=50)
    finally:
        unalarm(previous)
    assert {e["submission"] for e in board.ranked()} == {"team0", "team1", "team2"}
    assert by_name(board)["poisoned"]["error"] == (
        f"{subs / 'poisoned'}: the worker process scoring it died (killed by signal 9, SIGKILL)")
    monkeypatch.undo()
    want = segeval.evaluate(subs / "team1" / "pred.json", gt, "coco-panoptic", jobs=1)
    assert board.outcomes["team1"].document == want.to_dict()


def test_jobs_1_a_worker_that_dies_fails_only_its_instance_submission(conformance: Path,
                                                                      tmp_path: Path,
                                                                      monkeypatch) -> None:
    import segeval.formats.coco.instance as coco_instance

    derived = conformance / "coco_instances" / "derived"
    gt = derived / "instances_gt.json"
    subs = tmp_path / "subs"
    for name in ("segm", "poisoned"):
        (subs / name).mkdir(parents=True)
        shutil.copy(derived / "detections_segm.json", subs / name / "results.json")
    parse_json = coco_instance.parse_json

    def deadly(data, name):
        if "poisoned" in str(name):
            os.kill(os.getpid(), signal.SIGKILL)
        return parse_json(data, name)

    monkeypatch.setattr(coco_instance, "parse_json", deadly)
    board = run_leaderboard(gt, subs, "coco", jobs=1)
    assert [e["submission"] for e in board.ranked()] == ["segm"]
    assert by_name(board)["poisoned"]["error"] == (
        f"{subs / 'poisoned'}: the worker process scoring it died (killed by signal 9, SIGKILL)")
    monkeypatch.undo()
    assert board.outcomes["segm"].document == segeval.evaluate(
        subs / "segm" / "results.json", gt, "coco").to_dict()


def test_evalai_with_jobs_1_turns_a_dead_worker_into_the_submissions_error(
        board_data, monkeypatch) -> None:
    """The platform entry points score in a supervised worker too: a deadly submission is a
    :class:`SubmissionError` for the platform to show, and the host process lives on."""
    import segeval.formats.semantic

    gt, subs, _ = board_data
    read_label = segeval.formats.semantic.read_label

    def deadly(file, **kw):
        if "charlie" in str(file):
            os.kill(os.getpid(), signal.SIGKILL)
        return read_label(file, **kw)

    monkeypatch.setattr(segeval.formats.semantic, "read_label", deadly)
    with pytest.raises(SubmissionError) as e:
        evaluate(gt, subs / "charlie", "dev", num_classes=C, jobs=1)
    assert str(e.value) == (f"{subs / 'charlie'}: the worker process scoring it died "
                            f"(killed by signal 9, SIGKILL)")
    ok = evaluate(gt, subs / "alpha", "dev", num_classes=C, jobs=1)
    assert ok["submission_result"]["miou"] == segeval.evaluate(
        subs / "alpha", gt, "folder", num_classes=C, jobs=1).to_dict()["metrics"]["miou"]


# ---------------------------------------------------------------- items 6 and 13: names, reports


def test_visible_escapes_what_cannot_be_shown() -> None:
    raw = os.fsdecode(b"team\xff\xfe")  # surrogateescape: U+DCFF U+DCFE
    assert visible(raw) == "team\\xff\\xfe"
    assert visible("a\nb\rc\td\x00e\x7f") == "a\\nb\\rc\\td\\x00e\\x7f"
    assert visible("x\u202ey\u0085z\u2028") == "x\\u202ey\\u0085z\\u2028"
    assert visible("café ✓ <b>|`") == "café ✓ <b>|`"  # printable text is kept
    for text in (raw, "a\nb", "x\u202e"):
        visible(text).encode("utf-8")  # always encodable
        assert visible(visible(text)) == visible(text)


def test_markdown_cells_are_inert() -> None:
    assert md_text("a|b") == "a\\|b"
    assert md_text("`code` *em* _u_ [l](x) ~s~ \\") == \
        "\\`code\\` \\*em\\* \\_u\\_ \\[l\\](x) \\~s\\~ \\\\"
    assert md_text("<script>&") == "&lt;script&gt;&amp;"
    assert md_text("two\nlines") == "two\\\\nlines"


def md_cells(line: str) -> list[str]:
    """A Markdown table row split at its unescaped pipes."""
    cells, cur, k = [], "", 0
    while k < len(line):
        if line[k] == "\\" and k + 1 < len(line):
            cur += line[k:k + 2]
            k += 2
            continue
        if line[k] == "|":
            cells.append(cur)
            cur = ""
        else:
            cur += line[k]
        k += 1
    cells.append(cur)
    return [c.strip() for c in cells[1:-1]]


HOSTILE = "<img src=x onerror=alert(1)> | `x` *y* [z](javascript:alert(1))\nsecond line"


def test_non_utf8_and_hostile_names_in_every_report(tmp_path: Path) -> None:
    """Submission names whose bytes are not UTF-8 (a folder and a zip) are scored normally
    under their escaped name (``bad\\xff``), and that name is what every report, the cache
    and the per-submission file use; a name and an error text full of Markdown and HTML stay
    inert text in the Markdown and HTML reports."""
    gts = make_gt(tmp_path / "gt", 4)
    subs = tmp_path / "subs"
    make_submission(subs / "alpha", gts, 0.9, 1)
    raw = os.fsencode(subs)
    make_submission(Path(os.fsdecode(raw + b"/bad\xff")), gts, 0.6, 2)
    make_submission(tmp_path / "z", gts, 0.4, 3)
    with zipfile.ZipFile(os.fsdecode(raw + b"/zip\xfe.zip"), "w") as zf:
        for p in sorted((tmp_path / "z").iterdir()):
            zf.write(p, p.name)
    (subs / HOSTILE).mkdir()  # empty: fails, and its error text holds the name
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["leaderboard", "--gt", str(tmp_path / "gt"), "--submissions",
                                 str(subs), "--num-classes", str(C), "--out", str(out),
                                 "-j", "1", "--no-plots", "--resamples", "50"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    entries = {e["submission"]: e for e in
               json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))}
    shown = visible(HOSTILE)
    assert set(entries) == {"alpha", "bad\\xff", "zip\\xfe", shown}
    assert [entries[n]["rank"] for n in ("alpha", "bad\\xff", "zip\\xfe")] == [1, 2, 3]
    assert entries[shown]["status"] == "failed" and "\n" not in entries[shown]["error"]
    assert shown in entries[shown]["error"]  # the path in the error text, escaped the same way
    # scored normally: the same document as `segeval score` on the real (non-UTF-8) path
    doc = json.loads((out / "submissions" / "bad\\xff.json").read_text(encoding="utf-8"))
    expected = segeval.evaluate(os.fsdecode(raw + b"/bad\xff"), tmp_path / "gt", "folder",
                                num_classes=C, jobs=1).to_dict()
    assert doc == json.loads(json.dumps(expected))
    assert (out / "submissions" / "zip\\xfe.json").is_file()
    assert (out / "submissions" / f"{shown}.json").is_file()
    # CSV: the same names, quoted by the csv module
    rows = list(csv.DictReader(io.StringIO((out / "leaderboard.csv").read_text("utf-8"))))
    assert {row["submission"] for row in rows} == set(entries)
    # Markdown: every row has its columns, nothing is HTML, code, a link or a second line
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "](javascript" not in md.replace("\\[z\\](javascript", "")  # no link: [ ] escaped
    assert md_text("bad\\xff") == "bad\\\\xff" and "| bad\\\\xff |" in md
    failed = [line for line in md.splitlines() if "alert(1)" in line]
    assert len(failed) == 1 and len(md_cells(failed[0])) == 2
    ranked = [line for line in md.splitlines() if line.startswith("| 2 |")]
    assert len(md_cells(ranked[0])) == len(md_cells(md.splitlines()[4]))
    # HTML: the page holds the names as text only
    page = (out / "leaderboard.html").read_text(encoding="utf-8")
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "bad\\xff" in page
    # the cache has them: a re-run scores nothing
    board = run_leaderboard(tmp_path / "gt", subs, "folder", num_classes=C, jobs=1,
                            resamples=50, cache=out / "leaderboard-cache.sqlite",
                            exclude=[out])
    assert board.evaluated == []
    assert [e["submission"] for e in board.ranked()] == ["alpha", "bad\\xff", "zip\\xfe"]


def test_a_name_too_long_for_a_file_once_escaped(tmp_path: Path) -> None:
    gts = make_gt(tmp_path / "gt", 2)
    raw = os.fsencode(tmp_path / "subs") + b"/" + b"\xff" * 200  # 800 bytes once escaped
    make_submission(Path(os.fsdecode(raw)), gts, 0.8, 1)
    board = run_leaderboard(tmp_path / "gt", tmp_path / "subs", "folder", num_classes=C,
                            jobs=1, resamples=20)
    [entry] = board.ranked()
    assert entry["submission"] == "\\xff" * 200
    written = write_reports(board, tmp_path / "out", plots=False)
    [doc] = [p for p in written if p.parent.name == "submissions"]
    assert len(doc.name.encode()) <= 240 and doc.name.endswith(".json")
    assert json.loads(doc.read_text())["metrics"] == entry["metrics"]


def test_stale_submission_files_are_removed(board_data, tmp_path: Path) -> None:
    gt, subs, _ = board_data
    out = tmp_path / "out"
    write_reports(run_leaderboard(gt, subs, "folder", num_classes=C, resamples=20), out,
                  plots=False)
    assert (out / "submissions" / "delta.json").is_file()
    (out / "submissions" / "notes.txt").write_text("the organiser's")
    shutil.rmtree(subs / "delta")
    written = write_reports(run_leaderboard(gt, subs, "folder", num_classes=C, resamples=20),
                            out, plots=False)
    assert sorted(p.name for p in (out / "submissions").iterdir()) == [
        "alpha.json", "bravo.json", "charlie.json", "notes.txt"]
    assert all(p.is_file() for p in written)


# ---------------------------------------------------------------- item 13: the cache


def test_waves_are_even_and_bounded() -> None:
    assert _waves([]) == []
    for n in range(1, 40):
        waves = _waves(list(range(n)))
        assert [s for w in waves for s in w] == list(range(n))
        assert max(map(len, waves)) <= WAVE and max(map(len, waves)) - min(map(len, waves)) <= 1
        assert len(waves) == -(-n // WAVE)


def test_damaged_cache_rows_are_scored_again(board_data, tmp_path: Path, caplog) -> None:
    gt, subs, _ = board_data
    cache = tmp_path / "cache.sqlite"
    first = run_leaderboard(gt, subs, "folder", num_classes=C, jobs=2, resamples=50,
                            cache=cache)
    shutil.copytree(subs / "alpha", subs / "echo")  # same content as alpha: its cache row
    (subs / "echo" / "extra.txt").write_text("x")  # ... not quite: a row of its own
    run_leaderboard(gt, subs, "folder", num_classes=C, jobs=2, resamples=50, cache=cache)
    buf = io.BytesIO()
    np.save(buf, np.ones((3, 2), np.int64))
    wrong_shape = buf.getvalue()
    buf = io.BytesIO()
    np.save(buf, np.zeros((12, 3 * C), np.int64))
    wrong_numbers = buf.getvalue()
    with sqlite3.connect(cache) as db:
        db.execute("UPDATE results SET document = '{not json' WHERE submission = 'alpha'")
        db.execute("UPDATE results SET rows = x'0001' WHERE submission = 'bravo'")
        db.execute("UPDATE results SET rows = ? WHERE submission = 'charlie'", (wrong_shape,))
        db.execute("UPDATE results SET rows = ? WHERE submission = 'delta'", (wrong_numbers,))
        db.execute("UPDATE results SET status = 'weird', document = '[1, 2]' "
                   "WHERE submission = 'echo'")
    with caplog.at_level("WARNING", logger="segeval"):
        again = run_leaderboard(gt, subs, "folder", num_classes=C, jobs=2, resamples=50,
                                cache=cache)
    assert sorted(again.evaluated) == ["alpha", "bravo", "charlie", "delta", "echo"]
    assert caplog.text.count("scoring it again") == 5
    shutil.rmtree(subs / "echo")
    third = run_leaderboard(gt, subs, "folder", num_classes=C, jobs=2, resamples=50,
                            cache=cache)
    assert third.evaluated == [] and third.entries == first.entries  # the rows were rewritten
    with sqlite3.connect(cache) as db:
        db.execute("UPDATE results SET document = '{\"task\": \"semantic\"}'")
    fourth = run_leaderboard(gt, subs, "folder", num_classes=C, jobs=2, resamples=50,
                             cache=cache)
    assert sorted(fourth.evaluated) == sorted(["alpha", "bravo", "charlie", "delta"])
    assert fourth.entries == first.entries


_SLOW_BOARD = """
import os, sys, time
import segeval.formats.semantic as semantic
from segeval.leaderboard import run_leaderboard
read = semantic.read_label
def slow(file, **kw):
    if "late" in str(file):
        with open(sys.argv[1], "a") as f:
            f.write(f"{os.getpid()}\\n")
        time.sleep(60)
    return read(file, **kw)
semantic.read_label = slow
run_leaderboard(sys.argv[2], sys.argv[3], "folder", num_classes=4, jobs=2, resamples=20,
                cache=sys.argv[4])
"""


def test_sigkill_loses_only_the_wave_in_flight_and_kills_the_workers(tmp_path: Path) -> None:
    """Each submission is written to the cache as soon as its wave is scored: a leaderboard
    killed with SIGKILL while the second wave is in flight keeps the first, its workers die
    with it at once (``PR_SET_PDEATHSIG``), and a re-run scores only the rest and ranks as a
    run from scratch does."""
    gts = make_gt(tmp_path / "gt", 3)
    subs = tmp_path / "subs"
    names = [f"a{k}" for k in range(WAVE)] + ["late0", "late1", "late2"]  # two waves
    for k, name in enumerate(names):
        make_submission(subs / name, gts, 0.2 + 0.05 * k, 10 + k)
    waves = _waves(list(range(len(names))))
    first = [names[s] for s in waves[0]]
    assert all(not n.startswith("late") for n in first) and len(waves) == 2
    pids, cache = tmp_path / "pids.txt", tmp_path / "cache.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_BOARD, str(pids), str(tmp_path / "gt"),
                             str(subs), str(cache)], cwd=ROOT, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not pids.exists()
                                               or len(set(pids.read_text().split())) < 2):
            time.sleep(0.05)
        workers = sorted({int(p) for p in pids.read_text().split()})
        assert len(workers) == 2 and proc.pid not in workers
        with sqlite3.connect(cache) as db:
            cached = sorted(r[0] for r in db.execute("SELECT submission FROM results"))
        assert cached == sorted(first)  # the first wave, written before the second started
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not all(gone(p) for p in workers):
            time.sleep(0.02)
        assert all(gone(p) for p in workers), "workers outlived the killed leaderboard"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    resumed = run_leaderboard(tmp_path / "gt", subs, "folder", num_classes=C, jobs=2,
                              resamples=20, cache=cache)
    assert sorted(resumed.evaluated) == [n for n in names if n not in first]
    fresh = run_leaderboard(tmp_path / "gt", subs, "folder", num_classes=C, jobs=2,
                            resamples=20)
    assert resumed.entries == fresh.entries


# ---------------------------------------------------------------- item 14: signals


_SLOW_COMMAND = """
import os, sys, time
import segeval.formats.semantic as semantic
from segeval.cli import main
read = semantic.read_label
def slow(file, **kw):
    with open(sys.argv[1], "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(60)
    return read(file, **kw)
semantic.read_label = slow
main(["leaderboard", "--gt", sys.argv[2], "--submissions", sys.argv[3], "--num-classes", "4",
      "-j", "2", "-q", "--no-plots", "--out", sys.argv[4]])
"""


def start_slow(tmp_path: Path, script: str, args: list[str]
               ) -> tuple[subprocess.Popen, list[int]]:
    """Run ``script`` in a new session (its own process group, as a terminal's job is) and
    wait until two workers are inside the slow reader; returns it and the workers' pids."""
    pids = tmp_path / "pids.txt"
    proc = subprocess.Popen([sys.executable, "-c", script, str(pids), *args], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (not pids.exists()
                                           or len(set(pids.read_text().split())) < 2):
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    workers = sorted({int(p) for p in pids.read_text().split()}) if pids.exists() else []
    if len(workers) < 2:
        proc.kill()
        raise AssertionError(f"the workers did not start: {proc.communicate()[1]}")
    return proc, workers


@pytest.mark.parametrize(("group", "sig", "code", "word"), [
    (True, signal.SIGINT, 130, "aborted"),  # Ctrl-C in a terminal: the whole process group
    (False, signal.SIGTERM, 143, "terminated")])
def test_ctrl_c_and_sigterm_stop_the_leaderboard_without_a_traceback(
        board_data, tmp_path: Path, group: bool, sig, code: int, word: str) -> None:
    gt, subs, _ = board_data
    proc, workers = start_slow(tmp_path, _SLOW_COMMAND, [str(gt), str(subs),
                                                         str(tmp_path / "out")])
    try:
        (os.killpg if group else os.kill)(proc.pid, sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == code
    assert "Traceback" not in stderr and stderr.strip() == f"segeval: {word}", stderr
    assert all(gone(p) for p in workers)  # stopped and reaped before the command exited


_SITE = """
import os
if os.environ.get("SEGEVAL_TEST_SLOW"):
    import time
    import segeval.formats.semantic as semantic
    read = semantic.read_label
    def slow(file, **kw):
        blocked = [l for l in open("/proc/self/status") if l.startswith("SigBlk")][0]
        with open(os.environ["SEGEVAL_TEST_SLOW"], "a") as f:
            f.write(f"{os.getpid()} {int(blocked.split()[1], 16)}\\n")
        time.sleep(60)
        return read(file, **kw)
    semantic.read_label = slow
"""

_DASK_SCORE = """
import sys
from segeval.cli import main
main(["score", "--pred", sys.argv[2], "--gt", sys.argv[3], "--num-classes", "4", "-j", "2",
      "--scheduler", "dask-local"])
"""


def test_ctrl_c_on_a_dask_local_score_prints_no_worker_traceback(tmp_path: Path) -> None:
    """The Dask workers (spawned processes, which do not inherit a monkeypatch: a
    ``sitecustomize`` makes their reader slow) start with SIGINT blocked, and a Ctrl-C to the
    whole process group ends the run with one line, no traceback from any process."""
    pytest.importorskip("distributed", reason="the [dask] extra is in [test]")
    rng = np.random.default_rng(5)
    for i in range(4):
        labels = random_labels(rng, (20, 30), C)
        write_png(tmp_path / "gt" / f"im{i}.png", labels)
        write_png(tmp_path / "pred" / f"im{i}.png", labels)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SITE)
    log = tmp_path / "dask.txt"
    pids = tmp_path / "pids.txt"
    proc = subprocess.Popen([sys.executable, "-c", _DASK_SCORE, str(pids),
                             str(tmp_path / "pred"), str(tmp_path / "gt")], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{site}",
                                 "SEGEVAL_TEST_SLOW": str(log)})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and (
                not log.exists() or len(log.read_text().splitlines()) < 2):
            time.sleep(0.05)
        lines = [line.split() for line in log.read_text().splitlines()]
        assert len(lines) >= 2
        for _, mask in lines:  # SIGINT is blocked in each worker
            assert int(mask) & (1 << (signal.SIGINT - 1)), lines
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130
    assert "Traceback" not in stderr and stderr.strip() == "segeval: aborted", stderr


def test_an_escaped_name_equal_to_another_name_fails_as_a_duplicate(tmp_path: Path) -> None:
    """A folder literally named ``bad\\xff`` and one whose name has the byte 0xFF show the same
    name: the second (in file-name order) fails as a duplicate, the first is ranked."""
    gts = make_gt(tmp_path / "gt", 2)
    subs = tmp_path / "subs"
    make_submission(subs / "bad\\xff", gts, 0.8, 1)
    make_submission(Path(os.fsdecode(os.fsencode(subs) + b"/bad\xff")), gts, 0.5, 2)
    board = run_leaderboard(tmp_path / "gt", subs, "folder", num_classes=C, jobs=1,
                            resamples=20)
    [ranked] = board.ranked()
    assert ranked["submission"] == "bad\\xff"
    [failed] = [e for e in board.entries if e["status"] == "failed"]
    assert failed["submission"] == "bad\\xff (2)"  # every entry has a name of its own
    assert failed["error"] == f"{subs}/bad\\xff: same name as {subs}/bad\\xff"
    assert len(board.outcomes) == 2
    assert ranked["metrics"] == segeval.evaluate(subs / "bad\\xff", tmp_path / "gt", "folder",
                                                 num_classes=C, jobs=1).to_dict()["metrics"]
