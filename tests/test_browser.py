"""End to end in a real browser: `streamlit run app.py` driven by Debian's Chromium through Playwright.

The screenshot it takes is kept under test-artifacts/ (ignored by git); the README's
docs/screenshot-chat.png is one of these, copied by hand when the UI changes, so a test run never
modifies tracked files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sopilot.core.settings import ROOT
from tests.conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
# Without these Chromium keeps calling Google services, which floods a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--disable-dev-shm-usage"]
TICKET = "Customer was charged $420 twice for the same invoice, priority medium"


def _wait_healthy(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer {url}/_stcore/health within {timeout}s")


@pytest.fixture
def app_url(indexed_settings, tmp_path):
    """A `streamlit run app.py` on a free port over the shipped index, stopped after the test."""
    port = free_port()
    env = {**os.environ, "SOPILOT_DATA_DIR": str(indexed_settings.data_dir),
           "SOPILOT_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.db'}", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    log = (tmp_path / "streamlit.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        print((tmp_path / "streamlit.log").read_text()[-3000:])


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium, or a skip that says how to get it."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run the browser test"
        print(reason)
        pytest.skip(reason)
    return CHROMIUM


def _browser(pw, chromium: Path, tmp_path: Path):
    # A persistent context on a fresh directory is how Playwright takes --user-data-dir.
    return pw.chromium.launch_persistent_context(
        tmp_path / "chromium", executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1440, "height": 1700})


def _ask(page, text: str) -> None:
    chat = page.get_by_test_id("stChatInputTextArea")
    chat.wait_for(timeout=60_000)
    chat.fill(text)
    chat.press("Enter")


def _events(tmp_path: Path, kind: str | None = None):
    from sopilot.audit import AuditLog

    return [e for e in AuditLog(f"sqlite:///{tmp_path / 'audit.db'}").iter_all() if kind in (None, e.kind)]


@pytest.mark.browser
@pytest.mark.server
def test_chat_escalates_a_large_duplicate_charge(chromium, app_url, indexed_settings, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "screenshot-chat.png"
    with sync_playwright() as pw:
        browser = _browser(pw, chromium, tmp_path)
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.goto(app_url, wait_until="domcontentloaded")
            _ask(page, TICKET)
            card = page.locator("[class*='st-key-decision_']").last
            expect(card).to_contain_text("Escalate", timeout=90_000)
            expect(card).to_contain_text("Billing Specialist")
            reply = page.get_by_label("Reply to the customer (editable)")
            expect(reply).not_to_be_empty(timeout=30_000)
            expect(page.get_by_text("Other SOPs that may fit")).to_be_visible()
            expect(page.get_by_text("read from the customer's words").first).to_be_visible()
            text = reply.input_value()
            page.wait_for_timeout(500)
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    from sopilot.guard import guard_ticket
    from sopilot.guard.policy import policies_for

    verdict = guard_ticket({"message": TICKET, "sop_id": "A.1"}, policies_for(indexed_settings), reply=text).verdict
    assert verdict.passed, verdict.violations  # an escalation: the reply promises no refund
    assert "Billing Specialist" in text
    assert shot.stat().st_size > 10_000


@pytest.mark.browser
@pytest.mark.server
def test_the_guard_checks_as_the_agent_types_and_one_click_takes_the_compliant_reply(chromium, app_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = _browser(pw, chromium, tmp_path)
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.goto(app_url, wait_until="domcontentloaded")
            _ask(page, TICKET)
            reply = page.get_by_label("Reply to the customer (editable)")
            expect(reply).not_to_be_empty(timeout=90_000)
            # Typing, with no blur and no Ctrl+Enter: the pause alone hands the text to the guard.
            reply.click()
            reply.press("Control+End")
            reply.press_sequentially(" We have refunded the $420 to your card.", delay=15)
            expect(page.get_by_text("The guard blocks this text")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("blocked text is never offered for copying")).to_be_visible()
            expect(page.get_by_role("button", name="Mark as sent")).to_be_disabled()
            page.get_by_role("button", name="Use the compliant reply").click()
            expect(page.get_by_text("The guard blocks this text")).to_have_count(0, timeout=30_000)
            text = reply.input_value()
            assert text.startswith("Hello,") and "refunded the $420" not in text
            page.get_by_role("button", name="Mark as sent").click()
            expect(page.get_by_text("Marked as sent")).to_be_visible(timeout=30_000)
            page.get_by_role("button", name="Mark as sent").click(force=True)
            page.wait_for_timeout(1500)
            # A reload keeps the ticket: same id in the URL, same messages.
            ticket_id = page.url.split("ticket=")[1].split("&")[0]
            page.reload(wait_until="domcontentloaded")
            expect(page.get_by_text(f"Ticket {ticket_id}")).to_be_visible(timeout=60_000)
            expect(page.get_by_text(TICKET).first).to_be_visible()
        finally:
            browser.close()
    blocked = _events(tmp_path, "edit_blocked")
    assert blocked and all(e.verdict == "blocked" and "refunded the $420" in e.reply for e in blocked)
    sent = _events(tmp_path, "reply_sent")
    assert len(sent) == 1, "one action, one event"
    assert sent[0].reply == text and sent[0].verdict == "pass" and sent[0].ticket_id == ticket_id


@pytest.mark.browser
@pytest.mark.server
def test_facts_are_confirmed_sops_switched_and_a_new_ticket_kept_apart(chromium, app_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = _browser(pw, chromium, tmp_path)
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.goto(app_url, wait_until="domcontentloaded")
            _ask(page, "Hi, you charged me twice, $60 for the same order. Low priority. Thanks, Maria")
            expect(page.get_by_text("automates on what only the customer said")).to_be_visible(timeout=90_000)
            expect(page.get_by_label("Reply to the customer (editable)")).to_have_count(0)
            page.get_by_role("button", name="Confirm these facts").click()
            reply = page.get_by_label("Reply to the customer (editable)")
            expect(reply).to_contain_text("Hi Maria,", timeout=30_000)
            expect(reply).to_contain_text("refund of $60.00")
            first_ticket = page.url.split("ticket=")[1].split("&")[0]
            # Another SOP, one click: the first is recorded as wrong.
            page.get_by_role("button", name="Use").first.click()
            expect(page.get_by_text("Matched SOP: A.1")).to_have_count(0, timeout=30_000)
            # A new greeting about something else asks before it joins the open ticket.
            _ask(page, "Hello, I am locked out of my account after 5 failed login attempts")
            expect(page.get_by_text("may be a different ticket")).to_be_visible(timeout=60_000)
            page.get_by_role("button", name="Start a new ticket with it").click()
            expect(page.get_by_role("button", name=f"{first_ticket} ·")).to_be_visible(timeout=60_000)
            expect(page.locator("[class*='st-key-decision_']").last).to_contain_text("B.1", timeout=30_000)
        finally:
            browser.close()
    [confirmed] = _events(tmp_path, "facts_confirmed")
    assert confirmed.ticket_id == first_ticket and confirmed.detail["confirmed"]["amount"] == "USD 60"
    [wrong] = _events(tmp_path, "wrong_sop")
    assert wrong.detail["wrong"] == "A.1" and wrong.ticket_id == first_ticket
    tickets = {e.ticket_id for e in _events(tmp_path, "suggestion_made")}
    assert len(tickets) == 2 and first_ticket in tickets
