"""`deliberate train grpo`: TRL's GRPOTrainer with the project's grader as the accuracy reward.

DeepSeek-R1 (Guo et al. 2025, section 2.2) trains with group-relative advantages over G samples
per prompt and two rule-based rewards, accuracy and format; TRL implements the objective, and
this file only builds what it needs: prompts the way `eval` asks them (zero-shot by default,
which is how `eval` asks the lab model; `--shots` for real models), the reward callables
(`deliberate.train.rewards`, or a user's by dotted path), and TRL's config from ours.
Before the first step each reward is called on one real group of the
model's own samples and checked (one value per completion, numbers, no NaN); a reward whose
values do not vary over the group is named in a warning, since a group with zero spread has zero
advantage and teaches nothing. TRL then logs the share of such groups (`frac_reward_zero_std`)
at every step, and it lands in metrics.jsonl.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deliberate.errors import BadInput
from deliberate.train.common import TrainConfig, callbacks, check_out, claim_out, finish, model_path, opt, trl_config
from deliberate.train.rewards import check_group, opened, resolve

EVAL_SPLITS = ("lab-en", "lab-zh", "lab-en-valid", "lab-zh-valid", "gsm8k", "math500", "game24")


@dataclass
class GRPORunConfig(TrainConfig):
    task: str = opt("lab-en-train", "task(s) whose problems are the prompts, comma-separated (training splits)")
    limit: int | None = opt(None, "use only the first N problems of the task")
    num_generations: int = opt(8, "completions per prompt: the group advantages are computed over")
    beta: float = opt(0.0, "KL coefficient against the starting model (0: no reference model)")
    epsilon: float = opt(0.2, "clipping range of the importance ratio")
    loss_type: str = opt("dapo", "TRL's loss: grpo, dapo, dr_grpo or bnpo")
    max_completion_length: int = opt(160, "tokens per completion")
    temperature: float = opt(1.0, "sampling temperature of the completions")
    rewards: str = opt("accuracy,format", "comma-separated rewards: accuracy, format, think, "
                                          "second_attempt, or module:function")
    reward_weights: str | None = opt(None, "comma-separated weights, one per reward (default: 1 each)")
    think: bool = opt(False, "open <think> at the end of each prompt (R1's template; the model must think)")
    self_correct: bool = opt(False, "train the attempt after the reflection phrase (SCoRe): each prompt holds the "
                                    "model's own first attempt; use with --rewards second_attempt")
    shots: int = opt(0, "worked examples in each prompt")
    vllm: bool = opt(False, "generate the completions with vLLM (TRL's colocate mode; TRL 1.16 supports vLLM "
                            "0.22-0.31, and the CPU build here is 0.32, so only on a GPU machine)")
    learning_rate: float = opt(1e-5, "peak learning rate")
    batch_size: int = opt(16, "completions per device per step (a multiple of num-generations)")

    def validate(self) -> None:
        super().validate()
        if self.num_generations < 2:
            raise BadInput(f"--num-generations must be >= 2 (advantages are relative to a group), "
                           f"got {self.num_generations}.")
        if self.batch_size % self.num_generations:
            raise BadInput(f"--batch-size ({self.batch_size}) must be a multiple of --num-generations "
                           f"({self.num_generations}): it counts completions.")
        if self.loss_type not in ("grpo", "dapo", "dr_grpo", "bnpo"):
            raise BadInput(f"--loss-type must be grpo, dapo, dr_grpo or bnpo, got {self.loss_type!r}.")
        if self.beta < 0 or self.epsilon <= 0 or self.temperature <= 0:
            raise BadInput("--beta must be >= 0, --epsilon and --temperature > 0.")
        if self.max_completion_length < 1 or (self.limit is not None and self.limit < 1):
            raise BadInput("--max-completion-length and --limit must be >= 1.")

    def tasks(self) -> list[str]:
        names = [t.strip() for t in self.task.split(",") if t.strip()]
        if not names:
            raise BadInput("--task names no task.")
        return names

    def reward_names(self) -> list[str]:
        names = [r.strip() for r in self.rewards.split(",") if r.strip()]
        if not names:
            raise BadInput("--rewards names no reward.")
        return names

    def weights(self) -> list[float] | None:
        if self.reward_weights is None:
            return None
        try:
            w = [float(x) for x in self.reward_weights.split(",")]
        except ValueError:
            raise BadInput(f"--reward-weights must be numbers, got {self.reward_weights!r}.") from None
        if len(w) != len(self.reward_names()):
            raise BadInput(f"--reward-weights has {len(w)} values for {len(self.reward_names())} rewards.")
        return w


def prompt_rows(cfg: GRPORunConfig, view) -> list[dict]:
    """One row per problem: the prompt `eval` would send (plus `<think>` when asked), gold, task."""
    from deliberate.tasks import load_task
    from deliberate.train.data import prompt_for

    rows = []
    for name in cfg.tasks():
        task = load_task(name)
        if not task.has_answer_key:
            raise BadInput(f"task {name} has no answer key to reward (GRPO's accuracy needs one).")
        for p in task.problems[: cfg.limit] if cfg.limit else task.problems:  # --limit: per task
            rows.append({"prompt": prompt_for(p.question, view, task, cfg.shots, cfg.think), "gold": p.answer,
                         "task": name})
    return rows


def correction_rows(cfg: GRPORunConfig, rows: list[dict], backend=None) -> list[dict]:
    """SCoRe's second-attempt prompts (Kumar et al. 2024): the model's own first attempt (at the
    sampling temperature, seeded), then Marco-o1's reflection phrase, laid out as the reflection
    strategy lays it out; `first_correct` says whether that attempt was right, for the reward."""
    from deliberate.backends.transformers import TransformersBackend
    from deliberate.grading import grade
    from deliberate.params import SamplingParams
    from deliberate.search.reflection import REFLECTION
    from deliberate.tasks import load_task

    tasks = {name: load_task(name) for name in cfg.tasks()}
    backend = backend or TransformersBackend(model_path(cfg.model), spec=cfg.model, threads=cfg.threads)
    params = SamplingParams(temperature=cfg.temperature, max_tokens=cfg.max_completion_length, seed=cfg.seed)
    gens = backend.generate([r["prompt"] for r in rows], params)
    out = []
    for r, g in zip(rows, gens, strict=True):
        attempt = g.completions[0].text
        out.append({**r, "prompt": f"{r['prompt']}{attempt}\n{REFLECTION}\n",
                    "first_correct": grade(opened(r["prompt"], attempt), r["gold"], tasks[r["task"]].kind,
                                           tasks[r["task"]].lang).correct})
    return out


def step0_check(cfg: GRPORunConfig, rows: list[dict], funcs: list, warn, backend=None) -> dict[str, list]:
    """Sample one group for the first prompt with the model itself and check every reward on it."""
    from deliberate.backends.transformers import TransformersBackend
    from deliberate.params import SamplingParams

    backend = backend or TransformersBackend(model_path(cfg.model), spec=cfg.model, threads=cfg.threads)
    row = rows[0]
    params = SamplingParams(n=cfg.num_generations, temperature=cfg.temperature,
                            max_tokens=cfg.max_completion_length, seed=cfg.seed)
    comps = backend.generate([row["prompt"]], params)[0].completions
    n = len(comps)
    batch = {k: [v] * n for k, v in row.items()}
    batch.update(prompts=batch.pop("prompt"), completions=[c.text for c in comps],
                 completion_ids=[list(c.token_ids) for c in comps],
                 # what TRL also passes (a reward may read the trainer's state or log extra values)
                 trainer_state=None, log_extra=lambda *a, **k: None, log_metric=lambda *a, **k: None)
    seen = {}
    for name, fn in zip(cfg.reward_names(), funcs, strict=True):
        values, flat = check_group(fn, name, batch, n)
        seen[name] = values
        if flat:
            warn(f"warning: reward {name} gave every completion of the first group the same value "
                 f"({values[0]}); groups like it have zero advantage and teach nothing.")
    return seen


def train_grpo(cfg: GRPORunConfig, rows: list[dict] | None = None, warn=print) -> Path:
    """Train `cfg.model` with GRPO on `cfg.task` (or on `rows`: prompt/gold/task and any columns
    the rewards read) into `cfg.out`."""
    import warnings

    import torch

    if not cfg.vllm:  # TRL checks an installed vLLM's version on import, five warnings, though none is used
        warnings.filterwarnings("ignore", message="TRL currently supports vLLM versions", category=UserWarning)
    from trl import GRPOConfig, GRPOTrainer

    from deliberate.train.data import PromptView, to_dataset

    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    for name in cfg.tasks():
        if name in EVAL_SPLITS or name.startswith("mgsm-"):
            warn(f"warning: {name} is an evaluation split; accuracy measured on it after training is not held out.")
    if cfg.vllm:
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise BadInput("--vllm: vLLM is not installed (pip install 'vllm>=0.22,<0.32' on a GPU machine).")
    funcs = [resolve(r) for r in cfg.reward_names()]
    weights = cfg.weights()
    view = PromptView.load(cfg.model, model_path(cfg.model))
    resume_from = check_out(cfg)  # before the slow steps below, so a refused folder costs nothing
    sampler = None  # the model loaded once for what samples before training (first attempts, step 0)
    if rows is None:
        rows = prompt_rows(cfg, view)
        if cfg.self_correct:
            from deliberate.backends.transformers import TransformersBackend

            sampler = TransformersBackend(model_path(cfg.model), spec=cfg.model, threads=cfg.threads)
            rows = correction_rows(cfg, rows, sampler)
    if not rows:
        raise BadInput(f"no training prompts in {cfg.task}.")
    if resume_from is None:  # a resumed run was checked when it started
        step0_check(cfg, rows, funcs, warn, sampler)
    del sampler
    for fn, name in zip(funcs, cfg.reward_names(), strict=True):
        if not hasattr(fn, "__name__"):
            fn.__name__ = name  # TRL names the logged reward columns after the function
    tok = view.tokenizer
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    args = trl_config(GRPOConfig, **cfg.trainer_args(), num_generations=cfg.num_generations, beta=cfg.beta,
                      epsilon=cfg.epsilon, loss_type=cfg.loss_type, max_completion_length=cfg.max_completion_length,
                      temperature=cfg.temperature, reward_weights=weights, shuffle_dataset=True,
                      use_vllm=cfg.vllm, **({"vllm_mode": "colocate"} if cfg.vllm else {}))
    claim_out(cfg, resume_from)
    model = model_path(cfg.model)
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=to_dataset(rows),
                          processing_class=tok,
                          callbacks=callbacks(cfg.out, cfg.max_steps, "grpo", cfg.time_limit_minutes))
    return finish(trainer, cfg, resume_from)
