"""A scripted OpenAI-compatible chat server on 127.0.0.1, for tests and benchmarks.

It implements `POST /v1/chat/completions`, plain and streaming (server-sent events), and answers
each request with the next scripted `Turn`: a completion text, an HTTP error, a malformed body or
a delay longer than the client's timeout. Every request body is kept in `requests`, so a test can
check what the model was shown (and `headers`, with what key).
"""

from __future__ import annotations

import dataclasses
import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclasses.dataclass(frozen=True, kw_only=True)
class Turn:
    """One scripted answer."""

    text: str = ""
    status: int = 200
    delay: float = 0.0
    """Seconds to wait before answering (longer than the client's timeout: a timeout)."""
    chunk_delay: float = 0.0
    """Seconds between streamed chunks."""
    raw: bytes | None = None
    """A body sent as is instead of a well-formed completion (a malformed answer)."""


def reply(text: str, **kwargs) -> Turn:
    """A well-formed completion."""
    return Turn(text=text, **kwargs)


def error(status: int = 500, message: str = "scripted failure") -> Turn:
    """An HTTP error with an OpenAI-style error body."""
    body = json.dumps({"error": {"message": message, "type": "server_error", "code": None}}).encode()
    return Turn(status=status, raw=body)


def malformed(body: bytes = b'{"id": "x", "object": "chat.completion", "choices": "oops"') -> Turn:
    """A 200 answer whose body is not a chat completion."""
    return Turn(raw=body)


def hang(seconds: float) -> Turn:
    """No answer for `seconds`."""
    return Turn(text="too late", delay=seconds)


class ScriptedLLM:
    """The server; use as a context manager. Unscripted requests get `default` (an HTTP 500 if None)."""

    def __init__(self, default: Turn | None = None, port: int = 0) -> None:
        self.turns: queue.Queue[Turn] = queue.Queue()
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.default = default
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        """The base URL an OpenAI client takes (`OPENAI_BASE_URL`)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def enqueue(self, *turns: Turn) -> ScriptedLLM:
        """Script the next answers, in order."""
        for turn in turns:
            self.turns.put(turn)
        return self

    def start(self) -> ScriptedLLM:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; requests still waiting are released."""
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _next(self) -> Turn:
        try:
            return self.turns.get_nowait()
        except queue.Empty:
            return self.default or error(500, "no scripted answer left")

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    request = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, b'{"error": {"message": "bad json"}}')
                    return
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                server.requests.append(request)
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                turn = server._next()
                if turn.delay and server._stop.wait(turn.delay):
                    return
                try:
                    if turn.raw is not None:
                        self._send(turn.status, turn.raw)
                    elif request.get("stream"):
                        self._stream(request, turn)
                    else:
                        self._send(turn.status, json.dumps(_completion(request, turn.text)).encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _stream(self, request: dict, turn: Turn) -> None:
                self.send_response(turn.status)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                model = request.get("model", "scripted")
                first = True
                for piece in _pieces(turn.text):
                    delta = {"role": "assistant", "content": piece} if first else {"content": piece}
                    first = False
                    self._event(_chunk(model, delta, None))
                    if turn.chunk_delay and server._stop.wait(turn.chunk_delay):
                        return
                self._event(_chunk(model, {}, "stop"))
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _event(self, data: dict) -> None:
                self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
                self.wfile.flush()

        return Handler


def _pieces(text: str) -> list[str]:
    """The text cut into word-sized pieces, as a model streams tokens."""
    pieces, current = [], ""
    for char in text:
        current += char
        if char == " ":
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces or [""]


def _completion(request: dict, text: str) -> dict:
    return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()),
            "model": request.get("model", "scripted"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": {"prompt_tokens": 10, "completion_tokens": max(1, len(text.split())),
                      "total_tokens": 10 + max(1, len(text.split()))}}


def _chunk(model: str, delta: dict, finish: str | None) -> dict:
    return {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
