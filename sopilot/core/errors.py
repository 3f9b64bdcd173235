"""One exception hierarchy for sopilot.

`UserError` and its children are mistakes the user can fix (bad input, bad configuration): the
command line prints the message and exits 2. Everything else derived from `SopilotError` is a
runtime failure (exit 1). Messages name the input, say what is wrong and what to do.
"""

from __future__ import annotations


class SopilotError(Exception):
    """Base class of every error sopilot raises on purpose."""


class UserError(SopilotError):
    """Bad input or usage: the message tells the user what to change (exit code 2)."""


class ConfigError(UserError):
    """A setting has a wrong value, or a required one is missing."""


class InputError(UserError):
    """A ticket, query file, document or other input cannot be used as given."""


class DocumentError(InputError):
    """One SOP document cannot be ingested; the others still are."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class StoreError(SopilotError):
    """The vector store or the database failed (exit code 1)."""


class StoreUnavailableError(StoreError):
    """The Chroma server (or the embedded index) cannot be reached: start it, or point sopilot elsewhere."""


class IndexChangedError(StoreError):
    """The index version a reader held was replaced and deleted by a newer ingest: reload and retry."""


class IngestBusyError(UserError):
    """Another ingest holds this index's lock (exit code 2): wait for it, or raise the wait."""


class IndexNotFoundError(UserError):
    """No index has been built yet."""


class LLMError(SopilotError):
    """The LLM endpoint failed, timed out or answered something unusable."""


class AuthenticationError(UserError):
    """No API key, a malformed one, or one that is unknown or revoked (HTTP 401)."""


class PermissionDenied(UserError):
    """The caller's role may not take this action (HTTP 403, handbook §7)."""


class NotFoundError(InputError):
    """A suggestion, policy or other named thing does not exist (HTTP 404)."""
