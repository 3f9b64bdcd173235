"""How the embedded index's data dir grows over ten changed ingests, with and without orphan cleaning.

    .venv/bin/python bench/bench_ingest_growth.py

Each round edits one small document of a copy of the shipped knowledge base and runs a full
ingest into a fresh data dir; printed per mode: the size of data/chroma and the number of
segment directories on disk against those Chroma still owns, after the first and the tenth ingest.
"Without cleaning" switches `Store.clean_orphans` off, which is how ingest behaved before it existed.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sopilot.ingest.pipeline import ingest  # noqa: E402
from sopilot.ingest.store import Store  # noqa: E402

from sopilot.core.settings import Settings  # noqa: E402


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _dirs(chroma: Path) -> tuple[int, int]:
    with sqlite3.connect(f"file:{chroma / 'chroma.sqlite3'}?mode=ro", uri=True) as db:
        live = {row[0] for row in db.execute("SELECT id FROM segments")}
    return sum(p.is_dir() for p in chroma.iterdir()), len(live & {p.name for p in chroma.iterdir()})


def run(clean: bool) -> list[str]:
    """Ten changed ingests; one line of figures after the first and after the last."""
    original = Store.clean_orphans
    if not clean:
        Store.clean_orphans = lambda self: []  # type: ignore[method-assign]
    lines = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            knowledge = Path(tmp) / "knowledge"
            shutil.copytree(ROOT / "knowledge", knowledge)
            settings = Settings.from_env({}, data_dir=Path(tmp) / "data", knowledge_dir=knowledge)
            for n in range(1, 11):
                text = f"# Changing\n\n## Procedure\n\n1. Step {n}.\n"
                (knowledge / "changing.md").write_text(text, encoding="utf-8")
                ingest(None, settings)
                if n in (1, 10):
                    chroma = settings.data_dir / "chroma"
                    dirs, owned = _dirs(chroma)
                    lines.append(f"{'with' if clean else 'without'} cleaning, after {n:2} ingests: "
                                 f"{_size(chroma) / 1e6:.1f} MB, {dirs} segment dirs on disk, {owned} owned by Chroma, "
                                 f"{len(Store.for_settings(settings).versions())} versions")
    finally:
        Store.clean_orphans = original  # type: ignore[method-assign]
    return lines


def main() -> int:
    """Print the figures of both modes."""
    for clean in (False, True):
        for line in run(clean):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
