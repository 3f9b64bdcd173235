"""The Streamlit workspace, page by page, through `streamlit.testing.v1.AppTest`.

Every test runs the real app over the shipped index (ingested once per session) with an audit
log of its own; tests that change the data dir (Emergency Stop, upload) work on a copy of it.
"""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from sopilot.core.settings import ROOT

APP = str(ROOT / "app.py")


@pytest.fixture
def env(indexed_settings, monkeypatch, tmp_path):
    """The app's environment: the shipped index, a fresh audit log."""
    monkeypatch.setenv("SOPILOT_DATA_DIR", str(indexed_settings.data_dir))
    monkeypatch.setenv("SOPILOT_DATABASE_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    return tmp_path


@pytest.fixture
def own_data(indexed_settings, monkeypatch, env):
    """A copy of the indexed data dir and of the knowledge dir, for tests that change them."""
    data = env / "data"
    shutil.copytree(indexed_settings.data_dir, data)
    knowledge = env / "knowledge"
    shutil.copytree(indexed_settings.knowledge_dir, knowledge)
    monkeypatch.setenv("SOPILOT_DATA_DIR", str(data))
    monkeypatch.setenv("SOPILOT_KNOWLEDGE_DIR", str(knowledge))
    return data, knowledge


def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60)


def page(name: str) -> AppTest:
    at = app().run()
    return at.switch_page(f"ui/{name}.py").run()


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for kind in ("info", "success", "warning", "error") for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


# ---- Chat -------------------------------------------------------------------------------------

def ask(at: AppTest, text: str) -> AppTest:
    return at.chat_input(key="prompt").set_value(text).run()


def card(at: AppTest) -> str:
    """The text of the (latest) decision card."""
    start = max(i for i, m in enumerate(at.markdown) if m.value.startswith("**Decision**"))
    return "\n".join(m.value for m in at.markdown[start:start + 8])


def reply_box(at: AppTest):
    return next(t for t in at.text_area if t.key.startswith("reply_"))


def events(kind: str | None = None):
    from sopilot import audit
    from sopilot.core.settings import Settings

    return audit.recent(Settings.from_env(), kind=kind)


def signed_in(at: AppTest, role: str, name: str = "sam") -> AppTest:
    """Sign in through the sidebar with a real key of `role` (sopilot.identity)."""
    from sopilot.core.settings import Settings
    from sopilot.identity import open_keys

    key = open_keys(Settings.from_env()).create(name=name, role=role).key
    at.sidebar.text_input(key="sign_in_key").set_value(key)
    return _submit(at)


def _submit(at: AppTest) -> AppTest:
    form_button = next(b for b in at.sidebar.button if "Sign in" in str(b.label))
    return form_button.click().run()


def test_question_gives_sop_checklist_decision_card_citations_and_reply(env):
    at = ask(app().run(), "customer double charged $180, can I refund?")
    no_errors(at)
    shown = texts(at)
    assert "Matched SOP: A.1 · Overcharge / Duplicate Charge" in shown
    assert any("payment gateway" in c.label for c in at.checkbox), "the procedure is a checklist"
    decision = card(at)
    assert "Escalate" in decision and "Billing Specialist" in decision and "4 business hours" in decision
    assert "$180.00 is above $150.00" in decision
    assert any("support-automation-handbook.md, lines" in e.label for e in at.expander), "citations expand"
    assert any(e.label == "Read as (en)" for e in at.expander), "what was searched, and the language, are shown"
    reply = reply_box(at).value
    assert "Billing Specialist" in reply and "not issued any refund" in reply
    assert at.sidebar.selectbox(key="policy_0").value == "A.1"
    assert at.sidebar.text_input(key="fact_0_amount").value == "$180"
    assert any("read from the customer's words" in c.value and "$180" in c.value for c in at.sidebar.caption)
    [event] = events("suggestion_made")
    assert event.ticket_id and event.ticket_id.startswith("T-")
    assert event.detail["facts"]["amount"]["source"] == "customer"


def test_facts_typed_in_a_note_are_read_and_decide(env):
    at = ask(app().run(), "user locked out after five failed logins, high priority")
    no_errors(at)
    assert at.sidebar.selectbox(key="fact_0_priority").value == "High"
    assert at.sidebar.number_input(key="fact_0_failed_login_attempts").value == 5
    decision = card(at)
    assert "priority is missing" not in decision and "failed_login_attempts is missing" not in decision
    assert "B.1" in decision


