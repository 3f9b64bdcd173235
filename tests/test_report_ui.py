"""The Operations page over a demo history, through `streamlit.testing.v1.AppTest`."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from sopilot.core.settings import ROOT, Settings
from sopilot.reports.demo import write_demo

PAGE = str(ROOT / "ui" / "operations.py")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data = tmp_path_factory.mktemp("ops")
    settings = Settings.from_env({}, data_dir=data, database_url=f"sqlite:///{data / 'demo.db'}")
    return settings, write_demo(settings, weeks=6, end_week="2026-W48", seed=7)


@pytest.fixture
def page(demo, monkeypatch):
    settings, _ = demo
    monkeypatch.setenv("SOPILOT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SOPILOT_DATABASE_URL", settings.audit_url)
    return AppTest.from_file(PAGE, default_timeout=180)


def test_the_page_is_in_the_navigation():
    assert 'st.Page("ui/operations.py"' in (ROOT / "app.py").read_text(encoding="utf-8")


def test_policy_review_table_and_charts(page, demo):
    at = page.run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert list(table["policy"])[-1] == "all" and "A.1" in list(table["policy"])
    assert len(at.get("vega_lite_chart")) == 4


def test_the_gap_week_shows_the_gap_and_hides_private_flags(page, demo):
    _, manifest = demo
    at = page.run()
    at.selectbox(key="ops_override_week").set_value(manifest.gap_week).run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Policy Gap"] == str(manifest.gap_count)
    text = "\n".join(str(m.value) for m in at.markdown)
    assert f"**{manifest.gap_policy}**: {manifest.gap_count} similar overrides" in text
    assert manifest.inconsistent_agent not in text
    assert any("sign in as a Team Lead" in c.value for c in at.caption)
