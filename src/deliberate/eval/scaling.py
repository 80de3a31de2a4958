"""`deliberate bench scaling`: every strategy at every compute budget, on the same problems.

A budget B is a multiple of what greedy decoding generates on those problems. Each strategy
has one size knob, set from B by the rule in `VARIANTS`: n = B samples; MCTS iterations from
an estimate of what one iteration costs; a beam of width x expand = B; B - 1 reflection
rounds; B times greedy's thinking for budget forcing. The knobs only aim at the budget: the
table always reports the tokens actually generated and their multiple of greedy's, and the
plot puts accuracy against those tokens, so a strategy that overspends is seen doing so.

With `rewards`, every strategy that takes a reward (best-of-n, beam, DVTS, MCTS) runs once per
reward, so a trained verifier (`prm:PATH`) and confidence are compared cell by cell on the same
samples' seeds. Every cell also reports what it bought: its gap to greedy with a paired 95%
bootstrap interval over the same problems, its share of the oracle gap (acc - greedy) /
(Test@N - greedy) (how much of what its samples held it found), and a reward-hacking flag when
its pick is right less often than a random sample of its own (pass@1).

Every cell is an ordinary `evaluate` run in its own folder under the bench folder, so an
interrupted bench resumes where it stopped and every row can be audited like an eval's.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable
from pathlib import Path

from deliberate.backends.base import Backend
from deliberate.errors import BackendError, BadInput
from deliberate.eval.runner import evaluate
from deliberate.search import get_strategy
from deliberate.tasks.base import Task


def _iterations(b: int, g: float, mini: int | None, children: int = 3) -> int:
    """MCTS iterations aiming at b x greedy's tokens g: a step iteration costs about one greedy
    solution (k short steps plus a rollout); a mini-step one costs k mini-steps plus half a rollout."""
    per_iteration = g if mini is None else children * min(mini, g) + g / 2
    return max(1, round(b * g / per_iteration)) if g else b


def _beam(b: int, subtrees: bool = False) -> dict:
    width = 2 ** int(math.log2(max(1, b)) // 2)  # the widest power of two with width^2 <= b
    return {"width": width, "expand": max(1, b // width), **({"subtrees": width} if subtrees else {})}


# label -> (strategy, options for budget b given greedy's mean tokens per problem g)
VARIANTS: dict[str, tuple[str, Callable[[int, float], dict | None]]] = {
    "self-consistency": ("self-consistency", lambda b, g: {"n": b}),
    "best-of-n": ("best-of-n", lambda b, g: {"n": b}),
    "weighted-best-of-n": ("best-of-n", lambda b, g: {"n": b, "vote": "weighted"}),
    "beam": ("beam", lambda b, g: _beam(b)),
    "dvts": ("beam", lambda b, g: _beam(b, subtrees=True) if b >= 4 else None),
    "mcts-step": ("mcts", lambda b, g: {"iterations": _iterations(b, g, None), "action": "step"}),
    "mcts-mini-64": ("mcts", lambda b, g: {"iterations": _iterations(b, g, 64), "action": "mini-step:64"}),
    "mcts-mini-32": ("mcts", lambda b, g: {"iterations": _iterations(b, g, 32), "action": "mini-step:32"}),
    "reflection": ("reflection", lambda b, g: {"rounds": b - 1} if b >= 2 else None),
    "mcts-reflect": ("mcts", lambda b, g: {"iterations": max(1, round(_iterations(b, g, None) / 2)), "reflect": True}),
    "self-refine": ("self-refine", lambda b, g: {"rounds": max(1, b // 2)} if b >= 2 else None),
    "rstar": ("rstar", lambda b, g: {"iterations": max(1, round(_iterations(b, g, None) / 2))}),
    "rstar-lab": ("rstar", lambda b, g: {"iterations": max(1, round(_iterations(b, g, None) / 2)),
                                         "actions": "step,rest"}),
    "budget-forcing": ("budget-forcing", lambda b, g: {"min_think": int(0.9 * b * g), "max_think": int(1.5 * b * g)}
                       if b >= 2 else None),
}
DEFAULT = ["self-consistency", "best-of-n", "beam", "mcts-step", "mcts-mini-64", "mcts-mini-32", "reflection",
           "self-refine", "budget-forcing"]


def variants_markdown(budget: int = 16, greedy_tokens: float = 60.0) -> str:
    """The bench's variants as a Markdown table, with each one's options at one budget, for the
    docs (docs/scaling.md holds this table; tests/eval/test_scaling.py keeps it current)."""
    lines = [f"| variant | strategy | options at {budget}x (greedy {greedy_tokens:g} tokens/problem) | default |",
             "| --- | --- | --- | --- |"]
    for label, (name, knob) in VARIANTS.items():
        options = " ".join(f"{k}={v}" for k, v in (knob(budget, greedy_tokens) or {}).items())
        lines.append(f"| `{label}` | `{name}` | {options} | {'yes' if label in DEFAULT else ''} |")
    return "\n".join(lines) + "\n"


def skip_reason(label: str, task: Task, backend: Backend) -> str | None:
    """Why a strategy cannot run here (it is then left out of the table, saying so): the strategy's
    own check of what it needs from the backend and the model's format, and budget forcing's
    answer key (its thinking is scored by the answer after it)."""
    name = VARIANTS[label][0]
    try:
        get_strategy(name).check(backend, task)
    except BackendError as e:
        return str(e)
    if name == "budget-forcing" and not task.has_answer_key:
        return "needs a task with answers"
    return None


def parse_list(text: str, what: str, convert=str) -> list:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise BadInput(f"--{what} is empty.")
    try:
        return [convert(x) for x in items]
    except ValueError:
        raise BadInput(f"--{what} must be a comma-separated list, got {text!r}.") from None


def budget_rule(cap: bool) -> str:
    """The header line that says how the strategies' budgets were matched."""
    if cap:
        return "budget B = B x greedy's tokens per problem, a hard cap on every problem; actual tokens beside"
    return "budget B = B x greedy's tokens per problem, the mean each strategy's size aims at; actual tokens beside"


