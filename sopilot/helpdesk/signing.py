"""Signed webhooks: HMAC-SHA256 over the timestamp and the raw body, with a replay window.

A sender computes `hex(HMAC-SHA256(secret, f"{timestamp}.".encode() + body))` and sends

    X-Sopilot-Timestamp: 1764626400
    X-Sopilot-Signature: sha256=5d1f…

Signing the timestamp with the body means an old request cannot be replayed with a new timestamp;
a timestamp more than `tolerance` seconds from now is refused. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac

from sopilot.core.errors import AuthenticationError

TIMESTAMP_HEADER = "X-Sopilot-Timestamp"
SIGNATURE_HEADER = "X-Sopilot-Signature"
SECRET_HEADER = "X-Sopilot-Webhook-Secret"
"""Sent by senders that cannot sign (the shipped RT scrip's notices): accepted for `rt` only."""


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-Sopilot-Signature` value for `body` sent at `timestamp` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, *, timestamp: str | None, signature_header: str | None, body: bytes, now: float,
           tolerance: int) -> int:
    """Check a signed request; return its timestamp, or raise `AuthenticationError` saying what is wrong."""
    if not secret:
        raise AuthenticationError("webhooks are switched off: set SOPILOT_WEBHOOK_SECRET on the service and sign "
                                  "with the same secret")
    if not timestamp or not signature_header:
        raise AuthenticationError(f"unsigned webhook: send {TIMESTAMP_HEADER} (Unix seconds) and "
                                  f"{SIGNATURE_HEADER}: sha256=HMAC-SHA256(secret, timestamp + '.' + body)")
    try:
        sent = int(timestamp)
    except ValueError:
        raise AuthenticationError(f"{TIMESTAMP_HEADER} {timestamp[:40]!r} is not Unix seconds") from None
    if abs(now - sent) > tolerance:
        raise AuthenticationError(f"webhook timestamp {sent} is {abs(now - sent):.0f} s from the service's clock "
                                  f"(at most {tolerance} s): a replay, or a clock to fix")
    if not hmac.compare_digest(signature(secret, sent, body), signature_header.strip()):
        raise AuthenticationError("webhook signature does not match the body: sign the exact bytes sent with the "
                                  "shared secret")
    return sent
