"""The models inside the package: the issue's size limit, lab-r1 beside lab, the first lab model kept."""

from deliberate import SamplingParams, load_backend
from deliberate.backends import LAB_MODELS, lab_model_dir
from deliberate.lab.generator import heldout_split


def test_the_shipped_weights_fit_the_size_limit():
    from importlib import resources

    lab = resources.files("deliberate.lab")
    shipped = [lab / d / "model.safetensors" for d in [*LAB_MODELS.values(), "prm"] if (lab / d).is_dir()]
    assert len(shipped) >= 4  # lab, lab-r1, lab-v1 and the PRM
    assert sum(p.stat().st_size for p in shipped) <= 30_000_000


def test_the_first_lab_model_loads_in_fp16_and_differs_from_the_current_one():
    """lab-v1 is stored in half precision and loaded as float32; it is another model than `lab`
    (the tables measured on it are rerun with `--model lab-v1`)."""
    import torch
    from safetensors import safe_open

    with safe_open(lab_model_dir("lab-v1") / "model.safetensors", "pt") as f:
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys())
    prompts = [p.question["en"] + "\n" for p in heldout_split(8)]
    params = SamplingParams(temperature=0, max_tokens=80)
    v1, v10 = (load_backend(spec, threads=1) for spec in ("lab-v1", "lab"))
    assert v1.prompt_style == "lab" and next(v1.model.parameters()).dtype == torch.float32
    a, b = ([g.completions[0].text for g in m.generate(prompts, params)] for m in (v1, v10))
    assert all("The answer is" in t for t in a) and a != b


def test_lab_r1_thinks_in_the_r1_format_and_both_models_solve_most_problems():
    """lab-r1 is v10 (lab's base) after GRPO in the think format: its prompt opens <think>, its greedy
    text closes it and answers in <answer>; on 40 held-out problems each shipped model is right on
    more than half (v11 and lab-r1 score 68 and 80 percent on the test split's first 300)."""
    from deliberate import load_task
    from deliberate.prompting import build_prompt

    task = load_task("lab-en")
    problems = task.problems[:40]
    params = SamplingParams(temperature=0, max_tokens=200)
    right = {}
    for spec in ("lab-r1", "lab"):
        m = load_backend(spec, threads=1)
        assert m.prompt_style == spec
        prompts = [build_prompt(task, p, m).text for p in problems]
        texts = [g.completions[0].text for g in m.generate(prompts, params)]
        right[spec] = sum(task.grade(p, t).correct for p, t in zip(problems, texts, strict=True))
        if spec == "lab-r1":
            assert all(p.endswith("<think>\n") or p.endswith("<think>") for p in prompts)
            assert sum("</think>" in t and "<answer>" in t for t in texts) >= 38
    assert right["lab-r1"] > 20 and right["lab"] > 20, right


def test_every_shipped_model_folder_is_package_data():
    """A wheel (not only an editable install) must carry every folder LAB_MODELS names."""
    import tomllib
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]["deliberate.lab"]
    assert {f"{d}/*" for d in [*LAB_MODELS.values(), "prm"]} <= set(data)
