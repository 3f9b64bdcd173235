"""Policy versions (handbook §6 "Version Control"): which policy set was in force on a day, and what changed.

The knowledge dir holds the current `policies.yaml`; every superseded set is kept, unchanged, in
`policy-archive/` (ingest reads only the files directly in the knowledge dir, so archived files
are never indexed). Each file names its `policy_version` and `effective_date`; a set is in force
from its effective date until the next set's. A ticket dated before the first set is decided
under the first set (there is nothing older to apply), and the decision names that version.

`diff_policies` compares two sets rule by rule: thresholds, policies and rules added, removed or
changed, each change with its before and after. Everything here is pure data and stays light.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from sopilot.guard.facts import PRIORITIES
from sopilot.guard.policy import POLICY_FILE, AllOf, Condition, Leaf, Policies, Rule, load_policies

from sopilot.core.errors import ConfigError, InputError

ARCHIVE_DIR = "policy-archive"
"""Superseded policy sets, kept for audit inside the knowledge dir."""

DATE_FIELDS = ("created_at", "date", "opened_at")
"""Ticket fields read, in this order, for the day a ticket was raised."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class PolicyVersion:
    """One policy set on disk."""

    version: str
    effective_date: dt.date | None
    """None: in force since the beginning (a file written before versions were recorded)."""
    path: Path
    current: bool
    """The knowledge dir's own `policies.yaml` (not an archived file)."""

    def to_json(self) -> dict[str, Any]:
        """Version, effective date (ISO), file name and whether it is the current file."""
        return {"version": self.version, "effective_date": self.effective_date.isoformat() if self.effective_date
                else None, "file": self.path.name, "current": self.current}


def _version_of(policies: Policies, path: Path) -> str:
    if policies.version:
        return policies.version
    raise ConfigError(f"{path}: has no 'policy_version': add `policy_version: \"YYYY.MM\"` and `effective_date:` "
                      "at the top of the file so decisions can name the version they used")


def policy_versions(knowledge_dir: Path) -> tuple[PolicyVersion, ...]:
    """Every policy set, the current one and the archived ones, oldest effective date first.

    Raises:
        ConfigError: a file is invalid, lacks a version, or two files claim the same version or day.
    """
    current = knowledge_dir / POLICY_FILE
    paths = [current] + sorted((knowledge_dir / ARCHIVE_DIR).glob("*.yaml"))
    found: list[PolicyVersion] = []
    for path in paths:
        if not path.is_file():
            continue
        policies = load_policies(path)
        found.append(PolicyVersion(version=_version_of(policies, path), effective_date=policies.effective_date,
                                   path=path, current=path == current))
    if not found:
        raise ConfigError(f"no {POLICY_FILE} in {str(knowledge_dir)!r}: set SOPILOT_KNOWLEDGE_DIR to the directory "
                          "holding the policy file")
    for attr in ("version", "effective_date"):
        seen: dict[Any, Path] = {}
        for item in found:
            key = getattr(item, attr)
            if key in seen:
                raise ConfigError(f"{item.path.name} and {seen[key].name} have the same {attr} {str(key)!r}: "
                                  "give each policy set its own version and effective date")
            seen[key] = item.path
    return tuple(sorted(found, key=lambda v: v.effective_date or dt.date.min))


def ticket_date(ticket: Mapping[str, Any]) -> dt.date | None:
    """The day a ticket was raised, from its `created_at`, `date` or `opened_at` field (ISO 8601), if any."""
    for name in DATE_FIELDS:
        value = ticket.get(name)
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str) and value.strip():
            try:
                return dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00")).date()
            except ValueError:
                raise InputError(f"ticket field {name}={value!r} is not an ISO 8601 date: write it as "
                                 "2026-11-23 or 2026-11-23T10:00:00Z") from None
    return None


def version_in_force(on: dt.date | dt.datetime | None, knowledge_dir: Path) -> PolicyVersion:
    """The policy set in force on `on` (None: today, UTC)."""
    day = on.date() if isinstance(on, dt.datetime) else on or dt.datetime.now(dt.UTC).date()
    versions = policy_versions(knowledge_dir)
    chosen = versions[0]
    for item in versions:
        if (item.effective_date or dt.date.min) <= day:
            chosen = item
    return chosen


