"""The vector store: Chroma, embedded by default or a `chroma run` server.

Every ingest writes a complete new *version* of the index into its own collection and only then
switches a pointer collection to it, so a crash or a bad document mid-ingest leaves the previous
version serving. The version is a hash of all chunk ids and the embedding model: ingesting the
same documents twice finds the version already built and changes nothing. Chroma is always
given our vectors; its default embedding function would download a model.

Readers in other processes may still hold the version that was active a moment ago, so a switch
keeps the previous version and deletes only older ones; a long-running reader notices the switch
through `active_version` (one read of the pointer) and reloads between requests. Embedded Chroma
leaves the segment directories of deleted collections on disk: they are removed after each
switch. Every Chroma failure reaches callers as a `SopilotError` that says what to do: an
unreachable server as `StoreUnavailableError`, a version deleted under a reader as
`IndexChangedError`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from sopilot.core.errors import (
    ConfigError,
    IndexChangedError,
    IndexNotFoundError,
    SopilotError,
    StoreError,
    StoreUnavailableError,
)
from sopilot.core.settings import Settings

_CLIENTS: dict[str, object] = {}
_CLIENTS_LOCK = threading.Lock()
_SEGMENT_DIR = re.compile(r"""
    ^[0-9a-f]{8} - [0-9a-f]{4} - [0-9a-f]{4} - [0-9a-f]{4} - [0-9a-f]{12}$   # "c341f407-7f21-4e2c-94c5-373f5d8bd6b1"
