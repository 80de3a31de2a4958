"""`deliberate train star`: the Self-Taught Reasoner (Zelikman et al. 2022, Algorithm 1).

Each iteration samples rationales for the training problems with the current model, keeps the
ones the grader marks right, and for the problems it got wrong asks again with the answer given
as a hint ("rationalization"), keeping those that reach it; the kept rationales, paired with the
question *without* the hint, fine-tune the model. As in the paper, every iteration fine-tunes
the starting model afresh on the new set (not the last iteration's model), so errors do not
compound. After each iteration greedy accuracy on the validation split is measured.

Sampling and validation go through `eval`'s runner, so they are batched, resumable and
recorded like any run; each iteration's folder holds its sample runs, its data and its model,
and an iteration already finished is read back instead of redone. Every iteration samples the
same `problems` (the first N of the task), so the set of solved problems can grow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path

from deliberate.errors import BadInput
from deliberate.train.common import TrainConfig, changed_settings, model_path, opt, prepare_out

LOG = "star_log.jsonl"


@dataclass
class StarConfig(TrainConfig):
    task: str = opt("lab-en-train", "training task (problems with answers)")
    valid_task: str = opt("lab-en-valid", "validation task measured after each iteration")
    iterations: int = opt(2, "STaR iterations")
    problems: int = opt(500, "training problems sampled per iteration")
    samples: int = opt(4, "rationales sampled per problem")
    temperature: float = opt(0.7, "sampling temperature of the rationales")
    rationalize: bool = opt(True, "retry failed problems with the answer as a hint")
    valid_limit: int = opt(200, "validation problems")
    max_steps: int = opt(200, "SFT steps per iteration")
    learning_rate: float = opt(3e-4, "peak learning rate of each iteration's SFT")
    batch_size: int = opt(16, "SFT sequences per step")
    save_steps: int = opt(100, "SFT checkpoint every this many steps")

    def validate(self) -> None:
        super().validate()
        for name in ("iterations", "problems", "samples", "valid_limit"):
            if getattr(self, name) < 1:
                raise BadInput(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}.")
        if self.temperature <= 0:
            raise BadInput(f"--temperature must be > 0 (STaR samples), got {self.temperature}.")


def _solutions(rows: list[dict], question_of: dict[str, str]) -> list[dict]:
    """One row per problem with a right sample: the first right one, under the plain question."""
    kept = []
    for r in rows:
        right = next((s for s in r.get("samples", []) if s.get("correct")), None)
        if right is not None:
            kept.append({"id": r["id"], "question": question_of[r["id"]], "solution": right["text"].strip()})
    return kept


def _rows(summary: dict) -> list[dict]:
    from deliberate.eval.runner import read_rows

    return read_rows(Path(summary["out"]) / "results.jsonl")


def _accuracy(backend, task, limit: int, out_dir: Path, seed: int) -> float:
    from deliberate.eval.runner import evaluate
    from deliberate.search import get_strategy

    return evaluate(task, backend, get_strategy("greedy"), limit=limit, seed=seed, out_dir=out_dir)["accuracy"]


def iteration(cfg: StarConfig, k: int, current: str, out: Path, log) -> dict:
    """One STaR iteration from model `current`; returns its record (and leaves its model in out/iter-k)."""
    from deliberate.backends import load_backend
    from deliberate.eval.runner import evaluate
    from deliberate.prompting import with_hint
    from deliberate.search import get_strategy
    from deliberate.tasks import load_task
    from deliberate.train.data import PromptView, prompt_for
    from deliberate.train.sft import SFTRunConfig, train_sft

    here = out / f"iter-{k}"
    task = load_task(cfg.task)
    if not task.has_answer_key:
        raise BadInput(f"task {cfg.task} has no answer key: STaR keeps rationales that reach the answer.")
    # every iteration samples the same problems, so the set solved can grow (Algorithm 1)
    problems = task.problems[: cfg.problems]
    question_of = {p.id: p.question for p in problems}
    backend = load_backend(current, threads=cfg.threads)
    sampler = get_strategy("self-consistency", n=cfg.samples, temperature=cfg.temperature)
    rows = _rows(evaluate(replace(task, _problems=problems), backend, sampler, seed=cfg.seed + k,
                          out_dir=here / "samples"))
    kept = _solutions(rows, question_of)
    solved = {r["id"] for r in kept}
    rationalized: list[dict] = []
    if cfg.rationalize and len(solved) < len(problems):
        hinted = [replace(p, question=with_hint(p.question, p.answer)) for p in problems if p.id not in solved]
        hint_rows = _rows(evaluate(replace(task, name=f"{task.name}-hinted", _problems=hinted), backend, sampler,
                                   seed=cfg.seed + k, out_dir=here / "rationalize"))
        rationalized = _solutions(hint_rows, question_of)
    data = here / "data.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept + rationalized))
    log(f"iteration {k}: {len(kept)} of {len(problems)} problems solved, {len(rationalized)} rationalized")
    if not kept and not rationalized:
        raise BadInput(f"iteration {k}: no right rationale among {len(problems)} problems; nothing to train on.")
    model_dir = here / "model"
    if not (model_dir / "done").exists():
        from transformers.trainer_utils import get_last_checkpoint

        resume = model_dir.is_dir() and get_last_checkpoint(str(model_dir)) is not None
        shared = {f.name: getattr(cfg, f.name) for f in fields(TrainConfig)}  # every trainer option passes on
        sft = SFTRunConfig(**{**shared, "model": cfg.model, "data": str(data), "out": str(model_dir),
                              "resume": resume, "overwrite": model_dir.exists() and not resume})
        # the rationales under the plain question, asked as the sampler asked it (its shots, its labels)
        view = PromptView.load(cfg.model, model_path(cfg.model))
        train_sft(sft, rows=[{"prompt": prompt_for(r["question"], view, task, sampler.config.shots),
                              "completion": r["solution"]} for r in kept + rationalized])
        (model_dir / "done").write_text("")
    acc = _accuracy(load_backend(str(here / "model"), threads=cfg.threads), load_task(cfg.valid_task),
                    cfg.valid_limit, here / "valid", cfg.seed)
    return {"iteration": k, "problems": len(problems), "kept": len(kept), "rationalized": len(rationalized),
            "train_rows": len(kept) + len(rationalized), "valid_accuracy": acc, "model": str(here / "model")}


def train_star(cfg: StarConfig, log=print) -> list[dict]:
    """Run (or resume) the STaR iterations; returns one record per iteration, the base model's
    validation accuracy first as iteration 0."""
    from deliberate.backends import load_backend
    from deliberate.tasks import load_task

    cfg.validate()
    model_path(cfg.model)  # a model STaR cannot fine-tune fails before any sampling
    out = Path(cfg.out)
    if cfg.task == cfg.valid_task:
        raise BadInput(f"--task and --valid-task are both {cfg.task}: validation must be held out.")
    if cfg.resume and not (out / LOG).exists():
        raise BadInput(f"--resume: no STaR run to resume in {out} ({LOG} missing).")
    if cfg.resume and (changed := changed_settings(cfg, out / "run_config.json", ("iterations",))):
        raise BadInput(f"--resume with options that differ from the run in {out}: {', '.join(changed)}.")
    if not cfg.resume:
        prepare_out(cfg)
    done = [json.loads(line) for line in (out / LOG).read_text().splitlines() if line.strip()] if cfg.resume else []
    if not done:
        acc = _accuracy(load_backend(cfg.model, threads=cfg.threads), load_task(cfg.valid_task), cfg.valid_limit,
                        out / "iter-0" / "valid", cfg.seed)
        done.append({"iteration": 0, "kept": 0, "rationalized": 0, "train_rows": 0, "valid_accuracy": acc,
                     "model": cfg.model})
        (out / LOG).write_text(json.dumps(done[0]) + "\n")
    log(f"iteration 0 (the starting model): validation greedy {done[0]['valid_accuracy']:.1%}")
    while len(done) <= cfg.iterations:
        k = len(done)
        rec = iteration(cfg, k, done[-1]["model"], out, log)
        done.append(rec)
        with (out / LOG).open("a") as f:
            f.write(json.dumps(rec) + "\n")
        log(f"iteration {k}: validation greedy {rec['valid_accuracy']:.1%}")
    return done
