"""Synthetic multi-step arithmetic word problems, the same problem in English and Chinese.

The lab model is trained and evaluated on these. Every problem is built from a small story
grammar: a start ("Tom has 12 apples."), a few operations (buy, give away, bags of, times as
many, split into piles), optional distractor sentences about somebody else, and a question.
The reference solution has one arithmetic step per line and ends in MGSM's answer phrase, so
a model trained on it answers in the format the MGSM grader expects.

The held-out test split comes from a fixed seed that training never uses, and training
additionally drops any problem whose text equals a test problem, so the two are disjoint.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

NAMES = [("Tom", "汤姆"), ("Amy", "艾米"), ("Ben", "本"), ("Lily", "莉莉"), ("Sam", "萨姆"),
         ("Mia", "米娅"), ("Leo", "里奥"), ("Zoe", "佐伊"), ("Max", "马克斯"), ("Ana", "安娜")]
# (english plural, chinese noun, chinese measure word)
ITEMS = [("apples", "苹果", "个"), ("pens", "笔", "支"), ("books", "书", "本"),
         ("cards", "卡片", "张"), ("eggs", "鸡蛋", "个"), ("stickers", "贴纸", "张"),
         ("marbles", "弹珠", "颗"), ("coins", "硬币", "枚")]
ANSWER_PHRASE = {"en": "The answer is {}.", "zh": "答案是 {}。"}


@dataclass(frozen=True)
class Difficulty:
    """The difficulty knob: how many operations, how large the numbers, how many distractors."""

    min_steps: int = 2
    max_steps: int = 4
    max_number: int = 20
    max_factor: int = 5
    max_distractors: int = 1
    max_value: int = 200

    def __post_init__(self) -> None:
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError(f"steps must satisfy 1 <= min_steps <= max_steps, got "
                             f"{self.min_steps}..{self.max_steps}.")
        if self.max_number < 2 or self.max_factor < 2 or self.max_distractors < 0:
            raise ValueError("max_number and max_factor must be >= 2, max_distractors >= 0.")


# The task's default difficulty: the held-out splits are drawn from it. Chosen on the validation
# split so the shipped model lands in the accuracy band search needs (greedy 35-75%).
DEFAULT_DIFFICULTY = Difficulty(min_steps=4, max_steps=6, max_number=15)
# One step more and numbers twice as large, from the same knob: `lab-en-hard`, `lab-zh-hard`,
# where a verifier trained at the default difficulty is tested out of its distribution.
HARD_DIFFICULTY = Difficulty(min_steps=5, max_steps=7, max_number=30)


# An operation on the running value: ("add", b), ("sub", b), ("add_groups", k, c),
# ("sub_groups", k, c), ("mul", k) or ("div", k). Kept structured (not only as text) so that
# training can write the same solution in several equivalent forms and inject realistic mistakes.
Op = tuple


def apply_op(op: Op, x: int) -> int:
    """The value after one operation (integer division: a wrong attempt may meet an odd value)."""
    kind, *a = op
    return {"add": lambda: x + a[0], "sub": lambda: x - a[0], "mul": lambda: x * a[0], "div": lambda: x // a[0],
            "add_groups": lambda: x + a[0] * a[1], "sub_groups": lambda: x - a[0] * a[1]}[kind]()


# How many equivalent ways each operation can be written (see `op_lines`).
N_FORMS = {"add": 2, "sub": 1, "add_groups": 3, "sub_groups": 3, "mul": 2, "div": 1}


def op_lines(op: Op, x: int, form: int = 0, y: int | None = None) -> list[str]:
    """The solution lines of one operation on x; form 0 is the canonical one.

    Equivalent forms (operands swapped, a product written inline) give sampling several
    reasoning paths to one answer, as natural chain-of-thought data has; `y` overrides the
    result (a slip in a wrong attempt).
    """
    kind, *a = op
    y = apply_op(op, x) if y is None else y
    if kind in ("add_groups", "sub_groups"):
        k, c = a
        sign = "+" if kind == "add_groups" else "-"
        if form == 2:
            return [f"{x} {sign} {k} * {c} = {y}"]
        return [f"{k} * {c} = {k * c}" if form == 0 else f"{c} * {k} = {k * c}", f"{x} {sign} {k * c} = {y}"]
    sign = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[kind]
    return [f"{a[0]} {sign} {x} = {y}" if form == 1 else f"{x} {sign} {a[0]} = {y}"]


@dataclass
class LabProblem:
    """One problem in both languages: a start value and operations (language-neutral)."""

    question: dict[str, str]
    start: int
    ops: list[Op]
    answer: int
    n_ops: int
    meta: dict[str, int] = field(default_factory=dict)

    @property
    def steps(self) -> list[str]:
        """The canonical solution lines, one arithmetic step each."""
        lines, x = [], self.start
        for op in self.ops:
            lines += op_lines(op, x)
            x = apply_op(op, x)
        return lines

    def solution(self, lang: str) -> str:
        return "\n".join([*self.steps, ANSWER_PHRASE[lang].format(self.answer)])

    def key(self) -> str:
        return hashlib.sha1(self.question["en"].encode()).hexdigest()[:16]


def _operation(rng: random.Random, x: int, d: Difficulty, who: tuple[str, str],
               friend: tuple[str, str], item: tuple[str, str, str]) -> tuple[str, str, Op] | None:
    """One story operation on the running value x: (en, zh, op), or None to redraw."""
    _, zh_item, unit = item
    en, zh = who
    kind = rng.choice(["add", "sub", "add_groups", "sub_groups", "mul", "div"])
    if kind == "add":
        b = rng.randint(1, d.max_number)
        return f"{en} buys {b} more.", f"{zh}又买了{b}{unit}。", ("add", b)
    if kind == "sub" and x > 1:
        b = rng.randint(1, min(x - 1, d.max_number))
        return f"{en} gives {b} to {friend[0]}.", f"{zh}给了{friend[1]}{b}{unit}。", ("sub", b)
    if kind in ("add_groups", "sub_groups"):
        k, c = rng.randint(2, d.max_factor), rng.randint(2, min(10, d.max_number))
        if kind == "add_groups":
            return f"{en} gets {k} bags of {c}.", f"{zh}又得到{k}袋，每袋{c}{unit}。", ("add_groups", k, c)
        if k * c < x:
            return f"{en} sells {k} packs of {c}.", f"{zh}卖掉{k}包，每包{c}{unit}。", ("sub_groups", k, c)
        return None
    if kind == "mul":
        k = rng.randint(2, d.max_factor)
        return f"Then {en} has {k} times as many.", f"然后{zh}的{zh_item}变成{k}倍。", ("mul", k)
    if kind == "div":
        ks = [k for k in range(2, d.max_factor + 1) if x % k == 0 and x // k > 0]
        if ks:
            k = rng.choice(ks)
            return (f"{en} splits them into {k} equal piles and keeps one.",
                    f"{zh}把它们平分成{k}份，留下一份。", ("div", k))
    return None


def make_problem(rng: random.Random, d: Difficulty = DEFAULT_DIFFICULTY) -> LabProblem:
    """Draw one problem; operations that would leave the value range are redrawn."""
    who, friend = rng.sample(NAMES, 2)
    item, other_item = rng.sample(ITEMS, 2)
    start = x = rng.randint(2, d.max_number)
    en = [f"{who[0]} has {x} {item[0]}."]
    zh = [f"{who[1]}有{x}{item[2]}{item[1]}。"]
    ops: list[Op] = []
    n_ops = rng.randint(d.min_steps, d.max_steps)
    while len(ops) < n_ops:
        drawn = _operation(rng, x, d, who, friend, item)
        if drawn is None or not 0 < apply_op(drawn[2], x) <= d.max_value:
            continue
        en.append(drawn[0])
        zh.append(drawn[1])
        ops.append(drawn[2])
        x = apply_op(drawn[2], x)
    for _ in range(rng.randint(0, d.max_distractors)):
        pos = rng.randint(1, len(en))  # never before the start sentence
        n = rng.randint(2, d.max_number)
        en.insert(pos, f"{friend[0]} has {n} {other_item[0]}.")
        zh.insert(pos, f"{friend[1]}有{n}{other_item[2]}{other_item[1]}。")
    en.append(f"How many {item[0]} does {who[0]} have now?")
    zh.append(f"{who[1]}现在有多少{item[2]}{item[1]}？")
    return LabProblem({"en": " ".join(en), "zh": "".join(zh)}, start, ops, x, n_ops)


TEST_SEED = 20_241_121  # the held-out split's seed; training seeds are derived elsewhere


VALID_SEED = 20_241_122  # a validation split for model selection, so the test split stays unseen


def heldout_split(n: int = 500, d: Difficulty = DEFAULT_DIFFICULTY, split: str = "test") -> list[LabProblem]:
    """The fixed held-out split ("test", or "valid" for model selection): row i is the same
    problem in both languages. Validation problems equal to a test problem are skipped."""
    if split == "test":
        rng = random.Random(TEST_SEED)
        return [make_problem(rng, d) for _ in range(n)]
    test_keys = {p.key() for p in heldout_split(500, d)}
    rng, out = random.Random(VALID_SEED), []
    while len(out) < n:
        if (p := make_problem(rng, d)).key() not in test_keys:
            out.append(p)
    return out


# The training mix: easier and harder than the test difficulty, so the model generalizes
# across the knob instead of fitting one setting.
CURRICULUM = [Difficulty(1, 2), Difficulty(2, 4), Difficulty(3, 5), Difficulty(2, 4, max_number=30)]

TRAIN_SPLIT_SEED = 20_241_123  # a fixed training split (RL prompts, STaR), drawn like the held-out ones


def train_split(n: int = 2000, d: Difficulty = DEFAULT_DIFFICULTY) -> list[LabProblem]:
    """A fixed list of training problems at the test difficulty, none equal to a held-out one:
    the prompts of GRPO and STaR, which need problems with answers rather than an endless stream."""
    exclude = {p.key() for split in ("test", "valid") for p in heldout_split(500, d, split)}
    stream = train_stream(TRAIN_SPLIT_SEED, [d], exclude)
    return [next(stream) for _ in range(n)]


def held_out_keys() -> set[str]:
    """Keys of every held-out problem (test and validation splits): training never draws one."""
    return {p.key() for split in ("test", "valid") for p in heldout_split(split=split)}


def train_stream(seed: int, difficulties: list[Difficulty], exclude: set[str]):
    """Endless training problems from a curriculum mix, never equal to a held-out problem."""
    if seed in (TEST_SEED, VALID_SEED):
        raise ValueError("the training seed must differ from the held-out splits' seeds.")
    rng = random.Random(seed)
    while True:
        p = make_problem(rng, rng.choice(difficulties))
        if p.key() not in exclude:
            yield p