def policies_in_force(on: dt.date | dt.datetime | None = None, knowledge_dir: Path | None = None) -> Policies:
    """The policies to decide a ticket of day `on` with; `Policies.version` says which set it is.

    Args:
        on: the ticket's day (see `ticket_date`); None means today.
        knowledge_dir: where `policies.yaml` and `policy-archive/` are; default the configured knowledge dir.
    """
    if knowledge_dir is None:
        from sopilot.core.settings import Settings

        knowledge_dir = Settings.from_env().knowledge_dir
    if not any((knowledge_dir / ARCHIVE_DIR).glob("*.yaml")):  # one set only: it is in force, versioned or not
        return load_policies(knowledge_dir / POLICY_FILE)
    return load_policies(version_in_force(on, knowledge_dir).path)


def resolve(spec: str, knowledge_dir: Path) -> Policies:
    """A policy set named by version (`2023.10`), by `current`, or by the path of a YAML file.

    Raises:
        InputError: no file or version of that name; the message lists the known versions.
    """
    path = Path(spec)
    if spec.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise InputError(f"policy file {spec!r} does not exist: check the path")
        return load_policies(path)
    versions = policy_versions(knowledge_dir)
    for item in versions:
        if item.version == spec or (spec == "current" and item.current):
            return load_policies(item.path)
    raise InputError(f"unknown policy version {spec!r}: use one of {[v.version for v in versions]}, 'current', "
                     "or the path of a policy file")


def archive_current(knowledge_dir: Path) -> Path:
    """Copy the current policy set into the archive (before a new set replaces it); return the copy's path.

    Raises:
        ConfigError: the current file has no version, or the archive already holds a different file
            under that version's name.
    """
    current = knowledge_dir / POLICY_FILE
    version = _version_of(load_policies(current), current)
    target = knowledge_dir / ARCHIVE_DIR / f"policies-{version}.yaml"
    if target.exists():
        if target.read_bytes() == current.read_bytes():
            return target
        raise ConfigError(f"{target} already holds a different policy set {version!r}: raise the current file's "
                          "policy_version before archiving it")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(current, target)
    return target


# ---- differences -----------------------------------------------------------------------------

