"""One self-contained HTML page of a search tree (`deliberate view`, and the server's `/v1/trees/ID`).

Each node shows its step's text, mean value, visits, reward, prior and token cost; subtrees fold
(`<details>`, so the page needs no script to work); the path the answer came from is marked, and
the totals head the page. The tree is the JSON of `deliberate.search.tree` (version 1).
Hand-written because no plotting library draws a text-heavy tree that folds; it is a page of
nested lists and a stylesheet.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from deliberate.errors import BadInput

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em;margin:0 0 .3em} .totals{margin:.5em 0 1em;color:#444}
.totals b{color:#000} pre{white-space:pre-wrap;margin:.2em 0 .2em 1.2em;font:13px/1.35 ui-monospace,monospace}
details{margin-left:1.1em;border-left:1px solid #ddd;padding-left:.5em}
summary{cursor:pointer;list-style-position:outside} .meta{color:#666;font-size:12px}
.chosen>summary{background:#fff3c4;font-weight:600} .chosen>pre.rollout{background:#fff8dc}
.terminal .ans{color:#0a6;font-weight:600} .bar{display:inline-block;height:.6em;background:#7aa7e0;margin-right:.3em}
.q{background:#f5f5f5;padding:.5em .8em;border-radius:4px} button{margin-right:.5em}
"""
SCRIPT = ("function all(o){document.querySelectorAll('details').forEach(d=>d.open=o)}"
          "function path(){all(false);document.querySelectorAll('details.chosen').forEach(d=>d.open=true)}")


def read_tree(path: str | Path) -> dict:
    """A tree from a file: the tree itself, a server response holding one, or an eval row's info."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file.") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: not JSON ({e}).") from None
    for get in (lambda d: d, lambda d: d["deliberate"]["tree"], lambda d: d["info"]["tree"]):
        try:
            tree = get(data)
        except (KeyError, TypeError):
            continue
        if isinstance(tree, dict) and isinstance(tree.get("nodes"), list):
            if tree.get("version") != 1:
                raise BadInput(f"{path}: tree version {tree.get('version')!r}; this deliberate reads version 1.")
            return tree
    raise BadInput(f"{path}: holds no search tree (a JSON object with nodes, or a response's deliberate.tree).")


def _path_to(nodes: dict[int, dict], node: int | None) -> set[int]:
    out = set()
    while node is not None and node in nodes and node not in out:
        out.add(node)
        node = nodes[node].get("parent")
    return out


def tree_page(tree: dict, title: str = "search tree") -> str:
    nodes = {n["id"]: n for n in tree["nodes"]}
    chosen = tree.get("chosen") or {}
    on_path = _path_to(nodes, chosen.get("node"))
    visits_max = max((n.get("visits", 0) for n in nodes.values()), default=0) or 1
    tokens = sum(n.get("tokens", 0) for n in nodes.values())

    def meta(n: dict) -> str:
        v = n.get("visits", 0)
        value = n["value_sum"] / v if v else None
        bits = [f"visits {v}", f"value {value:.3f}" if value is not None else "value –",
                f"reward {n['reward']:.3f}" if n.get("reward") is not None else "reward –",
                f"prior {n['prior']:.3f}" if n.get("prior") is not None else "", f"{n.get('tokens', 0)} tokens"]
        bar = f"<span class=bar style='width:{60 * v / visits_max:.0f}px'></span>"
        ans = f" <span class=ans>answer {escape(str(n['answer']))}</span>" if n.get("terminal") else ""
        return f"{bar}<span class=meta>#{n['id']} · {' · '.join(b for b in bits if b)}</span>{ans}"

    def render(i: int) -> str:
        n = nodes[i]
        cls = " ".join(c for c in ("chosen" if i in on_path else "", "terminal" if n.get("terminal") else "") if c)
        first = n.get("text", "").strip().splitlines()[0] if n.get("text", "").strip() else "(root)"
        kids = "".join(render(k) for k in n.get("children", []) if k in nodes)
        rollout = ""
        if i == chosen.get("node") and chosen.get("rollout"):
            rollout = f"<pre class=rollout>… rollout: {escape(chosen['rollout'])}</pre>"
        opened = " open" if i in on_path or i == 0 else ""
        text = n.get("text", "").strip("\n")
        full = f"<pre>{escape(text)}</pre>" if "\n" in text or len(text) > 120 else ""  # the summary shows one line
        return (f"<details class='{cls}'{opened}><summary>{escape(first[:120])} {meta(n)}</summary>"
                f"{full}{rollout}{kids}</details>")

    root = min(nodes) if nodes else None
    answer = chosen.get("answer")
    root_visits = nodes[root].get("visits", 0) if root is not None else 0
    value = f" (value {chosen['value']:.3f})" if isinstance(chosen.get("value"), int | float) else ""
    totals = (f"<b>{len(nodes)}</b> nodes · <b>{tokens}</b> tokens generated in the tree · root visits "
              f"<b>{root_visits}</b> · action <b>{escape(str(tree.get('action')))}</b> · answer "
              f"<b>{escape(str(answer))}</b>{value}")
    body = render(root) if root is not None else "<p>(empty tree)</p>"
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{escape(title)}</title><style>{STYLE}</style>"
            f"<script>{SCRIPT}</script></head><body><h1>{escape(title)}</h1>"
            f"<div class=q>{escape(tree.get('question') or tree.get('prompt', ''))}</div>"
            f"<p class=totals>{totals}</p><p><button onclick='all(true)'>expand all</button>"
            f"<button onclick='all(false)'>collapse all</button><button onclick='path()'>chosen path only</button></p>"
            f"{body}</body></html>")
