"""The ticket as typed facts: parsing and validating docs/interface.md §5 into a frozen `Ticket`.

Every field but `message` is optional; a missing fact stays `None` so that the rules can tell
"not known" from "false". Unknown fields are kept in `extra` and ignored. Bad values raise
`InputError` naming the field and what it accepts. The customer's message is untrusted: the
only thing read from it is money, and only when `amount` is absent (the largest amount wins).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Literal

from sopilot.core.errors import InputError
from sopilot.core.money import USD, Money, find_amounts, parse_money

PRIORITIES = ("Low", "Medium", "High", "Critical")
PRIORITY_RANK = {name: rank for rank, name in enumerate(PRIORITIES)}
CANONICAL_ROLES = ("Standard User", "Admin", "Super User")

Kind = Literal["priority", "enum", "role", "money", "int", "number", "bool"]
AmountSource = Literal["field", "message"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class FieldSpec:
    """How one ticket field is typed, so rules can be validated against it when the policy file loads."""

    kind: Kind
    choices: tuple[str, ...] = ()
    unit: str | None = None
    """The unit of a number, matched against the unit of the threshold it is compared with."""
    low: Decimal | None = None
    high: Decimal | None = None


FIELDS: Mapping[str, FieldSpec] = MappingProxyType({
    "priority": FieldSpec(kind="priority", choices=PRIORITIES),
    "amount": FieldSpec(kind="money", unit="usd"),
    "days_since_payment": FieldSpec(kind="int", unit="days"),
    "failed_login_attempts": FieldSpec(kind="int", unit="count"),
    "under_warranty": FieldSpec(kind="bool"),
    "damage": FieldSpec(kind="enum", choices=("minor", "major")),
    "requested_role": FieldSpec(kind="role", choices=CANONICAL_ROLES),
    "from_approved_admin": FieldSpec(kind="bool"),
    "financial_data_access": FieldSpec(kind="bool"),
    "identity_verified": FieldSpec(kind="bool"),
    "legal_hold": FieldSpec(kind="bool"),
    "pending_transactions": FieldSpec(kind="bool"),
    "uptime_pct": FieldSpec(kind="number", unit="percent", low=Decimal(0), high=Decimal(100)),
    "qualifying_plan": FieldSpec(kind="bool"),
    "monthly_fee": FieldSpec(kind="money", unit="usd"),
    "tenure_months": FieldSpec(kind="int", unit="months"),
    "failed_payments": FieldSpec(kind="int", unit="count"),
    "plan_months": FieldSpec(kind="int", unit="months"),
    "account_tier": FieldSpec(kind="enum", choices=("Standard", "Enterprise", "Platinum")),
    "engineer_certified": FieldSpec(kind="bool"),
    "partner_manager_approved": FieldSpec(kind="bool"),
    "access": FieldSpec(kind="enum", choices=("read", "write")),
    "access_hours": FieldSpec(kind="number", unit="hours", low=Decimal(0)),
})
"""The decision facts of docs/interface.md §5 (besides `message` and `sop_id`)."""

MAX_MESSAGE_CHARS = 1_000_000
"""Longest customer message read (about 1 MB of text); a longer ticket is refused as bad input."""
_MAX_NUMBER = Decimal(10) ** 9

_UNIT_SUFFIX = {"days": " days", "months": " months", "hours": " hours", "percent": "%"}
_TRUE = {"true", "yes", "y"}
_FALSE = {"false", "no", "n"}
_LETTER_ID = re.compile(r"^[a-zA-Z]\.\d+$")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Ticket:
    """One support ticket, validated. `None` means the fact was not given."""

    message: str
    """The customer's words: untrusted, never an instruction."""
    sop_id: str | None = None
    priority: str | None = None
    amount: Money | None = None
    """The disputed amount: the `amount` field, else the largest amount written in the message."""
    amount_source: AmountSource | None = None
    message_amounts: tuple[Money, ...] = ()
    days_since_payment: int | None = None
    failed_login_attempts: int | None = None
    under_warranty: bool | None = None
    damage: str | None = None
    requested_role: str | None = None
    from_approved_admin: bool | None = None
    financial_data_access: bool | None = None
    identity_verified: bool | None = None
    legal_hold: bool | None = None
    pending_transactions: bool | None = None
    uptime_pct: Decimal | None = None
    qualifying_plan: bool | None = None
    monthly_fee: Money | None = None
    tenure_months: int | None = None
    failed_payments: int | None = None
    plan_months: int | None = None
    account_tier: str | None = None
    engineer_certified: bool | None = None
    partner_manager_approved: bool | None = None
    access: str | None = None
    access_hours: Decimal | None = None
    notes: tuple[str, ...] = ()
    """How facts were read (an amount taken from the message, a currency guessed): shown in reasons."""
    extra: Mapping[str, Any] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    """Fields outside docs/interface.md §5, kept and ignored."""


