"""The models inside the package: the issue's size limit, and the first lab model kept in fp16."""

from deliberate import SamplingParams, load_backend
from deliberate.backends import LAB_MODELS, lab_model_dir
from deliberate.lab.generator import heldout_split


def test_the_shipped_weights_fit_the_size_limit():
    from importlib import resources

    lab = resources.files("deliberate.lab")
    shipped = [lab / d / "model.safetensors" for d in [*LAB_MODELS.values(), "prm"] if (lab / d).is_dir()]
    assert len(shipped) >= 3  # lab, lab-v1 and the PRM at least
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
