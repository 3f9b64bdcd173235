"""The one normalisation before every check: what the guard reads, and how evidence finds the original."""

from __future__ import annotations

import pytest
from sopilot.guard.normalize import normalize

P = pytest.param


@pytest.mark.parametrize(("original", "prose"), [
    P("I've re\u200bfunded $420.", "I've refunded $420.", id="zero-width space"),
    P("Your ref\u200dund", "Your refund", id="zero-width joiner"),
    P("refu\x00nd", "refund", id="NUL"),
    P("re\u00adfunded", "refunded", id="soft hyphen"),
    P("\u202erefunded\u202c", "refunded", id="bidi controls"),
    P("A r\u0435fund", "A refund", id="Cyrillic e"),
    P("\u0430pproved", "approved", id="Cyrillic a"),
    P("A \uff52\uff45\uff46\uff55\uff4e\uff44 of \uff04160", "A refund of $160", id="full-width letters and dollar"),
    P("We&nbsp;have&nbsp;refunded", "We have refunded", id="no-break space entity"),
    P("&#36;420 &dollar;420&period;00 &#x24;99", "$420 $420.00 $99", id="numeric and named entities"),
    P("we've <b>refunded</b> <span class=\"x\">$420</span>", "we've refunded $420", id="inline tags"),
    P("<strong>re</strong><strong>fund</strong>", "refund", id="word split by tags"),
    P("**Good news:** we've **refunded** it", "Good news: we've refunded it", id="Markdown bold"),
    P("We have *re*funded", "We have refunded", id="emphasis inside a word"),
    P("see the [UPS tracking page](https://ups.example/t?x=1)", "see the UPS tracking page", id="Markdown link"),
    P("We have re-\nfunded the $333", "We have refunded the $333", id="word hyphenated across lines"),
    P("We have refunded\nthe $500 to your original\npayment method.", "We have refunded the $500 to your original "
      "payment method.", id="broken lines re-joined"),
    P("Hi Sam,\n\nDone.\n- one\n- two", "Hi Sam,\n\nDone.\n- one\n- two", id="paragraphs and lists kept"),
    P("caf\u00e9 it\u2019s", "cafe it's", id="diacritics and typographic apostrophe"),
])
def test_normalisation_undoes_disguises(original, prose):
    assert normalize(original).prose == prose


def test_placeholders_survive_in_the_plain_text():
    norm = normalize("Hello __NAME__, <CUSTOMER_NAME> and <b>bold</b>")
    assert "__NAME__" in norm.plain and "<CUSTOMER_NAME>" in norm.plain and "<b>" not in norm.plain


@pytest.mark.parametrize("original", [
    "Good news: I've re\u200bfunded the full $420 to your card.",
    "**Good news:** we've **refunded** your **$420** in full.",
    "We&nbsp;have&nbsp;refunded&nbsp;$275 to your card.",
    "A r\u0435fund of $380 has been sent.",
])
def test_evidence_quotes_the_original_characters(original):
    norm = normalize(original)
    start = norm.prose.index("efund") - 1
    quoted = norm.original_span(start, start + len("refund"))
    assert quoted in original
    assert quoted.replace("\u200b", "").replace("\u0435", "e").startswith("ref")


def test_plain_ascii_text_is_its_own_map():
    norm = normalize("Thanks, we will be in touch.")
    assert norm.prose == norm.original and norm.prose_map is None and norm.original_span(0, 6) == "Thanks"


def test_normalisation_is_linear_in_memory():
    text = "We have **refunded** <b>the</b> &amp; caf\u00e9 re\u200bfund\n" * 20_000
    norm = normalize(text)
    assert len(norm.prose) < len(text) and len(norm.prose_map) == len(norm.prose)


def test_a_markdown_link_whose_text_wraps_is_read_as_its_text():
    wrapped = "Our terms are in [section 7 of\nthe Terms\nof Service](https://example.com/terms#cancellation)."
    assert normalize(wrapped).prose == "Our terms are in section 7 of the Terms of Service."
    assert "[" in normalize("a [b\n\nc](https://example.com) d").prose  # a blank line ends the link text
