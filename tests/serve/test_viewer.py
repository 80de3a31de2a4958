"""`deliberate view`: a real mcts tree of the lab model as one page, checked in headless chromium."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from deliberate.cli import app
from deliberate.search import get_strategy
from deliberate.serve.viewer import read_tree, tree_page
from deliberate.solving import adhoc_task
from deliberate.tasks import Problem

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
runner = CliRunner()


@pytest.fixture(scope="module")
def mcts_tree(lab):
    q = "Tom has 3 apples. He buys 4 more, then gives away 2. How many apples does Tom have now?"
    res = get_strategy("mcts", iterations=6)(Problem("p", q, ""), lab, adhoc_task(q))
    return res.info["tree"], res.answer


def test_the_page_holds_every_node_and_marks_the_chosen_path(mcts_tree, tmp_path):
    tree, answer = mcts_tree
    page = tree_page(tree)
    assert page.count("<details") == len(tree["nodes"])  # every node, each subtree foldable
    chosen = tree["chosen"]
    path, node = [], chosen["node"]
    while node is not None:
        path.append(node)
        node = tree["nodes"][node]["parent"]
    assert page.count("<details class='chosen") == len(path) and f"answer <b>{answer}</b>" in page
    assert f"#{tree['nodes'][1]['id']} · visits {tree['nodes'][1]['visits']}" in page
    # the CLI reads the tree, a server response holding it, or an eval row's info
    for name, data in [("tree", tree), ("response", {"deliberate": {"tree": tree}}), ("row", {"info": {"tree": tree}})]:
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps(data))
        r = runner.invoke(app, ["view", str(f)])
        assert r.exit_code == 0 and (tmp_path / f"{name}.html").read_text() == page


def test_view_refuses_what_is_no_tree_in_one_line(tmp_path):
    (tmp_path / "x.json").write_text('{"rows": []}')
    for path, msg in [(tmp_path / "x.json", "holds no search tree"), (tmp_path / "none.json", "no such file")]:
        r = runner.invoke(app, ["view", str(path)])
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output
    (tmp_path / "v2.json").write_text('{"version": 2, "nodes": []}')
    with pytest.raises(Exception, match="tree version 2"):
        read_tree(tmp_path / "v2.json")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (.ci/run installs Debian's chromium)")
def test_the_tree_page_renders_in_headless_chromium(mcts_tree, tmp_path):
    tree, _ = mcts_tree
    page = tmp_path / "tree.html"
    page.write_text(tree_page(tree), encoding="utf-8")
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1000,900"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<details") == len(tree["nodes"]) and "chosen path only" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 20)
    inked = sum(n for n, rgb in colours if sum(rgb) < 600) / (img.size[0] * img.size[1])
    highlight = sum(n for n, rgb in colours if rgb == (0xFF, 0xF3, 0xC4))  # the chosen path's background
    assert inked > 0.01 and highlight > 0
