"""The LLM client through the real openai/langchain-openai stack against a scripted server on 127.0.0.1."""

from __future__ import annotations

import re
import time

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from llm_server import ScriptedLLM, error, hang, malformed, reply

from sopilot.core.errors import ConfigError, LLMError
from sopilot.core.settings import Settings
from sopilot.suggest.llm import LOCAL_API_KEY, ChatLLM, api_key, count_tokens, from_settings

pytestmark = pytest.mark.server
MESSAGES = [SystemMessage("You phrase decisions."), HumanMessage("Say hello.")]


@pytest.fixture
def server():
    with ScriptedLLM() as scripted:
        yield scripted


def _settings(server, **changes) -> Settings:
    values = dict(llm_model="scripted-model", llm_base_url=server.url, llm_timeout=2.0, llm_retries=1)
    values.update(changes)
    return Settings.from_env({}, **values)


def test_count_tokens_offline_cl100k():
    assert count_tokens("hello world") == 2
    assert count_tokens("") == 0
    assert count_tokens("<|endoftext|>") > 1  # special tokens in SOP text are counted as text, not refused


def test_api_key_is_read_only_from_the_given_environment():
    local = Settings.from_env({}, llm_model="m", llm_base_url="http://127.0.0.1:9/v1")
    assert api_key(local, {"OPENAI_API_KEY": "sk-test"}) == "sk-test"
    assert api_key(local, {}) == LOCAL_API_KEY
    public = Settings.from_env({}, llm_model="gpt-4o-mini")
    with pytest.raises(ConfigError, match=re.escape("set OPENAI_API_KEY for OpenAI, or OPENAI_BASE_URL")):
        api_key(public, {})


def test_no_model_means_no_llm():
    assert from_settings(Settings.from_env({})) is None
    with pytest.raises(ConfigError, match="SOPILOT_LLM_MODEL"):
        ChatLLM(Settings.from_env({}))


def test_client_is_cached_per_configuration(server):
    settings = _settings(server)
    assert from_settings(settings, {}) is from_settings(settings, {})
    assert from_settings(_settings(server, llm_timeout=3.0), {}) is not from_settings(settings, {})


def test_complete_sends_the_messages_and_the_placeholder_key(server):
    server.enqueue(reply("Hello from the model."))
    client = ChatLLM(_settings(server), {})
    assert client.complete(MESSAGES) == "Hello from the model."
    [request] = server.requests
    assert request["model"] == "scripted-model"
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert request["messages"][1]["content"] == "Say hello."
    assert server.headers[0]["authorization"] == f"Bearer {LOCAL_API_KEY}"


def test_stream_yields_pieces_in_order(server):
    server.enqueue(reply("one two three four"))
    pieces = list(ChatLLM(_settings(server), {}).stream(MESSAGES))
    assert len(pieces) == 4
    assert "".join(pieces) == "one two three four"
    assert server.requests[0]["stream"] is True


def test_a_500_is_retried_once(server):
    server.enqueue(error(500), reply("second time lucky"))
    assert ChatLLM(_settings(server), {}).complete(MESSAGES) == "second time lucky"
    assert len(server.requests) == 2


def test_retries_are_bounded(server):
    server.enqueue(error(503), error(500), reply("never asked"))
    with pytest.raises(LLMError, match=re.escape("HTTP 500 from the LLM endpoint (after 2 attempt(s)")):
        ChatLLM(_settings(server, llm_retries=1), {}).complete(MESSAGES)
    assert len(server.requests) == 2


def test_a_client_error_is_not_retried(server):
    server.enqueue(error(400, "bad request"), reply("never asked"))
    with pytest.raises(LLMError, match="HTTP 400"):
        ChatLLM(_settings(server), {}).complete(MESSAGES)
    assert len(server.requests) == 1


def test_timeout_is_a_hard_deadline_for_the_whole_call(server):
    server.enqueue(hang(10), hang(10))
    client = ChatLLM(_settings(server, llm_timeout=0.5, llm_retries=3), {})
    start = time.monotonic()
    with pytest.raises(LLMError, match="timeout"):
        client.complete(MESSAGES)
    assert time.monotonic() - start < 0.9


def test_a_trickling_stream_is_cut_at_the_deadline(server):
    server.enqueue(reply("a b c d e f g h i j k l", chunk_delay=0.2))
    client = ChatLLM(_settings(server, llm_timeout=0.5), {})
    received = []
    start = time.monotonic()
    with pytest.raises(LLMError, match="timeout"):
        for piece in client.stream(MESSAGES):
            received.append(piece)
    assert time.monotonic() - start < 0.9
    assert 1 <= len(received) < 12


@pytest.mark.parametrize("body", [
    pytest.param(b'{"id": "x", "object": "chat.completion", "choices": "oops"', id="truncated json"),
    pytest.param(b"<html>gateway error</html>", id="html page"),
    pytest.param(b'{"id": "x", "object": "chat.completion", "choices": []}', id="no choices"),
])
def test_a_malformed_answer_is_an_llm_error(server, body):
    server.enqueue(malformed(body), reply("never asked"))
    with pytest.raises(LLMError):
        ChatLLM(_settings(server), {}).complete(MESSAGES)


def test_an_empty_answer_is_an_llm_error(server):
    server.enqueue(reply(""))
    with pytest.raises(LLMError, match="empty response"):
        ChatLLM(_settings(server), {}).complete(MESSAGES)


def test_a_closed_port_fails_fast():
    from conftest import free_port

    settings = Settings.from_env({}, llm_model="m", llm_base_url=f"http://127.0.0.1:{free_port()}/v1",
                                 llm_timeout=5.0, llm_retries=1)
    start = time.monotonic()
    with pytest.raises(LLMError, match="connection failed"):
        ChatLLM(settings, {}).complete(MESSAGES)
    assert time.monotonic() - start < 2.0

