"""The HTTP service (docs/interface.md §7): FastAPI routes over `Copilot`, keys checked before anything else.

Start-up opens the port at once and loads the models in a background thread: `/healthz` answers
503 `starting` until they are loaded, then 200 `ok`; endpoints that need them answer 503 until
then. Every `/v1` request except webhooks must carry `Authorization: Bearer KEY`; the key is
checked in a middleware, before the body is read, so a caller without a key learns nothing but
401. Webhooks are authenticated by their HMAC signature instead (`sopilot.helpdesk.signing`).
"""


import concurrent.futures
import hashlib
import json
import logging
import re
import threading
import time
from typing import TYPE_CHECKING, Annotated, Any

import sopilot.service.errors as errors
from sopilot.core.errors import AuthenticationError, InputError
from sopilot.core.settings import Settings
from sopilot.helpdesk import signing
from sopilot.identity import Identity, KeyStore, open_keys
from sopilot.service.copilot import Copilot, require
from sopilot.service.schemas import (
    CreatedKeyResponse,
    CsatRequest,
    CsatResponse,
    ErrorResponse,
    FeedbackRequest,
    FeedbackResponse,
    GuardRequest,
    Health,
    HookResponse,
    KeyInfoResponse,
    KeyRequest,
    KeysResponse,
    PoliciesResponse,
    RetrieveRequest,
    RetrieveResponse,
    StopRequest,
    StopsResponse,
    SuggestResponse,
    Ticket,
)

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from sopilot.helpdesk.rt import RTConnector

log = logging.getLogger("sopilot.service")

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 413, 422, 503)}
_SOURCE = re.compile(r"""^[a-z0-9][a-z0-9_-]{0,39}$""", re.VERBOSE)  # e.g. rt, zendesk, help-scout
MAX_PENDING_HOOKS = 200
SSE_EVENT = {"type": "object", "required": ["event", "data"],
             "properties": {"event": {"type": "string", "enum": ["meta", "reply", "suggestion"]},
                            "data": {"type": "string", "description": "JSON: an object for meta and suggestion, "
                                                                      "a string for each reply piece"}}}


class State:
    """What one service process holds: readiness, the copilot, the key store, the RT connector."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.status = "starting"
        self.detail: str | None = None
        self.ready = threading.Event()
        self.copilot = Copilot(settings)
        self.keys: KeyStore = open_keys(settings)
        self.jobs = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="sopilot-hook")
        self.pending = 0
        self.pending_lock = threading.Lock()
        self.stop = threading.Event()
        self.connector: RTConnector | None = None
        self.scheduler: BackgroundScheduler | None = None
        self.started = time.monotonic()

    def start_schedule(self) -> None:
        """With `SOPILOT_REPORTS_SCHEDULE=on`, run the Monday 09:00 handbook reports in this process."""
        if not self.settings.reports_scheduled:
            return
        from apscheduler.schedulers.background import BackgroundScheduler

        from sopilot.reports.schedule import schedule

        self.scheduler = BackgroundScheduler(timezone="UTC")
        schedule(self.scheduler, self.settings)
        self.scheduler.start()

    def stop_schedule(self) -> None:
        """Stop the scheduler without waiting for a running report (it is recorded once on the next run)."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None

    def warm(self) -> None:
        """Load the models and the index; mark the service ready (or failed, with the reason)."""
        from sopilot.suggest import resources

        try:
            resources.warm(self.settings)
            from sopilot import audit
            from sopilot.suggest.pipeline import suggest

            audit.open_log(self.settings)
            # One unrecorded suggestion runs every stage once (composer, guard, citations) before the first ticket.
            suggest({"message": "I was charged twice for my last invoice"}, self.settings)
        except Exception as exc:  # noqa: BLE001 (the reason is shown by /healthz)
            self.status, self.detail = "failed", f"{type(exc).__name__}: {exc}"
            log.error("start-up failed: %s", self.detail)
            return
        self.status = "ok"
        self.detail = f"ready in {time.monotonic() - self.started:.1f} s"
        self.ready.set()

    def rt(self):
        """The Request Tracker connector (built on first use from the RT settings)."""
        if self.connector is None:
            from sopilot.helpdesk.rt import RTClient, RTConnector
            from sopilot.service.bridge import HelpdeskCopilot

            client = RTClient(self.settings.rt_url, self.settings.rt_token, timeout=self.settings.helpdesk_timeout,
                              retries=self.settings.helpdesk_retries)
            self.connector = RTConnector(client, HelpdeskCopilot(self.copilot, source="rt"))
        return self.connector

    def poll(self) -> None:
        """Poll RT every `rt_poll_seconds` until the service stops."""
        while not self.stop.wait(self.settings.rt_poll_seconds):
            if not self.ready.is_set():
                continue
            try:
                for transaction_id in self.rt().new_transactions():
                    event_id = _rt_event_id(self.settings, transaction_id)
                    first, _ = self.copilot.store.claim_event("rt", event_id)
                    if first:  # the webhook may have delivered it already
                        with self.pending_lock:
                            self.pending += 1
                        _run_rt_job(self, transaction_id, event_id)
            except Exception as exc:  # noqa: BLE001 (a helpdesk outage must not end the poller)
                log.warning("RT poll failed: %s", exc)