def test_automating_on_the_customers_words_waits_for_one_click_confirmation(env):
    at = ask(app().run(), "Hi, you charged me twice, $60 for the same order. Low priority. Thanks, Maria")
    no_errors(at)
    assert "Automate" in card(at)
    assert not [t for t in at.text_area if t.key.startswith("reply_")], "no reply before the facts are confirmed"
    assert any("only the customer said" in w.value and "amount" in w.value for w in at.warning)
    at.button(key="confirm_0").click().run()
    no_errors(at)
    reply = reply_box(at).value
    assert reply.startswith("Hi Maria,") and "refund of $60.00" in reply
    assert [e.kind for e in events()][:1] == ["facts_confirmed"]


def test_tickets_are_explicit_and_survive_a_reload(env):
    at = ask(app().run(), "customer double charged $120 on the March invoice")
    at.sidebar.text_input(key="ticket_id_0").set_value("RT-4242").run()
    at.sidebar.selectbox(key="fact_0_priority").set_value("Medium").run()
    assert "Automate" in card(at)
    workspace = at.query_params["ws"][0] if isinstance(at.query_params["ws"], list) else at.query_params["ws"]
    # A message that opens with a greeting and is about something else asks before it joins the ticket.
    at = ask(at, "Hello, I can't log in to my account after several failed attempts")
    assert any("may be a different ticket" in w.value for w in at.warning)
    at.button(key="pending_new").click().run()
    no_errors(at)
    assert "RT-4242" in [b.label.split(" · ")[0] for b in at.sidebar.button if b.key and b.key.startswith("open_")]
    # A reload (a new session with the same URL) restores the ticket, its facts and its decision.
    again = app()
    again.query_params["ws"] = workspace
    again.query_params["ticket"] = "RT-4242"
    again.run()
    no_errors(again)
    assert "Ticket **RT-4242**" in [c.value for c in again.caption]
    assert next(b for b in again.sidebar.selectbox if b.key.endswith("_priority")).value == "Medium"
    assert "Automate" in card(again)
    assert {e.ticket_id for e in events("suggestion_made")} >= {"RT-4242"}


def test_alternatives_switch_with_one_click_and_record_the_wrong_sop(env):
    at = ask(app().run(), "customer double charged $180, can I refund?")
    buttons = [b for b in at.button if b.key and b.key.startswith("alt_0_")]
    assert 1 <= len(buttons) <= 2
    assert sum("% match" in m.value or "confidence" in m.value for m in at.markdown) == 3
    buttons[0].click().run()
    no_errors(at)
    [wrong] = events("wrong_sop")
    assert wrong.detail["wrong"] == "A.1" and wrong.detail["relevant"][0] != "A.1"
    assert at.sidebar.selectbox(key="policy_0").value == wrong.detail["relevant"][0]
    from sopilot import audit
    from sopilot.core.settings import Settings

    assert audit.labelled_examples(audit.open_log(Settings.from_env()).iter_all()) == [
        {"query": "customer double charged $180, can I refund?", "relevant": wrong.detail["relevant"]}]


def test_a_blocked_edit_is_logged_hidden_from_copy_and_replaced_in_one_click(env):
    at = ask(app().run(), "Customer was charged $420 twice for the same invoice")
    promise = "Hi Maria,\n\nGood news: we have refunded the $420 to your card.\n\nBest,\nAna"
    reply_box(at).set_value(promise).run()
    assert any("unauthorized_refund" in e.value for e in at.error)
    assert all("refunded the $420" not in c.value for c in at.code), "the Copy box never shows blocked text"
    assert at.button(key="send_0").disabled
    assert not [b for b in at.button if b.key == "override_0"], "an agent who is not signed in cannot override"
    at.run()
    [blocked] = events("edit_blocked")
    assert blocked.reply == promise and blocked.verdict == "blocked"
    at.button(key="take_0").click().run()
    no_errors(at)
    text = reply_box(at).value
    assert text.startswith("Hi Maria,") and text.endswith("Best,\nAna") and "Billing Specialist" in text
    at.button(key="send_0").click().run()
    at.run()
    [sent] = events("reply_sent")
    assert (sent.verdict, sent.send_mode, sent.ticket_id) == ("pass", "edited", blocked.ticket_id)
    assert sent.reply == text and at.button(key="send_0").disabled


def test_only_a_senior_sees_the_override_and_it_keeps_the_violations(env):
    at = signed_in(app().run(), "senior")
    at = ask(at, "Customer was charged $420 twice for the same invoice")
    reply_box(at).set_value("We have refunded the $420 to your card.").run()
    at.button(key="override_0").click().run()
    assert any("needs a justification" in e.value for e in at.error), [e.value for e in at.error]
    at.text_area(key="why_0").set_value("Team lead approved the refund on the phone (case 7781).")
    at.button(key="override_0").click().run()
    [event] = events("reply_overridden")
    assert event.agent == "sam" and event.verdict == "blocked" and "unauthorized_refund" in event.violations
    assert event.justification.startswith("Team lead approved")


