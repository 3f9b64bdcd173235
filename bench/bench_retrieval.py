"""Retrieval benchmark: ingest time, warm latency, cold start and memory, shipped and at 10,000 sections.

Run from the project directory: `python bench/bench_retrieval.py` (add `--quick` to skip the
synthetic knowledge base, which takes minutes to embed on a small CPU). Everything is built in
temporary directories; nothing under `data/` is touched. Warm latency is measured in-process
after a warm-up, over every query of `eval/queries.jsonl` (the same queries on both knowledge
bases, so the figures compare); the cold start is the `sopilot retrieve` command as an agent's
script would run it. The synthetic knowledge base is generated from a fixed seed, so every run
indexes the same text. The last thing printed is a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from sopilot.core.settings import ROOT, Settings  # noqa: E402

SEED = 42
K = 5
"""Hits per query, as `sopilot retrieve` returns by default."""
WARMUP = 20
COLD_RUNS = 3
COLD_QUERY = "customer charged twice for the March invoice, 89 dollars"
TARGET_P95_MS = {"shipped": 50.0, "synthetic": 150.0, "email": 150.0, "scale": 100.0}
SCALE_CHUNKS = 50_000
NEVER_ANSWERABLE = 0.02
"""Share of the scaled index's chunks marked never answerable (as the SOP authoring template is)."""
SYNTHETIC_SOPS = 2000
SOPS_PER_FILE = 100

_SYLLABLES = ("ka", "lo", "ri", "zen", "tor", "va", "mi", "dex", "por", "lun", "qua", "sel", "nor", "bri", "tal",
              "gro", "fen", "xi", "mar", "cu", "pla", "sto", "vin", "ra", "don", "ket", "zu", "hal", "mo", "tri")
_OBJECTS = ("invoice", "shipment", "warehouse", "license", "subscription", "device", "router", "firmware", "report",
            "dashboard", "contract", "voucher", "payout", "ledger", "tenant", "workspace", "certificate", "token",
            "pallet", "courier", "refund", "credit", "quota", "bandwidth", "mailbox", "calendar", "printer",
            "terminal", "kiosk", "sensor", "meter", "tariff", "bundle", "catalogue", "coupon", "badge", "locker",
            "appointment", "prescription", "policy", "claim", "premium", "deposit", "loan", "statement", "api key",
            "webhook", "integration", "export", "backup", "replica", "cluster", "domain", "mailing list", "seat")
_ISSUES = ("delay", "mismatch", "outage", "failure", "duplication", "corruption", "expiry", "suspension",
           "misrouting", "overbilling", "underpayment", "lockout", "degradation", "rejection", "loss", "damage",
           "migration", "renewal", "transfer", "downgrade", "upgrade", "reactivation", "cancellation", "audit",
           "verification", "reconciliation", "throttling", "escalation", "dispute", "recall")
_VERBS = ("verify", "check", "confirm", "record", "notify", "escalate", "reconcile", "suspend", "restore",
          "reissue", "validate", "compare", "flag", "assign", "archive", "tag", "schedule", "approve", "review",
          "document", "reset", "refund", "credit", "replace", "inspect", "monitor", "quarantine", "rebuild")
_TEAMS = ("Billing Specialists", "Logistics Desk", "Tier 2 Support", "Security Operations", "Field Engineering",
          "Partner Success", "Compliance Office", "Platform Reliability", "Finance Controllers", "Account Managers")
_CONDITIONS = ("the amount is at most ${n}.00", "the customer tier is Enterprise", "the ticket priority is High",
               "the {obj} is older than {n} days", "more than {n} users are affected", "the region is {name}",
               "the {obj} was already reissued", "the warranty is still active", "identity is not verified")
_CATEGORIES = ("Billing", "Logistics", "Access", "Devices", "Compliance", "Partners", "Platform", "Finance",
               "Healthcare", "Insurance", "Retail", "Telecom", "Education", "Travel", "Energy", "Media",
               "Public Sector", "Manufacturing", "Hospitality", "Banking")


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def _sentence(rng: random.Random, obj: str, issue: str, product: str) -> str:
    verb, other = rng.choice(_VERBS), rng.choice(_OBJECTS)
    return (f"{verb.capitalize()} the {obj} {issue} reported for {product} against the {other} "
            f"records of the last {rng.randint(2, 90)} days.")


