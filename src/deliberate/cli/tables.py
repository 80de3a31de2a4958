"""How the commands lay out their results: rich tables that read whole at 80 columns.

At 80 columns rich shrinks the widest columns of a table that does not fit and cuts what then
does not fit with an ellipsis, so names that differ only at the end ("mcts-mini-32",
"mcts-mini-64") became the same "mcts-m…". The tables here keep names whole (no_wrap or a fixed
width), break long headers by hand, and stack a long cell (a setting, a strategy's options)
under its name instead of giving it a column. tests/cli/test_cli_tables.py renders each at 80
columns and checks nothing is cut.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from deliberate.eval.scaling import budget_rule, oracle_text


def summary_table(s: dict) -> Table:
    """An eval's figures, two columns (a long value such as the rows' folder folds, never loses
    its end). A task without an answer key leads with its own metric (chrF) and shows no
    exact-match figures: accuracy, pass@k and maj@k of a translation would read as 0%."""
    table = Table(title=f"{s['task']} · {s['model']} · {s['strategy']}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right", overflow="fold")
    if "chrf" in s:
        table.add_row("chrF (mean / corpus)", f"{s['chrf']:.1f} / {s['corpus_chrf']:.1f}")
        for k, v in s.items():
            if k.startswith("oracle_chrf@") and k != "oracle_chrf@1":  # of one sample: the chrF above
                table.add_row(f"best sample's chrF @{k[12:]}", f"{v:.1f}")
    else:
        lo, hi = s["accuracy_ci95"]
        table.add_row("accuracy", f"{s['accuracy']:.1%} ({s['correct']}/{s['n_problems']}), "
                                  f"95% CI {lo:.1%}-{hi:.1%}")
        for k, v in s.items():
            if k.startswith(("pass@", "maj@", "test@")):
                table.add_row(k, f"{v:.1%}")
    if "repaired" in s:
        table.add_row("first attempt", f"{s['first_accuracy']:.1%}")
        table.add_row("repaired / broken", f"{s['repaired']} ({s['repaired_share']:.1%} of wrong first answers) / "
                                           f"{s['broken']}")
    table.add_row("no answer", str(s["no_answer"]))
    if "reward_auroc" in s:
        table.add_row("reward AUROC (right vs wrong samples, same problem)",
                      f"{s['reward_auroc']:.3f} over {s['reward_auroc_pairs']:,} pairs")
    if s.get("errors") or s.get("grader_timeouts"):
        table.add_row("errors / grader timeouts", f"{s['errors']} ({s['error_rate']:.1%}) / {s['grader_timeouts']}")
    per_right = f", {s['tokens_per_correct']:.0f}/correct answer" if s["tokens_per_correct"] else ""
    table.add_row("tokens generated", f"{s['tokens_generated']:,} ({s['tokens_per_problem']:.1f}/problem{per_right})")
    cached = f", {s['tokens_cached'] / s['tokens_read']:.0%} from cache" if s.get("tokens_cached") else ""
    table.add_row("tokens read", f"{s['tokens_read']:,} ({s['tokens_read_per_problem']:.0f}/problem{cached})")
    if s.get("verifier_calls"):
        table.add_row("verifier tokens / calls", f"{s['verifier_tokens']:,} / {s['verifier_calls']:g}")
    if "capped" in s:
        table.add_row("problems cut by the token cap", str(s["capped"]))
    table.add_row("wall seconds", f"{s['wall_s']:.1f}")
    table.add_row("rows", s["out"])
    return table


def demo_table(title: str, runs: list[tuple[str, dict]]) -> Table:
    """The demo's table: headers broken by hand and names kept whole, so it fits 80 columns."""
    chrf = any("chrf" in s for _, s in runs)  # no answer key: chrF, not an exact-match accuracy
    table = Table(title=title)
    table.add_column("strategy", no_wrap=True)
    table.add_column("chrF" if chrf else "accuracy\n(95% CI)", justify="right")
    for head in ("tokens\ngenerated", "tokens per\nproblem", "seconds"):
        table.add_column(head, justify="right")
    for label, s in runs:
        if chrf:
            value = f"{s['chrf']:.1f}"
        else:
            lo, hi = s["accuracy_ci95"]
            value = f"{s['accuracy']:.0%} ({lo:.0%}-{hi:.0%})"
        table.add_row(label, value, f"{s['tokens_generated']:,}", f"{s['tokens_per_problem']:.0f}",
                      f"{s['wall_s']:.1f}")
    return table


