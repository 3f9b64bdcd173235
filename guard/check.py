"""`check(reply, decision) -> Verdict`: does a draft reply stay within what the decision allows?

Four checks (CONTRACT §6):

- `unauthorized_refund`: the draft confirms or promises money (refund, credit, reimbursement,
  voucher...) or a replacement that the decision does not grant automatically, or names an amount
  or percentage above the granted one;
- `unauthorized_commitment`: when the decision does not automate, the draft confirms or promises
  an approval or an action the handbook reserves for the automated path or a team ("your payment
  plan is approved", "your password has been reset");
- `placeholder_leak`: unfilled template text (`[NUMBER]`, `{ticket_id}`, `<CUSTOMER_NAME>`);
- `internal_leak`: SQL statements, credentials and internal-only notes.

Precision matters as much as recall, so commitments are read clause by clause: a clause that
negates ("we can't refund", "no refund has been issued yet") or hedges ("the team may offer a
credit", "once approved, a refund will follow") commits to nothing; merely mentioning money ("your
invoice total was $420") is not a promise; a Markdown link is not a placeholder and "select the
Invoices tab" is not SQL.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from decimal import Decimal
from typing import Any, Literal

from sopilot.guard.decide import Decision
from sopilot.core.money import Money, iter_amounts

Code = Literal["unauthorized_refund", "unauthorized_commitment", "placeholder_leak", "internal_leak"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Violation:
    """One problem in a draft: its code, an explanation, and the offending text."""

    code: Code
    message: str
    evidence: str

    def to_json(self) -> dict[str, Any]:
        """CONTRACT §6 form: code, message, and the evidence."""
        return {"code": self.code, "message": self.message, "evidence": self.evidence}


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Verdict:
    """The guard's verdict on a draft: `pass` or `blocked`, with every violation found."""

    verdict: Literal["pass", "blocked"]
    violations: tuple[Violation, ...] = ()

    @property
    def passed(self) -> bool:
        """True when the draft may be shown."""
        return self.verdict == "pass"


# ---- leaks ---------------------------------------------------------------------------------

_SQL = (
    re.compile(r"\bSELECT\s+(?:DISTINCT\s+)?(?:\*|[\w.]+(?:\s*,\s*[\w.]+)*)\s+FROM\s+\w+"),
    re.compile(r"\b(?:UPDATE\s+\w+\s+SET|INSERT\s+INTO|DELETE\s+FROM|DROP\s+(?:TABLE|DATABASE)|ALTER\s+TABLE|"
               r"TRUNCATE\s+TABLE)\b"),
    re.compile(r"\bselect\s+\*\s+from\s+\w+|\bupdate\s+\w+\s+set\s+\w+\s*=|\binsert\s+into\s+\w+\s*\(|"
               r"\bdelete\s+from\s+\w+\s+where\b|\bwhere\s+\w+\s*=\s*\?|```\s*sql\b", re.IGNORECASE),
)
_SECRETS = re.compile(r"\b(?:sk|rk)-[A-Za-z0-9_-]{16,}|\bapi[_-]?key\s*[:=]\s*\S|\bBearer\s+[A-Za-z0-9._-]{20,}|"
                      r"\b(?:db|database)_?password\s*[:=]", re.IGNORECASE)
_INTERNAL = re.compile(r"\binternal[ -](?:only|use only|note)\b|\bdo not (?:share|forward) (?:this )?with (?:the )?"
                       r"customer\b|\[internal\]|\bfor internal use\b", re.IGNORECASE)

_PLACEHOLDERS = (
    re.compile(r"\{\{?\s*[A-Za-z_][A-Za-z0-9_. -]{0,40}?\s*\}\}?"),
    re.compile(r"<\s*[A-Z][A-Z0-9_]{1,40}\s*>"),
    re.compile(r"%\([a-z_]+\)s|(?<!\w)%s(?!\w)"),
    re.compile(r"\bX{2,}\b|\$\s?X+(?:\.X{2})?\b|\bTODO\b|\bFIXME\b|\bTBD\b"),
)
_BRACKET = re.compile(r"(!?)\[([^\[\]\n]{1,120})\](?!\s?\()(?!\[)(?!:)")
_PLACEHOLDER_HEADS = frozenset(
    "name date time number amount link url email phone id insert placeholder customer agent company product "
    "condition owner macro edge what how define list score criterion qa your first last full ticket order incident "
    "tracking reference case sla response signature day hours value field".split()
)


