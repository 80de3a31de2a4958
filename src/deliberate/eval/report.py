"""`deliberate report RUN_DIR...`: one self-contained HTML page comparing runs.

The page holds what a reader needs to trust a comparison: the accuracy of every run on the
problems they all share, with 95% intervals; accuracy against tokens (matplotlib, inlined as
PNG); each run paired against the first (bootstrap interval, McNemar, a plain noise warning);
the problems where the runs disagree, with their traces; and the manifests side by side, with
the settings that differ marked. No JavaScript and no network: it opens anywhere, offline.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from deliberate.errors import BadInput
from deliberate.eval.compare import compare_runs, label, load_run
from deliberate.eval.metrics import wilson

MANIFEST_ROWS = [  # (row title, path into manifest.json)
    ("deliberate", ("deliberate",)), ("git commit", ("git_commit",)), ("model", ("model", "spec")),
    ("weights sha256", ("model", "weights_sha256")), ("task", ("task", "name")),
    ("data sha256", ("task", "data_sha256")), ("prompt template sha256", ("prompt_template_sha256",)),
    ("strategy", ("strategy", "name")), ("options", ("strategy", "options")), ("seed", ("seed",)),
    ("grader sha256", ("grader_sha256",)), ("torch", ("libraries", "torch")),
    ("transformers", ("libraries", "transformers")), ("math-verify", ("libraries", "math-verify")),
    ("cpu", ("machine", "cpu")), ("gpu", ("machine", "gpu")), ("torch threads", ("machine", "torch_threads")),
]
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1180px; color: #1d2430; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #d5dae1; }
table { border-collapse: collapse; margin: .6em 0; } td, th { border: 1px solid #d5dae1; padding: .3em .6em; }
th { background: #f1f4f8; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.warn { background: #fff4d6; padding: .4em .7em; border-left: 4px solid #e0a800; }
.ok { background: #e3f5e8; padding: .4em .7em; border-left: 4px solid #2e9d4f; }
.diff { background: #ffe3e3; } .right { color: #1f7a3a; font-weight: 600; } .wrong { color: #b3261e; }
pre { white-space: pre-wrap; background: #f7f8fa; padding: .5em; margin: .3em 0; font-size: 12px; }
code { font-size: 12px; word-break: break-all; }
"""


def _get(d: dict, path: tuple[str, ...]):
    for k in path:
        d = d.get(k) if isinstance(d, dict) else None
    return d


