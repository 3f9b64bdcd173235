"""Evaluation page: retrieval metrics (configured retriever beside its baselines) and guard agreement.

Runs the same library functions as `sopilot eval retrieval` and `sopilot eval guard`, on the
shipped sets or on an uploaded JSON Lines file, and keeps the last result of each in the session
so that changing a filter does not run them again.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st
from sopilot.ui import components

from sopilot.core.errors import InputError
from sopilot.core.settings import ROOT

SHIPPED_QUERIES = ROOT / "eval" / "queries.jsonl"
SHIPPED_CASES = ROOT / "eval" / "guard_cases.jsonl"


def _source(label: str, shipped: Path, key: str) -> Path | bytes | None:
    """The shipped file's path, or the bytes of an uploaded one (None until one is uploaded)."""
    choice = st.radio(label, ["Shipped set", "Upload a JSONL file"], key=f"{key}_source", horizontal=True,
                      captions=[f"`{shipped.relative_to(ROOT)}`", "one JSON object per line"])
    if choice == "Shipped set":
        return shipped
    upload = st.file_uploader("JSON Lines file", type=["jsonl", "json", "txt"], key=f"{key}_upload")
    return None if upload is None else upload.getvalue()


def _with_file(source: Path | bytes, run):
    """Call `run(path)` on the shipped file, or on an uploaded one written to a temporary file."""
    if isinstance(source, Path):
        return run(source)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "uploaded.jsonl"
        path.write_bytes(source)
        return run(path)


def _progress_bar(text: str):
    bar = st.progress(0.0, text=text)

    def update(done: int, total: int, what: str) -> None:
        bar.progress(done / max(total, 1), text=f"{what}: {done}/{total}")

    return bar, update


def _retrieval(settings) -> None:
    from sopilot.eval.retrieval import SYSTEMS, evaluate_retrieval

    source = _source("Queries", SHIPPED_QUERIES, "eval_queries")
    left, right = st.columns([1, 3])
    k = left.number_input("k (depth)", min_value=1, max_value=100, value=10, step=1, key="eval_k")
    systems = right.multiselect("Systems", SYSTEMS, default=list(SYSTEMS), key="eval_systems",
                                help="The configured retriever always runs; the others are its baselines.")
    if st.button("Run retrieval evaluation", icon=":material/play_arrow:", key="eval_retrieval_go",
                 disabled=source is None):
        bar, update = _progress_bar("Retrieval evaluation")
        with components.edge(stop=False):
            if source is None:  # the button is disabled without a source
                raise InputError("choose or upload a query set first")
            result = _with_file(source, lambda path: evaluate_retrieval(path, settings, k=int(k), systems=systems,
                                                                        progress=update))
            bar.progress(1.0, text=f"Done: {result.n} queries × {len(result.scores)} systems")
            st.session_state["eval_retrieval"] = result
    result = st.session_state.get("eval_retrieval")
    if result is None:
        return
    rows = [{"system": f"{name} (configured)" if name == result.retriever else name,
             **values, "ms/query": result.latency_ms[name]} for name, values in result.scores.items()]
    st.dataframe(rows, hide_index=True, width="stretch")
    chart = {name: [values[m] for m in result.metrics] for name, values in result.scores.items()}
    st.bar_chart({"metric": list(result.metrics), **chart}, x="metric", y=list(chart), stack=False,
                 y_label="score", height=320)
    st.caption(f"n = {result.n} queries from `{Path(result.queries_path).name}` · depth {result.k} · "
               f"index {result.index_version} · {result.embedding_model} · {result.date}")
    if result.unknown:
        st.warning("Relevant ids not in the index (never retrievable): "
                   + ", ".join(f"{sop_id} ({count})" for sop_id, count in result.unknown.items()))
    st.subheader(f"Missed queries ({len(result.missed)})", anchor=False)
    st.caption("The configured retriever's top result is not relevant: what it retrieved instead.")
    st.dataframe([{"line": m.line, "query": m.query, "relevant": ", ".join(m.relevant),
                   "retrieved instead": ", ".join(m.retrieved)} for m in result.missed],
                 hide_index=True, width="stretch")


def _run_guard_eval(path: Path, settings) -> dict:
    """The `sopilot eval guard --json` report, from the same library function as the command."""
    from sopilot.eval.guard import evaluate_guard
    from sopilot.guard.policy import policies_for

    return evaluate_guard(path, policies_for(settings), stopped=settings.stopped,
                          classify=components.classifier(settings)).to_json()


def _guard(settings) -> None:
    source = _source("Cases", SHIPPED_CASES, "eval_cases")
    if isinstance(source, Path) and not source.exists():
        st.warning(f"`{source.relative_to(ROOT)}` is not there yet: upload a JSONL set of guard cases.")
        return
    if st.button("Run guard evaluation", icon=":material/play_arrow:", key="eval_guard_go", disabled=source is None):
        bar = st.progress(0.0, text="Guard evaluation: deciding every case…")
        with components.edge(stop=False):
            if source is None:  # the button is disabled without a source
                raise InputError("choose or upload a set of guard cases first")
            st.session_state["eval_guard"] = _with_file(source, lambda path: _run_guard_eval(path, settings))
            bar.progress(1.0, text="Guard evaluation: done")
    report = st.session_state.get("eval_guard")
    if report is None:
        return
    n, passed = report["n"], report["passed"]
    left, mid, right = st.columns(3)
    left.metric("Cases", n)
    mid.metric("Agree", passed)
    right.metric("Agreement", f"{passed / n:.1%}" if n else "–")
    if not report["failed"]:
        st.success("Every case agrees with its label.")
        return
    st.subheader(f"Disagreements ({len(report['failed'])})", anchor=False)
    st.dataframe([{"line": case.get("line"), "message": (case.get("ticket") or {}).get("message"),
                   "expected": case.get("expect"), "got": case.get("got"),
                   "mismatches": "; ".join(case.get("mismatches", []))} for case in report["failed"]],
                 hide_index=True, width="stretch")


def render() -> None:
    """The Evaluation page."""
    settings = components.settings()
    st.title("Evaluation", anchor=False)
    retrieval, guard = st.tabs(["Retrieval", "Guard"])
    with retrieval:
        _retrieval(settings)
    with guard:
        _guard(settings)


if __name__ == "__main__":
    render()
