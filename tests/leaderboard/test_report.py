"""Reports: a well-formed, self-contained HTML page listing every submission, plots as PNG."""

from __future__ import annotations

import base64
import io
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segeval.errors import UsageError
from segeval.leaderboard import run_leaderboard, write_reports
from segeval.report import plots
from tests.leaderboard.conftest import QUALITY, C

try:
    import matplotlib  # noqa: F401

    HAVE_MPL = True
except ImportError:  # pragma: no cover - matplotlib is in the [test] extra
    HAVE_MPL = False
needs_matplotlib = pytest.mark.skipif(not HAVE_MPL, reason="plots need the [plot] extra "
                                      "(matplotlib)")

VOID = {"meta", "img", "br", "hr", "link", "input"}


class TagBalance(HTMLParser):
    """Fails on a closing tag that does not close the innermost open element."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs) -> None:  # <meta/>, <img/>
        pass

    def handle_endtag(self, tag) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack)
        self.stack.pop()

    def handle_data(self, data) -> None:
        self.text.append(data)


@pytest.fixture
def board(board_data):
    gt, subs, _ = board_data
    (subs / "broken.zip").write_bytes(b"PK\x03\x04 <not> & a zip")
    (subs / "a&b <team>").mkdir()  # a name that needs escaping; empty: fails (missing files)
    return run_leaderboard(gt, subs, "folder", num_classes=C, jobs=1, resamples=100)


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as img:
        return img.size


@needs_matplotlib
def test_html_is_well_formed_self_contained_and_lists_everyone(board, tmp_path: Path) -> None:
    written = write_reports(board, tmp_path / "out", plots=True, plot_top=2)
    page = (tmp_path / "out" / "leaderboard.html").read_text(encoding="utf-8")
    root = ET.fromstring(page.removeprefix("<!DOCTYPE html>\n"))  # well-formed XML
    assert root.tag == "html"
    checker = TagBalance()
    checker.feed(page)
    checker.close()
    assert checker.stack == []
    text = " ".join(checker.text)
    for name in [*QUALITY, "broken", "a&b <team>"]:
        assert name in text, name
    cells = [td.text for td in root.iter("td")]
    assert "a&b <team>" in cells and "alpha" in cells
    images = list(root.iter("img"))
    assert len(images) == 1 + 2 * 2  # the leaderboard and two plots for each of the top 2
    for img in images:
        src = img.get("src")
        assert src.startswith("data:image/png;base64,")  # nothing outside the page
        png_size(base64.b64decode(src.split(",", 1)[1]))
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")
    files = {p.relative_to(tmp_path / "out").as_posix() for p in written}
    assert {"plots/leaderboard.png", "plots/alpha/per_class_iou.png",
            "plots/alpha/confusion_matrix.png", "plots/bravo/per_class_iou.png"} <= files
    assert "plots/charlie/per_class_iou.png" not in files


@needs_matplotlib
def test_plots_are_pngs_and_handle_nan_classes(board) -> None:
    doc = dict(board.outcomes["alpha"].document)
    doc["per_class"] = [dict(r) for r in doc["per_class"]]
    doc["per_class"][1]["iou"] = None  # an undefined class
    w, h = png_size(plots.per_class_bars(doc, "alpha"))
    assert w > 100 and h > 100
    doc["unassigned"] = [0, 3, 0, 0]
    png_size(plots.confusion_heatmap(doc, "alpha"))
    png_size(plots.interval_chart(board.entries, "miou", 0.95))
    assert set(plots.result_plots(doc)) == {"per_class_iou.png", "confusion_matrix.png"}


def test_without_matplotlib(board, tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    with pytest.raises(UsageError, match=r"pip install 'segeval\[plot\]'"):
        write_reports(board, tmp_path / "a", plots=True)
    assert not (tmp_path / "a" / "leaderboard.json").exists()
    with caplog.at_level("WARNING", logger="segeval"):
        write_reports(board, tmp_path / "b")  # plots=None: reports without plots
    assert "matplotlib is not installed" in caplog.text
    assert (tmp_path / "b" / "leaderboard.html").is_file()
    assert not (tmp_path / "b" / "plots").exists()
    assert "<img" not in (tmp_path / "b" / "leaderboard.html").read_text()


def test_markdown_escapes_and_has_every_section(board, tmp_path: Path) -> None:
    write_reports(board, tmp_path, plots=False)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| 1 | alpha | " in md
    assert "## Failed submissions" in md and "## Per-class winners (iou)" in md
    assert "| a&amp;b &lt;team&gt; |" in md and "<team>" not in md  # no HTML in the page
    rows = [line for line in md.splitlines() if line.startswith("| broken")]
    assert len(rows) == 1 and rows[0].count(" | ") == 1


@needs_matplotlib
def test_confusion_heatmap_normalises_rows() -> None:
    doc = {"task": "semantic", "per_class": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
           "confusion_matrix": [[3, 1, 0], [0, 0, 0], [2, 2, 3]], "unassigned": [0, 0, 1]}
    norm, columns = plots.normalised_confusion(doc)
    assert columns == ["a", "b", "c", "none"]
    assert norm[0].tolist() == [0.75, 0.25, 0.0, 0.0]
    assert np.isnan(norm[1]).all()  # no ground truth: a blank row
    assert norm[2].tolist() == [0.25, 0.25, 0.375, 0.125]
    doc["unassigned"] = [0, 0, 0]
    assert plots.normalised_confusion(doc)[1] == ["a", "b", "c"]
    png_size(plots.confusion_heatmap(doc))
