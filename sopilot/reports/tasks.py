"""Tasks, notifications and private flags the reports raise, kept as `ops_task_created` audit events.

Handbook L.1 and L.2 turn findings into work: a task for the Support Operations Manager and a
notification to the Head of Support (policy gap), a private training-review flag for a Team Lead
(agent error: no ticket is created, to avoid public shaming), a drafting task for the subject
matter expert and a review flag for the content team (knowledge-base gaps); §8 flags low CSAT
feedback for the Team Lead. Each is one event in the audit log, so it is timestamped, append-only
and exported with the rest. Every task has a stable `key` built from what it is about; recording a
task whose key is already recorded does nothing, so a report run twice raises each task once.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Literal

TaskKind = Literal["policy_gap_review", "policy_gap_notification", "training_review", "kb_article_draft",
                   "kb_article_review", "csat_review"]
Visibility = Literal["internal", "private"]
"""`private`: seen by the named role only (a training review), never a ticket or a public channel."""

SUPPORT_OPERATIONS_MANAGER = "Support Operations Manager"
HEAD_OF_SUPPORT = "Head of Support"
TEAM_LEAD = "Team Lead"
SUBJECT_MATTER_EXPERT = "Subject Matter Expert"
CONTENT_TEAM = "Content Team"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Task:
    """A piece of work (or a notification) for a role, raised by a report."""

    key: str
    """Stable identity: the same finding gives the same key on every run."""
    kind: TaskKind
    assignee: str
    title: str
    source: str
    """The handbook rule that raised it: `L.1`, `L.2` or `§8`."""
    visibility: Visibility = "internal"
    policy: str | None = None
    ticket_id: str | None = None
    subject: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """What the task is about: counts, key phrases, examples, an outline, the agent to review."""
    recorded: bool = False
    """True once it is in the audit log (now or by an earlier run)."""

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON-ready data."""
        return {**dataclasses.asdict(self), "subject": dict(self.subject)}


def task_key(*parts: object) -> str:
    """A short stable key from the parts that identify a finding (e.g. rule, week, policy, ticket ids)."""
    text = "\x1f".join(str(p) for p in parts)
    return f"{parts[0]}:{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def recorded_keys(settings) -> set[str]:
    """Keys of every task already in the audit log."""
    from sopilot import audit

    log = audit.open_log(settings)
    return {str(ev.detail.get("key")) for ev in log.iter_all() if ev.kind == "ops_task_created"}


def record_tasks(settings, tasks: Iterable[Task]) -> list[Task]:
    """Append the tasks not yet recorded to the audit log; return every task marked `recorded`."""
    from sopilot import audit

    tasks = list(tasks)
    if not tasks:
        return []
    known = recorded_keys(settings)
    new = [t for t in tasks if t.key not in known]
    if new:
        audit.record(settings, *(audit.Event(kind="ops_task_created", policy=t.policy, ticket_id=t.ticket_id,
                                             detail={**t.to_json(), "recorded": True}) for t in new))
    return [dataclasses.replace(t, recorded=True) for t in tasks]


def list_tasks(settings, *, assignee: str | None = None, include_private: bool = False) -> list[Task]:
    """Recorded tasks, oldest first; private ones only with `include_private` (the Team Lead's view)."""
    from sopilot import audit

    found = []
    for ev in audit.open_log(settings).iter_all():
        if ev.kind != "ops_task_created":
            continue
        data = dict(ev.detail)
        if data.get("visibility") == "private" and not include_private:
            continue
        if assignee is not None and data.get("assignee") != assignee:
            continue
        fields = {f.name for f in dataclasses.fields(Task)}
        found.append(Task(**{k: v for k, v in data.items() if k in fields}))
    return found
