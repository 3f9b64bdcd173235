"""Ingest: documents → SOPs → chunks → a new index version, switched in only when complete.

What an ingest changes is what it was asked to change:

- a *full* ingest (no paths, or the knowledge directory itself) rebuilds the index from the
  knowledge directory; an SOP whose document is gone is removed, and reported so;
- an *update* (`ingest(paths)`) adds or replaces the SOPs of those documents and keeps every other
  SOP the index serves;
- a *removal* (`remove=[…]`) takes those documents' SOPs out, and nothing else.

No ingest loses an SOP by accident. A bad file is reported with its name and reason and skipped;
if the index already served SOPs from it, they stay served as they were. A served SOP is never
replaced by another document's claim to its sop_id: the newcomer is skipped and named, unless the
catalog assigns that id to the newcomer on purpose. One ingest runs at a time per index
(`ingest.lock`). Chunks whose content is unchanged keep their embeddings, so re-ingesting an
edited knowledge base embeds only what changed. The report says which SOPs were added, changed,
removed and kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from sopilot.ingest.catalog import Catalog, load_catalog
from sopilot.ingest.chunk import Chunk, chunk_sop
from sopilot.ingest.documents import Document, find_files, load_document
from sopilot.ingest.lint import Finding, lint
from sopilot.ingest.sections import parse_sops

from sopilot.core.errors import DocumentError, UserError
from sopilot.core.settings import Settings
from sopilot.core.sop import SOP

Progress = Callable[[str], None]
Mode = Literal["full", "update", "remove"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Skipped:
    """A file (or policy) that was not ingested, and why."""

    source: str
    reason: str

    def to_json(self) -> dict:
        """The JSON form (`{"source", "reason"}`)."""
        return {"source": self.source, "reason": self.reason}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Parsed:
    """What the documents yield before anything is embedded."""

    documents: list[Document]
    sops: list[SOP]
    skipped: list[Skipped]
    attempted: frozenset[str] = frozenset()
    """Sources (file names) this run tried to read, readable or not."""
    held: dict[str, str] = dataclasses.field(default_factory=dict)
    """Served sop_id → source that stay as the index has them (documents not replaced in this run)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class SopChange:
    """One SOP in the change summary, with the document it comes from."""

    sop_id: str
    source: str

    def to_json(self) -> dict:
        """The JSON form (`{"sop_id", "source"}`)."""
        return {"sop_id": self.sop_id, "source": self.source}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Changes:
    """What an ingest did to the served SOPs."""

    added: tuple[SopChange, ...] = ()
    changed: tuple[SopChange, ...] = ()
    """Served before and now, with other text or from another document."""
    removed: tuple[SopChange, ...] = ()
    kept: tuple[SopChange, ...] = ()
    """Served before and now, unchanged."""

    def to_json(self) -> dict:
        """The JSON form: four lists of `{"sop_id", "source"}`."""
        return {name: [c.to_json() for c in getattr(self, name)] for name in ("added", "changed", "removed", "kept")}


@dataclasses.dataclass(frozen=True, kw_only=True)
class IngestReport:
    """The outcome of one ingest."""

    version: str
    mode: Mode
    sops: list[SOP]
    """SOPs read from documents in this run."""
    sop_ids: tuple[str, ...]
    """Every sop_id the index now serves."""
    chunks: int
    embedded: int
    """Chunks embedded now (the rest kept their embeddings)."""
    skipped: list[Skipped]
    findings: list[Finding]
    policy_errors: list[str]
    changes: Changes = Changes()

    @property
    def ok(self) -> bool:
        """True when nothing was skipped and the policy file agrees with the documents."""
        return not self.skipped and not self.policy_errors

    def to_json(self) -> dict:
        """The `ingest --json` document."""
        return {"version": self.version, "mode": self.mode, "sops": len(self.sop_ids), "chunks": self.chunks,
                "embedded": self.embedded, "sop_ids": list(self.sop_ids), **self.changes.to_json(),
                "skipped": [s.to_json() for s in self.skipped], "policy_errors": self.policy_errors,
                "lint": [{"kind": f.kind, "sop_id": f.sop_id, "source": f.source, "line": f.line, "text": f.text}
                         for f in self.findings if f.kind != "threshold"]}


