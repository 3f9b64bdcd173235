"""The retrieval evaluation as a terminal table, a self-describing Markdown report and a bar chart.

The report says how to reproduce itself (the command), when and on what it ran (date, query
file, index version, embedding model, retriever configuration), and shows every metric to the
same 4 digits for every system, so two reports can be compared line by line.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from sopilot.eval.retrieval import EvalResult

DESCRIPTIONS = {
    "hybrid": "the configured retriever (dense + BM25, fused)",
    "bm25": "the same index, lexical side only",
    "dense": "the same index, dense side only",
    "tutorial": "raw files, RecursiveCharacterTextSplitter(1000, 200), dense top-k (see eval/baselines.py)",
}
DEFAULT_REPORT_DIR = Path(__file__).resolve().parent / "reports"


def command_line(*, queries: str, k: int, report_dir: Path) -> str:
    """The command that reproduces a report."""
    parts = ["sopilot", "eval", "retrieval", "--queries", str(queries), "--k", str(k)]
    if Path(report_dir).resolve() != DEFAULT_REPORT_DIR.resolve():
        parts += ["--report-dir", str(report_dir)]
    return shlex.join(parts)


def _rows(result: EvalResult) -> list[tuple[str, list[str]]]:
    rows = []
    for name, values in result.scores.items():
        label = f"{name} (configured)" if name == result.retriever else name
        rows.append((label, [f"{values[m]:.4f}" for m in result.metrics] + [f"{result.latency_ms[name]:.1f}"]))
    return rows


def table(result: EvalResult) -> str:
    """A plain-text table of every system's metrics, for the terminal."""
    header = ["system", *result.metrics, "ms/query"]
    rows = _rows(result)
    width = max(len(header[0]), *(len(label) for label, _ in rows))
    lines = [f"{header[0]:<{width}}  " + "  ".join(f"{h:>9}" for h in header[1:])]
    lines += [f"{label:<{width}}  " + "  ".join(f"{v:>9}" for v in values) for label, values in rows]
    lines.append(f"\nn = {result.n} queries, depth {result.k}; top result not relevant for {len(result.missed)}")
    nm = result.no_match
    if nm is not None and nm.no_match:
        lines.append(f"no match: AUC {nm.auc}; at threshold {nm.threshold} {nm.caught} of {nm.no_match} caught, "
                     f"{nm.matched_answerable_english:.1%} of answerable English matched")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(result: EvalResult, *, command: str, chart: str | None = "retrieval.png") -> str:
    """The Markdown report."""
    config = ", ".join(f"{key}={value}" for key, value in result.config.items())
    out = [
        "# Retrieval evaluation",
        "",
        f"Reproduce: `{command}`",
        "",
        f"- date: {result.date}",
        f"- queries: {result.n} from `{result.queries_path}`; every system ranks to depth {result.k}",
        f"- index version: `{result.index_version}`, embedding model `{result.embedding_model}`",
        f"- configured retriever (`{result.retriever}`): {config}",
        "- metrics: binary relevance over distinct sop_ids in order of first appearance (ranx definitions, "
        "see `eval/metrics.py`); means rounded to 4 digits; nothing is sampled",
    ]
    if result.unknown:
        listed = ", ".join(f"`{sop_id}` ({count})" for sop_id, count in result.unknown.items())
        out.append(f"- relevant ids not in the index (never retrievable): {listed}")
    else:
        out.append("- relevant ids not in the index: none")
    out += ["", "## Metrics", "", "| system | " + " | ".join(result.metrics) + " | ms/query* |",
            "|---|" + "---:|" * (len(result.metrics) + 1)]
    out += [f"| {label} | " + " | ".join(values) + " |" for label, values in _rows(result)]
    out += [""] + [f"- `{name}`: {DESCRIPTIONS.get(name, name)}" for name in result.scores]
    out += ["", "\\* mean wall time per query during this run, on whatever else the machine was doing; "
            "`bench/bench_retrieval.py` measures latency properly."]
    if chart:
        out += ["", f"![metrics per system]({chart})"]
    out += _breakdowns(result)
    out += ["", f"## Missed queries ({len(result.missed)})", "",
            f"Queries whose top `{result.retriever}` result is not relevant, with its top 3 instead.", ""]
    if result.missed:
        out += ["| line | query | relevant | retrieved instead |", "|---:|---|---|---|"]
        out += [f"| {m.line} | {_cell(m.query)} | {', '.join(m.relevant)} | {', '.join(m.retrieved) or '(nothing)'} |"
                for m in result.missed]
    else:
        out.append("None.")
    return "\n".join(out) + "\n"


def _breakdowns(result: EvalResult) -> list[str]:
    out: list[str] = []
    for title, groups in (("form", result.by_form), ("language", result.by_language)):
        if len(groups) < 2:
            continue
        metrics = [m for m in next(iter(groups.values())) if m != "n"]
        out += ["", f"## `{result.retriever}` by {title} (answerable queries)", "",
                f"| {title} | n | " + " | ".join(metrics) + " |", "|---|---:|" + "---:|" * len(metrics)]
        out += [f"| {name} | {int(v['n'])} | " + " | ".join(f"{v[m]:.4f}" for m in metrics) + " |"
                for name, v in groups.items()]
    nm = result.no_match
    if nm is not None:
        out += ["", "## No match: the calibrated match probability", "",
                f"- {nm.answerable} answerable queries, {nm.no_match} that no SOP covers; "
                f"AUC of the top hit's probability (answerable vs no match): "
                f"{'n/a' if nm.auc is None else f'{nm.auc:.4f}'}",
                f"- at the configured threshold {nm.threshold}: {nm.caught} of {nm.no_match} no-match queries "
                f"`matched: false`; {nm.matched_answerable:.1%} of answerable ({nm.matched_answerable_english:.1%} of "
                f"answerable English) `matched: true`; top SOP right and matched: {nm.top_correct_matched:.1%}",
                "", "| threshold | no-match caught | answerable English matched |", "|---:|---:|---:|"]
        out += [f"| {t:.2f} | {c:.1%} | {m:.1%} |" for t, c, m in nm.trade_off]
    if result.language_errors:
        out += ["", "## Language detected differently from the label", "",
                "| line | labelled | detected |", "|---:|---|---|"]
        out += [f"| {n} | {a} | {b} |" for n, a, b in result.language_errors]
    elif result.by_language:
        out += ["", "Language: detected as labelled for every query."]
    return out


def write_markdown(result: EvalResult, path: Path, *, command: str) -> Path:
    """Write the Markdown report; return its path."""
    path.write_text(markdown(result, command=command, chart=path.with_suffix(".png").name), encoding="utf-8")
    return path


def write_chart(result: EvalResult, path: Path) -> Path:
    """A grouped bar chart of every metric per system (matplotlib, Agg; no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    systems = list(result.scores)
    width = 0.8 / len(systems)
    for i, name in enumerate(systems):
        xs = [m + (i - (len(systems) - 1) / 2) * width for m in range(len(result.metrics))]
        bars = axes.bar(xs, [result.scores[name][m] for m in result.metrics], width, label=name)
        axes.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    axes.set_xticks(range(len(result.metrics)), result.metrics)
    axes.set_ylim(0, 1.15)
    axes.set_ylabel("mean over queries")
    axes.set_title(f"Retrieval on {result.n} queries ({Path(result.queries_path).name}), {result.date[:10]}")
    axes.legend(loc="upper center", ncol=len(systems), fontsize=8, frameon=False)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})
    return path
