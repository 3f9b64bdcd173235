"""The policy file (`knowledge/policies.yaml`): validated with pydantic, compiled into plain rules.

The YAML holds the handbook's automation rules as data: named thresholds (each quoting the
handbook text it comes from, for `guard.crosscheck`), and per SOP its rules with conditions on
ticket facts, outcome, action, team, SLA, approval, remuneration and the handbook section they
cite. Loading checks more than shapes: every fact must be a docs/interface.md §5 field, every operator must
suit the fact's type, every value must be one the fact can take, every threshold must exist and be
in the fact's unit, and a rule that automates money must test the fact its amount comes from.
A broken file raises `ConfigError` naming the file, the place and the problem. Files are loaded
once per (path, mtime, size).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import string
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

import yaml
from sopilot.guard.compiled import cached_compile, read_yaml
from sopilot.guard.facts import FIELDS, PRIORITIES, FieldSpec, format_fact, normalize_role
from sopilot.guard.lexicon import LEXICON_FILE, load_lexicon

from sopilot.core.errors import ConfigError
from sopilot.core.settings import Settings

Outcome = Literal["automate", "escalate", "manual_review"]
Op = Literal["eq", "ne", "in", "not_in", "lt", "le", "gt", "ge"]
RemunerationType = Literal["refund", "service_credit", "replacement", "none", "pending"]
MONEY_TYPES = frozenset({"refund", "service_credit"})
REPLY_FIELDS = frozenset({"amount", "percent", "team", "sla", "remuneration", "hours"})

_ORDERED_OPS = frozenset({"lt", "le", "gt", "ge"})
_OPS_BY_KIND: dict[str, frozenset[str]] = {
    "priority": frozenset({"eq", "ne", "in", "not_in", "lt", "le", "gt", "ge"}),
    "enum": frozenset({"eq", "ne", "in", "not_in"}),
    "role": frozenset({"eq", "ne", "in", "not_in"}),
    "money": _ORDERED_OPS | {"eq", "ne"},
    "int": _ORDERED_OPS | {"eq", "ne"},
    "number": _ORDERED_OPS | {"eq", "ne"},
    "bool": frozenset({"eq", "ne"}),
}
_TRUE_TEXT = {"eq": "is", "ne": "is not", "in": "is", "not_in": "is not", "lt": "is below", "le": "is at most",
              "gt": "is above", "ge": "is at least"}
_FALSE_TEXT = {"eq": "is not", "ne": "is", "in": "is not", "not_in": "is", "lt": "is at least", "le": "is above",
               "gt": "is at most", "ge": "is below"}


# ---- the YAML schema -------------------------------------------------------------------------

def _condition_tag(value: Any) -> str:
    keys = value.keys() if isinstance(value, dict) else vars(value).keys()
    return "all" if "all" in keys else "any" if "any" in keys else "leaf"


@functools.lru_cache(maxsize=1)
def _file_model() -> Any:
    """The pydantic schema of policies.yaml, built only when a file is validated (not when a cached form is read)."""
    from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

    class _Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

    class _ThresholdModel(_Strict):
        value: Decimal
        unit: Literal["usd", "days", "months", "percent", "hours", "count"]
        section: str = Field(min_length=1)
        quote: str = Field(min_length=1)
        document: str | None = None
        help: str = ""

    class _LeafModel(_Strict):
        fact: str
        op: Op
        value: Any = None
        threshold: str | None = None

    class _AllModel(_Strict):
        all: list[_Condition] = Field(min_length=1)

    class _AnyModel(_Strict):
        any: list[_Condition] = Field(min_length=1)

    _Condition = Annotated[
        Annotated[_LeafModel, Tag("leaf")] | Annotated[_AllModel, Tag("all")] | Annotated[_AnyModel, Tag("any")],
        Discriminator(_condition_tag),
    ]
    _AllModel.model_rebuild()
    _AnyModel.model_rebuild()

    class _RemunerationModel(_Strict):
        type: RemunerationType
        amount_of: str | None = None
        percent: str | None = None
        of: str | None = None
        prorated: bool = False
        cap: str | None = None
        automatic: bool | None = None

    class _GrantsModel(_Strict):
        actions: list[str] = []
        limits: dict[Literal["access_level", "access_hours", "role", "plan_months", "financial_access"], str] = {}

    class _RuleModel(_Strict):
        id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
        cite: str = Field(min_length=1)
        when: _Condition
        outcome: Outcome
        action: str = Field(min_length=1)
        escalate_to: str | None = None
        sla: str | None = None
        approval_required: bool
        remuneration: _RemunerationModel
        grants: _GrantsModel = _GrantsModel()
        reply: str | None = None
        note: str | None = None

    class _PolicyModel(_Strict):
        title: str = Field(min_length=1)
        cite: str = Field(min_length=1)
        rules: list[_RuleModel] = []
        fallback: str | None = None

    class _FileModel(_Strict):
        version: Literal[1]
        policy_version: str | None = Field(default=None, min_length=1)
        effective_date: dt.date | None = None
        document: str = Field(min_length=1)
        thresholds: dict[str, _ThresholdModel]
        policies: dict[str, _PolicyModel]

    return _FileModel


# ---- the compiled form the evaluator uses ------------------------------------------------------

@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Threshold:
    """A named limit and the handbook text it is read from."""

    name: str
    value: Decimal
    unit: str
    document: str
    section: str
    """The handbook sub-category (e.g. `A.1`) whose text must contain `quote`."""
    quote: str
    help: str


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Leaf:
    """One test of one fact against a value or a named threshold."""

    fact: str
    kind: str
    op: str
    value: Any
    """Normalised: a priority rank, a Decimal, a bool, a canonical string, or a tuple of them for in/not_in."""
    threshold: str | None
    true_text: str
    false_text: str


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class AllOf:
    """True when every item is true, false when one is false, unknown otherwise (Kleene logic)."""

    items: tuple[Condition, ...]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class AnyOf:
    """True when one item is true, false when every item is false, unknown otherwise."""

    items: tuple[Condition, ...]


Condition = Leaf | AllOf | AnyOf


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RemunerationRule:
    """What a rule grants: a type, and how its amount follows from the ticket."""

    type: str
    amount_of: str | None = None
    percent: Decimal | None = None
    of: str | None = None
    prorated: bool = False
    cap: str | None = None
    automatic: bool = False
    """Granted without approval: a reply may confirm it (up to the amount)."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Rule:
    """One IF of the handbook: conditions and what follows."""

    id: str
    cite: str
    when: Condition
    outcome: str
    action: str
    escalate_to: str | None
    sla: str | None
    approval_required: bool
    remuneration: RemunerationRule
    reply: str | None
    note: str | None
    actions: frozenset[str] = frozenset()
    """The actions (ids of guard/lexicon.yaml) the rule performs, which a reply may therefore confirm."""
    limits: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    """Limit name (`access_level`, `access_hours`, `role`, `plan_months`, `financial_access`) → the fact it is."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Policy:
    """One SOP's rules and the fallback note."""

    id: str
    title: str
    cite: str
    rules: tuple[Rule, ...]
    fallback: str | None
    """Why no rule decides when none matches (e.g. the deciding fact is not a ticket field)."""
    facts: frozenset[str]
    """Every fact the rules test."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Policies:
    """The loaded policy file."""

    source: Path
    document: str
    thresholds: Mapping[str, Threshold]
    policies: Mapping[str, Policy]
    version: str | None = None
    """The policy set's own version (`policy_version`), quoted by decisions; see guard/versions.py."""
    effective_date: dt.date | None = None
    """From this day on the version is in force (until a later version's effective date)."""

    def get(self, sop_id: str | None) -> Policy | None:
        """The policy of `sop_id`, or None."""
        return self.policies.get(sop_id) if sop_id else None


