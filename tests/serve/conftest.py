"""A server on loopback, in a thread, for the official `openai` client to call."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("openai")


@contextmanager
def running(backend, **settings):
    """Serve `backend` on a free loopback port; yields (base_url, app)."""
    from deliberate.serve import ServeConfig, background, create_app

    app = create_app(backend, ServeConfig(model=backend.spec, **settings))
    with background(app) as base:
        yield base, app


def client(base: str, **kw):
    import openai

    return openai.OpenAI(base_url=f"{base}/v1", api_key=kw.pop("api_key", "unused"), max_retries=0, **kw)


@pytest.fixture
def serving():
    """`with serving(backend, **settings) as (base_url, app)`: a server for the test."""
    return running


@pytest.fixture
def openai_client():
    """`openai_client(base_url)`: the official client, no retries."""
    return client