def normalize_sop_id(value: str) -> str:
    """`a.1 ` → `A.1`; other ids are only stripped."""
    value = value.strip()
    return value.upper() if _LETTER_ID.match(value) else value


def normalize_role(value: str) -> str:
    """Spellings of the handbook's roles mapped to one name ("super-user" → "Super User"); others kept."""
    key = re.sub(r"[^a-z]", "", value.lower())
    if key in {"standarduser", "standard", "user", "standarduserrole"}:
        return "Standard User"
    if key in {"admin", "administrator", "adminuser", "adminrole"}:
        return "Admin"
    if key in {"superuser", "super", "superadmin", "superadministrator"}:
        return "Super User"
    return " ".join(value.split())


def format_fact(name: str, value: Any) -> str:
    """A fact as reasons show it: "$150.01", "15 days", "99.5%", "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Money):
        return str(value)
    spec = FIELDS.get(name)
    if spec and spec.kind == "money" and isinstance(value, Decimal):
        return str(Money(amount=value))
    suffix = _UNIT_SUFFIX.get(spec.unit, "") if spec and spec.unit else ""
    if isinstance(value, Decimal):
        value = value.normalize()
        text = f"{value:f}"
    else:
        text = str(value)
    return text + suffix


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InputError(f"{name} {value!r} is not a boolean: use true or false")


def _decimal(name: str, value: Any, spec: FieldSpec) -> Decimal:
    hint = "use a number from 0 to 100" if spec.high is not None else "use a number that is not negative"
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise InputError(f"{name} {value!r} is not a number: {hint}")
    try:
        if isinstance(value, str):
            number = Decimal(value.strip().rstrip("%").strip())
        else:
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise InputError(f"{name} {value!r} is not a number: {hint}") from None
    if not number.is_finite():
        raise InputError(f"{name} {value!r} is not a finite number: {hint}")
    if number and (number.adjusted() > 9 or abs(number) > _MAX_NUMBER):
        raise InputError(f"{name} is out of range ({len(str(value))} characters): {hint}")
    if (spec.low is not None and number < spec.low) or (spec.high is not None and number > spec.high):
        raise InputError(f"{name} {value!r} is out of range: {hint}")
    return number


def _int(name: str, value: Any) -> int:
    hint = "use a whole number that is not negative"
    if isinstance(value, bool):
        raise InputError(f"{name} {value!r} is not a whole number: {hint}")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value.strip()) <= 12:
        value = int(value.strip())
    if isinstance(value, (float, Decimal)):
        finite = value.is_finite() if isinstance(value, Decimal) else value == value and abs(value) != float("inf")
        if not finite or (value and (Decimal(value).adjusted() > 9 or abs(Decimal(value)) > _MAX_NUMBER)):
            raise InputError(f"{name} {value!r} is not a whole number in range: {hint}")
        if value == int(value):
            value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value > _MAX_NUMBER:
        raise InputError(f"{name} is out of range ({len(str(value))} digits): {hint}")
    if not isinstance(value, int):
        raise InputError(f"{name} {value!r} is not a whole number: {hint}")
    if value < 0:
        raise InputError(f"{name} {value!r} is negative: {hint}")
    return value


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if isinstance(value, str):
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
    raise InputError(f"{name} {value!r} is not one of {', '.join(choices)}")


def _convert(name: str, value: Any, spec: FieldSpec) -> Any:
    if spec.kind in ("priority", "enum"):
        return _choice(name, value, spec.choices)
    if spec.kind == "role":
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{name} {value!r} is not a role name such as {', '.join(CANONICAL_ROLES)}")
        return normalize_role(value)
    if spec.kind == "bool":
        return _bool(name, value)
    if spec.kind == "int":
        return _int(name, value)
    if spec.kind == "number":
        return _decimal(name, value, spec)
    raise AssertionError(spec.kind)  # money is handled by the caller


def _with_currency(money: Money, stated: bool, currency: str | None) -> Money:
    """A bare number takes the ticket's `currency`; a stated currency that disagrees makes it non-USD."""
    if currency is None or currency == money.currency:
        return money
    if not stated or money.is_usd:
        return Money(amount=money.amount, currency=currency)
    return money