""", re.X)


def _where(settings: Settings) -> str:
    return f"the Chroma server at {settings.chroma_url}" if settings.chroma_url else \
        f"the embedded index in {settings.data_dir / 'chroma'}"


def _describe(client) -> str:
    """Where a client points, for messages: "the Chroma server at http://…" or "the embedded index in …"."""
    try:
        chroma = client.get_settings()
    except Exception:  # a client without settings: say no more than its kind
        return "Chroma"
    if chroma.is_persistent and chroma.persist_directory:
        return f"the embedded index in {chroma.persist_directory}"
    if chroma.chroma_server_host:
        scheme = "https" if chroma.chroma_server_ssl_enabled else "http"
        return f"the Chroma server at {scheme}://{chroma.chroma_server_host}:{chroma.chroma_server_http_port}"
    return "Chroma"


def translate(exc: Exception, where: str) -> SopilotError:
    """The `SopilotError` for a failure raised by Chroma or its HTTP client."""
    if isinstance(exc, SopilotError):
        return exc
    names = {cls.__name__ for cls in type(exc).__mro__}
    module = type(exc).__module__
    if names & {"ConnectError", "ConnectTimeout", "ReadTimeout", "RemoteProtocolError", "TransportError",
                "ConnectionError", "TimeoutException", "NetworkError"} or module.startswith(("httpx", "httpcore")):
        return StoreUnavailableError(
            f"cannot reach {where} ({type(exc).__name__}: {exc}): start it with `chroma run`, or unset "
            "SOPILOT_CHROMA_URL to use embedded Chroma; then retry.")
    if "NotFoundError" in names or "InvalidCollectionException" in names or "does not exist" in str(exc):
        return IndexChangedError(
            f"the index version this process was reading is gone from {where} (a newer ingest replaced it): "
            "retry; long-running processes reload the active version by themselves.")
    return StoreError(f"{where} failed ({type(exc).__name__}: {exc}): retry, or rebuild with `sopilot ingest --reset`.")


class GuardedCollection:
    """A Chroma collection whose every failure is a `SopilotError` with a clear message."""

    def __init__(self, collection, where: str, version: str | None = None) -> None:
        self._collection = collection
        self._where = where
        self.version = version
        """The index version this collection holds."""

    @property
    def name(self) -> str:
        """The collection's name."""
        return self._collection.name

    @property
    def metadata(self) -> dict:
        """The collection's metadata (model, dimension, created)."""
        return self._collection.metadata or {}

    def _call(self, method: str, *args, **kwargs):
        try:
            return getattr(self._collection, method)(*args, **kwargs)
        except Exception as exc:  # chromadb and httpx raise many kinds; callers get one hierarchy
            raise translate(exc, self._where) from exc

    def query(self, *args, **kwargs):
        """`Collection.query`, failures translated."""
        return self._call("query", *args, **kwargs)

    def get(self, *args, **kwargs):
        """`Collection.get`, failures translated."""
        return self._call("get", *args, **kwargs)

    def count(self) -> int:
        """`Collection.count`, failures translated."""
        return self._call("count")

    def add(self, *args, **kwargs):
        """`Collection.add`, failures translated."""
        return self._call("add", *args, **kwargs)

    def __getattr__(self, name: str):
        attribute = getattr(self._collection, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            return self._call(name, *args, **kwargs)

        return call


def connect(settings: Settings):
    """A Chroma client: a server when `SOPILOT_CHROMA_URL` is set, else embedded under the data dir.

    One client per process and target: chromadb fails when two threads create the first client
    of a path at once, and a second client on one path is wasted work anyway.
    """
    key = settings.chroma_url or str(settings.data_dir / "chroma")
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = _connect(settings)
        return _CLIENTS[key]


def _connect(settings: Settings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        if url.scheme not in {"http", "https"} or not url.hostname:
            raise ConfigError(f"SOPILOT_CHROMA_URL={settings.chroma_url!r} is not a URL such as "
                              "http://127.0.0.1:8000: fix it, or unset it to use embedded Chroma.")
        try:
            return chromadb.HttpClient(host=url.hostname, port=url.port or (443 if url.scheme == "https" else 8000),
                                       ssl=url.scheme == "https", settings=chroma_settings)
        except Exception as exc:  # chromadb raises several kinds on connection failure
            raise StoreUnavailableError(f"cannot reach the Chroma server at {settings.chroma_url} ({exc}): "
                                        "start it with `chroma run`, or unset SOPILOT_CHROMA_URL.") from None
    path = settings.data_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def version_of(chunk_ids: list[str], model: str) -> str:
    """The index version: a hash of what is indexed and how it is embedded."""
    digest = hashlib.sha256(model.encode())
    for cid in sorted(chunk_ids):
        digest.update(cid.encode())
    return digest.hexdigest()[:16]


def active_version(settings: Settings) -> str | None:
    """The version agents are served from, or None before the first ingest: one cheap read of the pointer.

    A long-running process calls this between requests and reloads when the answer changes.
    """
    return Store.for_settings(settings).active_version()


class Store:
    """Versioned chunk collections behind one active pointer."""

    def __init__(self, client, prefix: str, *, where: str | None = None, path: Path | None = None) -> None:
        self.client = client
        self.prefix = prefix
        self.where = where or _describe(client)
        self.path = path
        """The embedded Chroma directory (None for a server): where orphaned segment directories are cleaned."""

    @classmethod
    def for_settings(cls, settings: Settings) -> Store:
        """The store the settings name (a server or the embedded index under the data dir)."""
        return cls(connect(settings), settings.collection, where=_where(settings),
                   path=None if settings.chroma_url else settings.data_dir / "chroma")

    def _call(self, method: str, *args, **kwargs):
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except Exception as exc:  # every Chroma failure becomes one of ours
            raise translate(exc, self.where) from exc

    def _pointer(self):
        return self._call("get_or_create_collection", f"{self.prefix}-active", embedding_function=None,
                          metadata={"version": ""})

    def _name(self, version: str) -> str:
        return f"{self.prefix}-v{version}"

    def pointer(self) -> dict:
        """The pointer's metadata: `version`, `previous`, and an ingest lease when one is held."""
        return dict(self._pointer().metadata or {})

    def set_pointer(self, **values) -> None:
        """Update the pointer's metadata (other keys are kept)."""
        pointer = self._pointer()
        merged = {**(pointer.metadata or {}), **values}
        try:
            pointer.modify(metadata=merged)
        except Exception as exc:  # translated like every other Chroma failure
            raise translate(exc, self.where) from exc

    def active_version(self) -> str | None:
        """The version agents are served from, or None before the first ingest."""
        return self.pointer().get("version") or None

    def active(self) -> GuardedCollection:
        """The collection agents are served from."""
        version = self.active_version()
        if not version:
            raise IndexNotFoundError("no index has been built yet: run `sopilot ingest` first.")
        try:
            collection = self.client.get_collection(self._name(version), embedding_function=None)
        except Exception as exc:
            error = translate(exc, self.where)
            if isinstance(error, IndexChangedError):
                raise StoreError(f"the active index version {version} is missing from {self.where}: run "
                                 "`sopilot ingest --reset`.") from None
            raise error from exc
        return GuardedCollection(collection, self.where, version)

    def versions(self) -> list[str]:
        """Every index version held, active or not."""
        start = len(self.prefix) + 2
        return sorted(c.name[start:] for c in self._call("list_collections") if c.name.startswith(f"{self.prefix}-v"))

    def existing_embeddings(self, chunk_ids: list[str]) -> dict[str, list[float]]:
        """Embeddings the active version already holds for these ids (to skip re-embedding)."""
        try:
            collection = self.active()
        except (IndexNotFoundError, StoreError):
            return {}
        found = collection.get(ids=chunk_ids, include=["embeddings"])
        return {cid: list(map(float, vec)) for cid, vec in zip(found["ids"], found["embeddings"], strict=True)}

    def write_version(self, version: str, ids: list[str], texts: list[str], metadatas: list[dict],
                      embeddings: list, *, model: str = "", dimension: int | None = None) -> None:
        """Write a complete version, then make it active; the previous one serves until then.

        The caller holds the ingest lock (`ingest.lock.ingest_lock`): only one writer switches at a time.
        """
        name = self._name(version)
        current = self.active_version()
        if current != version:
            if version in self.versions():
                self._call("delete_collection", name)  # left over by an interrupted ingest
            created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            metadata = {"model": model or "unknown", "created": created, "chunks": len(ids)}
            if dimension:
                metadata["dimension"] = int(dimension)
            collection = GuardedCollection(self._call(
                "create_collection", name, embedding_function=None, metadata=metadata,
                configuration={"hnsw": {"space": "cosine"}}), self.where, version)
            step = max(1, min(self._call("get_max_batch_size"), 1000))
            for start in range(0, len(ids), step):
                end = start + step
                collection.add(ids=ids[start:end], documents=texts[start:end],
                               metadatas=metadatas[start:end], embeddings=embeddings[start:end])
            self.set_pointer(version=version, previous=current or "")
        self._collect_garbage(keep={version, self.pointer().get("previous") or ""})

    def _collect_garbage(self, keep: set[str]) -> None:
        """Delete versions older than the previous one, then the directories Chroma leaves behind."""
        for version in self.versions():
            if version not in keep:
                self._call("delete_collection", self._name(version))
        self.clean_orphans()

    def clean_orphans(self) -> list[str]:
        """Remove segment directories of the embedded index that no collection owns any more; their names."""
        if self.path is None or not (self.path / "chroma.sqlite3").exists():
            return []
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.path / 'chroma.sqlite3'}?mode=ro", uri=True,
                                                    timeout=10)) as db:
                live = {row[0] for row in db.execute("SELECT id FROM segments")}
        except sqlite3.Error:
            return []  # an index layout this version does not know: leave it alone
        removed = []
        for entry in self.path.iterdir():
            if entry.is_dir() and _SEGMENT_DIR.match(entry.name) and entry.name not in live:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        return removed

    def reset(self) -> None:
        """Drop every version and the pointer."""
        for collection in self._call("list_collections"):
            if collection.name.startswith(f"{self.prefix}-"):
                self._call("delete_collection", collection.name)
        self.clean_orphans()

    def iter_chunks(self, *, embeddings: bool = False) -> Iterator[tuple]:
        """(id, text, metadata) of every chunk of the active version; with `embeddings`, the vector too."""
        collection = self.active()
        total = collection.count()
        include = ["documents", "metadatas", *(["embeddings"] if embeddings else [])]
        for offset in range(0, total, 5000):
            page = collection.get(include=include, limit=5000, offset=offset)
            if embeddings:
                yield from zip(page["ids"], page["documents"], page["metadatas"],
                               [list(map(float, v)) for v in page["embeddings"]], strict=True)
            else:
                yield from zip(page["ids"], page["documents"], page["metadatas"], strict=True)