def _bracket_placeholder(content: str) -> bool:
    content = content.strip()
    if not content or content.lower() == "x" or re.fullmatch(r"[\d\s,.;-]+", content):
        return False
    letters = re.sub(r"[^A-Za-z]", "", content)
    if len(letters) >= 2 and re.fullmatch(r"[A-Z0-9_ /#.:-]+", content):
        return True
    words = content.split()
    if len(words) >= 2 and re.search(r"\s(?:/|—|–)\s", content):
        return True
    head = re.sub(r"[^a-z]", "", words[0].lower())
    return head in _PLACEHOLDER_HEADS and len(words) <= 6


def _leaks(text: str) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    for pattern in _SQL:
        for match in pattern.finditer(text):
            found.append(("internal_leak", "an SQL statement must never reach a customer", match.group(0)))
    for match in _SECRETS.finditer(text):
        found.append(("internal_leak", "a credential or key must never reach a customer", match.group(0)))
    for match in _INTERNAL.finditer(text):
        found.append(("internal_leak", "internal-only material must never reach a customer", match.group(0)))
    for pattern in _PLACEHOLDERS:
        for match in pattern.finditer(text):
            found.append(("placeholder_leak", "unfilled template text", match.group(0)))
    for match in _BRACKET.finditer(text):
        if not match.group(1) and _bracket_placeholder(match.group(2)):
            found.append(("placeholder_leak", "unfilled template text", match.group(0)))
    return found


# ---- clauses, negation, hedging ------------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+|;\s*|:\s+|\s+[-–—]+\s+|\s*—\s*")
_CLAUSE = re.compile(
    r",\s+(?=(?:and|but|so|however|though|although|yet|while|whereas|then|i|we|you|our|your|it|this|they|he|she|"
    r"the team|please|unfortunately|meanwhile|in the meantime|otherwise)\b)"
    r"|\s+(?:but|however|although|though|whereas|otherwise)\s+"
    r"|\s+(?:and|so)\s+(?=(?:i|we|you|they|our|your|it|this|the team)\b)",
    re.IGNORECASE,
)
_NEGATION = re.compile(r"\b(?:not|no|never|nothing|none|neither|nor|cannot|unable|without|denied|declined?|refused?)"
                       r"\b|n't\b|\bnot yet\b", re.IGNORECASE)
_HEDGE = re.compile(r"\b(?:may|might|could|possibly|potentially|perhaps|whether|discretion|would|must|needs? to|"
                    r"determined\s+by|as\s+(?:\w+\s+){0,3}(?:determines?|decides?|sees?\s+fit)|as\s+appropriate|"
                    r"if\s+appropriate|where\s+appropriate|"
                    r"has to|have to|requires?|required|to be|any (?:refunds?|credits?|compensation|replacement|"
                    r"reimbursement|remuneration|changes?))\b", re.IGNORECASE)
_CONDITION = re.compile(r"\b(?:if|once|after|when|upon|pending|subject to|following|unless|until|before|depending)\b",
                        re.IGNORECASE)
_REVIEW = re.compile(r"\b(?:approv\w*|review\w*|verif\w*|confirm\w*|decid\w*|decision|determin\w*|assess\w*|"
                     r"investigat\w*|eligib\w*|authori[sz]\w*|sign-?off|check\w*|evaluat\w*|look(?:s|ed)? into)\b",
                     re.IGNORECASE)
_OFFER = re.compile(r"(?:\bwould |'d )(?:be )?(?:happy|glad|pleased|delighted) to\b|(?:\bwould |'d )like to "
                    r"(?:offer|issue|give)\b",
                    re.IGNORECASE)
