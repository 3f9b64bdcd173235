"""Operations page: the handbook's governance reports (§6 policy review, L.1 overrides, L.2 gaps) with charts.

It reads the configured audit database, or any other one typed in (such as the demo history
`sopilot report demo-data` writes, which this page can also create). Training-review flags are
private (handbook L.1): only a signed-in Team Lead or admin sees them. Grouping texts loads the
encoder, so the two text reports are computed on demand and cached per database and period.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st
from sopilot.ui import components

DEMO_FILE = "demo-audit.db"


def _settings_for(settings, url: str):
    return dataclasses.replace(settings, database_url=url if "://" in url else f"sqlite:///{url}")


@st.cache_data(show_spinner="Reading the audit log…", max_entries=8, ttl=300)
def _review(_settings, url: str, weeks: int, until: str):
    from sopilot.reports.review import policy_review

    return policy_review(_settings, weeks=weeks, until=until or None).to_json()


@st.cache_data(show_spinner="Grouping the overrides' justifications…", max_entries=8, ttl=300)
def _overrides(_settings, url: str, week: str):
    from sopilot.reports.overrides import override_report

    return override_report(_settings, week).to_json()


@st.cache_data(show_spinner="Clustering poorly served tickets…", max_entries=4, ttl=300)
def _gaps(_settings, url: str, weeks: int, until: str):
    from sopilot.reports.gaps import gap_report

    return gap_report(_settings, weeks=weeks, until=until or None).to_json()


def _weeks_in(settings) -> list[str]:
    from sopilot.reports.history import load_tickets
    from sopilot.reports.periods import week_label

    return sorted({week_label(r.at) for r in load_tickets(settings)}, reverse=True)


def _charts(data: dict) -> None:
    import altair as alt
    import pandas as pd

    rows = [{"policy": p["policy"], "tickets": p["volume"], "automated": p["automation_rate"] or 0,
             "escalated": p["escalation_rate"] or 0, "manual review": p["manual_review_rate"] or 0,
             "accepted": p["acceptance_rate"] or 0, "edited": p["edit_rate"] or 0,
             "overridden": p["override_rate"] or 0, "CSAT": p["csat"]["mean"]} for p in data["policies"]]
    if not rows:
        return
    frame = pd.DataFrame(rows)
    left, right = st.columns(2)
    outcomes = frame.melt(id_vars="policy", value_vars=["automated", "escalated", "manual review"],
                          var_name="outcome", value_name="share")
    left.altair_chart(alt.Chart(outcomes, title="Decisions per policy").mark_bar().encode(
        x=alt.X("share:Q", axis=alt.Axis(format="%"), stack="normalize"), y="policy:N", color="outcome:N",
        tooltip=["policy", "outcome", alt.Tooltip("share:Q", format=".0%")]), width="stretch")
    actions = frame.melt(id_vars="policy", value_vars=["accepted", "edited", "overridden"], var_name="agent action",
                         value_name="share")
    right.altair_chart(alt.Chart(actions, title="What agents did with the suggestions").mark_bar().encode(
        x=alt.X("share:Q", axis=alt.Axis(format="%")), y="policy:N", color="agent action:N",
        tooltip=["policy", "agent action", alt.Tooltip("share:Q", format=".0%")]), width="stretch")
    weekly = pd.DataFrame([{"policy": p["policy"], **w} for p in data["policies"] for w in p["weekly"]])
    if not weekly.empty:
        left.altair_chart(alt.Chart(weekly, title="Tickets per week").mark_line(point=True).encode(
            x="week:N", y="volume:Q", color="policy:N"), width="stretch")
    csat = pd.DataFrame([{"outcome": k, "CSAT": v["mean"], "answers": v["answers"]}
                         for k, v in data["csat_by_outcome"].items() if v["mean"] is not None])
    if not csat.empty:
        right.altair_chart(alt.Chart(csat, title="CSAT by outcome (1-5)").mark_bar().encode(
            x=alt.X("CSAT:Q", scale=alt.Scale(domain=[1, 5])), y="outcome:N", tooltip=["outcome", "CSAT", "answers"]),
            width="stretch")


def _policy_tab(settings, url: str) -> None:
    cols = st.columns(2)
    weeks = cols[0].number_input("Weeks", min_value=1, max_value=104, value=13, key="ops_weeks")
    until = cols[1].text_input("Up to week (YYYY-Www, empty: this week)", key="ops_until")
    with components.edge():
        data = _review(settings, url, int(weeks), until.strip())
    st.caption(f"{data['total']['volume']} tickets, {data['period']['label']} (handbook §6, CSAT §8).")
    table = [{"policy": p["policy"], "tickets": p["volume"], "automation": p["automation_rate"],
              "escalation": p["escalation_rate"], "accepted": p["acceptance_rate"], "edited": p["edit_rate"],
              "overridden": p["override_rate"], "wrong SOP": p["wrong_sop_rate"], "CSAT": p["csat"]["mean"],
              "answers": p["csat"]["answers"]} for p in [*data["policies"], data["total"]]]
    st.dataframe(table, hide_index=True, width="stretch", key="ops_policy_table")
    _charts(data)
    causes = [{"policy": p["policy"], **c, "thresholds": ", ".join(c["thresholds"])} for p in data["policies"]
              for c in p["escalation_causes"]]
    if causes:
        st.subheader("Escalation causes", anchor=False)
        st.dataframe(causes, hide_index=True, width="stretch")


def _overrides_tab(settings, url: str) -> None:
    weeks = _weeks_in(settings)
    if not weeks:
        st.info("No tickets recorded yet.")
        return
    week = st.selectbox("Week", weeks, key="ops_override_week")
    if not st.toggle("Show the report", key="ops_show_overrides", value=True):
        return
    with components.edge():
        data = _overrides(settings, url, week)
    cols = st.columns(4)
    cols[0].metric("Overrides", data["overrides"])
    for col, (name, count) in zip(cols[1:], data["categories"].items(), strict=True):
        col.metric(name, count)
    st.subheader("Policy gaps", anchor=False)
    if not data["gaps"]:
        st.write("None: no reason was shared by ten or more overrides of one policy.")
    for gap in data["gaps"]:
        with st.container(border=True):
            st.markdown(f"**{gap['policy']}**: {gap['count']} similar overrides by {len(gap['agents'])} agents — "
                        f"{', '.join(gap['key_phrases'])}")
            for example in gap["examples"]:
                st.markdown(f"> {example}")
            st.caption(f"Task for the {gap['task']['assignee']}; the Head of Support is notified.")
    st.subheader("Reasons by policy", anchor=False)
    st.dataframe([{"policy": g["policy"], "overrides": g["count"], "agents": len(g["agents"]),
                   "key phrases": ", ".join(g["key_phrases"])} for g in data["groups"]], hide_index=True,
                 width="stretch")
    if components.may(components.identity(), "stop"):
        with st.expander(f"Training reviews (private, {len(data['agents_flagged'])})"):
            for flag in data["agents_flagged"]:
                st.markdown(f"- **{flag['agent']}** ({flag['policy']}): {flag['reason']}")
    else:
        st.caption("Training-review flags are private: sign in as a Team Lead to see them.")


def _gaps_tab(settings, url: str) -> None:
    if not st.toggle("Analyse the knowledge-base gaps of the last 13 weeks", key="ops_show_gaps"):
        return
    with components.edge():
        data = _gaps(settings, url, 13, "")
    st.caption(f"{data['candidates']} of {data['resolved']} resolved tickets were poorly served (handbook L.2).")
    for cluster in data["new_articles"]:
        with st.container(border=True):
            st.markdown(f"**New article needed**: {cluster['count']} tickets — {', '.join(cluster['key_phrases'])}")
            st.markdown("\n".join(f"{i}. {step}" for i, step in enumerate(cluster["outline"], start=1)))
    for cluster in data["sop_reviews"]:
        st.warning(f"{cluster['sop']}: {cluster['count']} poorly served tickets about "
                   f"{', '.join(cluster['key_phrases'][:3])} — flagged for the Content Team.")
    st.dataframe([{"tickets": c["count"], "SOP": c["sop"], "key phrases": ", ".join(c["key_phrases"]),
                   "finding": c["finding"]} for c in data["clusters"]], hide_index=True, width="stretch")


def render() -> None:
    """The Operations page."""
    settings = components.settings()
    st.title("Operations", anchor=False)
    st.caption("The handbook's governance reports, from the audit log: policy review (§6), automation policy "
               "exceptions (L.1), knowledge-base gaps (L.2), CSAT (§8).")
    demo = settings.data_dir / DEMO_FILE
    if "ops_database_next" in st.session_state:
        st.session_state["ops_database"] = st.session_state.pop("ops_database_next")
    st.session_state.setdefault("ops_database", settings.audit_url)
    url = st.text_input("Audit database", key="ops_database",
                        help="A SQLAlchemy URL or an SQLite file, e.g. the demo history.")
    if not demo.exists() and st.button("Create a demo history (6 weeks, planted patterns)", key="ops_demo"):
        from sopilot.reports.demo import write_demo

        with components.edge(), st.spinner("Generating…"):
            write_demo(_settings_for(settings, str(demo)), weeks=6)
        st.session_state["ops_database_next"] = f"sqlite:///{demo}"
        st.rerun()
    current = _settings_for(settings, url.strip() or settings.audit_url)
    target = current.audit_url.split(":///", 1)[1] if current.audit_url.startswith("sqlite:///") else ""
    if target and current.audit_url != settings.audit_url and not Path(target).is_file():
        st.info(f"No audit database at {target}: check the path, or create the demo history.")
        return
    review, overrides, gaps = st.tabs(["Policy review", "Overrides (L.1)", "Knowledge gaps (L.2)"])
    with review:
        _policy_tab(current, current.audit_url)
    with overrides:
        _overrides_tab(current, current.audit_url)
    with gaps:
        _gaps_tab(current, current.audit_url)


if __name__ == "__main__":
    render()