def _assigns(catalog: Catalog, source: str, sop_id: str) -> bool:
    """True when the catalog gives `sop_id` to this document on purpose."""
    entry = catalog.documents.get(source)
    return entry is not None and (entry.sop_id == sop_id or sop_id in entry.sops.values())


def _read(files: list[Path], settings: Settings, progress: Progress | None) -> tuple[list[tuple[Document, list[SOP]]],
                                                                                       list[Skipped]]:
    catalog = load_catalog(settings.knowledge_dir / "catalog.yaml")
    max_bytes = int(settings.max_document_mb * 1024 * 1024)
    read: list[tuple[Document, list[SOP]]] = []
    skipped: list[Skipped] = []
    for number, path in enumerate(files, start=1):
        try:
            document = load_document(path, max_bytes=max_bytes)
            found = parse_sops(document, catalog.entry(document.source))
        except DocumentError as exc:
            skipped.append(Skipped(source=exc.source, reason=exc.reason))
            continue
        if progress:
            progress(f"read {number}/{len(files)} {document.source}: {len(found)} SOPs")
        read.append((document, found))
    return read, skipped


def parse_paths(paths: list[Path], settings: Settings, *, served: dict[str, str] | None = None) -> Parsed:
    """Read and section every document; bad files and clashing sop_ids are skipped and listed.

    `served` maps the sop_ids the index serves now to their documents: such an id stays with its
    document, and a newcomer claiming it is skipped, unless the catalog assigns it to the newcomer.
    """
    return _parse(paths, settings, served=served or {}, keep_sources=frozenset(), progress=None)


def _parse(paths: list[Path], settings: Settings, *, served: dict[str, str], keep_sources: frozenset[str],
           progress: Progress | None) -> Parsed:
    """`parse_paths`; `keep_sources` are served documents this run leaves as they are.

    The result's `held` names the served SOPs that stay as the index has them: those of
    `keep_sources`, and those of served documents that could not be read (or were skipped) now.
    """
    catalog = load_catalog(settings.knowledge_dir / "catalog.yaml")
    found = find_files(paths)
    skipped = [Skipped(source=p.source, reason=p.reason) for p in found.problems]
    read, unreadable = _read(found.files, settings, progress)
    skipped += unreadable
    serving = set(served.values())
    failed = {s.source for s in skipped} & serving
    owner = {sop_id: source for sop_id, source in served.items() if source in keep_sources or source in failed}
    read.sort(key=lambda item: (item[0].source not in serving, item[0].source not in catalog.documents,
                                item[0].source))
    accepted: dict[str, list[SOP]] = {}
    documents: list[Document] = []
    for document, sops in read:
        clash = None
        steal: list[str] = []
        for sop in sops:
            holder = owner.get(sop.sop_id)
            if holder is None or holder == document.source:
                continue
            if _assigns(catalog, document.source, sop.sop_id) and not _assigns(catalog, holder, sop.sop_id):
                steal.append(sop.sop_id)
            else:
                clash = (sop.sop_id, holder)
                break
        if clash is not None:
            skipped.append(Skipped(source=document.source, reason=(
                f"sop_id {clash[0]!r} is already defined in {clash[1]}: give one of them another id (number or "
                "front matter `sop_id:`), or assign the id in catalog.yaml")))
            for sop_id, source in served.items():  # a served document skipped now keeps what it served
                if source == document.source:
                    owner.setdefault(sop_id, source)
            continue
        for sop_id in steal:
            holder = owner.pop(sop_id)
            if holder in accepted:
                accepted[holder] = [s for s in accepted[holder] if s.sop_id != sop_id]
        for sop_id in [i for i, src in owner.items() if src == document.source]:
            del owner[sop_id]  # the document's new SOPs replace what it served
        owner.update({s.sop_id: document.source for s in sops})
        accepted[document.source] = sops
        documents.append(document)
    order = {d.source: i for i, d in enumerate(documents)}
    sops_out = [s for source in sorted(accepted, key=order.__getitem__) for s in accepted[source]]
    held = {sop_id: source for sop_id, source in owner.items() if source not in accepted}
    attempted = frozenset({p.name for p in found.files} | {p.source for p in found.problems})
    return Parsed(documents=documents, sops=sops_out, skipped=skipped, attempted=attempted, held=held)


