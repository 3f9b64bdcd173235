"""The HTTP service under load on loopback, and Request Tracker's time to a suggestion.

Run from the project directory: `python bench/bench_service.py [--seconds 30] [--rt]`. The shipped
knowledge base is ingested into a temporary directory (nothing under `data/` is touched) and
`sopilot serve` runs as its own process (one uvicorn process, offline composer). The load comes
from an httpx asyncio client in this process, on the same 2 cores, so the figures include its
cost. Phases:

1. start: seconds from launching `sopilot serve` to `/healthz` 200 (target <= 10 s);
2. warm `POST /v1/suggest` at a fixed 10 requests/s, open loop (target p95 <= 150 ms);
3. 50 simulated agents, each asking every 30 s (about 1.7 requests/s), starts spread evenly;
4. the ceiling: closed loop at 1, 2, 4 and 8 requests in flight, requests/s and p95;
5. with `--rt`: a real RT 5 (tests/services.py); seconds from creating a ticket over REST2 to
   the suggestion comment being readable, by RT's scrip webhook and by polling REST2 every
   second (target <= 5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import httpx  # noqa: E402

from sopilot.core.settings import Settings  # noqa: E402

TARGET_START_S = 10.0
TARGET_P95_MS = 150.0
TARGET_RT_S = 5.0
FACTS = [{"sop_id": "A.1", "priority": "Medium", "amount": "$89"}, {"sop_id": "B.1", "failed_login_attempts": 6},
         {"sop_id": "I.2", "tenure_months": 30, "failed_payments": 0, "plan_months": 3}, {}]


def tickets() -> list[dict]:
    """Messages of eval/queries.jsonl, every fourth with facts and its SOP named, in a fixed order."""
    rows = [json.loads(line) for line in (ROOT / "eval" / "queries.jsonl").read_text().splitlines() if line.strip()]
    return [{"message": row["query"], **FACTS[i % len(FACTS)]} if i % 4 == 0 else {"message": row["query"]}
            for i, row in enumerate(rows)]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(latencies: list[float], errors: list, seconds: float) -> dict:
    kinds = dict(collections.Counter(str(e) for e in errors))
    if not latencies:
        return {"n": 0, "errors": len(errors), "error_kinds": kinds}
    return {"n": len(latencies), "errors": len(errors), "error_kinds": kinds, "rps": round(len(latencies) / seconds, 2),
            "p50_ms": round(pct(latencies, 50), 1), "p95_ms": round(pct(latencies, 95), 1),
            "p99_ms": round(pct(latencies, 99), 1), "max_ms": round(max(latencies), 1),
            "mean_ms": round(statistics.fmean(latencies), 1)}


async def one(client: httpx.AsyncClient, ticket: dict, latencies: list[float], errors: list[int]) -> None:
    started = time.perf_counter()
    try:
        response = await client.post("/v1/suggest", json=ticket)
    except httpx.HTTPError as exc:
        errors.append(type(exc).__name__)
        return
    if response.status_code == 200:
        latencies.append((time.perf_counter() - started) * 1000)
    else:
        errors.append(response.status_code)


async def open_loop(base: str, key: str, rate: float, seconds: float, offsets: list[float] | None = None) -> dict:
    """Requests at fixed times (rate per second, or the given offsets), whether or not earlier ones finished."""
    pool = tickets()
    schedule = offsets if offsets is not None else [i / rate for i in range(int(rate * seconds))]
    latencies: list[float] = []
    errors: list[int] = []
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30,
                                 limits=limits) as client:
        start = time.perf_counter()
        tasks = []
        for i, at in enumerate(schedule):
            delay = start + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(client, pool[i % len(pool)], latencies, errors)))
        await asyncio.gather(*tasks)
        elapsed = max(schedule[-1], time.perf_counter() - start) if schedule else 1
    return summary(latencies, errors, elapsed)


async def closed_loop(base: str, key: str, inflight: int, seconds: float) -> dict:
    """`inflight` workers, each sending its next request as soon as the last one answered."""
    pool = tickets()
    latencies: list[float] = []
    errors: list[int] = []
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        deadline = time.perf_counter() + seconds

        async def worker(w: int) -> None:
            i = w
            while time.perf_counter() < deadline:
                await one(client, pool[i % len(pool)], latencies, errors)
                i += inflight

        start = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(inflight)))
        elapsed = time.perf_counter() - start
    return {"inflight": inflight, **summary(latencies, errors, elapsed)}


def start_service(env: dict, port: int, log: Path) -> tuple[subprocess.Popen, float]:
    """`sopilot serve` on `port`; (process, seconds until /healthz answered 200)."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "sopilot", "serve", "--port", str(port)], env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"sopilot serve exited ({proc.returncode}); see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, time.monotonic() - started
        except httpx.HTTPError:
            pass
        if time.monotonic() - started > 120:
            raise SystemExit(f"/healthz not ready after 120 s; see {log}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def _has_our_comment(http: httpx.Client, rest: str, ticket_id: int) -> bool:
    history = http.get(f"{rest}/ticket/{ticket_id}/history", params={"fields": "Type", "per_page": 100}).json()
    for item in history["items"]:
        if item.get("Type") == "Comment":
            for att in http.get(f"{rest}/transaction/{item['id']}/attachments").json()["items"]:
                content = http.get(f"{rest}/attachment/{att['id']}").json().get("Content") or ""
                if base64.b64decode(content).startswith(b"sopilot suggestion "):
                    return True
    return False


def rt_phase(env: dict, tmp: Path, n: int) -> dict:
    """Creation → comment seconds with RT's webhook scrip, then with polling REST2 every second."""
    import services

    results = {}
    for mode in ("webhook", "poll"):
        port = services.free_port()
        rt_dir = tmp / f"rt-{mode}"
        (rt_dir / "rt" / "RT_SiteConfig.d").mkdir(parents=True)
        (rt_dir / "rt" / "RT_SiteConfig.d" / "sopilot.pm").write_text("Set($SopilotWebhookSecret, 'bench');\n1;\n")
        webhook = f"http://127.0.0.1:{port}/v1/hooks/rt" if mode == "webhook" else None
        with services.rt_server(rt_dir, webhook_url=webhook) as rt:
            service_env = {**env, "SOPILOT_RT_URL": rt.base_url, "SOPILOT_RT_TOKEN": rt.token,
                           "SOPILOT_WEBHOOK_SECRET": "bench",
                           "SOPILOT_RT_POLL_SECONDS": "1" if mode == "poll" else "0"}
            proc, _ = start_service(service_env, port, tmp / f"service-{mode}.log")
            try:
                time.sleep(1.5)  # the poller's first round marks where it starts
                seconds: list[float] = []
                missing = 0
                with httpx.Client(headers={"Authorization": f"token {rt.token}"}, timeout=10) as http:
                    for i, ticket in enumerate(tickets()[:n]):
                        started = time.monotonic()
                        made = http.post(f"{rt.rest_url}/ticket", json={
                            "Queue": "General", "Subject": f"bench {i}", "Requestor": "customer@example.com",
                            "Content": ticket["message"]}).json()
                        while not _has_our_comment(http, rt.rest_url, int(made["id"])):
                            if time.monotonic() - started > 60:
                                break
                            time.sleep(0.05)
                        else:
                            seconds.append(time.monotonic() - started)
                            continue
                        missing += 1
                        print(f"RT ticket {made['id']}: no comment after 60 s ({mode}); service log:\n"
                              + (tmp / f"service-{mode}.log").read_text(errors="replace")[-2000:], file=sys.stderr)
            finally:
                stop(proc)
        if not seconds:
            results[mode] = {"n": 0, "missing": missing}
            continue
        results[mode] = {"n": len(seconds), "missing": missing, "p50_s": round(pct(seconds, 50), 2),
                         "p95_s": round(pct(seconds, 95), 2),
                         "max_s": round(max(seconds), 2), "rt_start_s": round(services.startup_seconds.get("rt", 0), 1)}
    return results


class _Done(Exception):
    """The quick check is over."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each load phase")
    parser.add_argument("--rt", action="store_true", help="also measure Request Tracker (needs RT 5 installed)")
    parser.add_argument("--rt-tickets", type=int, default=10)
    parser.add_argument("--only-fixed", action="store_true", help="only phases 1 and 2 (a quick check)")
    args = parser.parse_args(argv)

    from sopilot.ingest.pipeline import ingest

    from sopilot.identity import KeyStore

    with tempfile.TemporaryDirectory(prefix="sopilot-bench-service-") as tmp_name:
        tmp = Path(tmp_name)
        settings = Settings.from_env({}, data_dir=tmp / "data")
        ingest(None, settings, progress=False)
        key = KeyStore(settings.audit_url).create(name="bench agent", role="agent").key
        env = {**os.environ, "SOPILOT_DATA_DIR": str(settings.data_dir)}
        for name in ("SOPILOT_LLM_MODEL", "OPENAI_BASE_URL", "SOPILOT_CHROMA_URL", "SOPILOT_DATABASE_URL"):
            env.pop(name, None)
        port = __import__("socket").create_server(("127.0.0.1", 0)).getsockname()[1]
        proc, start_s = start_service(env, port, tmp / "service.log")
        base = f"http://127.0.0.1:{port}"
        report: dict = {"start_to_healthz_s": round(start_s, 2),
                        "load_average_1m_at_start": round(os.getloadavg()[0], 2)}
        try:
            asyncio.run(open_loop(base, key, rate=10, seconds=5))  # warm-up, not counted
            report["fixed_10_rps"] = asyncio.run(open_loop(base, key, rate=10, seconds=args.seconds))
            if args.only_fixed:
                raise _Done
            agents, period = 50, 30.0
            offsets = sorted((a * period / agents) + r * period for a in range(agents)
                             for r in range(max(1, int(args.seconds * 2 // period))))
            report["agents_50_every_30s"] = asyncio.run(open_loop(base, key, rate=0, seconds=0, offsets=offsets))
            report["ceiling"] = [asyncio.run(closed_loop(base, key, inflight, min(args.seconds, 20)))
                                 for inflight in (1, 2, 4, 8)]
        except _Done:
            pass
        finally:
            stop(proc)
        if args.rt:
            report["rt"] = rt_phase(env, tmp, args.rt_tickets)
    report["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    report["targets"] = {"start_to_healthz_s": TARGET_START_S, "fixed_10_rps_p95_ms": TARGET_P95_MS,
                         "rt_creation_to_comment_s": TARGET_RT_S}
    report["met"] = {"start": report["start_to_healthz_s"] <= TARGET_START_S,
                     "p95_at_10_rps": report["fixed_10_rps"].get("p95_ms", 1e9) <= TARGET_P95_MS,
                     **({"rt_webhook": report["rt"]["webhook"].get("p95_s", 1e9) <= TARGET_RT_S}
                        if "rt" in report else {})}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