def noise_line(label: str, c: dict, base: str = "greedy") -> str:
    """One strategy against another (greedy), from `compare_runs`'s paired check (bootstrap
    interval, McNemar)."""
    lo, hi = c["difference_ci95"]
    return (f"{label} - {base}: {c['difference']:+.1%} (paired 95% CI {lo:+.1%} to {hi:+.1%}, McNemar p = "
            f"{c['mcnemar_p']:.2g}): {'within noise' if c['within_noise'] else 'more than noise'}.")


def strategies_table(descriptions: dict[str, str], configs: dict[str, type]) -> Table:
    """Each strategy's options under its description: as a third column at 80 columns rich cut
    the longest (rstar's actions=step,rest,subquestion,...)."""
    from dataclasses import fields

    table = Table("strategy", "description\n[dim]options (defaults)[/dim]")
    table.columns[0].no_wrap = True
    table.columns[1].overflow = "fold"
    for name, d in descriptions.items():
        opts = ", ".join(f"{f.name}={f.default}" for f in fields(configs[name]))
        table.add_row(name, Text.assemble(d, "\n", (opts, "dim")))
    return table



def options_table(strategy: str, rows: list[tuple[str, str, str, str]]) -> Table:
    """One strategy's options (flag, type, default, help) for `strategies --options`. The type
    sits under the flag and a long default (reflection's phrase) folds, so the help keeps room
    at 80 columns."""
    table = Table("option\n[dim]type[/dim]", "default", "help", title=strategy, title_justify="left")
    table.columns[0].no_wrap = True
    table.columns[1].overflow = table.columns[2].overflow = "fold"
    table.columns[1].max_width = 16
    for option, kind, default, text in rows:
        table.add_row(Text.assemble(option, "\n", (kind, "dim")), Text(default), Text(text))
    return table

def select_table(title: str, n: int, rows: list[dict]) -> Table:
    """`lab select`'s table at 80 columns: short headers (SC, explained in the caption)."""
    table = Table("step", "task", "greedy", f"SC\n(n={n})", f"pass@{n}", "SC -\ngreedy", f"pass@{n}\n- greedy",
                  title=title, caption=f"SC: self-consistency, the majority vote of {n} samples")
    for col in table.columns:
        col.no_wrap = True
    for r in rows:
        table.add_row(str(r["step"]), r["task"], f"{r['greedy']:.1%}", f"{r['sc']:.1%}", f"{r[f'pass@{n}']:.1%}",
                      f"{r['sc_gain']:+.1%}", f"{r['pass_gap']:+.1%}")
    return table


def scaling_table(result: dict) -> Table:
    """The bench's table, readable at 80 columns. Eight side-by-side columns made rich cut the
    names (mcts-mini-32 and mcts-mini-64 both became "mcts-m…"), so each cell's setting sits under
    its strategy and budget, and tokens per problem share a column with their multiple of greedy's."""
    chrf = "chrf" in result["greedy"]  # no answer key: the task's own metric, no exact-match accuracy
    cells = [result["greedy"], *result["cells"]]
    names = [c["strategy"] + (f" {c['budget']}x" if c["budget"] is not None else "") for c in cells]
    settings = [" ".join(f"{k}={v}" for k, v in c["setting"].items()) for c in cells]
    widest = max(len(w) for w in [*names, *" ".join(settings).split()])  # wrap settings at spaces only
    table = Table(title=f"{result['task']} · {result['model']} · {result['n_problems']} problems",
                  caption=result.get("budget_rule", budget_rule(result.get("cap", False))) + (
                      "" if chrf else "; under Test@N: points over greedy (* paired 95% interval excludes 0), "
                      "(share of the oracle gap closed)"))
    table.add_column("strategy budget\nsetting", width=widest)  # a fixed width: rich wraps, never cuts
    table.add_column("chrF" if chrf else "accuracy\n(95% CI)", justify="right", no_wrap=True)
    table.add_column("best\nsample's\nchrF" if chrf else "Test@N\nvs greedy", justify="right", no_wrap=True)
    table.add_column("tokens per\nproblem\n(x greedy)", justify="right", no_wrap=True)
    table.add_column("seconds", justify="right", no_wrap=True)
    for i, (c, name, setting) in enumerate(zip(cells, names, settings, strict=True)):
        if chrf:
            value = f"{c['chrf']:.1f}"
        else:
            lo, hi = c["ci95"]
            value = f"{c['accuracy']:.1%} ({lo * 100:.0f}-{hi * 100:.0f})"
        last_of_strategy = i + 1 == len(cells) or cells[i + 1]["strategy"] != c["strategy"]
        oracle = oracle_text(c) + ("" if chrf or "vs_greedy" not in c else "\n" + _gain(c))
        table.add_row(Text.assemble(name, *(("\n", (setting, "dim")) if setting else ())), value, oracle,
                      f"{c['tokens_per_problem']:.0f} ({c['x_greedy']:.1f}x)", f"{c['wall_s']:.0f}",
                      end_section=last_of_strategy)
    return table


