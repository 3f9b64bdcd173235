"""Knowledge page: the SOPs as indexed, the lint, the policies with their Emergency Stop, and ingest.

Everything shown comes from the index (`Retriever.sops`), the knowledge lint, the guard's policy
file and the ingest report. An upload is first tried on a copy of the index (how it splits into
SOPs, which labelled queries change their best SOP); saving puts it into the configured knowledge
dir and ingests it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st
from sopilot.ui import components

from sopilot.core.errors import SopilotError

UPLOAD_TYPES = ["md", "markdown", "txt", "docx", "pdf"]


def _sops(retriever) -> None:
    sops = sorted(retriever.sops.values(), key=lambda s: (s.category, s.sop_id))
    categories = sorted({s.category for s in sops})
    chosen = st.selectbox("Category", ["All categories", *categories], key="kb_category")
    shown = [s for s in sops if chosen in ("All categories", s.category)]
    st.caption(f"{len(shown)} of {len(sops)} SOPs")
    current = None
    for sop in shown:
        if sop.category != current:
            current = sop.category
            st.subheader(current, anchor=False)
        label = f"**{sop.sop_id}** · {sop.title}" + ("" if sop.answerable else " · *template, never used to answer*")
        with st.expander(label):
            facts = [f"source `{sop.source}`"]
            facts.append(f"version {sop.version}" if sop.version else "no version stated")
            facts.append(f"effective {sop.effective_date}" if sop.effective_date else "no effective date stated")
            st.caption(" · ".join(facts))
            for section in sop.sections:
                st.markdown(f"**{section.heading or section.kind}** · `{section.kind}` · "
                            f"lines {section.line_start}–{section.line_end}")
                st.markdown(section.text)


def _lint(settings) -> None:
    from sopilot.ingest.lint import lint
    from sopilot.ingest.pipeline import parse_paths

    parsed = parse_paths([settings.knowledge_dir], settings)
    findings = lint(parsed.sops)
    kinds = sorted({f.kind for f in findings})
    wanted = st.multiselect("Show", kinds, default=[k for k in kinds if k != "threshold"], key="lint_kinds",
                            help="`threshold` lists every limit the documents state: the numbers the policy file "
                                 "must agree with.")
    rows = [{"kind": f.kind, "sop_id": f.sop_id, "source": f.source, "line": f.line, "text": f.text}
            for f in findings if f.kind in wanted]
    st.dataframe(rows, hide_index=True, width="stretch")
    for skipped in parsed.skipped:
        st.error(f"{skipped.source}: {skipped.reason}")
    from sopilot.guard.crosscheck import check_thresholds

    disagreements = check_thresholds(components.policies(settings), {d.source: d.text for d in parsed.documents})
    for error in disagreements:
        st.warning(f"policy file and documents disagree: {error}", icon=":material/rule:")
    if not disagreements:
        st.caption("Every threshold of the policy file is stated in the documents it cites.")


def _rule_line(rule) -> str:
    where = f" → {rule.escalate_to}" if rule.escalate_to else ""
    sla = f" · SLA {rule.sla}" if rule.sla else ""
    approval = " · approval required" if rule.approval_required else ""
    return f"`{rule.id}` **{rule.outcome.replace('_', ' ')}**{where}{sla}{approval} ({rule.cite})"


def _switch_stop(settings, policy_id: str) -> None:
    """Record one Emergency Stop switch (who, why) in the audit log, then apply it (handbook §7).

    Without a signed-in person allowed to stop policies, or without a reason, nothing changes.
    """
    from sopilot import audit

    key = f"stop_{policy_id}"
    stopped = bool(st.session_state[key])
    who = components.identity()
    if who is None or not components.may(who, "stop"):
        st.session_state[key] = not stopped
        st.session_state["stop_message"] = "Only a signed-in team lead or admin may switch an Emergency Stop."
        return
    try:
        audit.record_emergency_stop(settings, policy=policy_id, stopped=stopped, agent=who.name,
                                    justification=st.session_state.get("stop_reason") or None)
    except SopilotError as exc:
        st.session_state[key] = not stopped
        st.session_state["stop_message"] = f"Emergency Stop of {policy_id} not switched: {exc}"
        return
    components.set_stopped(settings, policy_id, stopped)
    st.session_state["stop_message"] = (f"Emergency Stop {'on' if stopped else 'off'} for {policy_id}: its automation "
                                        f"{'now goes to manual review' if stopped else 'runs again'}.")


def _policies(settings) -> None:
    policies = components.policies(settings)
    st.markdown(f"Policy file `{policies.source.name}`, read from *{policies.document}*.")
    st.dataframe([{"threshold": t.name, "value": f"{t.value:f}", "unit": t.unit, "section": t.section,
                   "handbook text": t.quote} for t in policies.thresholds.values()],
                 hide_index=True, width="stretch")
    st.markdown("**Emergency Stop** (handbook §7): a stopped policy never automates; its tickets go to manual review.")
    who = components.identity()
    may_stop = who is not None and components.may(who, "stop")
    if may_stop:
        st.text_input("Reason for a change (required, recorded in the audit log with your name)", key="stop_reason")
    else:
        st.caption("Only a signed-in team lead or admin may switch an Emergency Stop (sign in on the Chat page).")
    if "stop_message" in st.session_state:
        st.info(st.session_state.pop("stop_message"), icon=":material/front_hand:")
    locked = components.env_stopped()
    stopped = settings.stopped
    for policy in policies.policies.values():
        left, right = st.columns([1, 4])
        with left:
            st.toggle("Stopped", value=policy.id in stopped, key=f"stop_{policy.id}",
                      disabled=policy.id in locked or not may_stop, on_change=_switch_stop, args=(settings, policy.id),
                      help="Set by SOPILOT_STOPPED_POLICIES" if policy.id in locked else None)
        with right:
            st.markdown(f"**{policy.id}** · {policy.title} · facts: "
                        + (", ".join(f"`{f}`" for f in sorted(policy.facts)) or "none"))
            for rule in policy.rules:
                st.markdown(f"- {_rule_line(rule)}")
            if policy.fallback:
                st.caption(policy.fallback)


def _note(kind: str, text: str) -> None:
    """A message that outlives the rerun after an ingest (`kind`: success, info, warning, error)."""
    st.session_state.setdefault("kb_notes", []).append((kind, text))


def _ingest(settings, note: str):
    """Run one ingest of the knowledge dir behind a progress bar; return the report."""
    from sopilot.ingest.pipeline import ingest

    bar = st.progress(0.05, text=f"{note}: reading, sectioning and embedding the documents…")
    with components.edge(), st.spinner("Only new or changed sections are embedded."):
        report = ingest(None, settings, progress=False)
    summary = (f"{note}: index {report.version} · {len(report.sops)} SOPs · {report.chunks} chunks "
               f"({report.embedded} embedded, {report.chunks - report.embedded} unchanged)")
    bar.progress(1.0, text=summary)
    _note("info", summary)
    for error in report.policy_errors:
        _note("warning", f"policy file: {error}")
    components.forget_index()
    return report


def _save_upload(settings, upload) -> Path | None:
    """Check an uploaded file can be read, then save it into the knowledge dir; None when it cannot."""
    from sopilot.ingest.pipeline import parse_paths

    name = Path(upload.name).name
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / name
        probe.write_bytes(upload.getvalue())
        parsed = parse_paths([probe], settings)
    for skipped in parsed.skipped:
        st.error(f"{upload.name} cannot be used: {skipped.reason}", icon=":material/block:")
    if parsed.skipped:
        return None
    target = settings.knowledge_dir / name
    target.write_bytes(upload.getvalue())
    return target


def _add(settings, upload) -> None:
    """Save an uploaded SOP file into the knowledge dir and ingest; undo the save if ingest refuses it."""
    target = settings.knowledge_dir / Path(upload.name).name
    previous = target.read_bytes() if target.exists() else None
    saved = _save_upload(settings, upload)
    if saved is None:
        return
    report = _ingest(settings, f"Ingest {saved.name}")
    refused = [s for s in report.skipped if s.source == saved.name]
    if refused:
        _note("error", f"{saved.name} was not added: {refused[0].reason}")
        if previous is None:
            saved.unlink()
        else:
            saved.write_bytes(previous)
            _ingest(settings, f"Restore the previous {saved.name}")
    else:
        added = [s.sop_id for s in report.sops if s.source == saved.name]
        _note("success", f"{saved.name} added: {', '.join(added)} can be retrieved now.")
    st.rerun()


def _update(settings) -> None:
    for kind, text in st.session_state.pop("kb_notes", []):
        getattr(st, kind)(text)
    left, right = st.columns(2)
    with left:
        st.markdown("**Re-ingest** the knowledge dir: only changed text is embedded again.")
        st.caption(f"`{settings.knowledge_dir}`")
        if st.button("Re-ingest", icon=":material/sync:", key="reingest"):
            report = _ingest(settings, "Re-ingest")
            for skipped in report.skipped:
                _note("error", f"skipped {skipped.source}: {skipped.reason}")
            if report.ok:
                _note("success", "The knowledge base is up to date.")
            st.rerun()
    with right:
        upload = st.file_uploader("Add an SOP document", type=UPLOAD_TYPES, key="upload",
                                  help="Markdown, plain text, Word (.docx) or PDF. It is saved into the knowledge "
                                       "dir and ingested; it answers tickets at once.")
        if upload is not None and (settings.knowledge_dir / Path(upload.name).name).exists():
            st.warning(f"{upload.name} replaces the file of that name in the knowledge dir.")
        if upload is not None:
            _preview(settings, upload)
        if upload is not None and st.button("Save and ingest", icon=":material/upload_file:", key="upload_go",
                                            help=f"Saved into {settings.knowledge_dir}, then ingested."):
            _add(settings, upload)


def _preview(settings, upload) -> None:
    """How the upload splits into SOPs and what it changes in retrieval, before anything is saved."""
    import hashlib

    from sopilot.ui.upload_preview import preview_upload

    digest = hashlib.sha256(upload.getvalue()).hexdigest()
    cached = st.session_state.get("upload_preview")
    if cached is None or cached[0] != digest:
        with components.edge(stop=False), st.spinner("Trying the document on a copy of the index…"):
            st.session_state["upload_preview"] = (digest, preview_upload(settings, upload.name, upload.getvalue()))
    cached = st.session_state.get("upload_preview")
    if cached is None or cached[0] != digest:
        return
    preview = cached[1]
    with st.container(border=True, key="upload_preview_box"):
        st.markdown(f"**Before ingest: {preview.name} holds {len(preview.sops)} SOP"
                    f"{'' if len(preview.sops) == 1 else 's'}**")
        if preview.sops:
            st.dataframe(list(preview.sops), hide_index=True, width="stretch")
        for reason in preview.skipped:
            st.error(reason, icon=":material/block:")
        if preview.queries:
            st.markdown(f"**Retrieval on {preview.queries} labelled queries:** hit@1 {preview.hit1_before:.3f} → "
                        f"{preview.hit1_after:.3f}; {len(preview.changed)} change their best SOP.")
            if preview.changed:
                st.dataframe([{"query": c.query, "labelled": ", ".join(c.relevant), "before": c.before,
                               "after": c.after} for c in preview.changed], hide_index=True, width="stretch")


def render() -> None:
    """The Knowledge page."""
    settings = components.settings()
    st.title("Knowledge", anchor=False)
    sops, lint, policies, update = st.tabs(["SOPs", "Lint", "Policies", "Add or re-ingest"])
    with sops, components.edge(stop=False):
        retriever = components.retriever(settings)
        st.caption(f"{len(retriever.sops)} SOPs in {len(retriever.categories)} categories · index "
                   f"{components.index_version(settings)} · data in `{settings.data_dir}`")
        _sops(retriever)
    with lint, components.edge(stop=False):
        _lint(settings)
    with policies, components.edge(stop=False):
        _policies(settings)
    with update:
        _update(settings)


if __name__ == "__main__":
    render()
