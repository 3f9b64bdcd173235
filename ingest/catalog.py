"""The knowledge catalog: what documents do not say about themselves.

`knowledge/catalog.yaml` gives stable sop_ids to SOPs whose headings carry no `A.1`-style
number, a category for documents that state none, and marks documents that must never answer a
ticket. A Markdown document can say the same in YAML front matter (`sop_id`, `title`,
`category`, `answerable`), which wins over the catalog.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from sopilot.core.errors import ConfigError, DocumentError

_FRONT_MATTER = re.compile(r"""
    \A---\n (.*?) \n---\n            # YAML between two "---" lines at the very top: "---\nsop_id: vip.callback\n---\n"
""", re.S | re.X)


class DocumentEntry(BaseModel):
    """Catalog facts about one document."""

    model_config = ConfigDict(extra="forbid")

    sop_id: str | None = None
    """The id of a single-SOP document."""
    title: str | None = None
    category: str | None = None
    id_prefix: str | None = None
    """Prefix of ids made from titles (`tel` + `Billing Dispute` → `tel.billing-dispute`)."""
    sops: dict[str, str] = {}
    """Heading text → sop_id, for SOP headings without their own number."""
    titles: dict[str, str] = {}
    """sop_id → title, where the heading is not the title agents know (merged sections)."""
    answerable: bool = True


class Catalog(BaseModel):
    """The whole catalog file."""

    model_config = ConfigDict(extra="forbid")

    documents: dict[str, DocumentEntry] = {}

    def entry(self, source: str) -> DocumentEntry:
        """The entry of a document, or an empty one."""
        return self.documents.get(source, DocumentEntry())


def load_catalog(path: Path) -> Catalog:
    """Load and validate the catalog; a missing file is an empty catalog."""
    if not path.exists():
        return Catalog()
    try:
        return Catalog.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: invalid knowledge catalog: {exc}. Fix the file or remove it.") from None


def split_front_matter(text: str, source: str) -> tuple[DocumentEntry | None, str, int]:
    """Split YAML front matter off a document: (entry or None, body, lines removed)."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return None, text, 0
    try:
        entry = DocumentEntry.model_validate(yaml.safe_load(match.group(1)) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        raise DocumentError(
            source, f"has invalid front matter: {exc}. Valid keys: {list(DocumentEntry.model_fields)}") from None
    removed = match.group(0).count("\n")
    return entry, "\n" * removed + text[match.end():], removed
