"""What every page shares: settings, the cached retriever, and errors turned into UI text.

The retriever (Chroma client, BM25 index, embedding model) takes seconds to build, so it is
cached per process with `st.cache_resource`, keyed by the data dir and the active index version:
a re-ingest (from this UI or from `sopilot ingest`) switches every session to the new version on
its next run, without a restart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import get_args

import streamlit as st

from sopilot.core import stops
from sopilot.core.errors import SopilotError, UserError
from sopilot.core.settings import Settings


def settings() -> Settings:
    """The settings from the environment (run-time Emergency Stops included, see sopilot.core.stops)."""
    with edge():
        return Settings.from_env()


def ui_stopped(settings: Settings) -> frozenset[str]:
    """Policies stopped from the Knowledge page (not those of the environment variable)."""
    return stops.read_stops(settings.data_dir)


def env_stopped() -> frozenset[str]:
    """Policies stopped by SOPILOT_STOPPED_POLICIES: the UI cannot lift these."""
    return Settings.from_env().env_stopped


def set_stopped(settings: Settings, policy: str, stopped: bool) -> None:
    """Switch the UI's Emergency Stop of one policy (the caller records it in the audit log)."""
    stops.set_stopped(settings.data_dir, policy, stopped)


@contextlib.contextmanager
def edge(*, stop: bool = True) -> Iterator[None]:
    """Show a sopilot error as UI text (STYLE §22: errors become UI text here).

    With `stop` the page's run ends there; without, only the rest of the `with` block is skipped.
    """
    try:
        yield
    except UserError as exc:
        st.error(str(exc), icon=":material/error:")
        if stop:
            st.stop()
    except SopilotError as exc:
        st.error(f"sopilot failed: {exc}", icon=":material/report:")
        if stop:
            st.stop()


def _index_key(settings: Settings) -> tuple:
    return (str(settings.data_dir), settings.chroma_url, settings.collection, settings.embedding_model)


@st.cache_resource(max_entries=4)
def _store(_settings: Settings, key: tuple):
    # One client per process: Chroma's first client on a path is not safe to create from two threads at
    # once, and Streamlit runs sessions (and a rerun beside the run it replaces) in threads.
    from sopilot.ingest.store import Store, connect

    return Store(connect(_settings), _settings.collection)


def index_version(settings: Settings) -> str | None:
    """The active index version, or None before the first ingest."""
    return _store(settings, _index_key(settings)).active_version()


@st.cache_resource(show_spinner="Loading the knowledge base and the embedding model…", max_entries=4)
def _load_retriever(_settings: Settings, key: tuple):
    from sopilot.retriever.hybrid import load

    loaded = load(_settings)
    loaded.embedder.embed_query("warm up")  # load the model now, not on the agent's first question
    return loaded


def retriever(settings: Settings):
    """The hybrid retriever over the active index version, built once per version per process.

    Raises:
        IndexNotFoundError: nothing has been ingested yet.
    """
    return _load_retriever(settings, (*_index_key(settings), index_version(settings)))


def forget_index() -> None:
    """Drop cached retrievers after an ingest, so memory holds only the version in use."""
    _load_retriever.clear()


def outcomes() -> tuple[str, ...]:
    """The guard's outcomes (docs/interface.md §6), as filters offer them."""
    from sopilot.guard.policy import Outcome

    return get_args(Outcome)


def policies(settings: Settings):
    """The guard's policy file (validated and cached by the guard until it changes).

    Raises:
        ConfigError: the file is missing or invalid; the message says where.
    """
    from sopilot.guard.policy import policies_for

    return policies_for(settings)


def policy_ids(settings: Settings) -> list[str]:
    """The ids of the policies in the guard's file; empty when it cannot be loaded (the page still works)."""
    try:
        return list(policies(settings).policies)
    except SopilotError:
        return []


def classifier(settings: Settings):
    """The retrieval classifier the command line gives the guard for tickets without sop_id."""
    from sopilot.suggest.resources import classifier as retrieval_classifier

    return retrieval_classifier(settings)


# ---- who is signed in ---------------------------------------------------------------------------

IDENTITY = "identity"


def identity():
    """The signed-in person (`sopilot.identity.Identity`), or None."""
    return st.session_state.get(IDENTITY)


def may(who, action: str) -> bool:
    """Whether the signed-in person's role allows `action` (the service's own table of roles)."""
    from sopilot.identity import allowed

    return who is not None and allowed(who.role, action)


def sign_in(settings: Settings, key: str) -> None:
    """Sign in with a sopilot API key (`sopilot keys create`); the audit log then names this person.

    Raises:
        AuthenticationError: the key is unknown or revoked.
    """
    from sopilot.identity import authenticate, open_keys

    st.session_state[IDENTITY] = authenticate(key.strip(), open_keys(settings))


def sign_out() -> None:
    """Forget the signed-in person."""
    st.session_state.pop(IDENTITY, None)


# ---- the helpdesk the app writes into ------------------------------------------------------------

def helpdesk_ticket(settings: Settings, ticket_id: str) -> int | None:
    """The Request Tracker ticket number behind `ticket_id` ("4242" or "RT-4242") when RT is configured."""
    digits = ticket_id.strip().upper().removeprefix("RT-").removeprefix("#")
    return int(digits) if settings.rt_url and settings.rt_token and digits.isdigit() else None


def insert_reply(settings: Settings, number: int, text: str) -> None:
    """Send `text` to the requestor as the ticket's correspondence (RT REST2), within the helpdesk timeout.

    Raises:
        HelpdeskError: RT refused or could not be reached; nothing was sent.
    """
    from sopilot.helpdesk.rt import RTClient

    client = RTClient(settings.rt_url, settings.rt_token, timeout=settings.helpdesk_timeout,
                      retries=settings.helpdesk_retries)
    try:
        client.call("POST", f"/ticket/{number}/correspond", json={"Content": text, "ContentType": "text/plain"})
    finally:
        client.close()
