"""`sopilot eval retrieval`: evaluate, write the report and chart, print the scores (the only printing)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sopilot.core.settings import Settings
from sopilot.eval.report import DEFAULT_REPORT_DIR, command_line, table, write_chart, write_markdown
from sopilot.eval.retrieval import evaluate_retrieval


def run_eval_retrieval(*, queries: str, k: int, as_json: bool, settings: Settings,
                       report_dir: Path | None = None) -> int:
    """The `sopilot eval retrieval` command: evaluate, write the report and chart, print the scores."""
    report_dir = Path(report_dir) if report_dir is not None else DEFAULT_REPORT_DIR
    bar = None

    def progress(done: int, total: int, system: str) -> None:
        nonlocal bar
        if as_json:
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="query", file=sys.stderr, leave=False)
        bar.set_description(system, refresh=False)
        bar.update(1)

    try:
        result = evaluate_retrieval(queries, settings, k=k, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    command = command_line(queries=queries, k=k, report_dir=report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    stem = "retrieval" if Path(queries).stem in ("queries", "-") else f"retrieval-{Path(queries).stem}"
    report = write_markdown(result, report_dir / f"{stem}.md", command=command)
    write_chart(result, report_dir / f"{stem}.png")
    if result.unknown:
        listed = ", ".join(f"{sop_id!r} ({count})" for sop_id, count in result.unknown.items())
        print(f"sopilot eval: {sum(result.unknown.values())} relevant id(s) are not in the index and can never be "
              f"retrieved: {listed}. Fix the labels or ingest the SOPs they name.", file=sys.stderr)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(str(report)), ensure_ascii=False) + "\n")
    else:
        print(table(result))
        print(f"\nreport: {report}")
    return 0