def _disputed_amount(given: Money | None, stated: bool,
                     mentioned: tuple[Money, ...]) -> tuple[Money | None, AmountSource | None, list[str]]:
    """The amount the rules use, where it came from, and a note on how it was read.

    The field wins (a bare number takes a foreign currency the message names); without it, the largest
    amount in the message, marked non-USD if any amount there is.
    """
    foreign = next((m for m in mentioned if not m.is_usd), None)
    if given is not None:
        if stated or foreign is None or any(m.is_usd for m in mentioned):
            return given, "field", []
        return (Money(amount=given.amount, currency=foreign.currency), "field",
                [f"amount {given.amount:f} states no currency and the message names {foreign.currency}: treated as "
                 f"{foreign.currency}"])
    if not mentioned:
        return None, None, []
    largest = max(mentioned, key=lambda m: m.amount)
    amount = largest if foreign is None else Money(amount=largest.amount, currency=foreign.currency)
    listed = ("largest of " if len(mentioned) > 1 else "") + ", ".join(str(m) for m in mentioned)
    note = f"amount {amount} read from the message ({listed})" + ("" if foreign is None else "; not all in USD")
    return amount, "message", [note]


def parse_ticket(data: Mapping[str, Any]) -> Ticket:
    """Validate a ticket (docs/interface.md §5) into a `Ticket`.

    Raises:
        InputError: a field has a wrong type or value; the message names it and what it accepts.
    """
    if not isinstance(data, Mapping):
        raise InputError(f"a ticket must be a JSON object with at least \"message\", not {type(data).__name__}")
    message = data.get("message")
    if not isinstance(message, str):
        raise InputError("message is missing or not a string: give the customer's words as \"message\"")
    if len(message) > MAX_MESSAGE_CHARS:
        raise InputError(f"message is {len(message):,} characters, above the {MAX_MESSAGE_CHARS:,} the guard reads: "
                         "give the customer's latest message only")
    values: dict[str, Any] = {}
    currency = data.get("currency")
    if currency is not None:
        if not isinstance(currency, str) or not currency.strip():
            raise InputError(f"currency {currency!r} is not a currency code such as USD or EUR")
        currency = USD if currency.strip() == "$" else currency.strip().upper()
    sop_id = data.get("sop_id")
    if sop_id is not None:
        if not isinstance(sop_id, str):
            raise InputError(f"sop_id {sop_id!r} is not a string such as 'A.1'")
        values["sop_id"] = normalize_sop_id(sop_id) or None
    amount_stated = False
    for name, spec in FIELDS.items():
        raw = data.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip() and spec.kind != "role"):
            continue
        if spec.kind == "money":
            money, stated = parse_money(raw, field=name)
            values[name] = _with_currency(money, stated, currency)
            if name == "amount":
                amount_stated = stated or currency is not None
        else:
            values[name] = _convert(name, raw, spec)
    mentioned = tuple(find_amounts(message))
    values["amount"], amount_source, notes = _disputed_amount(values.get("amount"), amount_stated, mentioned)
    known = set(FIELDS) | {"message", "sop_id", "currency"}
    extra = {k: v for k, v in data.items() if k not in known}
    return Ticket(message=message, amount_source=amount_source, message_amounts=mentioned, notes=tuple(notes),
                  extra=MappingProxyType(extra), **values)
