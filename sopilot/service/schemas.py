"""Request and answer bodies of the service, for validation and for the OpenAPI document.

Tickets stay open (docs/interface.md §5: unknown fields are kept and ignored); the guard validates their
facts and names the bad field. Answers that are docs/interface.md documents (§3, §6, suggest) are declared
as objects with their fixed keys required, so schema checks hold the service to them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Ticket(BaseModel):
    """A docs/interface.md §5 ticket: `message` is required; every other field is optional and kept."""

    model_config = ConfigDict(extra="allow", json_schema_extra={
        "example": {"message": "I was charged twice for my March invoice, $89.", "priority": "Medium",
                    "ticket_id": "ZD-1042"}})

    message: str = Field(min_length=1, max_length=100_000, description="The customer's words (untrusted).")
    ticket_id: str | None = Field(default=None, max_length=200, description="The helpdesk's id of the ticket.")


class GuardRequest(BaseModel):
    """`{"ticket": …, "reply": …}`: the decision for a ticket and the verdict on a draft reply."""

    model_config = ConfigDict(extra="forbid")
    ticket: Ticket
    reply: str | None = Field(default=None, max_length=100_000)


class RetrieveRequest(BaseModel):
    """`{"query": …, "k": 5}`."""

    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=100_000)
    k: int = Field(default=5, ge=1, le=50)


class FeedbackRequest(BaseModel):
    """What became of a suggestion: sent as is, edited (with the final text), overridden (with why), wrong SOP."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["sent", "edited", "overridden", "wrong_sop"]
    text: str | None = Field(default=None, max_length=100_000, description="The exact text sent.")
    justification: str | None = Field(default=None, max_length=10_000, description="Required for `overridden`.")
    sop_id: str | None = Field(default=None, max_length=100, description="For `wrong_sop`: the right SOP.")


class CsatRequest(BaseModel):
    """One customer survey answer (handbook §8): the ticket, a score from 1 to 5, and their words."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "example": {"ticket_id": "ZD-1042", "score": 2, "comment": "Took three days to hear back."}})
    ticket_id: str = Field(min_length=1, max_length=200, pattern=r"\S")
    score: int = Field(ge=1, le=5, description="1 (very unhappy) to 5 (very happy); at or below "
                                               "SOPILOT_CSAT_LOW_SCORE the Team Lead gets a review task.")
    comment: str | None = Field(default=None, max_length=5_000)
    at: str | None = Field(default=None, max_length=40, description="When the customer answered (ISO 8601); "
                                                                    "default now.")


class CsatResponse(BaseModel):
    """What recording the score did: counts, and the Team Lead's review tasks a low score raised."""

    recorded: int
    duplicates: int
    low: int
    tasks: list[dict[str, Any]]


class StopRequest(BaseModel):
    """`{"stopped": true|false, "reason": …}` (the reason is required, handbook §7)."""

    model_config = ConfigDict(extra="forbid")
    stopped: bool
    reason: str = Field(min_length=1, max_length=2_000)


class ErrorBody(BaseModel):
    """`{"code", "message"}`."""

    code: str
    message: str


class ErrorResponse(BaseModel):
    """Every error: `{"error": {"code": …, "message": …}}`."""

    error: ErrorBody


class Health(BaseModel):
    """`/healthz`."""

    status: Literal["ok", "starting", "failed"]
    detail: str | None = None


class Decision(BaseModel):
    """docs/interface.md §6."""

    model_config = ConfigDict(extra="allow")
    policy: str | None
    outcome: Literal["automate", "escalate", "manual_review"]
    action: str | None = None
    escalate_to: str | None
    approval_required: bool
    sla: str | None
    verdict: Literal["pass", "blocked"]
    violations: list[dict[str, Any]]
    reply: str


class SuggestResponse(BaseModel):
    """The `suggest --json` document plus `suggestion_id`."""

    model_config = ConfigDict(extra="allow")
    suggestion_id: str
    ticket_id: str | None
    retrieval: dict[str, Any]
    decision: Decision
    guard: Decision
    draft: dict[str, Any]
    reply: str
    citations: list[dict[str, Any]]
    notes: list[str]


class RetrieveResponse(BaseModel):
    """docs/interface.md §3."""

    model_config = ConfigDict(extra="allow")
    query: str
    hits: list[dict[str, Any]]
    matched: bool
    match_probability: float
    language: str
    read_as: str


class FeedbackResponse(BaseModel):
    """The recorded event with the guard's verdict on `text`."""

    suggestion_id: str
    action: str
    event: str
    agent: str
    ticket_id: str | None
    policy: str | None
    text: str | None
    verdict: str | None
    violations: list[dict[str, Any]]
    justification: str | None
    sop_id: str | None
    audit_id: int | None
    at: str | None


class StopState(BaseModel):
    """Who stopped a policy, why and when."""

    reason: str | None
    by: str | None
    at: str | None


class StopsResponse(BaseModel):
    """`{"stopped": {policy: {"reason", "by", "at"}}}`."""

    model_config = ConfigDict(extra="allow")
    stopped: dict[str, StopState]


class PoliciesResponse(BaseModel):
    """The policies in force."""

    version: str | None
    policies: list[dict[str, Any]]


class HookResponse(BaseModel):
    """What a webhook event produced; `duplicate` when it was delivered before."""

    model_config = ConfigDict(extra="allow")
    source: str
    event_id: str
    duplicate: bool
    status: Literal["accepted", "done", "processing"]
    suggestion_id: str | None = None


class KeyRequest(BaseModel):
    """`{"name", "role"}` of a new key."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    role: Literal["agent", "senior", "lead", "admin"]


class KeyInfoResponse(BaseModel):
    """A key without its secret."""

    name: str
    role: str
    key_id: str
    created_at: str
    revoked_at: str | None


class KeysResponse(BaseModel):
    """Every key, without secrets."""

    keys: list[KeyInfoResponse]


class CreatedKeyResponse(BaseModel):
    """docs/interface.md §7: `{"name", "role", "key"}`, shown once."""

    name: str
    role: str
    key: str
    key_id: str