def _policy_errors(documents: list[Document], settings: Settings) -> list[str]:
    """Thresholds of the policy file that the documents no longer state."""
    policy_file = settings.knowledge_dir / "policies.yaml"
    if not policy_file.exists():
        return []
    try:
        from sopilot.guard.crosscheck import check_thresholds
        from sopilot.guard.policy import load_policies
    except ImportError:  # the guard is optional for retrieval-only deployments
        return []
    try:
        policies = load_policies(policy_file)
    except UserError as exc:
        return [str(exc)]
    return check_thresholds(policies, {d.source: d.text for d in documents})


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Served:
    """The active version's chunks, grouped the ways an ingest needs them."""

    chunks: dict[str, tuple[str, dict, list[float]]]
    """chunk id → (text, metadata, embedding)."""
    model: str

    def owners(self) -> dict[str, str]:
        """sop_id → source."""
        return {meta["sop_id"]: meta["source"] for _, meta, _ in self.chunks.values()}

    def chunk_ids(self) -> dict[str, set[str]]:
        """sop_id → its chunk ids."""
        found: dict[str, set[str]] = {}
        for cid, (_, meta, _) in self.chunks.items():
            found.setdefault(meta["sop_id"], set()).add(cid)
        return found


def _served(store) -> _Served:
    from sopilot.core.errors import IndexNotFoundError, StoreError

    try:
        collection = store.active()
        model = str(collection.metadata.get("model", ""))
        rows = list(store.iter_chunks(embeddings=True))
    except (IndexNotFoundError, StoreError):
        return _Served(chunks={}, model="")
    return _Served(chunks={cid: (text, meta, vec) for cid, text, meta, vec in rows}, model=model)


def _changes(before: _Served, after: dict[str, tuple[str, set[str]]]) -> Changes:
    """Compare the served SOPs (sop_id → source, chunk ids) before and after."""
    old_ids, old_owner = before.chunk_ids(), before.owners()
    added, changed, kept = [], [], []
    for sop_id, (source, ids) in sorted(after.items()):
        change = SopChange(sop_id=sop_id, source=source)
        if sop_id not in old_ids:
            added.append(change)
        elif old_ids[sop_id] != ids or old_owner[sop_id] != source:
            changed.append(change)
        else:
            kept.append(change)
    removed = [SopChange(sop_id=s, source=old_owner[s]) for s in sorted(old_ids) if s not in after]
    return Changes(added=tuple(added), changed=tuple(changed), removed=tuple(removed), kept=tuple(kept))


def _is_full(paths: list[Path] | None, settings: Settings) -> bool:
    if not paths:
        return True
    try:
        return len(paths) == 1 and paths[0].resolve() == settings.knowledge_dir.resolve()
    except OSError:
        return False