def synthetic_sop(rng: random.Random, letter: str, number: int) -> str:
    """One synthetic SOP in the handbook's Markdown style: a numbered heading and five sections."""
    obj, issue, product = rng.choice(_OBJECTS), rng.choice(_ISSUES), _name(rng)
    team, n = rng.choice(_TEAMS), rng.randint(2, 500)
    condition = rng.choice(_CONDITIONS).format(n=n, obj=obj, name=_name(rng))
    steps = "\n".join(f"  {i}. {_sentence(rng, obj, issue, product)}" for i in range(1, rng.randint(3, 6)))
    return f"""### {letter}.{number}: Sub-Category: {product} {obj.title()} {issue.title()}

- **Purpose:** Resolve {issue} of a {obj} on {product} accounts; {_sentence(rng, obj, issue, product).lower()}
- **Procedure:**
{steps}
- **Automation Rules:**
  - **IF** {condition}:
    - **ACTION:** {rng.choice(_VERBS).capitalize()} the {obj} and {rng.choice(_VERBS)} the {rng.choice(_OBJECTS)}.
    - **SLA:** {rng.choice((4, 8, 24, 48, 72))} hours.
- **Escalation:**
  - Hand {issue} cases above {n} {obj}s to the {team} team with the {product} case number.
- **Response Template:**
  > Dear customer, we are looking into the {issue} of your {obj} ({product}). {_sentence(rng, obj, issue, product)}
"""


