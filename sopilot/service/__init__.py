"""The HTTP service beside the helpdesk (docs/interface.md §7): FastAPI on uvicorn, models loaded once."""

from __future__ import annotations

from sopilot.core.settings import Settings


def create_app(settings: Settings, *, warm: bool = True):
    """The FastAPI application (see `sopilot.service.app`)."""
    from sopilot.service.app import create_app as build

    return build(settings, warm=warm)


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning") -> None:
    """Run the service on uvicorn until interrupted (one process; the models are shared by its threads)."""
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, access_log=False,
                timeout_graceful_shutdown=5)
