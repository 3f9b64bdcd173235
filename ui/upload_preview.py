"""What an uploaded document would change, found before it is ingested.

Two questions a knowledge manager asks before a new file answers tickets: how does it split into
SOPs (several procedures in one file should become several SOPs, an id already served stays with
its document), and what does it do to retrieval? For the second, the current index is copied to a
scratch directory, the upload is added there the way `sopilot ingest PATH` adds it (only its
sections are embedded), and every labelled query (the shipped evaluation set plus the agents'
wrong-SOP marks) is searched before and after: the queries whose best SOP changes are listed.
The served index and the knowledge dir are not touched.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sopilot.core.settings import Settings

LABELLED = Path(__file__).resolve().parents[1] / "eval" / "queries.jsonl"
"""The shipped labelled queries (the `sopilot.eval` data folder beside this package's `ui/`)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ChangedQuery:
    """One labelled query whose best SOP the upload changes."""

    query: str
    relevant: tuple[str, ...]
    before: str | None
    after: str | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class UploadPreview:
    """How an upload splits into SOPs, and its effect on retrieval over the labelled queries."""

    name: str
    sops: tuple[dict[str, Any], ...]
    """One row per SOP the file holds: sop_id, title, sections, kinds."""
    skipped: tuple[str, ...]
    """Why the file, or an SOP in it, would not be ingested."""
    queries: int = 0
    hit1_before: float | None = None
    hit1_after: float | None = None
    changed: tuple[ChangedQuery, ...] = ()


def _labelled(settings: Settings) -> list[tuple[str, tuple[str, ...]]]:
    from sopilot.eval.retrieval import read_queries

    from sopilot import audit

    rows = [(q.query, q.relevant) for q in read_queries(LABELLED)] if LABELLED.exists() else []
    try:
        marks = audit.labelled_examples(audit.open_log(settings).iter_all())
    except Exception:  # noqa: BLE001 - without an audit log the shipped set is enough
        marks = []
    return rows + [(m["query"], tuple(m["relevant"])) for m in marks]


def _best(retriever, query: str) -> str | None:
    hits = retriever.search(query, k=1)
    return hits[0].sop_id if hits else None


def preview_upload(settings: Settings, name: str, data: bytes, *, limit: int | None = None) -> UploadPreview:
    """Split `data` (a document named `name`) into SOPs and measure its effect on retrieval, in a scratch copy.

    Args:
        settings: the served configuration (read, never written).
        name: the file name, whose extension says how to read it.
        data: the file's bytes.
        limit: search only the first `limit` labelled queries (None: all).
    """
    from sopilot.ingest.pipeline import ingest, parse_paths
    from sopilot.retriever.hybrid import load

    name = Path(name).name
    with tempfile.TemporaryDirectory(prefix="sopilot-preview-") as tmp:
        root = Path(tmp)
        knowledge = root / "knowledge"
        shutil.copytree(settings.knowledge_dir, knowledge)
        (knowledge / name).write_bytes(data)
        parsed = parse_paths([knowledge / name], settings)
        sops = tuple({"sop_id": s.sop_id, "title": s.title, "sections": len(s.sections), "kinds": ", ".join(s.kinds)}
                     for s in parsed.sops)
        skipped = tuple(f"{s.source}: {s.reason}" for s in parsed.skipped)
        if not parsed.sops:
            return UploadPreview(name=name, sops=sops, skipped=skipped)
        scratch = dataclasses.replace(settings, data_dir=root / "data", knowledge_dir=knowledge, chroma_url="",
                                      database_url=f"sqlite:///{root / 'audit.db'}")
        if not settings.chroma_url and settings.data_dir.exists():
            shutil.copytree(settings.data_dir, scratch.data_dir, ignore=shutil.ignore_patterns("audit.db*", "*.lock"))
        before = load(settings)
        report = ingest([knowledge / name] if scratch.data_dir.exists() else None, scratch, progress=False)
        skipped += tuple(f"{s.source}: {s.reason}" for s in report.skipped)
        after = load(scratch)
        labelled = _labelled(settings)[:limit]
        changed, hits_before, hits_after = [], 0, 0
        for query, relevant in labelled:
            old, new = _best(before, query), _best(after, query)
            hits_before += old in relevant
            hits_after += new in relevant
            if old != new:
                changed.append(ChangedQuery(query=query, relevant=relevant, before=old, after=new))
        n = len(labelled) or 1
        return UploadPreview(name=name, sops=sops, skipped=skipped, queries=len(labelled),
                             hit1_before=round(hits_before / n, 3), hit1_after=round(hits_after / n, 3),
                             changed=tuple(changed))