ChangeKind = Literal["added", "removed", "changed"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Change:
    """One difference between two policy sets."""

    kind: ChangeKind
    where: str
    """What changed: `thresholds.refund_auto_limit`, `policies.A.1`, `policies.A.1.rules.a1_refund.outcome`."""
    before: str | None
    after: str | None

    def to_json(self) -> dict[str, Any]:
        """Kind, place, before and after."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PolicyDiff:
    """What changed from policy set `a` to `b`."""

    a: str
    b: str
    a_effective: str | None
    b_effective: str | None
    changes: tuple[Change, ...]

    def to_json(self) -> dict[str, Any]:
        """The two versions and every change."""
        return {"a": self.a, "b": self.b, "a_effective": self.a_effective, "b_effective": self.b_effective,
                "changes": [c.to_json() for c in self.changes]}

    def to_markdown(self) -> str:
        """A table of the changes."""
        lines = [f"# Policy changes {self.a} → {self.b}", "",
                 f"Effective {self.a_effective or 'from the start'} → {self.b_effective or 'from the start'}.", ""]
        if not self.changes:
            return "\n".join([*lines, "No changes."]) + "\n"
        lines += ["| change | where | before | after |", "|---|---|---|---|"]
        lines += [f"| {c.kind} | `{c.where}` | {_cell(c.before)} | {_cell(c.after)} |" for c in self.changes]
        return "\n".join(lines) + "\n"


def _cell(text: str | None) -> str:
    return "" if text is None else text.replace("|", "\\|").replace("\n", " ")


def describe_condition(condition: Condition) -> str:
    """A condition as one readable line, e.g. `priority in (Low, Medium) and amount le refund_auto_limit`."""
    if isinstance(condition, Leaf):
        value = condition.threshold or condition.value
        if condition.kind == "priority" and condition.threshold is None:
            value = tuple(PRIORITIES[v] for v in value) if isinstance(value, tuple) else PRIORITIES[value]
        if isinstance(value, tuple):
            value = "(" + ", ".join(str(v) for v in value) + ")"
        return f"{condition.fact} {condition.op} {value}"
    joiner = " and " if isinstance(condition, AllOf) else " or "
    return "(" + joiner.join(describe_condition(item) for item in condition.items) + ")"


def _rule_fields(rule: Rule) -> dict[str, str]:
    remuneration = rule.remuneration
    return {"when": describe_condition(rule.when), "outcome": rule.outcome, "action": rule.action,
            "escalate_to": str(rule.escalate_to), "sla": str(rule.sla),
            "approval_required": str(rule.approval_required).lower(),
            "remuneration": ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(remuneration).items()
                                      if v not in (None, False)),
            "reply": str(rule.reply)}


def _fmt(threshold) -> str:
    return f"{threshold.value} {threshold.unit}"


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def diff_policies(a: Policies, b: Policies) -> PolicyDiff:
    """Every threshold, policy and rule that differs between `a` and `b`, in file order."""
    changes: list[Change] = []
    for name in dict.fromkeys([*a.thresholds, *b.thresholds]):
        old, new = a.thresholds.get(name), b.thresholds.get(name)
        if old is None or new is None:
            changes.append(Change(kind="added" if old is None else "removed", where=f"thresholds.{name}",
                                  before=_fmt(old) if old else None, after=_fmt(new) if new else None))
        elif (old.value, old.unit) != (new.value, new.unit):
            changes.append(Change(kind="changed", where=f"thresholds.{name}", before=_fmt(old), after=_fmt(new)))
    for sop_id in dict.fromkeys([*a.policies, *b.policies]):
        old_p, new_p = a.policies.get(sop_id), b.policies.get(sop_id)
        if old_p is None or new_p is None:
            changes.append(Change(kind="added" if old_p is None else "removed", where=f"policies.{sop_id}",
                                  before=old_p.title if old_p else None, after=new_p.title if new_p else None))
            continue
        old_rules = {r.id: r for r in old_p.rules}
        new_rules = {r.id: r for r in new_p.rules}
        for rule_id in dict.fromkeys([*old_rules, *new_rules]):
            old_r, new_r = old_rules.get(rule_id), new_rules.get(rule_id)
            where = f"policies.{sop_id}.rules.{rule_id}"
            if old_r is None or new_r is None:
                changes.append(Change(kind="added" if old_r is None else "removed", where=where,
                                      before=describe_condition(old_r.when) if old_r else None,
                                      after=describe_condition(new_r.when) if new_r else None))
                continue
            before, after = _rule_fields(old_r), _rule_fields(new_r)
            changes += [Change(kind="changed", where=f"{where}.{field}", before=before[field], after=after[field])
                        for field in before if before[field] != after[field]]
        if old_p.fallback != new_p.fallback:
            changes.append(Change(kind="changed", where=f"policies.{sop_id}.fallback", before=old_p.fallback,
                                  after=new_p.fallback))
    return PolicyDiff(a=a.version or a.source.name, b=b.version or b.source.name, a_effective=_iso(a.effective_date),
                      b_effective=_iso(b.effective_date), changes=tuple(changes))


# ---- document versions -------------------------------------------------------------------------

VERSION_LABELS = frozenset({"document version", "version"})
DATE_LABELS = frozenset({"effective date", "effective"})
DOCUMENT_SUFFIXES = frozenset({".md", ".markdown", ".txt"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class DocumentVersion:
    """A version stated in an SOP document (a handbook part has its own `Document Version:` line)."""

    file: str
    line: int
    version: str
    effective_date: str | None
    """ISO date when the document's date could be read (`October 26, 2023`), else its text, else None."""

    def to_json(self) -> dict[str, Any]:
        """Every field."""
        return dataclasses.asdict(self)


def _label_value(line: str) -> tuple[str, str] | None:
    """`**Document Version:** 2.1` or `- **Version**: `1.0`` as (`document version`, `2.1`)."""
    text = line.strip().lstrip("-*# ").replace("*", "").replace("`", "")
    label, colon, value = text.partition(":")
    if not colon or not value.strip() or len(label) > 40:
        return None
    return label.strip().lower(), value.strip()


def _read_date(text: str) -> str:
    for form in ("%B %d, %Y", "%b %d, %Y", "%Y-%m-%d", "%d %B %Y"):
        try:
            return dt.datetime.strptime(text, form).date().isoformat()
        except ValueError:
            continue
    return text


def document_versions(knowledge_dir: Path) -> tuple[DocumentVersion, ...]:
    """The versions and effective dates the knowledge dir's text documents state, in file and line order."""
    found = []
    for path in sorted(p for p in knowledge_dir.iterdir() if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines, start=1):
            pair = _label_value(line)
            if pair is None or pair[0] not in VERSION_LABELS:
                continue
            effective = None
            for later in lines[number:number + 4]:
                other = _label_value(later)
                if other is not None and other[0] in DATE_LABELS:
                    effective = _read_date(other[1])
                    break
            found.append(DocumentVersion(file=path.name, line=number, version=pair[1], effective_date=effective))
    return tuple(found)
