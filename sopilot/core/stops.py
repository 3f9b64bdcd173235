"""Emergency Stop switches (handbook §7) kept under the data dir, so every process honours them.

`SOPILOT_STOPPED_POLICIES` stops policies for a deployment; the Knowledge page switches stops at
run time into `data_dir/stopped_policies.txt`, which `Settings.stopped` reads on every call: the
command line, the pipeline and the app all see the same list. The caller records the change in
the audit log.
"""

from __future__ import annotations

from pathlib import Path

STOP_FILE = "stopped_policies.txt"


def read_stops(data_dir: Path) -> frozenset[str]:
    """Policies stopped at run time (one id per line)."""
    path = data_dir / STOP_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return frozenset()
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def set_stopped(data_dir: Path, policy: str, stopped: bool) -> None:
    """Switch the run-time Emergency Stop of one policy; readers never see half a list."""
    current = set(read_stops(data_dir))
    current = current | {policy} if stopped else current - {policy}
    data_dir.mkdir(parents=True, exist_ok=True)
    staged = data_dir / f".{STOP_FILE}.tmp"
    staged.write_text("".join(f"{p}\n" for p in sorted(current)), encoding="utf-8")
    staged.replace(data_dir / STOP_FILE)