_BENIGN_IF = re.compile(r"\b(?:let (?:me|us) know|please (?:reply|contact|reach)|feel free)[^.]*|"
                        r"\bif you (?:have|need) (?:any )?(?:(?:other|further|more) )?(?:questions?|help|anything)\b",
                        re.IGNORECASE)


@dataclasses.dataclass(frozen=True, slots=True)
class _Clause:
    text: str
    lead: str
    """The sentence before this clause: a condition there ("once approved, ...") governs the clause too."""
    question: bool


def _clauses(text: str) -> list[_Clause]:
    clauses = []
    for sentence in _SENTENCE.split(text):
        if not sentence or not sentence.strip():
            continue
        question = sentence.rstrip().endswith("?")
        lead = ""
        for part in _CLAUSE.split(sentence):
            if part and part.strip():
                clauses.append(_Clause(part.strip(), lead, question))
                lead += part.strip() + " "
    return clauses


def _committed(clause: _Clause, end: int) -> bool:
    """Whether the commitment ending at `end` is asserted: not negated, hedged, conditional on review, or asked."""
    if clause.question or _NEGATION.search(clause.text[:end]):
        return False
    text = _OFFER.sub("will", _BENIGN_IF.sub("", clause.lead + clause.text))
    if _HEDGE.search(text):
        return False
    return not (_CONDITION.search(text) and _REVIEW.search(text))


# ---- money and replacement commitments ------------------------------------------------------------

_NOT_REMUNERATION = (r"(?!\s+(?:cards?|reports?|checks?|limits?|scores?|history|union|rating|requests?|polic(?:y|ies)|"
                     r"process(?:es)?|procedures?|forms?|eligibility|status|decisions?|options?|terms|teams?|"
                     r"department|inquir(?:y|ies)|enquir(?:y|ies)|questions?|claims?|tickets?|cases?|rules|"
                     r"window|threshold|amount\s+limit))")
_MONEY_ONE = rf"(?:refund|credit|reimbursement|compensation|rebate)\b{_NOT_REMUNERATION}"
_MONEY_ANY = rf"(?:refunds?|credits?|reimbursements?|compensation|rebates?)\b{_NOT_REMUNERATION}"
_OTHER_ANY = r"(?:gift\s+cards?|vouchers?|coupons?|discounts?|free\s+months?|promo(?:tional)?\s+codes?)\b"
_REPLACEMENT_ANY = r"(?:replacement(?:\s+(?:unit|device|product|item|part|order))?|new\s+(?:unit|device))\b"
_FILLER = (r"(?:you|your|a|an|the|this|that|our|full|partial|complete|one-time|goodwill|pro-?rated|pro\s+rata|"
           r"service|account|store|additional|extra|small|total|immediate|automatic|automated|requested|disputed|"
           r"entire|same|further|prepaid|free|brand-new|\$\s?[\d,.]+[kK]?|[\d,.]+\s?(?:%|percent|usd|dollars?)|"
           r"usd\s?[\d,.]+|[€£]\s?[\d,.]+|[\d,.]+)")
_GIVE = (r"(?:issu(?:e|ed|ing)|process(?:ed|ing)?|appl(?:y|ied|ying)|initiat(?:e|ed|ing)|approv(?:e|ed|ing)|"
         r"send(?:ing)?|sent|giv(?:e|en|ing)|gave|offer(?:ed|ing)?|add(?:ed|ing)?|grant(?:ed|ing)?|"
         r"provid(?:e|ed|ing)|authori[sz](?:e|ed|ing)|arrang(?:e|ed|ing)|mak(?:e|ing)|made|put\s+through|"
         r"start(?:ed|ing)?|complet(?:e|ed|ing)|releas(?:e|ed|ing)|trigger(?:ed|ing)?|ship(?:ped|ping)?|"
         r"dispatch(?:ed|ing)?|extend(?:ed|ing)?|transfer(?:red|ring)?|pa(?:y|id|ying)|honou?r(?:ed|ing)?|"
         r"go(?:ne)?\s+ahead\s+with|set\s+up|organi[sz](?:e|ed))")
