"""An OpenAI-compatible server that answers with search: `deliberate serve`.

`create_app(backend, ServeConfig(...))` builds the FastAPI app; `serve(cfg)` loads the model and
runs it under uvicorn. See docs/serve.md for the wire conventions (reasoning, usage, trees).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from deliberate.serve.config import API_KEY_ENV, ServeConfig

__all__ = ["API_KEY_ENV", "ServeConfig", "background", "create_app", "serve"]


def create_app(backend, cfg: ServeConfig | None = None):
    from deliberate.serve.app import create_app as make

    return make(backend, cfg)


def serve(cfg: ServeConfig, log=print) -> None:
    """Load `cfg.model` and serve it until interrupted."""
    import uvicorn

    from deliberate.backends import load_backend

    backend = load_backend(cfg.model, **({"threads": cfg.threads} if cfg.threads else {}))
    app = create_app(backend, cfg)
    name = backend.spec  # what clients name in "model"
    log(f"serving {name} on http://{cfg.host}:{cfg.port}/v1 (models: {name}, STRATEGY@{name})")
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")


@contextmanager
def background(app, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run `app` under uvicorn in a thread (a free port by default); yields its base URL."""
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="error"))
    thread = threading.Thread(target=server.run, name="deliberate-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
