"""The vector store: Chroma, embedded by default or a `chroma run` server.

Every ingest writes a complete new *version* of the index into its own collection and only then
switches a pointer collection to it, so a crash or a bad document mid-ingest leaves the previous
version serving. The version is a hash of all chunk ids and the embedding model: ingesting the
same documents twice finds the version already built and changes nothing. Chroma is always
given our vectors; its default embedding function would download a model.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from urllib.parse import urlparse

from sopilot.core.errors import ConfigError, IndexNotFoundError, StoreError
from sopilot.core.settings import Settings



_CLIENTS: dict[str, object] = {}
_CLIENTS_LOCK = threading.Lock()


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
            raise StoreError(f"cannot reach the Chroma server at {settings.chroma_url} ({exc}): "
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


class Store:
    """Versioned chunk collections behind one active pointer."""

    def __init__(self, client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def _pointer(self):
        return self.client.get_or_create_collection(f"{self.prefix}-active", embedding_function=None,
                                                    metadata={"version": ""})

    def _name(self, version: str) -> str:
        return f"{self.prefix}-v{version}"

    def active_version(self) -> str | None:
        """The version agents are served from, or None before the first ingest."""
        return (self._pointer().metadata or {}).get("version") or None

    def active(self):
        """The collection agents are served from."""
        version = self.active_version()
        if not version:
            raise IndexNotFoundError("no index has been built yet: run `sopilot ingest` first.")
        try:
            return self.client.get_collection(self._name(version), embedding_function=None)
        except Exception:
            raise StoreError(f"the active index version {version} is missing from Chroma: run `sopilot ingest --reset`.") from None

    def existing_embeddings(self, chunk_ids: list[str]) -> dict[str, list[float]]:
        """Embeddings the active version already holds for these ids (to skip re-embedding)."""
        try:
            collection = self.active()
        except (IndexNotFoundError, StoreError):
            return {}
        found = collection.get(ids=chunk_ids, include=["embeddings"])
        return {cid: list(vec) for cid, vec in zip(found["ids"], found["embeddings"], strict=True)}

    def write_version(self, version: str, ids: list[str], texts: list[str], metadatas: list[dict],
                      embeddings: list) -> None:
        """Write a complete version, then make it active; the previous one serves until then."""
        name = self._name(version)
        if self.active_version() != version:
            if name in {c.name for c in self.client.list_collections()}:
                self.client.delete_collection(name)  # left over by an interrupted ingest
            collection = self.client.create_collection(name, embedding_function=None,
                                                       configuration={"hnsw": {"space": "cosine"}})
            step = max(1, min(self.client.get_max_batch_size(), 1000))
            for start in range(0, len(ids), step):
                end = start + step
                collection.add(ids=ids[start:end], documents=texts[start:end],
                               metadatas=metadatas[start:end], embeddings=embeddings[start:end])
        previous = self.active_version()
        pointer = self._pointer()
        pointer.modify(metadata={"version": version, "previous": previous or ""})
        self._collect_garbage(keep={version, previous or ""})

    def _collect_garbage(self, keep: set[str]) -> None:
        for collection in self.client.list_collections():
            name = collection.name
            if name.startswith(f"{self.prefix}-v") and name[len(self.prefix) + 2:] not in keep:
                self.client.delete_collection(name)

    def reset(self) -> None:
        """Drop every version and the pointer."""
        for collection in self.client.list_collections():
            if collection.name.startswith(f"{self.prefix}-"):
                self.client.delete_collection(collection.name)

    def iter_chunks(self) -> Iterator[tuple[str, str, dict]]:
        """(id, text, metadata) of every chunk of the active version."""
        collection = self.active()
        total = collection.count()
        for offset in range(0, total, 5000):
            page = collection.get(include=["documents", "metadatas"], limit=5000, offset=offset)
            yield from zip(page["ids"], page["documents"], page["metadatas"], strict=True)
