"""The guard's command line: JSON shapes, batch, eval, input errors, and a light import."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sopilot.cli import main
from sopilot.cli.guard import run_eval_guard, run_guard
from sopilot.core.errors import InputError
from sopilot.core.settings import ROOT, Settings

CONTRACT_KEYS = ["policy", "outcome", "action", "escalate_to", "approval_required", "sla", "remuneration", "reasons",
                 "verdict", "violations", "reply", "policy_version"]


@pytest.fixture
def guard_settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}, data_dir=tmp_path / "data")


def _write(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return str(path)


def test_single_ticket_json(tmp_path, guard_settings, capsys):
    ticket = _write(tmp_path, "t.json", '{"message": "charged twice", "sop_id": "A.1", "priority": "High", '
                                         '"amount": "$420"}')
    reply = _write(tmp_path, "r.txt", "I've refunded the full $420.\n")
    assert run_guard(ticket=ticket, reply=reply, batch=None, as_json=True, settings=guard_settings) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == CONTRACT_KEYS
    assert (out["outcome"], out["escalate_to"], out["verdict"]) == ("escalate", "Billing Specialist team", "blocked")
    assert [v["code"] for v in out["violations"]] == ["unauthorized_refund"]
    assert all({"code", "message"} <= set(v) for v in out["violations"])
    assert "$420" not in out["reply"] and out["reply"].startswith("Thank you")


def test_single_ticket_automated_amount_is_a_two_decimal_string(tmp_path, guard_settings, capsys):
    ticket = _write(tmp_path, "t.json", '{"message": "x", "sop_id": "A.1", "priority": "Low", "amount": 60}')
    reply = _write(tmp_path, "r.txt", "We've refunded $60 to your card.")
    run_guard(ticket=ticket, reply=reply, batch=None, as_json=True, settings=guard_settings)
    out = json.loads(capsys.readouterr().out)
    assert out["remuneration"] == {"type": "refund", "amount": "60.00", "currency": "USD"}
    assert (out["verdict"], out["reply"]) == ("pass", "We've refunded $60 to your card.")


def test_human_summary(tmp_path, guard_settings, capsys):
    ticket = _write(tmp_path, "t.json", '{"message": "x", "sop_id": "B.1", "priority": "Low", '
                                         '"failed_login_attempts": 0}')
    run_guard(ticket=ticket, reply=None, batch=None, as_json=False, settings=guard_settings)
    out = capsys.readouterr().out
    assert out.startswith("B.1 → automate (rule b1_auto_reset)") and "verdict: pass" in out


def test_batch_is_json_lines_in_order(tmp_path, guard_settings, capsys):
    lines = [
        {"ticket": {"message": "x", "sop_id": "A.1", "priority": "Low", "amount": 150}},
        {"ticket": {"message": "x", "sop_id": "A.1", "priority": "Low", "amount": "150.01"}, "reply": "Refunded!"},
        {"ticket": {"message": "x", "sop_id": "I.2", "tenure_months": 3, "failed_payments": 0},
         "reply": "Your 3-month payment plan is approved."},
    ]
    batch = _write(tmp_path, "b.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n\n")
    assert run_guard(ticket=None, reply=None, batch=batch, as_json=True, settings=guard_settings) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["outcome"], r["verdict"]) for r in rows] == [("automate", "pass"), ("escalate", "pass"),
                                                              ("escalate", "blocked")]
    assert rows[2]["violations"][0]["code"] == "unauthorized_commitment"


def test_batch_from_stdin(guard_settings, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"ticket": {"message": "x", "sop_id": "F.1", '
                                                  '"identity_verified": false}}\n'))
    run_guard(ticket=None, reply=None, batch="-", as_json=True, settings=guard_settings)
    assert json.loads(capsys.readouterr().out)["escalate_to"] == "Data Protection Officer (DPO)"


def test_emergency_stop_from_settings(tmp_path, capsys):
    settings = Settings.from_env({"SOPILOT_STOPPED_POLICIES": "A.1, B.1"}, data_dir=tmp_path / "data")
    ticket = _write(tmp_path, "t.json", '{"message": "x", "sop_id": "A.1", "priority": "Low", "amount": 60}')
    run_guard(ticket=ticket, reply=None, batch=None, as_json=True, settings=settings)
    out = json.loads(capsys.readouterr().out)
    assert out["outcome"] == "manual_review" and "Emergency Stop" in out["reasons"][-1]


@pytest.mark.parametrize(("content", "message"), [
    pytest.param('{"ticket": {"message": "x"}}\n{"ticket": {"message": "x", "priority": "Urgent"}}',
                 "line 2: ticket.priority 'Urgent' is not one of Low, Medium, High, Critical", id="unknown priority"),
    pytest.param('{"ticket": {"message": "x", "amount": -5}}', "line 1: ticket.amount -5 is negative",
                 id="negative amount"),
    pytest.param('{"ticket": {"message": "x"}}\n{"ticket": ', "line 2: not valid JSON", id="malformed JSON"),
    pytest.param('{"ticket": {"priority": "Low"}}', "line 1: ticket.message is missing", id="no message"),
    pytest.param('{"ticket": {"message": "x"}, "reply": 5}', "line 1: \"reply\" must be a string", id="reply type"),
])
def test_batch_input_errors_name_line_field_and_values(tmp_path, guard_settings, capsys, content, message):
    batch = _write(tmp_path, "b.jsonl", content)
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        run_guard(ticket=None, reply=None, batch=batch, as_json=True, settings=guard_settings)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("kwargs", "message"), [
    pytest.param({"ticket": None, "batch": None}, "give --ticket FILE", id="nothing given"),
    pytest.param({"ticket": "t.json", "batch": "b.jsonl"}, "give --ticket FILE", id="both given"),
    pytest.param({"ticket": None, "batch": "b.jsonl", "reply": "r.txt"}, "--reply goes with --ticket",
                 id="reply with batch"),
    pytest.param({"ticket": "missing.json", "batch": None}, "cannot read ticket file 'missing.json'",
                 id="missing file"),
])
def test_usage_errors(guard_settings, kwargs, message):
    with pytest.raises(InputError, match=message):
        run_guard(as_json=True, settings=guard_settings, **{"reply": None, **kwargs})


def test_eval_guard_report(tmp_path, guard_settings, capsys):
    cases = [
        {"ticket": {"message": "x", "sop_id": "A.1", "priority": "Low", "amount": 60},
         "expect": {"outcome": "automate"}},
        {"ticket": {"message": "x", "sop_id": "A.1", "priority": "High", "amount": 60},
         "expect": {"outcome": ["automate", "manual_review"], "policy": "A.1"}},
        {"ticket": {"message": "x", "sop_id": "A.1", "priority": "High"}, "reply": "I've refunded $60.",
         "expect": {"verdict": "blocked", "violations": ["unauthorized_refund"]}},
    ]
    path = _write(tmp_path, "cases.jsonl", "\n".join(json.dumps(c) for c in cases))
    assert run_eval_guard(cases=path, as_json=True, settings=guard_settings) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["n"], report["passed"]) == (3, 2)
    (failed,) = report["failed"]
    assert failed["line"] == 2 and failed["got"]["outcome"] == "escalate"
    assert failed["mismatches"] == ["outcome 'escalate', expected 'automate' or 'manual_review'"]


def test_eval_rejects_unknown_expect_keys(tmp_path, guard_settings):
    path = _write(tmp_path, "cases.jsonl", '{"ticket": {"message": "x"}, "expect": {"outcom": "automate"}}')
    with pytest.raises(InputError, match="line 1: \"expect\" must be an object holding only outcome, policy"):
        run_eval_guard(cases=path, as_json=True, settings=guard_settings)


def test_shipped_eval_cases_all_pass(guard_settings, capsys):
    assert run_eval_guard(cases=str(ROOT / "eval" / "guard_cases.jsonl"), as_json=True, settings=guard_settings) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] >= 80 and report["passed"] == report["n"], report["failed"]


def test_shipped_eval_cases_cover_the_brief():
    cases = [json.loads(line) for line in (ROOT / "eval" / "guard_cases.jsonl").read_text().splitlines() if line]
    passing_money = [c for c in cases if c.get("reply") and c["expect"].get("verdict") == "pass"
                     and ("$" in c["reply"] or "refund" in c["reply"].lower())]
    assert len(passing_money) >= 15
    unclassified = [c for c in cases if "sop_id" not in c["ticket"]]
    assert all("policy" not in c["expect"] and "automate" not in c["expect"].get("outcome", ()) for c in unclassified)


def test_main_exit_codes(tmp_path, capsys):
    ticket = _write(tmp_path, "t.json", '{"message": "x", "priority": "Urgent"}')
    assert main(["guard", "--ticket", ticket, "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sopilot guard: ticket file") and "priority 'Urgent' is not one of" in err
    assert err.count("\n") == 1


def test_sopilot_guard_answers_fast(tmp_path):
    ticket = _write(tmp_path, "t.json", '{"message": "x", "sop_id": "A.1", "priority": "Low", "amount": 60}')
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sopilot", "guard", "--ticket", ticket, "--json"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    assert json.loads(done.stdout)["outcome"] == "automate"
    assert elapsed < 3.0  # the target is 0.5 s (bench/bench_guard.py); CI machines vary


def test_importing_guard_pulls_in_no_heavy_library():
    code = ("import sys, sopilot.guard, sopilot.cli.guard, sopilot.guard.crosscheck, sopilot.cli\n"
            "heavy = {'torch', 'chromadb', 'langchain', 'langchain_core', 'numpy', 'sentence_transformers',"
            " 'transformers', 'sopilot.retriever', 'sopilot.ingest'}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or '.'.join(m.split('.')[:2]) in heavy))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