def _plot(points: list[tuple[str, float, float, float, float]]) -> str:
    """accuracy vs tokens per problem, with 95% intervals, as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, tokens, acc, lo, hi in points:
        ax.errorbar([tokens], [acc * 100], yerr=[[(acc - lo) * 100], [(hi - acc) * 100]], fmt="o", capsize=4,
                    label=name)
    ax.set_xscale("log")
    ax.set_xlabel("tokens generated per problem (log)")
    ax.set_ylabel("accuracy (%), 95% interval")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def build_report(run_dirs: list[str | Path], *, max_disagreements: int = 20) -> str:
    """The HTML page for these runs (the first is the baseline the others are paired against)."""
    if len(run_dirs) < 1:
        raise BadInput("give at least one run folder.")
    runs = [load_run(d) for d in run_dirs]
    tasks = {s.get("task") for s, _ in runs}
    if len(tasks) > 1:
        raise BadInput(f"the runs are on different tasks ({', '.join(map(str, sorted(tasks, key=str)))}).")
    shared = [i for i in runs[0][1] if all(i in rows for _, rows in runs)]
    if not shared:
        raise BadInput("the runs share no problems.")
    names = [f"{chr(65 + k)}: {s.get('model')} · {label(s)}" for k, (s, _) in enumerate(runs)]
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>deliberate report · {e(str(tasks.pop()))}"
             f"</title><style>{STYLE}</style></head><body>",
             f"<h1>{e(str(runs[0][0].get('task')))}: {len(runs)} runs on {len(shared)} shared problems</h1>"]

    # 1. the table, on the shared problems
    parts.append("<h2>Accuracy and compute</h2><table><tr><th>run</th><th>accuracy (95% CI)</th>"
                 "<th>tokens / problem</th><th>tokens / correct</th><th>no answer</th><th>errors</th>"
                 "<th>folder</th></tr>")
    points = []
    for name, (s, rows) in zip(names, runs, strict=True):
        right = sum(bool(rows[i]["correct"]) for i in shared)
        lo, hi = wilson(right, len(shared))
        tokens = sum(rows[i]["compute"]["tokens_generated"] for i in shared)
        points.append((name, max(tokens / len(shared), 1e-9), right / len(shared), lo, hi))
        parts.append(f"<tr><td>{e(name)}</td><td class=num>{right / len(shared):.1%} ({lo:.1%}–{hi:.1%})</td>"
                     f"<td class=num>{tokens / len(shared):,.0f}</td>"
                     f"<td class=num>{(f'{tokens / right:,.0f}' if right else '–')}</td>"
                     f"<td class=num>{sum(rows[i].get('answer') is None for i in shared)}</td>"
                     f"<td class=num>{sum('error' in rows[i] for i in shared)}</td>"
                     f"<td><code>{e(s['out'])}</code></td></tr>")
    parts.append("</table>")
    parts.append(f"<h2>Accuracy against tokens</h2><img alt='accuracy against tokens' "
                 f"src='data:image/png;base64,{_plot(points)}'>")

    # 2. each run paired with the first
    if len(runs) > 1:
        parts.append("<h2>Paired with run A</h2>")
        for k, d in enumerate(run_dirs[1:], start=1):
            c = compare_runs(run_dirs[0], d)
            lo, hi = c["difference_ci95"]
            parts.append(f"<p><b>{e(names[k][:1])} − A</b>: {c['difference']:+.1%} (paired bootstrap 95% CI "
                         f"{lo:+.1%} to {hi:+.1%}; McNemar exact p = {c['mcnemar_p']:.3g}); right only in A: "
                         f"{c['a']['only_this_right']}, only in {e(names[k][:1])}: {c['b']['only_this_right']}.</p>"
                         f"<p class={'warn' if c['within_noise'] else 'ok'}>{e(c['verdict'])}</p>")

    # 3. where the runs disagree, with their traces
    split = [i for i in shared if len({bool(rows[i]["correct"]) for _, rows in runs}) > 1]
    parts.append(f"<h2>Problems where the runs disagree ({len(split)}; first {min(len(split), max_disagreements)} "
                 f"shown)</h2>")
    for i in split[:max_disagreements]:
        first = runs[0][1][i]
        parts.append(f"<h3>{e(i)}</h3><p>{e(str(first.get('question', '')))}<br>gold: <b>{e(str(first.get('gold')))}"
                     f"</b></p><table><tr><th>run</th><th>answer</th><th>trace</th></tr>")
        for name, (_, rows) in zip(names, runs, strict=True):
            r = rows[i]
            trace = next((x.get("text", "") for x in r.get("samples", []) if x.get("answer") == r.get("answer")),
                         r.get("samples", [{}])[0].get("text", "") if r.get("samples") else r.get("error", ""))
            verdict = "right" if r["correct"] else "wrong"
            parts.append(f"<tr><td>{e(name[:1])}</td><td class={verdict}>{e(str(r.get('answer')))} ({verdict})</td>"
                         f"<td><details><summary>{len(r.get('samples', []))} samples; the answer's trace</summary>"
                         f"<pre>{e(trace)}</pre></details></td></tr>")
        parts.append("</table>")

    # 4. manifests side by side
    parts.append("<h2>Manifests</h2><table><tr><th></th>" + "".join(f"<th>{e(n[:1])}</th>" for n in names) + "</tr>")
    for title, path in MANIFEST_ROWS:
        values = [_get(s.get("manifest", {}), path) for s, _ in runs]
        cls = " class=diff" if len({str(v) for v in values}) > 1 else ""
        parts.append(f"<tr{cls}><th>{e(title)}</th>" + "".join(f"<td><code>{e(str(v))}</code></td>" for v in values)
                     + "</tr>")
    parts.append("</table><p>Rows marked red differ between runs.</p></body></html>")
    return "\n".join(parts)


def write_report(run_dirs: list[str | Path], out: str | Path) -> Path:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build_report(run_dirs), encoding="utf-8")
    return path