def check_variants(names: list[str]) -> None:
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise BadInput(f"unknown strategy {unknown[0]!r} for the scaling bench; choose from: {', '.join(VARIANTS)}.")


def cell_summary(s: dict, label: str, budget: int | None, greedy_tokens: float, setting: dict | None = None) -> dict:
    tests = {k: v for k, v in s.items() if k.startswith(("test@", "pass@1", "maj@", "oracle_chrf@"))}
    n = max(s.get("n_problems", 0), 1)
    return {"strategy": label, "budget": budget, "accuracy": s["accuracy"], "ci95": s["accuracy_ci95"],
            "tokens_generated": s["tokens_generated"], "tokens_per_problem": s["tokens_per_problem"],
            "x_greedy": s["tokens_per_problem"] / greedy_tokens if greedy_tokens else None,
            "verifier_tokens_per_problem": s.get("verifier_tokens", 0) / n,
            "wall_s": s["wall_s"], "setting": setting or {}, "options": s["options"], "out": s["out"], **tests,
            **{k: s[k] for k in ("chrf", "corpus_chrf", "repaired", "repaired_share", "broken", "reward_auroc")
               if k in s}}


def reward_tag(spec: str) -> str:
    """A reward's short name in a table: `confidence`, or `prm`/`orm` and the checkpoint's folder."""
    if spec.startswith(("prm:", "orm:")):
        kind, _, path = spec.partition(":")
        return f"{kind}:{Path(path.partition('?')[0]).name}"
    return spec


def takes_reward(label: str) -> bool:
    from deliberate.search import STRATEGIES

    return "reward" in STRATEGIES[VARIANTS[label][0]].Config.__dataclass_fields__


