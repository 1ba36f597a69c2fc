"""``labos data serve``: a campaign's embedded catalog over HTTP (uvicorn), with an API key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from labos.data.tiled_app import build_catalog_app, catalog_adapter, quiet


def serve(directory: Path, host: str, port: int, api_key: str, ready: Callable[[str], None] | None = None) -> None:
    """Serve the embedded catalog in ``directory`` over HTTP until interrupted (uvicorn).

    Clients authenticate with ``api_key`` (``tiled.client.from_uri(url, api_key=...)``);
    ``ready(url)`` is called once the server answers.
    """
    import uvicorn

    with quiet():
        app = build_catalog_app(catalog_adapter(directory, create=False), api_key)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    if ready is not None:
        startup = server.startup

        async def announce(*args: Any, **kwargs: Any) -> None:
            await startup(*args, **kwargs)
            ready(f"http://{host}:{port}/api/v1")

        server.startup = announce  # type: ignore[method-assign]
    with quiet():
        server.run()
