"""Shared fixtures: real Chroma in temporary directories, the real packaged embedding model.

The shipped knowledge base is ingested once per test session (`indexed_settings`); tests that
change an index build their own in `tmp_path`. No test talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import importlib
import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
for _name in ("SOPILOT_DATA_DIR", "SOPILOT_CHROMA_URL", "SOPILOT_DATABASE_URL", "SOPILOT_LLM_MODEL",
              "OPENAI_BASE_URL", "OPENAI_API_KEY", "SOPILOT_STOPPED_POLICIES", "SOPILOT_KNOWLEDGE_DIR"):
    os.environ.pop(_name, None)

from sopilot.core.settings import ROOT, Settings  # noqa: E402

KNOWLEDGE = ROOT / "knowledge"


_LOOPBACK = ("127.", "::1", "localhost")
_connect = socket.socket.connect


def _loopback_only(sock: socket.socket, address) -> None:
    """Refuse any connection that leaves the machine: tests talk to 127.0.0.1 and nothing else."""
    host = address[0] if isinstance(address, tuple) else address
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not str(host).startswith(_LOOPBACK):
        raise OSError(f"tests may connect only to 127.0.0.1, not {host!r}")
    return _connect(sock, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


def test_network_beyond_loopback_is_refused():
    with socket.socket() as sock, pytest.raises(OSError, match="only to 127.0.0.1"):
        sock.connect(("192.0.2.1", 80))


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder for the guard's compiled-form cache, instead of the one beside the bytecode."""
    folder = tmp_path / "cache"
    monkeypatch.setattr(importlib.import_module("sopilot.guard.compiled"), "CACHE_DIR", folder)
    return folder


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with an empty data dir of the test's own."""
    return Settings.from_env({}, data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def embedder():
    """The packaged all-MiniLM-L6-v2, loaded once."""
    from sopilot.ingest.embed import get_embedder

    return get_embedder("")


@pytest.fixture(scope="session")
def indexed_settings(tmp_path_factory: pytest.TempPathFactory, embedder) -> Settings:
    """Settings whose data dir holds the shipped knowledge base, ingested once per session."""
    from sopilot.ingest.pipeline import ingest

    settings = Settings.from_env({}, data_dir=tmp_path_factory.mktemp("indexed") / "data")
    ingest(None, settings, progress=False)
    return settings


@pytest.fixture(scope="session")
def retriever(indexed_settings: Settings):
    """The hybrid retriever over the shipped knowledge base."""
    from sopilot.retriever.hybrid import load

    return load(indexed_settings)