def write_synthetic(directory: Path, sops: int = SYNTHETIC_SOPS, seed: int = SEED) -> int:
    """Write `sops` synthetic SOPs (5 sections each) as Markdown files; return the number of files."""
    rng = random.Random(seed)
    letters = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    files = 0
    for start in range(0, sops, SOPS_PER_FILE):
        category = _CATEGORIES[files % len(_CATEGORIES)]
        letter = letters[files % len(letters)]
        offset = (files // len(letters)) * SOPS_PER_FILE
        body = [f"# Synthetic {category} Handbook {files + 1}\n\n**Document Version:** 1.{files}\n",
                f"## Category {letter}: {category} Operations {files + 1}\n"]
        body += [synthetic_sop(rng, letter, offset + i + 1) for i in range(min(SOPS_PER_FILE, sops - start))]
        (directory / f"synthetic-{files + 1:03d}.md").write_text("\n".join(body), encoding="utf-8")
        files += 1
    return files


def _queries() -> list[str]:
    lines = (ROOT / "eval" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["query"] for line in lines if line.strip()]


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def _rss_mb(kilobytes: int) -> float:
    return kilobytes / 1024 if sys.platform != "darwin" else kilobytes / 1024 / 1024


def warm_latency(settings: Settings, queries: list[str]) -> dict:
    """p50/p95/max of `search` in one process after a warm-up, in milliseconds."""
    from sopilot.retriever.hybrid import load

    started = time.perf_counter()
    retriever = load(settings)
    load_s = time.perf_counter() - started
    for query in queries[:WARMUP]:
        retriever.search(query, k=K)
    timings = []
    for query in queries:
        began = time.perf_counter()
        retriever.search(query, k=K)
        timings.append(1000 * (time.perf_counter() - began))
    return {"load_s": load_s, "n": len(timings), "p50": statistics.median(timings),
            "p95": _percentile(timings, 95), "max": max(timings), "chunks": len(retriever.chunks),
            "sops": len(retriever.sop_ids)}


def _emails() -> list[str]:
    """The 10-14-line emails and threads of eval/tickets.jsonl (what an agent pastes)."""
    rows = [json.loads(x) for x in (ROOT / "eval" / "tickets.jsonl").read_text(encoding="utf-8").splitlines() if x]
    return [r["query"] for r in rows if r["form"] in ("email", "thread") and 10 <= len(r["query"].splitlines()) <= 14]


def email_latency(settings: Settings) -> dict:
    """p50/p95 of `retrieve` on whole pasted emails (read, split into pieces, every piece embedded)."""
    from sopilot.retriever.hybrid import load

    retriever = load(settings)
    emails = _emails()
    for email in emails[:5]:
        retriever.retrieve(email, k=K)
    timings = []
    for email in emails:
        began = time.perf_counter()
        retriever.retrieve(email, k=K)
        timings.append(1000 * (time.perf_counter() - began))
    return {"n": len(timings), "p50": statistics.median(timings), "p95": _percentile(timings, 95),
            "lines": statistics.median(len(e.splitlines()) for e in emails)}


def scaled_latency(shipped: Settings, workdir: Path, chunks: int, queries: list[str]) -> dict:
    """Short-query latency with `chunks` chunks in the vector store, filtered and unfiltered.

    Embedding 50,000 chunks takes most of an hour on two cores, so the scaled index holds the
    shipped chunks' own vectors, each repeated with small Gaussian noise (normalised), beside
    synthetic SOP text for the lexical side: the encoder, the HNSW search and BM25 do the work
    they would do at that size. `NEVER_ANSWERABLE` of the chunks are marked never answerable.
    Measured: the retriever's own path (no `where` filter: never-answerable chunks are dropped
    after the search) against the same query with `where={"answerable": True}`.
    """
    import chromadb
    import numpy as np
    from chromadb.config import Settings as ChromaSettings
    from sopilot.ingest.embed import get_embedder
    from sopilot.ingest.store import Store, connect
    from sopilot.retriever.hybrid import Retriever
    from sopilot.retriever.knowledge import IndexedChunk

    base = Store(connect(shipped), shipped.collection).active().get(include=["embeddings", "metadatas"])
    vectors = np.asarray(base["embeddings"], dtype="float32")
    rng = np.random.default_rng(SEED)
    pick = rng.integers(0, len(vectors), size=chunks)
    noisy = vectors[pick] + rng.normal(0, 0.02, size=(chunks, vectors.shape[1])).astype("float32")
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    text_rng = random.Random(SEED)
    client = chromadb.PersistentClient(path=str(workdir / "scaled"),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    collection = client.create_collection("scaled", embedding_function=None,
                                          configuration={"hnsw": {"space": "cosine"}})
    indexed = []
    for i in range(chunks):
        sop = f"S.{i // 5}"
        meta = {"sop_id": sop, "title": f"Synthetic {sop}", "category": _CATEGORIES[(i // 5) % len(_CATEGORIES)],
                "section": "procedure", "source": "synthetic.md", "line_start": i, "line_end": i, "order": i % 5,
                "part": 0, "answerable": text_rng.random() >= NEVER_ANSWERABLE}
        obj, issue = text_rng.choice(_OBJECTS), text_rng.choice(_ISSUES)
        indexed.append(IndexedChunk(chunk_id=str(i), text=f"{sop}\n" + _sentence(text_rng, obj, issue, _name(text_rng)),
                                    metadata=meta))
    step = 5000
    for start in range(0, chunks, step):
        part = indexed[start:start + step]
        collection.add(ids=[c.chunk_id for c in part], documents=[c.text for c in part],
                       metadatas=[c.metadata for c in part], embeddings=noisy[start:start + step].tolist())
    retriever = Retriever(collection, indexed, get_embedder(shipped.embedding_model))
    for query in queries[:WARMUP]:
        retriever.search(query, k=K)
    ours, filtered = [], []
    for query in queries:
        began = time.perf_counter()
        retriever.search(query, k=K)
        ours.append(1000 * (time.perf_counter() - began))
        vector = retriever.embedder.embed_query(query).tolist()
        began = time.perf_counter()
        collection.query(query_embeddings=[vector], where={"answerable": True}, n_results=200, include=["distances"])
        filtered.append(1000 * (time.perf_counter() - began))
    return {"chunks": chunks, "n": len(ours), "p50": statistics.median(ours), "p95": _percentile(ours, 95),
            "filtered_query_p50": statistics.median(filtered), "filtered_query_p95": _percentile(filtered, 95)}


def cold_start(data_dir: Path) -> dict:
    """Median wall time and peak memory of `sopilot retrieve "…" --json` as a fresh process."""
    script = Path(sys.executable).with_name("sopilot")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "sopilot"]
    command += ["retrieve", COLD_QUERY, "--json"]
    env = os.environ | {"SOPILOT_DATA_DIR": str(data_dir)}
    walls, peaks = [], []
    for _ in range(COLD_RUNS):
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            began = time.perf_counter()
            process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=ROOT)
            _, status, usage = os.wait4(process.pid, 0)
            walls.append(time.perf_counter() - began)
            process.returncode = os.waitstatus_to_exitcode(status)
            if process.returncode != 0:
                err.seek(0)
                raise SystemExit(f"`{' '.join(command)}` failed ({process.returncode}): {err.read().decode()[-500:]}")
            out.seek(0)
            hits = json.loads(out.read())["hits"]
            peaks.append(_rss_mb(usage.ru_maxrss))
    return {"median_s": statistics.median(walls), "runs": walls, "peak_mb": max(peaks), "hits": len(hits)}


def ingest_into(paths: list[Path] | None, settings: Settings, progress: bool) -> tuple[float, object]:
    from sopilot.ingest.pipeline import ingest

    began = time.perf_counter()
    report = ingest(paths, settings, progress=progress)
    return time.perf_counter() - began, report


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _line(label: str, value: str, target: str = "") -> None:
    print(f"  {label:<40} {value:>14}  {target}", flush=True)


def _verdict(p95: float, target: float) -> str:
    return f"target ≤ {target:.0f} ms: {'met' if p95 <= target else 'MISSED'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 10,000-section synthetic knowledge base")
    parser.add_argument("--scale", type=int, default=SCALE_CHUNKS, help="chunks in the scaled index (0 = skip)")
    args = parser.parse_args(argv)
    from sopilot.ingest.embed import get_embedder

    queries = _queries()
    results: dict[str, dict] = {}
    workdir = Path(tempfile.mkdtemp(prefix="sopilot-bench-"))
    try:
        print(f"sopilot retrieval benchmark — {platform.platform()}, Python {platform.python_version()}, "
              f"{os.cpu_count()} CPUs, load average {_load()}, {len(queries)} queries, k={K}, seed {SEED}", flush=True)
        began = time.perf_counter()
        get_embedder(Settings.from_env().embedding_model).embed_batch(["warm up"])
        model_s = time.perf_counter() - began

        print("\n[shipped knowledge base]", flush=True)
        shipped = Settings.from_env(data_dir=workdir / "shipped")
        _line("encoder", get_embedder(shipped.embedding_model).name)
        ingest_s, report = ingest_into(None, shipped, progress=False)
        _line("embedding model load", f"{model_s:.2f} s")
        _line(f"ingest ({len(report.sops)} SOPs, {report.chunks} chunks)", f"{ingest_s:.2f} s")
        warm = warm_latency(shipped, queries)
        _line("index load in process", f"{warm['load_s']:.2f} s")
        _line(f"warm retrieval p50 ({warm['n']} queries)", f"{warm['p50']:.1f} ms")
        _line("warm retrieval p95", f"{warm['p95']:.1f} ms", _verdict(warm["p95"], TARGET_P95_MS["shipped"]))
        _line("warm retrieval max", f"{warm['max']:.1f} ms")
        email = email_latency(shipped)
        _line(f"warm pasted email p50 ({email['n']}, median {email['lines']:.0f} lines)", f"{email['p50']:.1f} ms")
        _line("warm pasted email p95", f"{email['p95']:.1f} ms", _verdict(email["p95"], TARGET_P95_MS["email"]))
        results["email"] = email
        cold = cold_start(shipped.data_dir)
        _line(f"cold `sopilot retrieve --json` (median of {COLD_RUNS})", f"{cold['median_s']:.2f} s",
              "runs: " + ", ".join(f"{r:.2f}" for r in cold["runs"]))
        _line("peak RSS, cold subprocess", f"{cold['peak_mb']:.0f} MB")
        rss = _rss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        _line("peak RSS, this process so far", f"{rss:.0f} MB")
        results["shipped"] = {**warm, "ingest_s": ingest_s, "sops": len(report.sops), "chunks": report.chunks,
                              "cold": cold, "rss_mb": rss}

        if args.scale:
            print(f"\n[scaled vector store: {args.scale:,} chunks]", flush=True)
            scaled = scaled_latency(shipped, workdir, args.scale, queries)
            _line(f"short query p50 ({scaled['n']} queries)", f"{scaled['p50']:.1f} ms")
            _line("short query p95", f"{scaled['p95']:.1f} ms", _verdict(scaled["p95"], TARGET_P95_MS["scale"]))
            _line("same query with a `where` filter: p50", f"{scaled['filtered_query_p50']:.1f} ms", "(Chroma alone)")
            _line("same query with a `where` filter: p95", f"{scaled['filtered_query_p95']:.1f} ms", "(Chroma alone)")
            results["scaled"] = scaled

        if not args.quick:
            print(f"\n[synthetic knowledge base: {SYNTHETIC_SOPS} SOPs × 5 sections]", flush=True)
            source = workdir / "synthetic-kb"
            source.mkdir()
            files = write_synthetic(source)
            print(f"  wrote {files} Markdown files to {source}; ingesting (embedding takes minutes)…", flush=True)
            synthetic = Settings.from_env(data_dir=workdir / "synthetic", knowledge_dir=source)
            ingest_s, report = ingest_into([source], synthetic, progress=True)
            sections = sum(len(s.sections) for s in report.sops)
            _line(f"ingest ({len(report.sops)} SOPs, {sections} sections, {report.chunks} chunks)", f"{ingest_s:.1f} s")
            warm = warm_latency(synthetic, queries)
            _line("index load in process", f"{warm['load_s']:.2f} s")
            _line(f"warm retrieval p50 ({warm['n']} queries)", f"{warm['p50']:.1f} ms")
            _line("warm retrieval p95", f"{warm['p95']:.1f} ms", _verdict(warm["p95"], TARGET_P95_MS["synthetic"]))
            _line("warm retrieval max", f"{warm['max']:.1f} ms")
            rss = _rss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            _line("peak RSS, this process", f"{rss:.0f} MB")
            results["synthetic"] = {**warm, "ingest_s": ingest_s, "sops": len(report.sops), "sections": sections,
                                    "chunks": report.chunks, "rss_mb": rss}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nload average at the end: {_load()} (other processes on the machine inflate latency)")
    print("\n" + table(results, quick=args.quick))
    return 0


def table(results: dict[str, dict], *, quick: bool) -> str:
    """The Markdown table for the README."""
    s, y = results["shipped"], results.get("synthetic")

    def col(render) -> str:
        return "—" if y is None else render(y)

    head = f"shipped ({s['sops']} SOPs, {s['chunks']} chunks)"
    synth = "synthetic (skipped: --quick)" if y is None else \
        f"synthetic ({y['sops']:,} SOPs, {y['sections']:,} sections, {y['chunks']:,} chunks)"
    e, z = results.get("email"), results.get("scaled")
    rows = [
        ("ingest, model loaded", f"{s['ingest_s']:.1f} s", col(lambda r: f"{r['ingest_s']:.0f} s"), ""),
        ("index load in process", f"{s['load_s']:.2f} s", col(lambda r: f"{r['load_s']:.2f} s"), ""),
        (f"warm retrieval p50 (k={K}, {s['n']} queries)", f"{s['p50']:.1f} ms", col(lambda r: f"{r['p50']:.1f} ms"),
         ""),
        ("warm retrieval p95", f"{s['p95']:.1f} ms", col(lambda r: f"{r['p95']:.1f} ms"),
         f"≤ {TARGET_P95_MS['shipped']:.0f} ms shipped, ≤ {TARGET_P95_MS['synthetic']:.0f} ms at 10k"),
        ("warm pasted email p95 (10-14 lines)", f"{e['p95']:.1f} ms" if e else "—", "—",
         f"≤ {TARGET_P95_MS['email']:.0f} ms"),
        (f"short query p95 at {z['chunks']:,} chunks" if z else "short query p95, scaled", "—",
         f"{z['p95']:.1f} ms (filtered Chroma alone {z['filtered_query_p95']:.0f} ms)" if z else "—",
         f"≤ {TARGET_P95_MS['scale']:.0f} ms"),
        (f"cold `sopilot retrieve --json` (median of {COLD_RUNS})", f"{s['cold']['median_s']:.2f} s", "—", "≤ 4 s"),
        ("peak RSS, cold subprocess", f"{s['cold']['peak_mb']:.0f} MB", "—", ""),
        ("peak RSS, benchmark process", f"{s['rss_mb']:.0f} MB", col(lambda r: f"{r['rss_mb']:.0f} MB"), ""),
    ]
    command = "python bench/bench_retrieval.py" + (" --quick" if quick else "")
    out = [f"Measured with `{command}` on {platform.machine()}, {os.cpu_count()} CPUs, "
           f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}, load average {_load()}.", "",
           f"| measure | {head} | {synth} | target |", "|---|---:|---:|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