def ingest(paths: list[Path] | None, settings: Settings, *, remove: list[Path] | None = None, reset: bool = False,
           progress: bool | Progress = False) -> IngestReport:
    """Rebuild the index from the knowledge dir, or add/update `paths`, or `remove` documents; see the module doc.

    Args:
        paths: documents or directories to add or update; None (or the knowledge dir) rebuilds everything.
        settings: where the knowledge, the index and the lock are.
        remove: documents (by path or file name) whose SOPs leave the index.
        reset: drop every index version first (a full rebuild from the documents alone).
        progress: a callable given one line per step (reading, embedding); True shows the embedding bar only.
    """
    from sopilot.ingest.embed import get_embedder
    from sopilot.ingest.lock import ingest_lock
    from sopilot.ingest.store import Store, version_of

    say: Progress | None = progress if callable(progress) else None
    removing = [Path(p).name for p in remove or []]
    full = _is_full(paths, settings) and not removing
    mode: Mode = "full" if full else ("remove" if removing and not paths else "update")
    store = Store.for_settings(settings)
    with ingest_lock(settings, store) as lease:
        if reset:
            store.reset()
        before = _served(store)
        served_owner = before.owners()
        unknown = [name for name in removing if name not in set(served_owner.values())]
        parsed_paths = [settings.knowledge_dir] if full else list(paths or [])
        keep_sources = frozenset() if full else frozenset(set(served_owner.values()) - set(removing))
        if parsed_paths:
            parsed = _parse(parsed_paths, settings, served=served_owner, keep_sources=keep_sources, progress=say)
        else:
            held = {sop_id: source for sop_id, source in served_owner.items() if source in keep_sources}
            parsed = Parsed(documents=[], sops=[], skipped=[], held=held)
        keep = parsed.held
        skipped = list(parsed.skipped) + [
            Skipped(source=name, reason="is not in the index, so there is nothing to remove: check the file name")
            for name in unknown]
        if not parsed.sops and not removing:
            reasons = "; ".join(f"{s.source}: {s.reason}" for s in skipped) or "no documents found"
            raise UserError(f"nothing to ingest ({reasons}). The previous index, if any, is still serving.")
        embedder = get_embedder(settings.embedding_model)
        chunks: list[Chunk] = []
        for sop in parsed.sops:
            chunks += chunk_sop(sop, budget=settings.chunk_tokens, count=embedder.count_tokens)
        chunks = list({c.chunk_id: c for c in chunks}.values())
        reuse = before.model == embedder.name
        kept = [(cid, text, meta, vec) for cid, (text, meta, vec) in before.chunks.items()
                if keep.get(meta["sop_id"]) == meta["source"]]
        ids = [c.chunk_id for c in chunks] + [k[0] for k in kept]
        texts = [c.text for c in chunks] + [k[1] for k in kept]
        metadatas = [c.metadata for c in chunks] + [k[2] for k in kept]
        if not ids:
            raise UserError("this would leave the index empty: the previous index is still serving. To start over, "
                            "run `sopilot ingest --reset`.")
        known = {cid: vec for cid, (_, _, vec) in before.chunks.items()} if reuse else {}
        todo = [i for i, cid in enumerate(ids) if cid not in known]
        if say:
            say(f"embedding {len(todo)} of {len(ids)} chunks with {embedder.name}")
        lease.renew()
        vectors, embedded = _embed(embedder, [texts[i] for i in todo], settings, progress=bool(progress))
        known.update({ids[i]: v for i, v in zip(todo, vectors, strict=True)})
        lease.renew()
        version = version_of(ids, embedder.name)
        dimension = len(known[ids[0]]) if ids else None
        if say:
            say(f"writing index version {version}")
        store.write_version(version, ids, texts, metadatas, [known[i] for i in ids], model=embedder.name,
                            dimension=dimension)
    after: dict[str, tuple[str, set[str]]] = {}
    for cid, meta in zip(ids, metadatas, strict=True):
        after.setdefault(meta["sop_id"], (meta["source"], set()))[1].add(cid)
    return IngestReport(version=version, mode=mode, sops=parsed.sops, sop_ids=tuple(sorted(after)),
                        chunks=len(ids), embedded=embedded, skipped=skipped, findings=lint(parsed.sops),
                        policy_errors=_policy_errors(parsed.documents, settings), changes=_changes(before, after))


def _embed(embedder, texts: list[str], settings: Settings, *, progress: bool) -> tuple[list[list[float]], int]:
    """Vectors for texts not in the index, through the embedder's content cache under the data dir."""
    if not texts:
        return [], 0
    return embedder.embed_documents(texts, cache_dir=settings.data_dir / "embeddings", progress=progress)