def sampling_options(label: str, temperature: float | None) -> dict:
    """`temperature` for a variant that samples: its config's `temperature` where that defaults
    above 0 (greedy-by-default strategies such as reflection stay greedy) and mcts's rollouts.
    Read off the config dataclass, so a new sampling strategy needs no entry here."""
    if temperature is None:
        return {}
    from deliberate.search import STRATEGIES

    fields = STRATEGIES[VARIANTS[label][0]].Config.__dataclass_fields__
    out = {}
    if "temperature" in fields and (fields["temperature"].default or 0) > 0:
        out["temperature"] = temperature
    if "rollout_temperature" in fields:
        out["rollout_temperature"] = temperature
    return out


def against_greedy(cell: dict, greedy: dict, seed: int = 0) -> dict:
    """What a cell bought over greedy on the same problems: the paired gap and its 95% interval,
    the share of the oracle gap it closed, and whether its pick lost to a random sample."""
    from deliberate.eval.compare import paired_bootstrap
    from deliberate.eval.runner import read_rows

    if "chrf" in greedy:
        return {}
    a = {r["id"]: bool(r["correct"]) for r in read_rows(Path(greedy["out"]) / "results.jsonl")}
    b = {r["id"]: bool(r["correct"]) for r in read_rows(Path(cell["out"]) / "results.jsonl")}
    shared = [i for i in b if i in a]
    out: dict = {}
    if shared:
        ga, gb = [a[i] for i in shared], [b[i] for i in shared]
        out["vs_greedy"] = (sum(gb) - sum(ga)) / len(shared)
        out["vs_greedy_ci95"] = list(paired_bootstrap(ga, gb, seed=seed))
    test = next((v for k, v in cell.items() if k.startswith("test@")), None)
    if test is not None and test > greedy["accuracy"]:
        out["oracle_gap_share"] = (cell["accuracy"] - greedy["accuracy"]) / (test - greedy["accuracy"])
    if (p1 := cell.get("pass@1")) is not None and cell.get("reward") not in (None, "consistency"):
        out["reward_hacked"] = cell["accuracy"] < p1
    return out


