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


def test_question_gives_sop_checklist_decision_card_citations_and_reply(env):
    at = ask(app().run(), "customer double charged $180, can I refund?")
    no_errors(at)
    shown = texts(at)
    assert "Matched SOP: A.1 · Overcharge / Duplicate Charge" in shown
    assert any("payment gateway" in c.label for c in at.checkbox), "the procedure is a checklist"
    decision = card(at)
    assert "Escalate" in decision and "Billing Specialist" in decision and "4 business hours" in decision
    assert "approval" in decision.lower() and "required" in decision
    assert "$180.00 is above $150.00" in decision
    assert any("support-automation-handbook.md, lines" in e.label for e in at.expander), "citations expand"
    reply = reply_box(at).value
    assert "Billing Specialist" in reply and "not issued any refund" in reply
    assert at.sidebar.selectbox(key="policy_0").value == "A.1"
    assert at.sidebar.text_input(key="fact_0_amount").value == "$180.00", "prefilled by the guard's money parser"
    assert [e.kind for e in events()] == ["suggestion_made"]


def test_changing_a_fact_reruns_the_decision_at_once(env):
    at = ask(app().run(), "customer double charged $180, can I refund?")
    at.sidebar.text_input(key="fact_0_amount").set_value("$120").run()
    assert "Manual review" in card(at) and "priority is missing" in card(at)
    at.sidebar.selectbox(key="fact_0_priority").set_value("Low").run()
    no_errors(at)
    decision = card(at)
    assert "Automate" in decision and "$120.00 is at most $150.00" in decision
    assert "refund of $120.00" in reply_box(at).value


def test_a_bad_fact_is_reported_and_the_decision_kept(env):
    at = ask(app().run(), "customer double charged $180, can I refund?")
    at.sidebar.text_input(key="fact_0_amount").set_value("a lot").run()
    assert not at.exception
    assert any("amount 'a lot' is not an amount of money" in e.value for e in at.sidebar.error)
    assert "Escalate" in card(at)


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
    assert len(at.chat_message) == 4


def test_blocked_edit_shows_the_violation_and_cannot_be_sent(env):
    at = ask(app().run(), "Customer was charged $420 twice for the same invoice")
    reply_box(at).set_value("Good news: we have refunded the $420 to your card.").run()
    errors = [e.value for e in at.error]
    assert any("unauthorized_refund" in e for e in errors), errors
    assert any(m.value == "**Compliant alternative**" for m in at.markdown)
    assert at.button(key="send_edit_0").disabled
    at.button(key="send_0").click().run()
    [sent] = events("reply_sent")
    assert sent.send_mode == "as_is" and "refunded" not in sent.reply, "only the guarded reply goes out"


def test_override_needs_a_justification(env):
    at = ask(app().run(), "Customer was charged $420 twice for the same invoice")
    reply_box(at).set_value("We have refunded the $420 to your card.").run()
    at.button(key="override_0").click().run()
    assert any("needs a justification" in e.value for e in at.error), [e.value for e in at.error]
    assert events("reply_overridden") == []
    at.text_area(key="why_0").set_value("Team lead approved the refund on the phone (case 7781).")
    at.button(key="override_0").click().run()
    [event] = events("reply_overridden")
    assert event.justification.startswith("Team lead approved") and event.reply.startswith("We have refunded")


def test_send_as_is_and_send_edited_are_recorded(env):
    at = ask(app().run(), "Customer was charged $420 twice for the same invoice")
    at.button(key="send_0").click().run()
    reply_box(at).set_value(reply_box(at).value + "\nThank you for your patience.").run()
    assert any("passes your edit" in s.value for s in at.success)
    at.button(key="send_edit_0").click().run()
    assert [e.send_mode for e in events("reply_sent")] == ["edited", "as_is"]


def test_an_llm_draft_names_the_model_and_a_blocked_one_is_replaced(env, monkeypatch):
    from llm_server import ScriptedLLM, reply

    with ScriptedLLM() as llm:
        llm.enqueue(reply("Good news: I have refunded the full $420 to your card."))
        for name, value in {"SOPILOT_LLM_MODEL": "scripted-model", "OPENAI_BASE_URL": llm.url,
                            "SOPILOT_LLM_TIMEOUT": "5", "SOPILOT_LLM_RETRIES": "0"}.items():
            monkeypatch.setenv(name, value)
        at = ask(app().run(), "Customer was charged $420 twice for the same invoice")
    no_errors(at)
    assert any("Drafted by model scripted-model" in c.value for c in at.caption)
    assert any("blocked the draft" in w.value and "unauthorized_refund" in w.value for w in at.warning)
    assert "refunded" not in reply_box(at).value and "Billing Specialist" in reply_box(at).value


def test_emergency_stop_turns_automation_into_manual_review(own_data):
    at = ask(app().run(), "customer double charged $120 on the March invoice")
    at.sidebar.selectbox(key="fact_0_priority").set_value("Low").run()
    assert "Automate" in card(at)
    at.switch_page("ui/knowledge.py").run()
    at.toggle(key="stop_A.1").set_value(True).run()
    at.switch_page("ui/chat.py").run()
    no_errors(at)
    decision = card(at)
    assert "Manual review" in decision and "Emergency Stop" in decision
    assert "refund" not in reply_box(at).value.lower().replace("not made any refund", "")


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
    assert any('"relevant" must be a non-empty list' in e.value for e in at.error)


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
    audit.record_emergency_stop(settings, policy="A.1", stopped=True, justification="incident 42")
    audit.record_emergency_stop(settings, policy="I.2", stopped=True)
    at = page("audit")
    no_errors(at)
    assert len(at.dataframe[0].value) == 2
    at.selectbox(key="audit_policy").set_value("I.2").run()
    shown = at.dataframe[0].value
    assert list(shown["policy"]) == ["I.2"]
    export = at.download_button(key="audit_export")
    assert "Export 1 events as CSV" in export.label