def test_reply_is_signed_by_the_signed_in_agent(env, monkeypatch):
    monkeypatch.setenv("SOPILOT_AGENT_SIGNATURE", "{agent}\\nBilling desk")
    at = signed_in(app().run(), "agent", name="Ana Ruiz")
    at = ask(at, "Customer was charged $420 twice for the same invoice")
    assert reply_box(at).value.endswith("Kind regards,\nAna Ruiz\nBilling desk")


def test_emergency_stop_turns_automation_into_manual_review(own_data):
    at = signed_in(app().run(), "lead", name="lee")
    at = ask(at, "customer double charged $120 on the March invoice, low priority")
    assert "Automate" in card(at)
    at.switch_page("ui/knowledge.py").run()
    at.text_input(key="stop_reason").set_value("gateway refunds twice")
    at.toggle(key="stop_A.1").set_value(True).run()
    at.switch_page("ui/chat.py").run()
    no_errors(at)
    decision = card(at)
    assert "Manual review" in decision and "Emergency Stop" in decision
    [stop] = events("emergency_stop_changed")
    assert (stop.agent, stop.justification) == ("lee", "gateway refunds twice")
    assert [e.kind for e in events("decision_changed")] == ["decision_changed"]


def test_a_bad_fact_is_reported_and_the_decision_kept(env):
    at = ask(app().run(), "customer double charged $180, can I refund?")
    at.sidebar.text_input(key="fact_0_amount").set_value("a lot").run()
    assert not at.exception
    assert any("amount 'a lot' is not an amount of money" in e.value for e in at.sidebar.error)


def test_the_fields_shown_are_those_of_the_matched_policy(env):
    at = ask(app().run(), "I cancelled my subscription 10 days after paying, I want my money back")
    assert at.sidebar.selectbox(key="policy_0").value == "A.2"
    keys = {w.key for w in [*at.sidebar.selectbox, *at.sidebar.text_input, *at.sidebar.number_input]}
    assert {"fact_0_priority", "fact_0_amount", "fact_0_days_since_payment"} <= keys
    assert "fact_0_tenure_months" not in keys
    at.sidebar.selectbox(key="policy_0").set_value("I.2").run()
    keys = {w.key for w in at.sidebar.number_input}
    assert {"fact_0_tenure_months", "fact_0_failed_payments", "fact_0_plan_months"} <= keys


def test_follow_up_keeps_the_ticket_and_its_facts(env):
    at = ask(app().run(), "customer double charged $120 on the March invoice")
    at.sidebar.selectbox(key="fact_0_priority").set_value("Medium").run()
    assert "Automate" in card(at)
    at = ask(at, "can I refund it right away?")
    no_errors(at)
    assert "Automate" in card(at) and "A.1" in card(at)
    assert at.sidebar.selectbox(key="fact_0_priority").value == "Medium"
    assert len({e.ticket_id for e in events("suggestion_made")}) == 1


def test_an_llm_draft_names_the_model_and_a_promising_one_is_not_used(env, monkeypatch):
    import json

    from llm_server import ScriptedLLM, reply

    words = {"greeting": "Hi Maria,", "opening": "Thank you for getting in touch about the duplicate charge.",
             "closing": "Kind regards,\nThe Support Team"}
    with ScriptedLLM() as llm:
        llm.enqueue(reply(json.dumps(words)),
                    reply(json.dumps({**words, "opening": "Good news: I have refunded the full $420 to your card."})))
        for name, value in {"SOPILOT_LLM_MODEL": "scripted-model", "OPENAI_BASE_URL": llm.url,
                            "SOPILOT_LLM_TIMEOUT": "5", "SOPILOT_LLM_RETRIES": "0"}.items():
            monkeypatch.setenv(name, value)
        at = ask(app().run(), "Customer was charged $420 twice for the same invoice")
        no_errors(at)
        assert any("Drafted by model scripted-model" in c.value for c in at.caption)
        assert reply_box(at).value.startswith("Hi Maria,") and "Billing Specialist" in reply_box(at).value
        at = ask(at, "any news on the $420?")
    no_errors(at)
    assert any("the LLM failed" in c.value and "unauthorized_refund" in c.value for c in at.caption)
    assert "refunded" not in reply_box(at).value and "Billing Specialist" in reply_box(at).value
    for event in events("suggestion_made"):
        assert event.verdict == "pass" and "refunded the full" not in event.reply


