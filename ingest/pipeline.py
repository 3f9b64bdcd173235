"""Ingest: documents → SOPs → chunks → a new index version, switched in only when complete.

A bad file is reported with its name and reason and skipped; the other files are still ingested.
Chunks whose content is unchanged keep their embeddings from the active version, so re-ingesting
an edited knowledge base embeds only what changed.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from sopilot.ingest.catalog import load_catalog
from sopilot.ingest.chunk import Chunk, chunk_sop
from sopilot.ingest.documents import Document, discover, load_document
from sopilot.ingest.lint import Finding, lint
from sopilot.core.sop import SOP
from sopilot.ingest.sections import parse_sops
from sopilot.core.errors import DocumentError, UserError
from sopilot.core.settings import Settings


@dataclasses.dataclass(frozen=True, kw_only=True)
class Skipped:
    """A file (or policy) that was not ingested, and why."""

    source: str
    reason: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Parsed:
    """What the documents yield before anything is embedded."""

    documents: list[Document]
    sops: list[SOP]
    skipped: list[Skipped]


@dataclasses.dataclass(frozen=True, kw_only=True)
class IngestReport:
    """The outcome of one ingest."""

    version: str
    sops: list[SOP]
    chunks: int
    embedded: int
    """Chunks embedded now (the rest kept their embeddings)."""
    skipped: list[Skipped]
    findings: list[Finding]
    policy_errors: list[str]

    @property
    def ok(self) -> bool:
        """True when nothing was skipped and the policy file agrees with the documents."""
        return not self.skipped and not self.policy_errors


def parse_paths(paths: list[Path], settings: Settings) -> Parsed:
    """Read and section every document; bad files and duplicate sop_ids are skipped and listed."""
    catalog = load_catalog(settings.knowledge_dir / "catalog.yaml")
    documents: list[Document] = []
    sops: list[SOP] = []
    skipped: list[Skipped] = []
    owner: dict[str, str] = {}
    files: list[Path] = []
    for path in paths:
        try:
            files += discover([path])
        except DocumentError as exc:
            skipped.append(Skipped(source=exc.source, reason=exc.reason))
    files.sort(key=lambda p: p.name not in catalog.documents)  # catalogued documents keep their ids on a clash
    for path in files:
        try:
            document = load_document(path)
            found = parse_sops(document, catalog.entry(document.source))
        except DocumentError as exc:
            skipped.append(Skipped(source=exc.source, reason=exc.reason))
            continue
        clash = [s.sop_id for s in found if s.sop_id in owner]
        if clash:
            skipped.append(Skipped(source=document.source, reason=(
                f"sop_id {clash[0]!r} is already defined in {owner[clash[0]]}: give one of them another "
                "id (number or front matter `sop_id:`)")))
            continue
        owner.update({s.sop_id: document.source for s in found})
        documents.append(document)
        sops += found
    return Parsed(documents=documents, sops=sops, skipped=skipped)


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


def ingest(paths: list[Path] | None, settings: Settings, *, reset: bool = False, progress: bool = True) -> IngestReport:
    """Ingest SOP documents (default: the knowledge dir) into a new active index version."""
    from sopilot.ingest.embed import get_embedder
    from sopilot.ingest.store import Store, connect, version_of

    parsed = parse_paths(paths or [settings.knowledge_dir], settings)
    if not parsed.sops:
        reasons = "; ".join(f"{s.source}: {s.reason}" for s in parsed.skipped) or "no documents found"
        raise UserError(f"nothing to ingest ({reasons}). The previous index, if any, is still serving.")
    embedder = get_embedder(settings.embedding_model)
    chunks: list[Chunk] = []
    for sop in parsed.sops:
        chunks += chunk_sop(sop, budget=settings.chunk_tokens, count=embedder.count_tokens)
    chunks = list({c.chunk_id: c for c in chunks}.values())
    store = Store(connect(settings), settings.collection)
    if reset:
        store.reset()
    ids = [c.chunk_id for c in chunks]
    known = store.existing_embeddings(ids)
    todo = [c for c in chunks if c.chunk_id not in known]
    if todo:
        if progress:
            print(f"embedding {len(todo)} of {len(chunks)} chunks", file=sys.stderr)
        vectors = embedder.embed_batch([c.text for c in todo], progress=progress)
        known.update({c.chunk_id: list(map(float, v)) for c, v in zip(todo, vectors, strict=True)})
    version = version_of(ids, embedder.name)
    store.write_version(version, ids, [c.text for c in chunks], [c.metadata for c in chunks],
                        [known[i] for i in ids])
    return IngestReport(version=version, sops=parsed.sops, chunks=len(chunks), embedded=len(todo),
                        skipped=parsed.skipped, findings=lint(parsed.sops),
                        policy_errors=_policy_errors(parsed.documents, settings))