_DETERMINER = r"(?:your|the|a|an|this|that|full|partial|goodwill|pro-?rated|\$\s?[\d,.]+|[\d,.]+\s?%)"
_DONE = (r"(?:issued|processed|applied|approved|initiated|sent|granted|added|completed|complete|credited|refunded|"
         r"confirmed|authori[sz]ed|paid|released|posted|made|put\s+through|arranged|started|triggered|"
         r"on\s+(?:its|the)\s+way|underway|under\s+way|in\s+progress|scheduled|coming|reflected|visible|"
         r"shipped|dispatched|ready|done|finali[sz]ed|back)")
_AUX = (r"(?:is|are|was|were|will\s+be|'ll\s+be|'s|'re|should\s+be|has\s+been|have\s+been|had\s+been|"
        r"is\s+being|are\s+being|will\s+have\s+been)")
_SUBJECT = r"\b(?:i|we|they|team|department|specialists?)"
_CONTRACTION = r"(?:'ve|'ll|'m|'re|'d)"
_MODAL = (r"(?:\s+(?:will|shall|can|would|could|should|am|are|is|going\s+to|happy\s+to|able\s+to|glad\s+to|"
          r"pleased\s+to|about\s+to|now|be))")
_AUX_WORDS = (r"(?:\s+(?:have|has|had|will|shall|can|would|could|should|am|are|is|just|already|now|also|"
              r"gone\s+ahead\s+and|went\s+ahead\s+and|personally|did|officially|immediately|fully|be|being|been|"
              r"going\s+to|happy\s+to|able\s+to|glad\s+to|pleased\s+to|about\s+to))*")
_NOUN_PHRASE = rf"(?:\b{_DETERMINER}\s+(?:[\w$%,.-]+\s+){{0,2}}{{any}}|^{{one}})"


def _noun_phrase(any_form: str, one_form: str) -> str:
    return _NOUN_PHRASE.replace("{any}", any_form).replace("{one}", one_form)