def test_no_matching_sop_names_the_policy_exception_queue(env):
    at = ask(app().run(), "Can you recommend a good pizza place near the office?")
    no_errors(at)
    assert any("Policy Exception queue" in w.value for w in at.warning)
    assert "Manual review" in card(at)


# ---- Knowledge ---------------------------------------------------------------------------------

def test_knowledge_lists_sops_by_category_with_lint(env):
    at = page("knowledge")
    no_errors(at)
    labels = [e.label for e in at.expander]
    assert any("A.1" in label and "Overcharge" in label for label in labels)
    at.selectbox(key="kb_category").set_value("Billing & Payment Issues").run()
    labels = [e.label for e in at.expander]
    assert labels and all("A." in label for label in labels)
    findings = at.dataframe[0].value
    assert {"placeholder", "no_procedure"} >= set(findings["kind"])
    assert "[NUMBER]" in set(findings["text"])
    assert any("Every threshold of the policy file is stated" in c.value for c in at.caption)


def test_upload_adds_a_retrievable_sop(own_data):
    data, knowledge = own_data
    document = ("# Gift Card Balance Dispute\n\n## M.1: Sub-Category: Gift Card Balance Dispute\n\n"
                "- **Procedure:**\n  1. Look up the gift card number in the voucher ledger.\n"
                "  2. Compare the remaining balance with the customer's receipts.\n")
    at = page("knowledge")
    at.file_uploader(key="upload").upload("gift-cards.md", document.encode(), "text/markdown").run()
    at.button(key="upload_go").click().run()
    no_errors(at)
    assert any("gift-cards.md added" in s.value and "M.1" in s.value for s in at.success)
    assert any(i.value.startswith("Ingest gift-cards.md: index") for i in at.info)
    assert (knowledge / "gift-cards.md").exists()
    from sopilot.retriever.hybrid import load

    from sopilot.core.settings import Settings

    hits = load(Settings.from_env()).search("gift card balance is wrong", k=3)
    assert hits[0].sop_id == "M.1"


def test_an_upload_is_previewed_before_it_is_ingested(own_data):
    data, knowledge = own_data
    document = ("# Vouchers\n\n## M.1: Sub-Category: Gift Card Balance Dispute\n\n"
                "- **Procedure:**\n  1. Look up the gift card number in the voucher ledger.\n"
                "  2. Compare the remaining balance with the customer's receipts.\n\n"
                "## M.2: Sub-Category: Voucher Charged Twice\n\n"
                "- **Procedure:**\n  1. When a voucher payment went through twice, find both charges.\n"
                "  2. Refund the duplicate charge of the voucher order.\n")
    at = page("knowledge")
    at.file_uploader(key="upload").upload("vouchers.md", document.encode(), "text/markdown").run()
    no_errors(at)
    shown = texts(at)
    assert "Before ingest: vouchers.md holds 2 SOPs" in shown
    assert "labelled queries:** hit@1" in shown
    frames = [f.value for f in at.dataframe]
    split = next(f for f in frames if "sop_id" in f.columns and "sections" in f.columns)
    assert list(split["sop_id"]) == ["M.1", "M.2"], "two procedures in one file are two SOPs"
    changed = next(f for f in frames if "before" in f.columns)
    taken = changed[changed["before"] == "A.1"]
    assert any("twice" in q for q in taken["query"]), "the preview shows the duplicate-charge queries it takes"
    assert (changed["before"] != changed["after"]).all()
    assert not (knowledge / "vouchers.md").exists(), "nothing is saved before Save and ingest"


def test_unreadable_upload_is_refused_with_its_reason(own_data):
    data, knowledge = own_data
    at = page("knowledge")
    at.file_uploader(key="upload").upload("scan.pdf", b"%PDF-1.4 this is not really a PDF", "application/pdf").run()
    at.button(key="upload_go").click().run()
    assert any("scan.pdf cannot be used" in e.value for e in at.error), [e.value for e in at.error]
    assert not (knowledge / "scan.pdf").exists()


def test_emergency_stop_is_recorded_and_persisted(own_data):
    data, _ = own_data
    at = page("knowledge")
    assert at.toggle(key="stop_A.1").disabled, "nobody signed in: no stop"
    at = signed_in(at.switch_page("ui/chat.py").run(), "lead").switch_page("ui/knowledge.py").run()
    at.toggle(key="stop_A.1").set_value(True).run()
    assert "A.1" not in ((data / "stopped_policies.txt").read_text() if (data / "stopped_policies.txt").exists()
                         else ""), "no reason: no stop"
    at.text_input(key="stop_reason").set_value("gateway refunds twice")
    at.toggle(key="stop_A.1").set_value(True).run()
    no_errors(at)
    assert "A.1" in (data / "stopped_policies.txt").read_text()
    at.switch_page("ui/audit.py").run()
    events = at.dataframe[0].value
    row = events.iloc[0]
    assert (row["kind"], row["policy"], row["stopped"], row["justification"]) == (
        "emergency_stop_changed", "A.1", True, "gateway refunds twice")


