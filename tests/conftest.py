"""Shared fixtures: the lab model (fast, loads in about a second) and a scripted backend.

Tests run torch with one thread: on two shared cores, two threads are several times slower.
"""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def lab():
    from deliberate import load_backend

    return load_backend("lab", threads=1)


@pytest.fixture(scope="session")
def smollm2():
    """Slow: dequantizes a 98 MB GGUF into a 135M-parameter float model (about 20 s)."""
    from deliberate import load_backend

    return load_backend("smollm2", threads=1, batch_size=8)