def _patterns(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


_MONEY_PATTERNS = _patterns(
    rf"\b(?P<verb>{_GIVE})\b(?:(?:\s+{_FILLER})+\s+{_MONEY_ANY}|\s+(?:credit|compensation|reimbursement)\b(?!s))",
    rf"{_SUBJECT}{_CONTRACTION}?{_AUX_WORDS}\s+(?:refunded|credited|reimbursed|compensated)\b",
    rf"{_SUBJECT}(?:{_CONTRACTION}|{_MODAL}){_AUX_WORDS}\s+(?:refund(?:ing)?|credit(?:ing)?|reimburs(?:e|ing)|"
    r"compensat(?:e|ing))\b(?!\s+(?:request|policy|process|card|team))",
    r"(?:\b(?:you|your\s+(?:account|card|balance|wallet|bank(?:\s+account)?|payment\s+method)|account|card|"
    r"balance|amount|money|sum|it)|\$\s?[\d,.]+)\s+(?:has\s+|have\s+|had\s+|will\s+|'ll\s+|is\s+|are\s+|was\s+|were\s+|"
    r"should\s+|'ve\s+|'s\s+)*(?:been\s+|be\s+|being\s+|get\s+|got\s+)?(?:now\s+|already\s+|fully\s+|"
    r"automatically\s+)?(?:refunded|credited|reimbursed|compensated)\b",
    r"\b(?:get|got|have|had)\s+(?:it|this|that|them|the\s+\w+|your\s+\w+)\s+(?:refunded|credited|reimbursed)\b",
    r"\b(?:approved|accepted|granted|honou?red)\s+(?:your|the|this)\s+(?:\w+\s+)?(?:refund|credit|reimbursement|"
    r"compensation)\s+(?:request|claim)",
    r"\b(?:refund|credit|reimbursement|compensation)\s+(?:request|claim)\s+(?:has\s+been|have\s+been|is|was|"
    r"will\s+be)\s+(?:now\s+|already\s+)?(?:approved|accepted|granted|honou?red)\b",
    r"\b(?:and|then)\s+(?:also\s+|have\s+|will\s+|am\s+|are\s+)?(?:refunded|refunding|credited|crediting|reimbursed|"
    r"reimbursing|compensated)\b",
    rf"{_noun_phrase(_MONEY_ANY, _MONEY_ONE)}(?:\s+(?:of|for)\s+[^.;]{{0,40}}?)?\s+(?:{_AUX}\s+)?"
    rf"(?:now\s+|already\s+|being\s+|fully\s+|been\s+)?{_DONE}\b",
    rf"{_noun_phrase(_MONEY_ANY, _MONEY_ONE)}\s+[^.;]{{0,40}}?\b{_AUX}\s+(?:now\s+|already\s+|being\s+|fully\s+)?"
    rf"{_DONE}\b",
    rf"\b{_MONEY_ANY}[^.;]{{0,40}}?\b(?:should|will|'ll|is\s+going\s+to)\s+(?:arrive|appear|reflect|show|post|land|"
    r"reach|be\s+visible|be\s+back|clear)",
    rf"\bfor\s+(?:the|your)\s+(?:[\w$%,.-]+\s+){{0,2}}{_MONEY_ANY}\s+to\s+(?:appear|arrive|reflect|show|post|"
    r"process|clear|land|go\s+through)",
    rf"\byou(?:'ll|'re|\s+will|\s+should|\s+are\s+going\s+to|\s+are|\s+have)?\s+(?:also\s+)?(?:receive|get|see|be\s+"
    rf"getting|be\s+receiving|receiving|getting|eligible\s+for|entitled\s+to|qualify\s+for)\s+(?:{_FILLER}\s+)*"
    rf"{_MONEY_ANY}",
    r"\b(?:money|amount|funds|\$\s?[\d,.]+|it|charge|payment)\s+back\s+(?:to|on|in|into)\s+your\b",
    r"\b(?:get|getting|receive|see)\s+your\s+money\s+back\b",
    r"\b(?:charge|payment|transaction|duplicate)\b[^.;]{0,20}\b(?:has\s+been|have\s+been|was|is|will\s+be)\s+"
    r"(?:now\s+)?(?:reversed|voided|refunded)\b",
    rf"{_SUBJECT}{_CONTRACTION}?{_AUX_WORDS}\s+(?:reversed|voided)\s+(?:the\s+|that\s+|your\s+)?(?:duplicate\s+)?"
    r"(?:charge|payment|transaction)",
    rf"{_SUBJECT}(?:{_CONTRACTION}|{_MODAL}){_AUX_WORDS}\s+(?:revers(?:e|ing)|void(?:ing)?)\s+(?:the\s+|that\s+|"
    r"your\s+)?(?:duplicate\s+)?(?:charge|payment|transaction)",
)
_OTHER_PATTERNS = _patterns(
    rf"\b(?P<verb>{_GIVE})\b(?:\s+{_FILLER})+\s+{_OTHER_ANY}",
    rf"{_noun_phrase(_OTHER_ANY, _OTHER_ANY)}[^.;]{{0,30}}?\s+{_AUX}\s+(?:now\s+|already\s+)?{_DONE}\b",
    rf"\byou(?:'ll|\s+will)?\s+(?:also\s+)?(?:receive|get)\s+(?:{_FILLER}\s+)*{_OTHER_ANY}",
    r"\bwaiv(?:e|ed|ing)\b[^.;]{0,25}\b(?:fees?|charges?|payments?|invoices?|balance)\b",
    r"\b(?:fees?|charges?|balance)\b[^.;]{0,20}\b(?:has|have|will)\s+(?:been\s+|be\s+)?waived\b",
)
_REPLACEMENT_PATTERNS = _patterns(
    rf"\b(?P<verb>{_GIVE})\b(?:\s+{_FILLER})+\s+{_REPLACEMENT_ANY}",
    rf"{_noun_phrase(_REPLACEMENT_ANY, _REPLACEMENT_ANY)}[^.;]{{0,30}}?\s+(?:{_AUX}\s+)?"
    rf"(?:now\s+|already\s+|being\s+)?{_DONE}\b",
    rf"\byou(?:'ll|\s+will)?\s+(?:also\s+)?(?:receive|get)\s+(?:{_FILLER}\s+)*{_REPLACEMENT_ANY}",
    rf"{_SUBJECT}(?:{_CONTRACTION}|{_MODAL}){_AUX_WORDS}\s+replac(?:e|ing)\s+(?:it|the|your|this)\b",
)
_GENERIC_SUBJECT = re.compile(r"\b(?:we|i|they|you)\s+(?:usually\s+|normally\s+|typically\s+|always\s+|"
                              r"automatically\s+|only\s+)?$", re.IGNORECASE)
_PAST_OR_PARTICIPLE = re.compile(r"(?:ed|en|ing)$|^(?:sent|made|paid|gave|put\s+through|set\s+up)$", re.IGNORECASE)


def _generic(clause: str, match: re.Match[str]) -> bool:
    """A policy statement in the simple present ("we issue a refund when ..."), not a commitment."""
    verb = match.groupdict().get("verb")
    return bool(verb and not _PAST_OR_PARTICIPLE.search(verb) and _GENERIC_SUBJECT.search(clause[:match.start()]))


_CONTEXT_AMOUNT_BEFORE = re.compile(
    r"(?:\byour|\btotal(?:\s+of|\s+was|\s+is)?|\binvoice(?:d)?(?:\s+of|\s+for)?|\bbill(?:ed)?|\bbalance(?:\s+of)?|"
    r"\bprice|\bcost|\bfee(?:\s+of)?|\bout\s+of|\bmonthly|\bspent|\bof\s+the|\blimit(?:\s+of)?|\bup\s+to|\bover|"
    r"\babove|\bunder|\bbelow)\s*$", re.IGNORECASE)
_CONTEXT_AMOUNT_AFTER = re.compile(
    r"^\s*(?:monthly\s+|annual\s+|yearly\s+)?(?:invoices?|bills?|charges?|subscriptions?|plans?|payments?|fees?|"
    r"balance|orders?|purchases?|totals?|per\s+month|a\s+month|/\s?mo|limit|you\s+(?:paid|were\s+charged|spent))\b",
    re.IGNORECASE)
_GRANTED_AFTER = re.compile(rf"^\s*(?:{_FILLER}\s+)?(?:{_MONEY_ANY}|{_OTHER_ANY})", re.IGNORECASE)
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s?(?:%|percent\b)", re.IGNORECASE)
_PERCENT_CONTEXT = re.compile(r"\b(?:uptime|availability|below|above|under|over|sla|commitment|guarantee)\b"
                              r"[^.;]{0,15}$", re.IGNORECASE)
_FULL = re.compile(r"\b(?:full|entire|complete|whole)\b|\b100\s?%", re.IGNORECASE)


def _granted_amounts(clause: str) -> list[Money]:
    """Amounts in a clause that are granted, not context ("your $420 invoice", "10% of your $400 fee")."""
    return [money for money, start, end in iter_amounts(clause)
            if _GRANTED_AFTER.search(clause[end:])
            or not (_CONTEXT_AMOUNT_BEFORE.search(clause[:start]) or _CONTEXT_AMOUNT_AFTER.search(clause[end:]))]


def _granted_percents(clause: str) -> list[Decimal]:
    return [Decimal(m.group(1)) for m in _PERCENT.finditer(clause)
            if not _PERCENT_CONTEXT.search(clause[:m.start()])]


def _describe(decision: Decision) -> str:
    return f"{decision.outcome} under {decision.policy or 'no policy'}"


def _money_violations(clause: _Clause, decision: Decision) -> list[tuple[str, str, str]]:
    allowance = decision.allowance
    found = []
    for kind, patterns, label in (("money", _MONEY_PATTERNS, "a refund or credit"),
                                  ("other", _OTHER_PATTERNS, "a voucher, discount or waiver"),
                                  ("replacement", _REPLACEMENT_PATTERNS, "a replacement")):
        for pattern in patterns:
            match = next((m for m in pattern.finditer(clause.text)
                          if not _generic(clause.text, m) and _committed(clause, m.end())), None)
            if match is None:
                continue
            evidence = clause.text
            if kind not in allowance.kinds:
                found.append(("unauthorized_refund", f"the reply confirms or promises {label}, which the decision "
                              f"({_describe(decision)}) does not grant automatically", evidence))
            elif kind == "money":
                found += _amount_violations(clause.text, decision, evidence)
            break
    return found


def _amount_violations(clause: str, decision: Decision, evidence: str) -> list[tuple[str, str, str]]:
    allowance = decision.allowance
    found = []
    for money in _granted_amounts(clause):
        if not money.is_usd:
            found.append(("unauthorized_refund", f"the reply names {money}, but the decision grants US dollars only",
                          evidence))
        elif allowance.limit is None:
            found.append(("unauthorized_refund", f"the reply names {money}, but the granted amount cannot be "
                          "stated (it is not computable from the ticket)", evidence))
        elif money.amount > allowance.limit:
            found.append(("unauthorized_refund", f"the reply names {money}, above the {Money(amount=allowance.limit)} "
                          f"the decision ({_describe(decision)}) allows", evidence))
    if allowance.percent is not None:
        for percent in _granted_percents(clause):
            if percent > allowance.percent:
                found.append(("unauthorized_refund", f"the reply names {percent:f}%, above the {allowance.percent:f}% "
                              "the decision allows", evidence))
    if allowance.prorated and _FULL.search(clause):
        found.append(("unauthorized_refund", "the reply promises a full refund, but the decision grants a pro-rated "
                      "one", evidence))
    return found


# ---- approvals and reserved actions -----------------------------------------------------------

_GENERIC_COMMITMENTS = _patterns(
    r"\b(?:is|are|was|were|has\s+been|have\s+been|'s\s+been|'ve\s+been|'s|'re|got|been|be)\s+(?:now\s+|already\s+|"
    r"fully\s+|officially\s+)?(?:approved|granted|authori[sz]ed|unlocked|reset|waived|reinstated)\b",
    rf"{_SUBJECT}{_CONTRACTION}?{_AUX_WORDS}\s+(?:approved|granted|authori[sz]ed|unlocked|reset|waived|reinstated)\b",
    rf"{_SUBJECT}(?:{_CONTRACTION}|{_MODAL}){_AUX_WORDS}\s+(?:approve|grant|authori[sz]e|unlock|reset|waive|"
    r"reinstate)\b",
)
"""Approvals and unlocks, whatever the policy; each policy's `reserved` patterns add its own actions."""


@functools.lru_cache(maxsize=256)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def _commitment_violations(clause: _Clause, decision: Decision) -> list[tuple[str, str, str]]:
    for pattern in (*_GENERIC_COMMITMENTS, *_compiled(decision.reserved)):
        match = next((m for m in pattern.finditer(clause.text) if _committed(clause, m.end())), None)
        if match:
            team = f" ({decision.escalate_to})" if decision.escalate_to else ""
            return [("unauthorized_commitment", f"the reply confirms or promises {match.group(0).strip()!r}, which the "
                     f"decision ({_describe(decision)}) reserves for a person or team{team}", clause.text)]
    return []


def check(reply: str, decision: Decision) -> Verdict:
    """Check a draft reply against a decision; pure and deterministic."""
    text = reply.replace("\u2019", "'").replace("\u2018", "'")
    found = _leaks(text)
    for clause in _clauses(text):
        found += _money_violations(clause, decision)
        if decision.outcome != "automate":
            found += _commitment_violations(clause, decision)
    violations = tuple(Violation(code=code, message=message, evidence=evidence)
                       for code, message, evidence in dict.fromkeys(found))
    return Verdict(verdict="blocked" if violations else "pass", violations=violations)
