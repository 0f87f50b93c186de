"""``segeval score --decoder``: the choice reaches the worker processes, and every decoder gives
the same result."""

from __future__ import annotations

import json
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
    monkeypatch.delenv(png.DECODER_ENV, raising=False)  # restored after the test
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
