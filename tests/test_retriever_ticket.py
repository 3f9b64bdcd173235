"""Reading a pasted ticket before searching it; its language; the calibrated match; `retrieve --json`."""

from __future__ import annotations

import json
import re

import pytest
from sopilot.retriever.calibration import FEATURES, Signals, load_calibration
from sopilot.retriever.language import detect_language
from sopilot.retriever.query import QueryNormalizer
from sopilot.retriever.ticket import read_ticket, split_pieces, trim_message

from sopilot.cli import main
from sopilot.core.errors import ConfigError

EMAIL = """Hi team,

Hope you're all well.

Our office manager tried to add four new engineers this morning and the system says we have reached our
licence limit. Could you add four more seats to the account?

Many thanks,
Priya Raman
Operations Manager | Brightwell
T: 0161 555 0192"""

THREAD = """This is now urgent, it happened again to two more users: all notes vanish when a job is saved.

Jon

On Thu, 15 May 2025 at 14:20, Support wrote:
> Hi Jon,
> Could you let us know which browser you're using?
>
> On Thu, 15 May 2025 at 09:03, Jon Asante wrote:
>> Hi, one of my team says notes vanished from a job after saving."""

CHAT = """[09:14] Marco (customer): hi, we need extra user licences
[09:14] Agent: Hi Marco, happy to help with that. How many are you after?
[09:15] Marco (customer): 2 for now, every slot we have is taken"""


def test_an_email_is_read_without_greeting_and_signature():
    read = read_ticket(EMAIL)
    assert read.form == "email"
    assert read.read_as.startswith("Hope you're all well.")
    assert "Could you add four more seats to the account?" in read.read_as
    assert "Priya" not in read.read_as and "Hi team" not in read.read_as and "0161" not in read.read_as


def test_a_thread_is_read_as_its_newest_message_with_the_quoted_ones_as_context():
    read = read_ticket(THREAD)
    assert read.form == "thread"
    assert read.read_as == ("This is now urgent, it happened again to two more users: "
                            "all notes vanish when a job is saved.")
    assert "notes vanished from a job after saving" in read.context
    assert ">" not in read.context and "wrote:" not in read.context
    assert {p.role for p in read.pieces} == {"problem", "context"}
    assert max(p.weight for p in read.pieces if p.role == "context") < 1.0


def test_a_chat_is_read_as_the_customer_turns_with_the_last_emphasised():
    read = read_ticket(CHAT)
    assert read.form == "chat"
    assert read.read_as == "hi, we need extra user licences\n2 for now, every slot we have is taken"
    assert "How many" not in " ".join(p.text for p in read.pieces)
    weights = {p.text: p.weight for p in read.pieces}
    assert weights["2 for now, every slot we have is taken"] > weights["hi, we need extra user licences"]


def test_an_agent_asking_a_lead_is_read_as_the_agent():
    chat = ("Agent (Priya): the system auto-denied this request, can I overrule it myself?\n"
            "Lead (Tom): What's your role on the team at the moment?\n"
            "Agent (Priya): still Tier 1, 4 months in")
    read = read_ticket(chat)
    assert read.read_as == "the system auto-denied this request, can I overrule it myself?\nstill Tier 1, 4 months in"
    customer = read_ticket("Customer: my order never came\nAgent: Sorry, let me check\nSupervisor: I can help too")
    assert customer.read_as == "my order never came"
    manager = read_ticket("Agent: Hi Dana, how can I help?\nDana (Office Manager): we need four more seats")
    assert manager.read_as == "we need four more seats"


def test_a_known_word_is_not_corrected_to_a_neighbour_of_the_documents():
    texts = ["Revoke the contract of the account.", "Check the stock and issue a refund."]
    plain, knowing = QueryNormalizer(texts), QueryNormalizer(texts, known_words=["contractor", "stuck"])
    assert plain.correct("contractor") == "contract" and plain.correct("stuck") == "stock"
    assert knowing.correct("contractor") == "contractor" and knowing.correct("stuck") == "stuck"
    assert knowing.correct("refnd") == "refund"


@pytest.mark.parametrize(("text", "form"), [
    pytest.param("refund pls, charged twice", "short", id="typed query"),
    pytest.param("cust (acct 30418) wants +10 licences asap - says every seat is used. checked usage: 3 users idle "
                 "since Jan, offered to deactivate them, cust still wants to buy the 10.", "note", id="internal note"),
])
def test_forms_of_one_paragraph(text, form):
    read = read_ticket(text)
    assert (read.form, read.read_as) == (form, text)


