"""`bench backend`'s table and checks with the vllm: backend's rows beside ours: each engine's
strategies are compared with its own best-of-n, and the vLLM sampling row feeds the target."""

from deliberate.cli.tables import backend_table
from deliberate.eval.bench_backend import checks


def _rows() -> dict:
    return {"generate, logprobs=5": {"tokens_per_s": 900.0},
            "best-of-n (cache on)": {"tokens_per_s": 1000.0, "positions_per_token": 1.0},
            "mcts (cache on)": {"tokens_per_s": 500.0, "positions_per_token": 1.1},
            "vllm: generate, logprobs=5": {"tokens_per_s": 1500.0, "positions_per_token": None},
            "vllm: best-of-n (cache on)": {"tokens_per_s": 2000.0, "positions_per_token": None},
            "vllm: mcts (cache on)": {"tokens_per_s": 1500.0, "positions_per_token": None}}


def test_ratios_are_taken_within_each_engine():
    result = {"model": "lab", "task": "lab-en", "threads": 1, "limit": 4, "rows": _rows()}
    table = backend_table(result)
    labels, ratios = list(table.columns[0].cells), list(table.columns[2].cells)
    assert ratios[labels.index("mcts (cache on)")] == "0.50"
    assert ratios[labels.index("vllm: mcts (cache on)")] == "0.75"


def test_the_vllm_target_reads_the_vllm_backends_sampling_row():
    found = {c["check"]: c for c in checks(_rows(), ("best-of-n", "mcts"))}
    vs = found["generate tokens/s >= 80% of vLLM's (logprobs=5)"]
    assert vs["value"] == 0.6 and not vs["met"]
    assert found["mcts tokens/s >= 70% of best-of-n's"]["value"] == 0.5  # ours, not vLLM's