# ---- validation and compilation ----------------------------------------------------------------

class _Problem(Exception):
    pass


def _normalise_value(fact: str, spec: FieldSpec, op: str, value: Any) -> Any:
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise _Problem(f"op {op!r} needs a non-empty list as value, got {value!r}")
        return tuple(_normalise_scalar(fact, spec, item) for item in value)
    if isinstance(value, list):
        raise _Problem(f"op {op!r} needs one value, got a list (use 'in' for a list)")
    return _normalise_scalar(fact, spec, value)


def _normalise_scalar(fact: str, spec: FieldSpec, value: Any) -> Any:
    if spec.kind in ("priority", "enum"):
        if value not in spec.choices:
            raise _Problem(f"value {value!r} is not a valid {fact}: use one of {', '.join(spec.choices)}")
        return value
    if spec.kind == "role":
        if not isinstance(value, str) or not value.strip():
            raise _Problem(f"value {value!r} is not a role name such as 'Standard User'")
        return normalize_role(value)
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise _Problem(f"value {value!r} of {fact} must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise _Problem(f"value {value!r} of {fact} must be a number")
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise _Problem(f"value {value!r} of {fact} must be a number") from None
    if not number.is_finite():
        raise _Problem(f"value {value!r} of {fact} must be a finite number")
    return number


def _display(fact: str, value: Any) -> str:
    if isinstance(value, tuple):
        return " or ".join(_display(fact, item) for item in value)
    return format_fact(fact, value)


def _compile_condition(model: Any, thresholds: Mapping[str, Threshold]) -> Condition:
    kind = _condition_tag(model)  # the tag that chose the model's class
    if kind == "all":
        return AllOf(items=tuple(_compile_condition(m, thresholds) for m in model.all))
    if kind == "any":
        return AnyOf(items=tuple(_compile_condition(m, thresholds) for m in model.any))
    spec = FIELDS.get(model.fact)
    if spec is None:
        raise _Problem(f"unknown fact {model.fact!r}; valid facts: {', '.join(FIELDS)}")
    if model.op not in _OPS_BY_KIND[spec.kind]:
        raise _Problem(f"op {model.op!r} does not apply to {model.fact} ({spec.kind}); "
                       f"use one of {', '.join(sorted(_OPS_BY_KIND[spec.kind]))}")
    if (model.value is None) == (model.threshold is None):
        raise _Problem(f"test of {model.fact} needs exactly one of 'value' or 'threshold'")
    if model.threshold is not None:
        threshold = thresholds.get(model.threshold)
        if threshold is None:
            raise _Problem(f"unknown threshold {model.threshold!r}; defined: {', '.join(thresholds)}")
        if spec.kind not in ("money", "int", "number") or threshold.unit != spec.unit:
            raise _Problem(f"threshold {model.threshold!r} is in {threshold.unit}, but {model.fact} is "
                           f"{spec.unit or spec.kind}")
        if model.op in ("in", "not_in"):
            raise _Problem(f"op {model.op!r} cannot take a threshold")
        value: Any = threshold.value
        label = f"{format_fact(model.fact, value)} ({model.threshold})"
    else:
        value = _normalise_value(model.fact, spec, model.op, model.value)
        label = _display(model.fact, value)
    if spec.kind == "priority":
        rank = {name: i for i, name in enumerate(PRIORITIES)}
        value = tuple(rank[v] for v in value) if isinstance(value, tuple) else rank[value]
    if spec.kind == "bool":
        true_text = false_text = f"{model.fact} is {{obs}}"
    elif model.op == "eq":
        true_text, false_text = f"{model.fact} is {{obs}}", f"{model.fact} is {{obs}}, not {label}"
    elif model.op == "ne":
        true_text, false_text = f"{model.fact} is {{obs}}, not {label}", f"{model.fact} is {label}"
    else:
        true_text = f"{model.fact} {{obs}} {_TRUE_TEXT[model.op]} {label}"
        false_text = f"{model.fact} {{obs}} {_FALSE_TEXT[model.op]} {label}"
    return Leaf(fact=model.fact, kind=spec.kind, op=model.op, value=value, threshold=model.threshold,
                true_text=true_text, false_text=false_text)


def _facts_of(condition: Condition) -> set[str]:
    if isinstance(condition, Leaf):
        return {condition.fact}
    return set().union(*(_facts_of(item) for item in condition.items))


def _money_fact(name: str | None, role: str) -> str | None:
    if name is None:
        return None
    spec = FIELDS.get(name)
    if spec is None or spec.kind != "money":
        money = [f for f, s in FIELDS.items() if s.kind == "money"]
        raise _Problem(f"remuneration {role} {name!r} is not a money fact; use one of {', '.join(money)}")
    return name


def _compile_remuneration(model: Any, rule: Any, condition: Condition,
                          thresholds: Mapping[str, Threshold]) -> RemunerationRule:
    amount_of = _money_fact(model.amount_of, "amount_of")
    of = _money_fact(model.of, "of")
    cap = _money_fact(model.cap, "cap")
    if (amount_of or model.percent or model.prorated or of or cap) and model.type not in MONEY_TYPES:
        raise _Problem(f"remuneration type {model.type!r} carries no amount; amount_of/percent/of/prorated/cap "
                       f"apply to {', '.join(sorted(MONEY_TYPES))}")
    if (model.percent is None) != (of is None):
        raise _Problem("remuneration 'percent' and 'of' go together (percent of a money fact)")
    percent = None
    if model.percent is not None:
        threshold = thresholds.get(model.percent)
        if threshold is None or threshold.unit != "percent":
            raise _Problem(f"remuneration percent {model.percent!r} is not a percent threshold")
        percent = threshold.value
    grants = model.type not in ("none", "pending")
    automatic = (rule.outcome == "automate" and grants) if model.automatic is None else model.automatic
    if automatic and model.type in ("none", "pending"):
        raise _Problem(f"remuneration type {model.type!r} cannot be automatic")
    needed = {f for f in (amount_of, of) if f}
    missing = needed - _facts_of(condition) if rule.outcome == "automate" else set()
    if missing:
        raise _Problem(f"automatic remuneration uses {', '.join(sorted(missing))}, which the rule's 'when' does "
                       "not test: a missing or non-USD amount would automate money")
    return RemunerationRule(type=model.type, amount_of=amount_of, percent=percent, of=of, prorated=model.prorated,
                            cap=cap, automatic=automatic)


def _check_reply(template: str | None) -> None:
    if template is None:
        return
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise _Problem(f"reply template is malformed ({exc})") from None
    unknown = names - REPLY_FIELDS
    if unknown:
        raise _Problem(f"reply template uses {', '.join(sorted(unknown))}; "
                       f"available: {', '.join(sorted(REPLY_FIELDS))}")


def _compile_rule(model: Any, thresholds: Mapping[str, Threshold]) -> Rule:
    condition = _compile_condition(model.when, thresholds)
    if model.outcome == "escalate" and not (model.escalate_to and model.sla):
        raise _Problem("an escalate rule needs 'escalate_to' (the team) and 'sla'")
    if model.outcome == "automate" and (model.escalate_to or not model.sla):
        raise _Problem("an automate rule needs 'sla' and no 'escalate_to'")
    _check_reply(model.reply)
    known = load_lexicon().actions
    unknown = [a for a in model.grants.actions if a not in known]
    if unknown:
        raise _Problem(f"grants.actions {', '.join(map(repr, unknown))} are not actions of guard/lexicon.yaml; use "
                       f"one of {', '.join(sorted(known))}")
    if model.grants.actions and model.outcome != "automate":
        raise _Problem("only an automate rule can grant actions (a team or reviewer decides the others)")
    tested = _facts_of(condition)
    for name, fact in model.grants.limits.items():
        if fact not in FIELDS:
            raise _Problem(f"grants.limits.{name}: {fact!r} is not a ticket fact; valid facts: {', '.join(FIELDS)}")
        if fact not in tested:
            raise _Problem(f"grants.limits.{name}: the rule's 'when' does not test {fact}, so its value could be "
                           "missing when the rule automates")
    return Rule(id=model.id, cite=model.cite, when=condition, outcome=model.outcome, action=model.action,
                escalate_to=model.escalate_to, sla=model.sla, approval_required=model.approval_required,
                remuneration=_compile_remuneration(model.remuneration, model, condition, thresholds),
                reply=model.reply, note=model.note, actions=frozenset(model.grants.actions),
                limits=MappingProxyType({str(k): v for k, v in model.grants.limits.items()}))


def _compile(model: Any, source: Path) -> Policies:
    thresholds: dict[str, Threshold] = {}
    for name, t in model.thresholds.items():
        where = f"thresholds.{name}"
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ConfigError(f"{source.name}: {where}: name must be snake_case")
        if not t.value.is_finite() or t.value < 0 or (t.unit == "percent" and t.value > 100):
            raise ConfigError(f"{source.name}: {where}: value {t.value} is out of range for {t.unit}")
        thresholds[name] = Threshold(name=name, value=t.value, unit=t.unit, document=t.document or model.document,
                                     section=t.section, quote=t.quote, help=t.help)
    policies: dict[str, Policy] = {}
    seen: dict[str, str] = {}
    for sop_id, p in model.policies.items():
        rules = []
        for index, r in enumerate(p.rules):
            where = f"policies.{sop_id}.rules[{index}] ({r.id})"
            if r.id in seen:
                raise ConfigError(f"{source.name}: {where}: rule id {r.id!r} is already used in {seen[r.id]}")
            seen[r.id] = sop_id
            try:
                rules.append(_compile_rule(r, thresholds))
            except _Problem as exc:
                raise ConfigError(f"{source.name}: {where}: {exc}") from None
        facts = frozenset().union(*(_facts_of(rule.when) for rule in rules))
        policies[sop_id] = Policy(id=sop_id, title=p.title, cite=p.cite, rules=tuple(rules),
                                  fallback=p.fallback, facts=facts)
    return Policies(source=source, document=model.document, thresholds=MappingProxyType(thresholds),
                    policies=MappingProxyType(policies), version=model.policy_version,
                    effective_date=model.effective_date)


def _describe(error: Any) -> str:
    loc = ""
    for part in error["loc"]:
        if isinstance(part, int):
            loc += f"[{part}]"
        elif part not in ("leaf", "all", "any") and not str(part).startswith("function-"):
            loc += f".{part}" if loc else str(part)
    if error["type"] == "extra_forbidden":
        return f"{loc}: unknown key (check its spelling; the schema is in guard/policy.py)"
    return f"{loc}: {error['msg']}" + (f" (got {error['input']!r})" if error["type"] != "missing" else "")


@functools.lru_cache(maxsize=8)
def _load(path: str, _mtime_ns: int, _size: int) -> Policies:
    """The compiled policy set, kept between runs by the bytes of the file and of the lexicon it names actions of."""
    source = Path(path)
    try:
        return cached_compile("policies", (source, LEXICON_FILE.resolve()), lambda: _build(source))
    except OSError:
        raise ConfigError(f"policy file {path!r} cannot be read: set SOPILOT_KNOWLEDGE_DIR to the directory "
                          "holding policies.yaml") from None


def _build(source: Path) -> Policies:
    from pydantic import ValidationError

    try:
        raw = read_yaml(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source.name}: not valid YAML{where} ({problem}). Fix the file or restore it from git.") \
            from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source.name}: expected a mapping with 'version', 'document', 'thresholds' and 'policies'")
    try:
        model = _file_model().model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors()[:3])
        more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
        raise ConfigError(f"{source.name}: {problems}{more}") from None
    return _compile(model, source)


def load_policies(path: str | Path) -> Policies:
    """Load and validate a policy file; cached until the file changes.

    Raises:
        ConfigError: the file is missing, not YAML, or breaks the schema; the message says where.
    """
    source = Path(path).resolve()
    try:
        stat = source.stat()
    except OSError:
        raise ConfigError(f"policy file {str(path)!r} not found: set SOPILOT_KNOWLEDGE_DIR to the directory "
                          "holding policies.yaml") from None
    return _load(str(source), stat.st_mtime_ns, stat.st_size)


POLICY_FILE = "policies.yaml"
"""The policy file's name inside the knowledge directory."""


def policies_for(settings: Settings) -> Policies:
    """The policy file of the configured knowledge dir (loaded once per process and file version)."""
    return load_policies(settings.knowledge_dir / POLICY_FILE)