def test_long_text_is_cut_into_pieces_the_encoder_reads_whole(embedder):
    text = " ".join(f"Sentence number {i} says that the invoice was paid twice." for i in range(60))
    pieces = split_pieces(text, 100, embedder.count_tokens)
    assert len(pieces) > 5
    assert all(embedder.count_tokens(p) <= 100 for p in pieces)
    assert " ".join(pieces) == text


def test_a_closing_without_comma_is_still_a_signoff():
    assert trim_message("Bitte passen Sie seine Berechtigungen an.\n\nDanke und Gruß\nPetra Schulz") == \
        "Bitte passen Sie seine Berechtigungen an."


@pytest.mark.parametrize(("text", "code"), [
    pytest.param("Hola, me cobraron dos veces la factura de marzo, ¿pueden devolverme uno de los pagos?", "es"),
    pytest.param("Bonjour, j'ai été débité deux fois pour la facture de mars, pouvez-vous me rembourser ?", "fr"),
    pytest.param("Hallo, mir wurde die Rechnung für März zweimal abgebucht, können Sie das erstatten?", "de"),
    pytest.param("Olá, fui cobrado duas vezes pela fatura de março, podem devolver um dos pagamentos?", "pt"),
    pytest.param("Buongiorno, mi avete addebitato due volte la fattura di marzo, potete rimborsarmi?", "it"),
    pytest.param("customer double charged for the March invoice, refund one of them", "en"),
    pytest.param("cant log in", "en", id="too short to tell is English"),
])
def test_language_is_detected_offline(text, code):
    assert detect_language(text) == code


def test_signals_worked_by_hand():
    signals = Signals.of(order=["A", "B"], fused={"A": 1.5, "B": 0.5}, dense={"A": 0.6, "B": 0.7},
                         lexical={"A": 3.0}, total_weight=1.5, english=True, coverage=0.5, sop_coverage={"A": 0.25})
    first = dict(zip(FEATURES, signals.rows[0], strict=True))
    assert first == pytest.approx({"dense": 0.6, "dense_top": 0.7, "lexical_log": 1.3862944, "fused": 1.0,
                                   "margin": 2 / 3, "gap_to_top": 0.0, "dense_first": 0.0, "lexical_first": 1.0,
                                   "agree": 0.0, "english": 1.0, "coverage": 0.5, "sop_coverage": 0.25})


def test_a_broken_calibration_file_is_named(tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"models": {"m": {"features": ["dense"], "mean": [0], "scale": [1], "coef": [1],
                                                 "intercept": 0, "fitted_on": ["q"], "examples": 1,
                                                 "oof_auc": 0.5, "suggested_threshold": 0.5}}}), encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"{path} is not a valid match calibration") + ".*features must be"):
        load_calibration("m", path)


def test_the_shipped_calibration_is_for_the_configured_encoder(retriever):
    calibration = load_calibration(retriever.embedder.name)
    assert calibration.calibrated and calibration.oof_auc > 0.5


def test_retrieve_json_says_matched_language_and_what_was_read(indexed_settings, capsys, monkeypatch):
    monkeypatch.setenv("SOPILOT_DATA_DIR", str(indexed_settings.data_dir))
    assert main(["retrieve", EMAIL, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["hits"][0]["sop_id"] == "ops.licenses"
    assert data["matched"] is True and 0.5 <= data["match_probability"] <= 1.0
    assert data["language"] == "en" and data["form"] == "email"
    assert "Priya" not in data["read_as"] and "four more seats" in data["read_as"]
    assert data["hits"][0]["match_probability"] == data["match_probability"]


def test_batch_lines_carry_the_same_fields(indexed_settings, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SOPILOT_DATA_DIR", str(indexed_settings.data_dir))
    batch = tmp_path / "b.jsonl"
    batch.write_text(json.dumps({"query": "Hola, olvidé mi contraseña y no puedo entrar en mi cuenta"}) + "\n"
                     + json.dumps({"query": CHAT}) + "\n", encoding="utf-8")
    assert main(["retrieve", "--batch", str(batch), "--json"]) == 0
    first, second = (json.loads(x) for x in capsys.readouterr().out.splitlines())
    assert first["language"] == "es" and second["form"] == "chat"
    assert all({"matched", "match_probability", "language", "read_as"} <= set(x) for x in (first, second))


def test_a_translator_is_used_for_other_languages_only(retriever):
    asked = []

    def translate(text, language):
        asked.append(language)
        return "I forgot my password and cannot log in to my account"

    spanish = retriever.retrieve("Hola, olvidé mi contraseña y no puedo entrar en mi cuenta", translate=translate)
    assert asked == ["es"] and spanish.translated and spanish.hits[0].sop_id == "B.1"
    assert spanish.read_as == "I forgot my password and cannot log in to my account" and spanish.language == "es"
    english = retriever.retrieve("I forgot my password", translate=translate)
    assert asked == ["es"] and not english.translated
