"""`deliberate train plot`: a run's logged curves (loss, reward, zero-spread share) as one figure.

Reads `metrics.jsonl` (every trainer writes it), so a finished, interrupted or resumed run plots
the same way; a moving average over `smooth` logged steps shows the trend under RL's noise.
"""

from __future__ import annotations

from pathlib import Path

from deliberate.errors import BadInput
from deliberate.train.common import read_metrics

DEFAULT_KEYS = ("reward", "frac_reward_zero_std", "loss")


def _smooth(ys: list[float], k: int) -> list[float]:
    out, acc = [], []
    for y in ys:
        acc.append(y)
        acc = acc[-k:]
        out.append(sum(acc) / len(acc))
    return out


def plot_run(run_dirs: list[str | Path], out: str | Path, keys: tuple[str, ...] = DEFAULT_KEYS,
             smooth: int = 10, title: str | None = None) -> Path:
    """One panel per key present in any run, one line per run (raw faint, smoothed solid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {str(d): [r for r in read_metrics(d) if "train_runtime" not in r] for d in run_dirs}
    for d, recs in runs.items():
        if not recs:
            raise BadInput(f"no metrics in {d} (metrics.jsonl missing or empty).")
    present = [k for k in keys if any(k in r for recs in runs.values() for r in recs)]
    if not present:
        raise BadInput(f"none of {', '.join(keys)} was logged in {', '.join(runs)}.")
    fig, axes = plt.subplots(1, len(present), figsize=(4.2 * len(present), 3.2), squeeze=False)
    for ax, key in zip(axes[0], present, strict=True):
        for d, recs in runs.items():
            pts = [(r["step"], r[key]) for r in recs if key in r]
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            line = ax.plot(xs, ys, alpha=0.25)[0]
            ax.plot(xs, _smooth(ys, smooth), color=line.get_color(), label=Path(d).name)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)
