"""Internal material in a draft, found generically: the knowledge base's own rule lines, and notes to colleagues.

A reply that copies the handbook's automation rules ("IF the ticket priority is Low OR Medium AND ...",
"REMUNERATION: Pending manual review ...") or carries a note meant for a colleague ("(agent: page the backup
TAM)", "fyi - legal hold, do NOT tell cust", "// TODO: check ...") shows the customer what only staff may see.
Three generic readings, none a list of sentences:

- **Overlap with the rules**: word runs shared with the internal lines of the knowledge files (the lines
  that carry the handbook's rule labels, IF / ACTION / REMUNERATION / APPROVAL, and the procedure steps),
  as stem shingles; the customer-facing reply sentences of knowledge/policies.yaml are taken out of them.
- **Rule labels**: the handbook's upper-case rule labels, read from the knowledge files, written as labels.
- **Policy identifiers**: the snake_case names of the policy data (rule ids, thresholds, ticket facts, action
  ids) and of the decision's fields, as in "rule a1_auto_refund" or "tenure_months 36 > tenure_auto_months 24".
- **Structure of a note to colleagues**: a parenthesis or line addressed to staff ("(Ops: ...)"), a code
  comment, an internal record label ("Override log:"), a policy id cited as a rule ("per I.2"), SQL clauses.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from pathlib import Path

from sopilot.guard.compiled import cached_compile, read_yaml
from sopilot.guard.decide import Decision
from sopilot.guard.lexicon import LEXICON_FILE, load_lexicon, stems_of, tokenize

Finding = tuple[str, str, str]
SHINGLE = 6
"""Words per shingle: a run of this many stems shared with an internal line is rule text, not chance."""
RUN = 5
"""Consecutive shared shingles (SHINGLE + RUN - 1 words in a row) that make a leak."""
_MESSAGE_RULES = "the reply reproduces the knowledge base's internal rule text, which must never reach a customer"
_MESSAGE_LABELS = "the reply carries the handbook's internal rule labels, which must never reach a customer"
_MESSAGE_NOTE = "the reply holds a note meant for colleagues, which must never reach a customer"
_MESSAGE_SQL = "an SQL statement must never reach a customer"
_MESSAGE_IDS = ("the reply names the policy's internal identifiers (rule ids, thresholds, ticket fields), which must "
                "never reach a customer")
_IDENTIFIER = re.compile(r"(?<![\w/.@-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w/@-]|\.\w)", re.IGNORECASE)
"""A snake_case name standing on its own (not inside a URL, a path or an e-mail address)."""
_DECISION_FIELDS = frozenset(field.name for field in dataclasses.fields(Decision) if "_" in field.name)
"""The decision's own snake_case field names ("escalate_to", "approval_required"), as a pasted decision shows them."""

_BOLD_LABEL = re.compile(r"\*\*([A-Z]{2,})(?::\*\*|\*\*:)")
_RULE_LINE = re.compile(r"^\s*(?:[-*]|\d+\.)\s+(?P<body>.+)$", re.MULTILINE)
_MARKUP = re.compile(r"[*_`#>]+")
_BOLD_WORD = re.compile(r"\*\*([A-Z]{2,})\*\*")
_RULE_LABELS = frozenset({"IF", "REMUNERATION", "APPROVAL"})
"""The labels of the lines that state a rule's condition, its undecided remuneration and its approval: what
staff read. ACTION and SLA lines describe what the customer is told anyway (the action taken, the time)."""
_CAPITAL = re.compile(r"\b[A-Z]{2,}\b")
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n")
_LABEL = re.compile(r"(?<![A-Za-z])([A-Z]{2,})\s*:")


def _knowledge_dir() -> Path:
    from sopilot.core.settings import Settings  # settings are read once, on the first draft checked
    return Settings.from_env().knowledge_dir


@functools.lru_cache(maxsize=4)
def policy_identifiers(knowledge_dir: str | None = None) -> frozenset[str]:
    """The snake_case names of the policy file (keys and values) and of the decision's fields, lower-cased."""
    root = Path(knowledge_dir) if knowledge_dir else _knowledge_dir()
    policies = root / "policies.yaml"
    if not policies.is_file():
        return _DECISION_FIELDS
    return cached_compile("identifiers", (policies.resolve(),),
                          lambda: _DECISION_FIELDS | frozenset(_names(read_yaml(policies))))