def run_scaling(task: Task, backend: Backend, *, budgets: list[int], strategies: list[str], limit: int | None,
                seed: int = 0, out_dir: str | Path = "runs/bench", batch_problems: int = 32,
                on_cell: Callable[[dict], None] | None = None, on_progress=None, cap: bool = False,
                rewards: list[str] | None = None, temperature: float | None = None) -> dict:
    """Greedy once, then every (strategy, budget) cell; returns {"greedy": ..., "cells": [...]}.

    With `cap`, every problem of a budget-B cell is also held to B x greedy's mean tokens per
    problem by the runner's hard cap, so no strategy can overspend on a hard problem. With
    `rewards`, each strategy that takes a reward runs once with each (named `strategy+reward`).
    With `temperature`, every variant that samples samples at it (`sampling_options`)."""
    if any(b < 1 for b in budgets):
        raise BadInput(f"budgets must be >= 1, got {budgets}.")
    if temperature is not None and temperature <= 0:
        raise BadInput(f"--temperature must be > 0 (greedy is the table's first row), got {temperature}.")
    check_variants(strategies)
    root = Path(out_dir) / f"scaling__{task.name}__{backend.spec}".replace("/", "_").replace(":", "_")
    greedy = evaluate(task, backend, get_strategy("greedy"), limit=limit, seed=seed, out_dir=root / "greedy",
                      batch_problems=batch_problems, on_progress=on_progress)
    g = greedy["tokens_per_problem"]
    result = {"task": task.name, "model": backend.spec, "seed": seed, "n_problems": greedy["n_problems"],
              "cap": cap, "budget_rule": budget_rule(cap), "greedy": cell_summary(greedy, "greedy", None, g),
              "cells": []}
    if on_cell:
        on_cell(result["greedy"])
    if rewards:
        result["rewards"] = rewards
    if temperature is not None:
        result["temperature"] = temperature
    for label in strategies:
        name, knob = VARIANTS[label]
        if reason := skip_reason(label, task, backend):
            result.setdefault("skipped", {})[label] = reason
            continue
        for reward in (rewards if rewards and takes_reward(label) else [None]):
            tag = "" if reward is None else f"+{reward_tag(reward)}"
            for b in budgets:
                options = knob(b, g)
                if options is None:  # this strategy has no setting at this budget (e.g. reflection at 1x)
                    continue
                sampled = sampling_options(label, temperature)
                options = {**options, **sampled, **({"reward": reward} if reward else {})}
                hot = f"__t{temperature:g}" if sampled else ""
                folder = f"{label}{tag}__b{b}{hot}{'__cap' if cap else ''}".replace(":", "_").replace("/", "_")
                s = evaluate(task, backend, get_strategy(name, **options), limit=limit, seed=seed,
                             out_dir=root / folder, batch_problems=batch_problems,
                             max_tokens_per_problem=math.ceil(b * g) if cap else None, on_progress=on_progress)
                cell = cell_summary(s, label + tag, b, g, {k: v for k, v in options.items() if k != "reward"})
                cell["variant"], cell["reward"] = label, reward or s["options"].get("reward")
                cell.update(against_greedy(cell, result["greedy"], seed))
                result["cells"].append(cell)
                if on_cell:
                    on_cell(cell)
    (root / "scaling.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    result["out"] = str(root)
    return result


MARKERS = "osD^vP*Xh<>pd8H"


def strategy_style(label: str) -> tuple[tuple[float, float, float], str]:
    """(colour, marker) of a bench strategy, fixed by its place in `VARIANTS`, so a strategy looks
    the same in every plot and no two share a colour: tab20's ten dark hues, then its ten light
    ones. A name not in `VARIANTS` (an older bench) takes a place after them, from its hash."""
    from matplotlib import colormaps

    palette = colormaps["tab20"].colors[0::2] + colormaps["tab20"].colors[1::2]
    names = list(VARIANTS)
    spare = max(1, len(palette) - len(names))
    i = names.index(label) if label in names else len(names) + zlib.crc32(label.encode()) % spare
    return palette[i % len(palette)], MARKERS[i % len(MARKERS)]


DASHES = {"prm": "--", "orm": ":", "tool": "-.", "lm": (0, (6, 1.5, 1, 1.5, 1, 1.5))}


def reward_dash(label: str) -> str | tuple:
    """A line's style by the kind of reward in its label: a trained verifier's dashed (PRM) or
    dotted (ORM), an external tool's dash-dotted, a judge model's (`lm:`) dash-dot-dotted, the
    model's own confidence (or no reward) solid; so one strategy's lines stay apart by reward."""
    kind = label.partition("+")[2].partition(":")[0]
    return DASHES.get(kind, "-")


def plot_scaling(result: dict, path: str | Path) -> Path:
    """Accuracy (with 95% interval bars) or chrF against tokens generated per problem, one line
    per strategy; the legend sits outside the axes, so it covers no point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = "chrf" if "chrf" in result["greedy"] else "accuracy"
    scale = 1 if metric == "chrf" else 100
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    g = result["greedy"]
    ax.axhline(g[metric] * scale, color="black", ls="--", lw=1, label="greedy")
    ax.scatter([g["tokens_per_problem"]], [g[metric] * scale], color="black", zorder=3)
    for label in dict.fromkeys(c["strategy"] for c in result["cells"]):
        color, marker = strategy_style(label.split("+")[0])
        dash = reward_dash(label)
        cells = sorted((c for c in result["cells"] if c["strategy"] == label), key=lambda c: c["tokens_per_problem"])
        xs, ys = [c["tokens_per_problem"] for c in cells], [c[metric] * scale for c in cells]
        ax.plot(xs, ys, marker=marker, label=label, color=color, ls=dash)
        if metric == "accuracy":  # the 95% interval of each cell: a gap inside it is noise
            lo = [(c["accuracy"] - c["ci95"][0]) * 100 for c in cells]
            hi = [(c["ci95"][1] - c["accuracy"]) * 100 for c in cells]
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt="none", ecolor=color, alpha=0.35, capsize=3)
    ax.set_xscale("log")
    ax.set_xlabel("tokens generated per problem (log)")
    ax.set_ylabel("chrF" if metric == "chrf" else "accuracy (%), bars: 95% interval")
    ax.set_title(f"{result['task']} · {result['model']} · {result['n_problems']} problems")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")  # "tight" keeps the legend beside the axes in the file
    plt.close(fig)
    return path


def oracle_text(cell: dict) -> str:
    """Test@N (right at least once in N) for answer tasks; the best sample's chrF for translation."""
    for k, v in cell.items():
        if k.startswith("test@"):
            return f"{v:.1%} @{k[5:]}"
        if k.startswith("oracle_chrf@"):
            return f"{v:.1f} @{k[12:]}"
    return ""


def gain_text(cell: dict) -> str:
    """The paired gap to greedy and its interval, starred where the interval excludes zero."""
    if "vs_greedy" not in cell:
        return ""
    lo, hi = cell["vs_greedy_ci95"]
    star = "*" if lo > 0 or hi < 0 else ""
    return f"{cell['vs_greedy'] * 100:+.1f}{star} ({lo * 100:+.1f} to {hi * 100:+.1f})"


def gap_text(cell: dict) -> str:
    """The oracle-gap share, and the reward-hacking flag (a pick worse than a random sample)."""
    share = f"{cell['oracle_gap_share']:.0%}" if "oracle_gap_share" in cell else ""
    return share + (" hacked" if cell.get("reward_hacked") else "")


def markdown_table(result: dict) -> str:
    """The table as Markdown, for docs: one row per cell, greedy first."""
    metric = "chrf" if "chrf" in result["greedy"] else "accuracy"
    head = "accuracy (95% CI)" if metric == "accuracy" else "chrF"
    oracle = "Test@N" if metric == "accuracy" else "best sample's chrF (oracle)"
    lines = [f"{result['task']} · {result['model']} · {result['n_problems']} problems · seed {result['seed']}",
             "", f"Matched budgets: {result.get('budget_rule', budget_rule(False))}.", "",
             f"| strategy | budget | {head} | {oracle} | vs greedy (paired 95% CI) | oracle gap closed | "
             "tokens/problem | x greedy | verifier tokens/problem | seconds | setting |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in [result["greedy"], *result["cells"]]:
        lo, hi = c["ci95"] or (None, None)  # no interval where there is no answer key (chrF)
        value = f"{c['accuracy']:.1%} ({lo:.1%}-{hi:.1%})" if metric == "accuracy" else f"{c['chrf']:.1f}"
        test = oracle_text(c)
        setting = " ".join(f"{k}={v}" for k, v in c["setting"].items())
        budget = "" if c["budget"] is None else f"{c['budget']}x"
        lines.append(f"| {c['strategy']} | {budget} | {value} | {test} | {gain_text(c)} | {gap_text(c)} | "
                     f"{c['tokens_per_problem']:.0f} | {c['x_greedy']:.1f} | "
                     f"{c.get('verifier_tokens_per_problem', 0):.0f} | {c['wall_s']:.0f} | {setting} |")
    lines.append("\nvs greedy: accuracy gap in points on the same problems, * where the paired bootstrap "
                 "interval excludes 0; oracle gap closed: (acc - greedy) / (Test@N - greedy); hacked: the "
                 "reward's pick is right less often than a random sample of the cell (pass@1).")
    for label, why in result.get("skipped", {}).items():
        lines.append(f"\nskipped {label}: {why}")
    return "\n".join(lines) + "\n"
