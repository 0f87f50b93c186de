"""``segeval score --decoder``: the choice reaches the worker processes, and every decoder gives
the same result."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from segeval.cli import cli
from segeval.formats import png
from tests.conftest import random_labels, write_png


def _refuse(name: str):
    def refuse(*args, **kwargs):
        raise AssertionError(f"the {name} decoder was used")

    return refuse


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_decoder_option_reaches_the_workers(tmp_path: Path, monkeypatch, jobs: str) -> None:
    monkeypatch.delenv("SEGEVAL_PNG_DECODER", raising=False)  # restored after the test
    rng = np.random.default_rng(4)
    for i in range(4):
        gt = random_labels(rng, (21, 37), 5)
        write_png(tmp_path / "gt" / f"{i}.png", gt, "P")
        write_png(tmp_path / "pred" / f"{i}.png", np.where(rng.random(gt.shape) < 0.8, gt, 2))
    docs = {}
    for decoder, unused in (("fast", "_decode_pillow"), ("pillow", "_decode_fast")):
        with monkeypatch.context() as m:
            m.setattr(png, unused, _refuse(unused))  # inherited by the forked workers
            out = tmp_path / f"{decoder}.json"
            r = CliRunner().invoke(cli, ["score", "--pred", str(tmp_path / "pred"), "--gt",
                                         str(tmp_path / "gt"), "--num-classes", "5", "-q",
                                         "--jobs", jobs, "--decoder", decoder, "--json",
                                         str(out)], catch_exceptions=False)
            assert r.exit_code == 0, r.output
            docs[decoder] = json.loads(out.read_text())
    assert docs["fast"]["confusion_matrix"] == docs["pillow"]["confusion_matrix"]
    assert docs["fast"]["metrics"] == docs["pillow"]["metrics"]
    assert sum(map(sum, docs["fast"]["confusion_matrix"])) > 0


def test_unknown_decoder_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    r = CliRunner().invoke(cli, ["score", "--pred", str(tmp_path / "p"), "--gt",
                                 str(tmp_path / "p"), "--decoder", "libpng"])
    assert r.exit_code == 2 and "'libpng' is not one of" in r.output


@pytest.mark.parametrize(("decoder", "cut"), [("fast", 20), ("auto", 20), ("fast", "half"),
                                              ("pillow", "half")])
def test_damaged_png_is_one_line_and_exit_1(tmp_path: Path, monkeypatch, decoder: str,
                                            cut) -> None:
    """Cut 20 bytes from the end (Adler-32, CRC, IEND: Pillow still reads it) or at half."""
    monkeypatch.delenv("SEGEVAL_PNG_DECODER", raising=False)
    labels = random_labels(np.random.default_rng(2), (30, 40), 5)
    write_png(tmp_path / "gt" / "a.png", labels)
    good = write_png(tmp_path / "pred" / "a.png", labels).read_bytes()
    end = len(good) // 2 if cut == "half" else len(good) - cut
    (tmp_path / "pred" / "a.png").write_bytes(good[:end])
    r = CliRunner().invoke(cli, ["score", "--pred", str(tmp_path / "pred"), "--gt",
                                 str(tmp_path / "gt"), "--num-classes", "5", "-q", "-j", "1",
                                 "--decoder", decoder])
    assert r.exit_code == 1, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.output
    assert re.fullmatch(r"segeval: error: .*pred/a\.png: corrupt PNG \(.*\)", lines[0])


def test_the_environment_variable_is_the_commands_default(tmp_path: Path, monkeypatch) -> None:
    """SEGEVAL_PNG_DECODER sets --decoder's default (the CLI maps it; the library reads no
    environment variable)."""
    write_png(tmp_path / "gt" / "a.png", np.zeros((6, 7), np.uint8))
    write_png(tmp_path / "pred" / "a.png", np.zeros((6, 7), np.uint8))
    monkeypatch.setenv("SEGEVAL_PNG_DECODER", "pillow")
    monkeypatch.setattr(png, "_decode_fast", _refuse("_decode_fast"))
    r = CliRunner().invoke(cli, ["score", "--pred", str(tmp_path / "pred"), "--gt",
                                 str(tmp_path / "gt"), "--num-classes", "2", "-q", "-j", "1"])
    assert r.exit_code == 0, r.output
    monkeypatch.setenv("SEGEVAL_PNG_DECODER", "libpng")
    r = CliRunner().invoke(cli, ["score", "--pred", str(tmp_path / "pred"), "--gt",
                                 str(tmp_path / "gt"), "--num-classes", "2", "-q", "-j", "1"])
    assert r.exit_code == 2 and "'libpng' is not one of" in r.output