def _names(node: object) -> set[str]:
    """Every key and scalar of a YAML tree that is a snake_case name as a whole."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            stack += item
        elif isinstance(item, str) and _IDENTIFIER.fullmatch(item):
            found.add(item.lower())
    return found


@functools.lru_cache(maxsize=4)
def internal_data(knowledge_dir: str | None = None) -> tuple[frozenset[tuple[str, ...]], frozenset[str],
                                                            frozenset[str]]:
    """The shingles of the knowledge files' internal lines, their rule labels and rule words (read once).

    Labels are the upper-case bold words followed by a colon (`**ACTION:**`); rule words are the upper-case
    bold words of a rule's condition (`**IF**`, `**AND**`, `**OR**`).

    Internal lines are the list items that carry a rule label (`**IF**`, `**ACTION:**`, ...) and the numbered
    procedure steps; shingles that also occur in the customer-facing `reply` sentences of policies.yaml are
    removed, so a reply that says what the customer is told anyway is not a leak. A knowledge dir without
    the files yields nothing to compare (the other readings still apply).
    """
    root = Path(knowledge_dir) if knowledge_dir else _knowledge_dir()
    files = sorted(root.glob("*.md"))
    if not files:  # nothing to compare (and nothing worth a cache file)
        return frozenset(), frozenset(), frozenset()
    policies = root / "policies.yaml"
    sources = (*(f.resolve() for f in files), *((policies.resolve(),) if policies.is_file() else ()),
               LEXICON_FILE.resolve())  # the lexicon's stem overrides shape the shingles
    return cached_compile("internal", sources, lambda: _build(files, policies))



def _build(files: list[Path], policies: Path) -> tuple[frozenset[tuple[str, ...]], frozenset[str], frozenset[str]]:
    """Read the knowledge files (see `internal_data`): the part `cached_compile` keeps between runs."""
    load_lexicon()  # stems with the lexicon's overrides
    shingles: set[tuple[str, ...]] = set()
    labels: set[str] = set()
    words: set[str] = set()
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        labels.update(_BOLD_LABEL.findall(text))
        words.update(_BOLD_WORD.findall(text))
        for match in _RULE_LINE.finditer(text):
            body = match["body"]
            label = _BOLD_LABEL.search(body) or _BOLD_WORD.match(body)
            if (label and label.group(1) in _RULE_LABELS) or match.group(0).lstrip()[:1].isdigit():
                shingles.update(_shingles(_MARKUP.sub(" ", body)))
    public: set[tuple[str, ...]] = set()
    if policies.is_file():
        public.update(_shingles(" ".join(_replies(read_yaml(policies)))))
    return frozenset(shingles - public), frozenset(labels), frozenset(words - labels)


def _rule_run(stems: list[str], shingles: frozenset[tuple[str, ...]]) -> int | None:
    """Where the first run of RUN consecutive shingles shared with the rules starts its last shingle, if any.

    One flag a position (whether the shingle starting there is rule text, one set look-up of a tuple built
    by `zip`), then one search for RUN flags in a row: no Python loop over the reply's words.
    """
    flags = bytes(map(shingles.__contains__, zip(*(stems[k:] for k in range(SHINGLE)), strict=False)))
    at = flags.find(b"\x01" * RUN)
    return None if at < 0 else at + RUN - 1


def _replies(node: object) -> list[str]:
    """Every `reply` string of the policy file (the sentences the customer is meant to read)."""
    if isinstance(node, dict):
        out = [v for k, v in node.items() if k == "reply" and isinstance(v, str)]
        for value in node.values():
            out += _replies(value)
        return out
    if isinstance(node, list):
        return [text for item in node for text in _replies(item)]
    return []


def _shingles(text: str) -> set[tuple[str, ...]]:
    stems = stems_of(text)
    return {tuple(stems[i:i + SHINGLE]) for i in range(len(stems) - SHINGLE + 1)}


_NOTE_MARKERS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    (("(", "["), re.compile(r"""
        [(\[] \s* (?:note \s+ (?:to|for) \s+)? (?:agents?|\w*ops|operations|staff|team|tier\s*\d|l[123]|support|billing
          |finance|ar|tam|engineering|eng|legal|security|compliance|supervisor|lead|qa|devs?|admin|cs|csm|sales)
          \b [^()\[\]:\n]{0,24} :                                       # "(agent: ...", "[Note for L2: ..."
        """, re.VERBOSE | re.IGNORECASE)),
    (("//", "#todo", "# todo", "#note", "# note", "#internal", "# internal", "##"), re.compile(
        r"(?:^|(?<=\n)) [ \t]* (?://|\#\#?[ \t]*(?:todo|note|internal)) [ \t]* \S",
        re.VERBOSE | re.IGNORECASE | re.MULTILINE)),                       # "// TODO: ...", "# note: ..."
    (("only]", "only)", "only:", "only -"), re.compile(r"""
        [\[(] \s* (?:agent|staff|internal|employee|team|ops)s? [\s_-]* only \s* [\])]   # "[AGENT-ONLY]"
        | \b (?:agent|staff|internal|employee)s? [\s_-]* only \s* [:\-—–]             # "Staff only: ..."
        """, re.VERBOSE | re.IGNORECASE)),
    (("confidential", "internal", "internally"), re.compile(r"""
        \b (?:confidential|internal|internal-only|staff-only) \s+ (?:[a-z-]+ \s+)? (?:checklist|process|procedure
          |steps|runbook|playbook|guidance|notes?|workflow|criteria|scoring|escalation \s+ path|instructions)\b
        | \b (?:internally|staff \s+ only) \s* [:\-—–]                  # "their confidential checklist:"
        """, re.VERBOSE | re.IGNORECASE)),
    (("fyi",), re.compile(r"(?:^|(?<=[\n.!?])) \s* fyi \s* [-—–:,]", re.VERBOSE | re.IGNORECASE)),  # "fyi - legal hold"
    (("log:", "log :", "assessment", "triage", "audit", "handover", "hand-off", "escalation note", "notes:",
      "note:"), re.compile(r"""
        (?:^|(?<=[\n.!?])) [\s\-–—]* (?:[A-Za-z]+[ \t]+)? (?:log|assessment|triage|audit|handover|hand-off
          |escalation\s+notes?|(?:agent|staff|internal|case|call|team)\s+notes?) [ \t]* :  # "Override log:"
        """, re.VERBOSE | re.IGNORECASE)),
    (("not tell", "n't tell", "never tell", "not share", "n't share", "not mention", "n't mention", "not disclose",
      "n't disclose", "not reveal", "n't reveal", "not let", "n't let", "not show", "n't show", "never share",
      "never mention"), re.compile(r"""
        \b (?:do\s+not|don'?t|never) \s+ (?:tell|share|mention|disclose|reveal|show|let) \b [^.\n]{0,24}
          \b (?:cust|custs|cx|client|clients|caller|user|users|them\s+know) \b   # "do NOT tell cust"
        """, re.VERBOSE | re.IGNORECASE)),
    (("per ", "under ", "via "), re.compile(r"\b (?i:per|under|via) \s+ (?i:sop\s+|policy\s+|rule\s+)? [A-L]\.\d{1,2}"
                                          r" \b", re.VERBOSE)),           # "auto-deny per I.2"
)
"""Structural marks of a note to colleagues, each with strings one of which its matches hold (lower case)."""
_SQL = re.compile(r"""
    \b where \s+ [a-z_][\w.]* \s* (?:=|<>|!=|<=|>=|\blike\b|\bin\s*\() \s* (?:'[^'\n]*'|\d+\b|[a-z_][\w.]*\b)
    | \b join \s+ [a-z_]\w* (?:\s+[a-z_]\w*)? \s+ on \s+ [\w.]+ \s* =          # "JOIN partners p ON p.id ="
    | \b select \s+ [\w.*]+ (?:\s*,\s*[\w.*]+)* \s+ from \s+ [a-z_]\w* (?:\s+[a-z_]\w*)? \s+ (?:where|join|limit)\b
    """, re.VERBOSE | re.IGNORECASE)


def internal_findings(text: str, span: Callable[[int, int], str], stems: list[str] | None = None, *,
                      knowledge_dir: str | None = None) -> list[Finding]:
    """Internal material in the normalised draft `text`; `span(start, end)` gives the original characters.

    `stems`: the draft's stems when the caller has them already (they are read from `text` otherwise).
    """
    found: list[Finding] = []
    lowered = text.lower()
    for triggers, pattern in _NOTE_MARKERS:
        if any(trigger in lowered for trigger in triggers):
            for match in pattern.finditer(text):
                found.append(("internal_leak", _MESSAGE_NOTE, span(match.start(), match.end())))
    if "=" in text:
        for match in _SQL.finditer(text):
            found.append(("internal_leak", _MESSAGE_SQL, span(match.start(), match.end())))
    if "_" in text:
        names = policy_identifiers(knowledge_dir)
        for match in _IDENTIFIER.finditer(text):
            if match.group(0).lower() in names:
                found.append(("internal_leak", _MESSAGE_IDS, span(match.start(), match.end())))
                break
    shingles, labels, rule_words = internal_data(knowledge_dir)
    if rule_words and "IF" in text:  # "IF the tenure is > 24 months AND ...": the handbook's rule notation
        for sentence in _SENTENCES.split(text):
            capitals = {m.group(0) for m in _CAPITAL.finditer(sentence)} & rule_words
            if len(capitals) >= 2 and "IF" in capitals and not sentence.isupper():  # set apart, not shouted
                found.append(("internal_leak", _MESSAGE_LABELS, sentence.strip()[:200]))
                break
    if labels and ":" in text and any(f"{label}:" in text or f"{label} :" in text for label in labels):
        marks = [m for m in _LABEL.finditer(text) if m.group(1) in labels]
        written = {m.group(1) for m in marks}
        if len(written) >= 2 or written - {"SLA"}:
            found.append(("internal_leak", _MESSAGE_LABELS, span(marks[0].start(), marks[-1].end())))
    if shingles:
        if stems is None:
            stems = stems_of(text)
        i = _rule_run(stems, shingles)
        if i is not None:
            tokens = tokenize(text)
            if len(tokens) == len(stems):
                evidence = span(tokens[i - RUN + 1][1], tokens[i + SHINGLE - 1][2])
            else:
                evidence = " ".join(stems[i - RUN + 1:i + SHINGLE])
            found.append(("internal_leak", _MESSAGE_RULES, evidence))
    return found