def _gain(c: dict) -> str:
    """Points over greedy (* where the paired interval excludes 0), then the oracle-gap share."""
    lo, hi = c["vs_greedy_ci95"]
    line = f"{c['vs_greedy'] * 100:+.1f}{'*' if lo > 0 or hi < 0 else ''}"
    if "oracle_gap_share" in c:
        line += f"\n({c['oracle_gap_share']:.0%})"
    return line + ("\nhacked" if c.get("reward_hacked") else "")


def compare_table(c: dict) -> Table:
    """`deliberate compare`'s two runs side by side."""
    table = Table("run", "what", "accuracy\n(95% CI)", "right where\nthe other\nis wrong", "tokens per\nproblem",
                  "errors", title=f"{c['task']} · {c['n_shared']} shared problems")
    table.columns[1].overflow = "fold"
    for key in ("a", "b"):
        s = c[key]
        lo, hi = s["ci95"]
        table.add_row(key.upper(), f"{s['model']} · {s['label']}", f"{s['accuracy']:.1%} ({lo:.1%}-{hi:.1%})",
                      str(s["only_this_right"]), f"{s['tokens_per_problem']:.0f}", str(s["errors"]))
    return table


def backend_table(result: dict) -> Table:
    """`bench backend`: one row per path, with its speed, ratio to best-of-n and recompute."""
    table = Table("path", "tokens/s", "x best-of-n", "positions/token", "cached",
                  title=f"{result['model']} · {result['task']} · {result['threads']} torch thread(s) · "
                        f"strategies on {result['limit']} problems",
                  caption="positions/token: positions the model computed per token generated (prefill and "
                          "padding included); cached: share of prompt reads served from a cache")
    table.columns[0].no_wrap = True
    for label, row in result["rows"].items():
        if "skipped" in row:
            table.add_row(label, "skipped", "", "", "")
            continue
        engine = "vllm: " if label.startswith("vllm: ") else ""  # ratios within one engine's rows
        cache = "on" if label.endswith("(cache on)") else "off" if label.endswith("(cache off)") else None
        base = result["rows"].get(f"{engine}best-of-n (cache {cache})", {}).get("tokens_per_s") if cache else None
        ratio = f"{row['tokens_per_s'] / base:.2f}" if base else ""
        ppt = f"{row['positions_per_token']:.2f}" if row.get("positions_per_token") is not None else ""
        cached = f"{row['cached_share']:.0%}" if "cached_share" in row else ""
        table.add_row(label, f"{row['tokens_per_s']:,.0f}", ratio, ppt, cached)
    return table


def checks_lines(result: dict) -> list[str]:
    """Each target: met or missed, with the figure."""
    lines = [f"{'met   ' if c['met'] else 'MISSED'} {c['check']}: {c['value']:g}" for c in result["checks"]]
    lines += [f"skipped {label}: {row['skipped']}" for label, row in result["rows"].items() if "skipped" in row]
    return lines
