"""Reading JSON Lines input (query sets, guard cases, ticket batches) with errors that name the line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sopilot.core.errors import InputError


def read_text(path: str | Path, what: str = "file") -> str:
    """The text of a file, or of stdin for `-`."""
    name = str(path)
    try:
        return sys.stdin.read() if name == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {what} {name!r}: {exc.strerror}. Check the path.") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} {name!r} is not UTF-8 text: re-save it as UTF-8") from None


def read_jsonl(path: str | Path, what: str, *, example: str, parse_float=None) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; a line that is not a JSON object raises `InputError`."""
    rows = []
    for number, line in enumerate(read_text(path, what).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_float=parse_float)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: not valid JSON ({exc.msg}): write one JSON object per line, "
                             f"such as {example}") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{number}: expected a JSON object such as {example}")
        rows.append((number, row))
    return rows