def create_app(settings: Settings, *, warm: bool = True):
    """The FastAPI application for `settings` (`warm=False`: load models on first use, for tests)."""
    import contextlib

    from fastapi import Depends, FastAPI, Path, Query, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
    from fastapi.security import HTTPBearer

    state = State(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        threads = []
        if warm:
            threads.append(threading.Thread(target=state.warm, name="sopilot-warm", daemon=True))
        else:
            state.status, state.detail = "ok", "models load on first use"
            state.ready.set()
        if settings.rt_url and settings.rt_poll_seconds > 0:
            threads.append(threading.Thread(target=state.poll, name="sopilot-rt-poll", daemon=True))
        for thread in threads:
            thread.start()
        state.start_schedule()
        yield
        state.stop_schedule()
        state.stop.set()
        state.jobs.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="sopilot", version="1", lifespan=lifespan,
                  description="Support copilot beside the helpdesk: guarded reply suggestions grounded in SOPs, "
                              "with roles (handbook §7) and an audit trail. Errors: "
                              '`{"error": {"code", "message"}}`.')
    app.state.sopilot = state
    errors.install(app)
    bearer = HTTPBearer(auto_error=False, description="An API key from `sopilot keys create`.")

    @app.middleware("http")
    async def _authenticate(request: Request, call_next):
        path = request.url.path
        if path.startswith("/v1/") and not path.startswith("/v1/hooks/"):
            header = request.headers.get("authorization", "")
            scheme, _, key = header.partition(" ")
            try:
                if scheme.lower() != "bearer" or not key.strip():
                    raise AuthenticationError("no API key: send the header 'Authorization: Bearer KEY' (create one "
                                              "with `sopilot keys create --name NAME --role agent`)")
                request.state.identity = await run_in_threadpool(state.keys.authenticate, key.strip())
            except AuthenticationError as exc:
                return JSONResponse(errors.body("unauthorized", str(exc)), 401, headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    app.add_middleware(BodyLimit, limit=settings.service_max_body)

    def identity(request: Request, _credentials=Depends(bearer)) -> Identity:
        return request.state.identity

    def ready() -> None:
        if not state.ready.is_set():
            raise _NotReady(f"the service is {state.status}: {state.detail or 'loading the models'}; retry shortly")

    Who = Annotated[Identity, Depends(identity)]

    @app.get("/healthz", response_model=Health, responses={503: {"model": Health}}, tags=["service"])
    def healthz():
        """200 once the models are loaded; 503 while starting or after a failed start (no key needed)."""
        return JSONResponse({"status": state.status, "detail": state.detail}, 200 if state.ready.is_set() else 503)

    @app.post("/v1/suggest", response_model=SuggestResponse, responses=ERRORS, dependencies=[Depends(ready)],
              tags=["suggestions"])
    def suggest(ticket: Ticket, who: Who):
        """A guarded reply suggestion for a ticket (docs/interface.md §5): `suggest --json` plus `suggestion_id`."""
        data = ticket.model_dump(exclude_none=True)
        return state.copilot.suggest(data, who, ticket_id=ticket.ticket_id)

    @app.post("/v1/suggest/stream", responses={**ERRORS, 200: {"content": {"text/event-stream": {"schema": SSE_EVENT}},
                                                                "description": "Server-sent events: meta, reply "
                                                                               "pieces, suggestion (JSON in data)."}},
        dependencies=[Depends(ready)], tags=["suggestions"])
    def suggest_stream(ticket: Ticket, who: Who):
        """The same suggestion as server-sent events; only text the guard has passed is ever sent.

        Events: `meta`, then `reply` pieces of the guarded reply, then `suggestion` (the whole document).
        """
        data = ticket.model_dump(exclude_none=True)
        events = list(state.copilot.stream(data, who, ticket_id=ticket.ticket_id))

        def sse():
            for name, payload in events:
                yield f"event: {name}\ndata: {json.dumps(payload, ensure_ascii=False, default=str)}\n\n"

        return StreamingResponse(sse(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.post("/v1/guard", responses=ERRORS, tags=["guard"])
    def guard(body: GuardRequest, who: Who) -> dict[str, Any]:
        """The decision for a ticket and the verdict on a draft (docs/interface.md §6), as `sopilot guard --json`."""
        return state.copilot.guard(body.ticket.model_dump(exclude_none=True), body.reply, who)

    @app.post("/v1/retrieve", response_model=RetrieveResponse, responses=ERRORS, dependencies=[Depends(ready)],
              tags=["retrieval"])
    def retrieve(body: RetrieveRequest, who: Who):
        """Ranked SOP hits (docs/interface.md §3), as `sopilot retrieve --json`."""
        return state.copilot.retrieve(body.query, body.k, who)

    @app.post("/v1/suggestions/{suggestion_id}/feedback", response_model=FeedbackResponse, responses=ERRORS,
              tags=["suggestions"])
    def feedback(body: FeedbackRequest, who: Who,
                 suggestion_id: Annotated[str, Path(min_length=1, max_length=100)]):
        """What became of a suggestion, with the guard's verdict on the exact text.

        Actions: `sent`, `edited` (final text re-checked), `overridden` (senior, lead or admin; with a
        justification), `wrong_sop`.
        """
        return state.copilot.feedback(suggestion_id, who, action=body.action, text=body.text,
                                      justification=body.justification, sop_id=body.sop_id).to_json()

    @app.post("/v1/csat", response_model=CsatResponse, status_code=201, responses=ERRORS, tags=["feedback"])
    def csat(body: CsatRequest, who: Who):
        """A customer's CSAT score for a ticket (handbook §8; agents and above).

        It is recorded on the ticket's audit record; a low score raises a review task for the Team Lead.
        """
        return state.copilot.csat(body.ticket_id, body.score, who, comment=body.comment, at=body.at)

    @app.get("/v1/policies", response_model=PoliciesResponse, responses=ERRORS, tags=["policies"])
    def policies(who: Who):
        """The policies in force, their rules (outcome, team, SLA) and whether each is stopped."""
        return state.copilot.policies(who)

    @app.get("/v1/stops", response_model=StopsResponse, responses=ERRORS, tags=["policies"])
    def stops(who: Who):
        """The policies under Emergency Stop: who stopped each, why and when."""
        return state.copilot.stops(who)

    @app.put("/v1/stops/{policy}", responses=ERRORS, tags=["policies"])
    def set_stop(body: StopRequest, who: Who, policy: Annotated[str, Path(min_length=1, max_length=100)]
                 ) -> dict[str, Any]:
        """Stop (`"stopped": true`) or restart one policy's automation; leads and admins only (handbook §7)."""
        return state.copilot.set_stop(policy, body.stopped, body.reason, who)

    @app.get("/v1/audit", responses={**ERRORS, 200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}},
                                                                 "text/csv": {"schema": {"type": "string"}}},
                                                     "description": "One event per line (JSON Lines) or CSV."}},
             tags=["audit"])
    def audit_log(who: Who, format: Annotated[str, Query(pattern="^(jsonl|csv)$")] = "jsonl",  # noqa: A002
                  kind: Annotated[str | None, Query(max_length=40)] = None,
                  policy: Annotated[str | None, Query(max_length=100)] = None,
                  ticket_id: Annotated[str | None, Query(max_length=200)] = None,
                  agent: Annotated[str | None, Query(max_length=200)] = None,
                  suggestion_id: Annotated[str | None, Query(max_length=100)] = None,
                  limit: Annotated[int, Query(ge=1, le=10_000)] = 1000):
        """Audit events, oldest first, filtered; leads and admins. `format=jsonl` (interface §7 fields) or `csv`."""
        text = state.copilot.audit_export(who, fmt=format, kind=kind, policy=policy, ticket_id=ticket_id,
                                          agent=agent, suggestion_id=suggestion_id, limit=limit)
        media = "application/x-ndjson" if format == "jsonl" else "text/csv"
        return PlainTextResponse(text, media_type=media)

    @app.get("/v1/keys", response_model=KeysResponse, responses=ERRORS, tags=["keys"])
    def list_keys(who: Who):
        """The service's API keys, without secrets (admins)."""
        require(who, "manage_keys")
        return {"keys": [k.to_json() for k in state.keys.keys()]}

    @app.post("/v1/keys", response_model=CreatedKeyResponse, status_code=201, responses=ERRORS, tags=["keys"])
    def create_key(body: KeyRequest, who: Who):
        """A new key (admins); the answer is the only time the key is shown."""
        require(who, "manage_keys")
        return state.keys.create(name=body.name, role=body.role).to_json()

    @app.delete("/v1/keys/{name}", response_model=KeyInfoResponse, responses=ERRORS, tags=["keys"])
    def revoke_key(who: Who, name: Annotated[str, Path(min_length=1, max_length=100)]):
        """Revoke a key by name (admins); it stops working within 30 s everywhere."""
        require(who, "manage_keys")
        return state.keys.revoke(name).to_json()

    @app.post("/v1/hooks/{source}", response_model=HookResponse, status_code=200,
              responses={**ERRORS, 202: {"model": HookResponse}}, tags=["webhooks"])
    async def hook(request: Request, source: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]):
        """A signed helpdesk event, answered with its suggestion (the same event twice gives one).

        Headers: `X-Sopilot-Timestamp` (Unix seconds) and `X-Sopilot-Signature:
        sha256=HMAC-SHA256(secret, timestamp + "." + body)`. Body: `{"event_id", "ticket": {…}}` (or a bare
        ticket), answered with the suggestion; for `rt`, the RT scrip's notice, processed in the background
        (202). The same event twice gives one suggestion.
        """
        raw = await request.body()
        _verify_hook(settings, source, request.headers, raw)
        try:
            payload = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError("the webhook body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise InputError('the webhook body is a JSON object such as {"event_id": "…", "ticket": {"message": "…"}}')
        if source == "rt":
            return await run_in_threadpool(_rt_hook, state, payload, request.headers)
        return await run_in_threadpool(_generic_hook, state, source, payload, raw, request.headers)

    return app


class _NotReady(InputError):
    """Raised while the models load; answered 503."""


errors.STATUS = ((_NotReady, 503, "not_ready"), *errors.STATUS)


def _verify_hook(settings: Settings, source: str, headers, raw: bytes) -> None:
    if not _SOURCE.match(source):
        raise InputError(f"webhook source {source[:40]!r}: use lower-case letters, digits, - or _")
    timestamp, sig = headers.get(signing.TIMESTAMP_HEADER), headers.get(signing.SIGNATURE_HEADER)
    if source == "rt" and sig is None and headers.get(signing.SECRET_HEADER) is not None:
        # RT's scrip sends a notice (ids, no ticket data) with the shared secret; replays are caught by the
        # transaction id (idempotent) and by the notice's own `created` time.
        from sopilot.identity.keys import same_secret

        if not settings.webhook_secret or not same_secret(headers[signing.SECRET_HEADER], settings.webhook_secret):
            raise AuthenticationError("the RT webhook secret does not match SOPILOT_WEBHOOK_SECRET")
        return
    signing.verify(settings.webhook_secret, timestamp=timestamp, signature_header=sig, body=raw, now=time.time(),
                   tolerance=settings.webhook_tolerance)


def _event_id(payload: dict, raw: bytes, headers) -> str:
    given = headers.get("x-sopilot-event-id") or payload.get("event_id") or payload.get("id")
    if isinstance(given, str | int) and str(given).strip():
        return str(given).strip()[:200]
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _generic_hook(state: State, source: str, payload: dict, raw: bytes, headers) -> Any:
    from fastapi.responses import JSONResponse

    ticket = payload.get("ticket", payload)
    if not isinstance(ticket, dict) or not isinstance(ticket.get("message"), str) or not ticket["message"].strip():
        raise InputError('the webhook carries no ticket: send {"event_id": "…", "ticket": {"message": "…"}}')
    if not state.ready.is_set():
        raise _NotReady(f"the service is {state.status}; retry shortly")
    event_id = _event_id(payload, raw, headers)
    first, previous = state.copilot.store.claim_event(source, event_id)
    if not first:
        answer = {"source": source, "event_id": event_id, "duplicate": True,
                  "status": "done" if previous else "processing", **(previous or {})}
        if previous and previous.get("suggestion_id"):
            answer["suggestion"] = state.copilot.store.get(previous["suggestion_id"]).document
        return JSONResponse(answer, 200)
    ticket_id = payload.get("ticket_id") or ticket.get("ticket_id")
    try:
        from sopilot.identity import Identity

        document = state.copilot.suggest(ticket, Identity(name=f"{source} webhook", role="agent"),
                                         ticket_id=f"{source}:{ticket_id}" if ticket_id else None)
    except BaseException:
        state.copilot.store.release_event(source, event_id)
        raise
    state.copilot.store.finish_event(source, event_id, {"suggestion_id": document["suggestion_id"]})
    return {"source": source, "event_id": event_id, "duplicate": False, "status": "done",
            "suggestion_id": document["suggestion_id"], "suggestion": document}


def _rt_event_id(settings: Settings, transaction_id: int) -> str:
    """The idempotency key of one RT transaction: ids restart in another RT (or a restored database)."""
    return f"{settings.rt_url.rstrip('/')}/transaction/{int(transaction_id)}"[:200]


def _rt_hook(state: State, payload: dict, headers) -> Any:
    from fastapi.responses import JSONResponse

    txn = payload.get("transaction_id")
    if not isinstance(txn, int) or txn < 1:
        raise InputError('an RT notice carries "transaction_id" (a positive integer), as the sopilot scrip sends')
    if not state.settings.rt_url:
        raise InputError("no Request Tracker configured: set SOPILOT_RT_URL and SOPILOT_RT_TOKEN on the service")
    event_id = _rt_event_id(state.settings, txn)
    first, previous = state.copilot.store.claim_event("rt", event_id)
    if not first:
        return JSONResponse({"source": "rt", "event_id": event_id, "duplicate": True,
                             "status": "done" if previous else "processing", **(previous or {})}, 200)
    with state.pending_lock:
        if state.pending >= MAX_PENDING_HOOKS:
            state.copilot.store.release_event("rt", event_id)
            raise _NotReady(f"{state.pending} RT events are waiting: retry later")
        state.pending += 1
    state.jobs.submit(_run_rt_job, state, txn, event_id)
    return JSONResponse({"source": "rt", "event_id": event_id, "duplicate": False, "status": "accepted"}, 202)


def _run_rt_job(state: State, transaction_id: int, event_id: str) -> None:
    try:
        state.ready.wait(timeout=120)
        outcome = state.rt().handle(transaction_id)
        state.copilot.store.finish_event("rt", event_id, outcome.to_json())
        log.info("RT transaction %d: %s", transaction_id, outcome.action)
    except Exception as exc:  # noqa: BLE001 (released: a redelivery or the poller will try again)
        log.warning("RT transaction %d failed: %s", transaction_id, exc)
        state.copilot.store.release_event("rt", event_id)
    finally:
        with state.pending_lock:
            state.pending -= 1


class BodyLimit:
    """ASGI middleware: a body larger than `limit` bytes is refused with 413 before it is all read."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        """Refuse a request whose body is over the limit, before the application reads it."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _too_large(send, self.limit)
        seen = 0
        started = False

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked_send)
        except _TooLarge:
            if not started:
                await _too_large(send, self.limit)


class _TooLarge(Exception):
    pass


async def _too_large(send, limit: int) -> None:
    payload = json.dumps(errors.body("body_too_large", f"the body is larger than {limit} bytes "
                                                       "(SOPILOT_SERVICE_MAX_BODY): send less")).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
