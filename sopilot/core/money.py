"""Money as `Decimal` plus a currency, and the ways tickets and replies write it.

Amounts arrive as numbers or strings ("$1,250.00", "USD 180", "180 dollars", "€90"). Only an
amount that is unambiguously in US dollars can be compared with the handbook's limits; anything
else is kept with its currency so the rules can refuse to automate on it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from sopilot.core.errors import InputError

USD = "USD"
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal(10) ** 12
"""Largest amount a ticket may state (a trillion); larger values are refused before any arithmetic."""


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"

# Prefixes and suffixes that name a currency. A `$` preceded by a letter (C$, A$, HK$) is not USD.
_PREFIXES = {
    "us$": USD, "usd": USD, "$": USD,
    "€": "EUR", "eur": "EUR", "£": "GBP", "gbp": "GBP", "₹": "INR", "inr": "INR", "rs": "INR", "rs.": "INR",
    "¥": "JPY", "jpy": "JPY", "c$": "CAD", "ca$": "CAD", "cad": "CAD", "a$": "AUD", "au$": "AUD", "aud": "AUD",
    "nz$": "NZD", "nzd": "NZD", "hk$": "HKD", "hkd": "HKD", "s$": "SGD", "sgd": "SGD", "r$": "BRL", "brl": "BRL",
    "chf": "CHF", "mxn": "MXN",
}
_SUFFIXES = {
    "$": USD, "us$": USD, "€": "EUR", "£": "GBP", "usd": USD, "dollar": USD, "dollars": USD, "us dollars": USD,
    "bucks": USD,
    "eur": "EUR", "euro": "EUR", "euros": "EUR", "gbp": "GBP", "pound": "GBP", "pounds": "GBP",
    "inr": "INR", "rupee": "INR", "rupees": "INR", "jpy": "JPY", "yen": "JPY", "cad": "CAD", "aud": "AUD",
    "canadian dollars": "CAD", "australian dollars": "AUD", "singapore dollars": "SGD", "hong kong dollars": "HKD",
    "chf": "CHF", "mxn": "MXN", "nzd": "NZD", "sgd": "SGD", "hkd": "HKD", "brl": "BRL",
}
_PRE = "|".join(re.escape(p) for p in sorted(_PREFIXES, key=len, reverse=True))
_SUF = "|".join(re.escape(s) for s in sorted(_SUFFIXES, key=len, reverse=True))
_NUM = (r"\d{1,3}(?:,\d{3})+(?:\.\d{1,6})?"      # 1,250.00
        r"|[1-9]\d{0,2}(?:\.\d{3})+(?:,\d{1,2})?(?!\d)"  # 1.400,00 (read as the larger amount: the cautious one)
        r"|\d{1,15},\d{1,2}(?![\d,])"              # 60,00
        r"|\d{1,15}(?:\.\d{1,6})?")                # 150.01; longer numbers are not amounts a reply can grant
_MULT = r"(?:\s?(?P<mult>[kK]|million|thousand)\b)?"
_MENTION = re.compile(
    rf"(?:(?<![A-Za-z])(?P<pre>{_PRE})\s?(?P<num1>{_NUM}){_MULT.replace('mult', 'mult1')})"
    rf"|(?:(?<![\w.,])(?P<num2>{_NUM}){_MULT.replace('mult', 'mult2')}\s?(?P<suf>{_SUF})(?!\w))",
    re.IGNORECASE,
)
_WHOLE = re.compile(
    rf"^\s*(?P<pre>{_PRE})?\s*(?P<num>-?\s*(?:{_NUM})){_MULT}\s*(?P<suf>{_SUF})?\s*$", re.IGNORECASE
)
_MULTIPLIERS = {"k": Decimal(1000), "thousand": Decimal(1000), "million": Decimal(1_000_000)}


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Money:
    """An amount of money; `currency` is an ISO code, `USD` unless the text said otherwise."""

    amount: Decimal
    currency: str = USD

    @property
    def is_usd(self) -> bool:
        """Whether the amount can be compared with the handbook's dollar limits."""
        return self.currency == USD

    def __str__(self) -> str:
        return f"${self.amount:,.2f}" if self.is_usd else f"{self.currency} {self.amount:,.2f}"


def cents(value: Decimal) -> Decimal:
    """`value` rounded to the cent (half up, as invoices do)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _number(text: str, mult: str | None) -> Decimal:
    text = text.replace(" ", "")
    if re.fullmatch(r"[1-9]\d{0,2}(?:\.\d{3})+(?:,\d{1,2})?|\d+,\d{1,2}", text):
        text = text.replace(".", "").replace(",", ".")
    value = Decimal(text.replace(",", ""))
    return value * _MULTIPLIERS[mult.lower()] if mult else value


def _currency(pre: str | None, suf: str | None) -> str | None:
    codes = {c for c in (_PREFIXES.get((pre or "").lower()), _SUFFIXES.get((suf or "").lower())) if c}
    if len(codes) > 1:
        return "MIXED"
    return codes.pop() if codes else None


def parse_money(value: object, *, field: str = "amount") -> tuple[Money, bool]:
    """Parse a ticket's money field; return the amount and whether its currency was stated.

    Raises:
        InputError: `value` is not a non-negative amount; the message names `field` and the forms accepted.
    """
    hint = "use a number or a string such as '$1,250.00', 'USD 180' or '180 dollars'"
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise InputError(f"{field} {_short(value)} is not an amount of money: {hint}")
    stated = False
    currency = USD
    try:
        if isinstance(value, str):
            match = _WHOLE.match(value)
            if not match:
                raise InputError(f"{field} {_short(value)} is not an amount of money: {hint}")
            amount = _number(match["num"], match["mult"])
            code = _currency(match["pre"], match["suf"])
            if code:
                currency, stated = code, True
        else:
            amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise InputError(f"{field} {_short(value)} is not an amount of money: {hint}") from None
    if not amount.is_finite():
        raise InputError(f"{field} {value!r} is not a finite amount: {hint}")
    if amount and (amount.adjusted() > 12 or amount.adjusted() < -6 or abs(amount) > MAX_AMOUNT):
        raise InputError(f"{field} {_short(value)} is out of range: give an amount from 0.01 to {MAX_AMOUNT:,}")
    if amount < 0:
        raise InputError(f"{field} {value!r} is negative: give the disputed amount as a positive number")
    return Money(amount=amount, currency=currency), stated


def iter_amounts(text: str) -> Iterator[tuple[Money, int, int]]:
    """Every amount written with a currency in `text`, with its span ("$40", "USD 180", "€90", "$5k")."""
    for match in _MENTION.finditer(text):
        if match["num1"] is not None:
            num, mult, code = match["num1"], match["mult1"], _currency(match["pre"], None)
        else:
            num, mult, code = match["num2"], match["mult2"], _currency(None, match["suf"])
        try:
            yield Money(amount=_number(num, mult), currency=code or USD), match.start(), match.end()
        except InvalidOperation:
            continue


def find_amounts(text: str) -> list[Money]:
    """Every amount written with a currency in `text`, in order."""
    return [money for money, _, _ in iter_amounts(text)]


def format_amount(value: Decimal) -> str:
    """A dollar amount as the decision JSON writes it: two decimals, no separators ("1250.00")."""
    return f"{cents(value):.2f}"
