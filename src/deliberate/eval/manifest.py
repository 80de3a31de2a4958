"""`manifest.json`: everything a run's numbers depend on, written beside its rows.

Published numbers go unreproducible when a setting was never written down: a default, a
library version, which weights. The manifest records the code (deliberate's version and git
commit), the libraries, the model and a hash of its weights, the task and a hash of its data,
a hash of the prompt template, the strategy with every option, the seed, the grader's hash and
the machine. `deliberate reproduce RUN_DIR` reruns from it and `diff_manifests` says what moved.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path

from deliberate.backends.base import Backend
from deliberate.search.base import Strategy
from deliberate.tasks.base import Problem, Task
from deliberate.version import __version__

LIBRARIES = ("torch", "transformers", "tokenizers", "math-verify", "sacrebleu", "gguf", "vllm", "openai", "numpy")
_HASHES: dict[tuple[str, int, float], str] = {}


def sha256_file(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) for the life of the process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime)
    if key not in _HASHES:
        h = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def weights_hash(backend: Backend) -> str:
    """A hash over the model's weight files (the backend's `weights_files()`), or of what the
    backend says identifies it (`weights_id`); "unknown" when it offers neither."""
    if files := getattr(backend, "weights_files", lambda: [])():
        return sha256_text("".join(f"{Path(f).name}:{sha256_file(Path(f))}\n" for f in sorted(files)))
    return getattr(backend, "weights_id", None) or "unknown"


def model_files_hash(backend: Backend) -> str | None:
    """A hash over the model folder's other files (config, generation config, tokenizer): they
    change results too. Recorded in the manifest, so `reproduce` reports a change; the run key
    itself holds the weights hash, as promised."""
    files = getattr(backend, "weights_files", lambda: [])()
    if not files:
        return None
    folder = Path(files[0]).parent
    others = sorted(f for f in folder.glob("*") if f.is_file() and f.suffix in (".json", ".txt", ".model", ".jinja")
                    and str(f) not in files)
    return sha256_text("".join(f"{f.name}:{sha256_file(f)}\n" for f in others)) if others else None


def task_data_hash(task: Task) -> str:
    """sha256 of the task's data file; for generated tasks, of the generated problems themselves."""
    from deliberate.tasks import data_dir

    src = task.source
    if src and src != "generated":
        for path in (Path(src).expanduser(), *([data_dir() / src] if not Path(src).is_absolute() else [])):
            try:
                if path.is_file():
                    return sha256_file(path)
            except Exception:  # data_dir() raises when the shared data is missing: fall through
                continue
    return sha256_text(json.dumps([[p.id, p.question, p.answer] for p in task.problems], ensure_ascii=False))


def prompt_template_hash(task: Task, backend: Backend, shots: int | None) -> str:
    """sha256 of the prompt a placeholder problem gets: exemplars, labels and layout, no question."""
    from deliberate.prompting import build_prompt

    probe = Problem("probe", "{question}", "0", meta={"src": "en", "tgt": "zh"})
    try:
        prompt = build_prompt(task, probe, backend, shots if shots is not None else 8)
    except Exception as e:  # a template that cannot render a placeholder still gets a stable record
        return f"unavailable: {type(e).__name__}"
    return sha256_text(prompt.text + "\x00" + "\x00".join(prompt.stop))


def git_commit() -> str | None:
    """The commit deliberate runs from (with '-dirty' when its tree has changes), if it is a checkout."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def versions() -> dict[str, str]:
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def machine() -> dict:
    info: dict = {"platform": platform.platform(), "python": platform.python_version(),
                  "cpu": _cpu_name(), "cpu_count": os.cpu_count()}
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def grader_hash(package: Path) -> str:
    """sha256 over the grading package's source files, name and content, in name order."""
    h = hashlib.sha256()
    for f in sorted(package.glob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def build_manifest(task: Task, backend: Backend, strategy: Strategy, *, seed: int, limit: int | None,
                   weights: str, max_tokens_per_problem: int | None = None) -> dict:
    import deliberate.grading as grading

    options = strategy.options()
    return {
        "deliberate": __version__, "git_commit": git_commit(), "libraries": versions(),
        "model": {"spec": backend.spec, "weights_sha256": weights, "files_sha256": model_files_hash(backend),
                  "prompt_style": backend.prompt_style,
                  "capabilities": asdict(backend.capabilities)},
        "task": {"name": task.name, "source": task.source, "data_sha256": task_data_hash(task), "limit": limit},
        "prompt_template_sha256": prompt_template_hash(task, backend, options.get("shots")),
        "strategy": {"name": strategy.name, "options": options}, "seed": seed,
        "max_tokens_per_problem": max_tokens_per_problem,
        "grader_sha256": grader_hash(Path(grading.__file__).parent), "machine": machine(),
    }


def diff_manifests(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Every leaf that differs between two manifests, as 'path: a -> b'."""
    out = []
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            out += diff_manifests(x, y, f"{prefix}{k}.")
        elif x != y:
            out.append(f"{prefix}{k}: {x} -> {y}")
    return out