# ---- Evaluation --------------------------------------------------------------------------------

def test_retrieval_evaluation_on_an_uploaded_set(env):
    queries = ROOT / "eval" / "queries.jsonl"
    subset = b"".join(queries.read_bytes().splitlines(keepends=True)[:6])
    at = page("evaluation")
    at.radio(key="eval_queries_source").set_value("Upload a JSONL file").run()
    at.file_uploader(key="eval_queries_upload").upload("mine.jsonl", subset, "application/jsonl").run()
    at.multiselect(key="eval_systems").set_value(["hybrid", "bm25"]).run()
    at.button(key="eval_retrieval_go").click().run()
    no_errors(at)
    metrics = at.dataframe[0].value
    assert list(metrics["system"]) == ["hybrid (configured)", "bm25"]
    assert {"hit@1", "recall@3", "recall@5", "mrr@10", "ndcg@10"} <= set(metrics.columns)
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    assert at.get("progress")[0].proto.value == 100


def test_retrieval_evaluation_reports_a_bad_file(env):
    at = page("evaluation")
    at.radio(key="eval_queries_source").set_value("Upload a JSONL file").run()
    at.file_uploader(key="eval_queries_upload").upload("bad.jsonl", b'{"query": "x"}\n', "application/jsonl").run()
    at.button(key="eval_retrieval_go").click().run()
    assert any('"relevant" must be a list of sop_id strings' in e.value for e in at.error)


def test_guard_evaluation_shows_agreement_and_disagreements(env):
    cases = (b'{"ticket": {"message": "Billed twice", "sop_id": "A.1", "priority": "Low", "amount": "$90"}, '
             b'"expect": {"outcome": "automate"}}\n'
             b'{"ticket": {"message": "Billed twice", "sop_id": "A.1", "priority": "Low", "amount": "$900"}, '
             b'"expect": {"outcome": "automate"}}\n')
    at = page("evaluation")
    at.radio(key="eval_cases_source").set_value("Upload a JSONL file").run()
    at.file_uploader(key="eval_cases_upload").upload("cases.jsonl", cases, "application/jsonl").run()
    at.button(key="eval_guard_go").click().run()
    no_errors(at)
    assert [(m.label, m.value) for m in at.metric] == [("Cases", "2"), ("Agree", "1"), ("Agreement", "50.0%")]
    [failed] = at.dataframe[0].value.to_dict("records")
    assert failed["line"] == 2 and "outcome" in failed["mismatches"]


# ---- Audit -------------------------------------------------------------------------------------

def test_audit_page_filters_and_exports_csv(env):
    from sopilot import audit
    from sopilot.core.settings import Settings

    settings = Settings.from_env()
    audit.record_emergency_stop(settings, policy="A.1", stopped=True, agent="lee", justification="incident 42")
    audit.record_emergency_stop(settings, policy="I.2", stopped=True, agent="lee", justification="incident 43")
    at = page("audit")
    no_errors(at)
    assert len(at.dataframe[0].value) == 2
    at.selectbox(key="audit_policy").set_value("I.2").run()
    shown = at.dataframe[0].value
    assert list(shown["policy"]) == ["I.2"]
    export = at.download_button(key="audit_export")
    assert "Export 1 events as CSV" in export.label


def test_audit_page_offers_the_ledger_and_the_labels(env):
    from sopilot import audit
    from sopilot.core.settings import Settings

    at = ask(app().run(), "Hi, you charged me twice, $60 for the same order. Low priority.")
    at.button(key="confirm_0").click().run()
    at.button(key="send_0").click().run()
    [sent] = events("reply_sent")
    at.switch_page("ui/audit.py").run()
    no_errors(at)
    assert "1 automated refunds and credits" in at.download_button(key="audit_ledger").label
    at.text_input(key="audit_ticket").set_value(sent.ticket_id).run()
    assert set(at.dataframe[0].value["ticket_id"]) == {sent.ticket_id}
    [entry] = audit.ledger(audit.open_log(Settings.from_env()).iter_all())
    assert (entry.ticket_id, entry.type, entry.amount) == (sent.ticket_id, "refund", "60.00")
