"""`deliberate report`: the HTML page's content, and the page rendered in a real headless browser."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from deliberate.cli import app
from deliberate.eval.report import build_report

runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for name, args in (("a", []), ("b", ["--strategy", "self-consistency", "--n", "3", "--temperature", "1.0"])):
        r = runner.invoke(app, ["eval", "--task", "lab-en", "--limit", "12", "--threads", "1",
                                "--out", str(root / name), *args])
        assert r.exit_code == 0, r.output
    return root


def test_report_holds_table_plot_pairing_disagreements_and_manifests(runs):
    page = build_report([runs / "a", runs / "b"])
    assert "12 shared problems" in page and "A: lab · greedy" in page and "B: lab · self-consistency" in page
    assert page.count("data:image/png;base64,") == 1
    assert "paired bootstrap 95% CI" in page and "McNemar" in page
    assert "Problems where the runs disagree" in page and "<pre>" in page
    assert "<tr class=diff><th>strategy</th>" in page  # the manifests differ in strategy, and say so
    assert "<tr><th>weights sha256</th>" in page  # ...and agree on the weights


def test_report_cli_and_bad_input(runs, tmp_path):
    r = runner.invoke(app, ["report", str(runs / "a"), str(runs / "b"), "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 0 and (tmp_path / "r.html").stat().st_size > 10_000
    r = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "not a run folder" in r.output


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (.ci/run installs Debian's chromium)")
def test_report_renders_in_headless_chromium(runs, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(build_report([runs / "a", runs / "b"]), encoding="utf-8")
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,1600"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "Accuracy and compute" in dom and "Manifests" in dom  # the browser parsed the whole page
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 1600)
    colours = img.getcolors(maxcolors=1 << 20)
    inked = sum(n for n, rgb in colours if sum(rgb) < 600) / (img.size[0] * img.size[1])
    assert inked > 0.01 and len(colours) > 50  # text, table lines and the plot were drawn, not a blank page
