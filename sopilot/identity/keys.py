"""API keys of the service: created once, shown once, stored as argon2 hashes beside the audit log.

A key reads `sop_<key id>_<secret>`. The key id (public, 12 hex digits) finds the row; the secret
(32 random bytes, URL-safe) is checked against the argon2id hash, so a copy of the database does
not give anyone a working key. Verifying argon2 costs tens of milliseconds by design, so a key
verified once is remembered in memory, as a SHA-256 digest, for `CACHE_SECONDS`: a revoked key
stops working within that time, and a busy service does not pay argon2 on every request.

The table `api_keys` lives in the audit database (`Settings.audit_url`) and is created by the audit
schema's migrations (revision 0003); `_metadata()` declares it for queries only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
import time
from typing import Any, overload

from sopilot.core.errors import AuthenticationError, InputError
from sopilot.core.instances import PerKey
from sopilot.identity.roles import Role, parse_role

CACHE_SECONDS = 30.0
"""How long a verified key is trusted without argon2 again (and how long a revoked key may linger)."""

_KEY = re.compile(r"""
    ^sop_
    (?P<key_id>[0-9a-f]{12})   # public id of the row, e.g. 3f9c0a1b2c4d
    _
    (?P<secret>[A-Za-z0-9_-]{20,100})$
""", re.VERBOSE)
_NAME = re.compile(r"""^[\w.@+ -]{1,100}$""", re.VERBOSE | re.UNICODE)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Identity:
    """Who is calling: the key's name (recorded in the audit log) and its role."""

    name: str
    role: Role

    def to_json(self) -> dict[str, Any]:
        """`{"name", "role"}`."""
        return {"name": self.name, "role": self.role}


@dataclasses.dataclass(frozen=True, kw_only=True)
class CreatedKey:
    """A new key: `key` is shown once and never stored."""

    name: str
    role: Role
    key: str
    key_id: str

    def to_json(self) -> dict[str, Any]:
        """docs/interface.md §7: `{"name", "role", "key"}` (plus the public key id)."""
        return {"name": self.name, "role": self.role, "key": self.key, "key_id": self.key_id}


@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyInfo:
    """A stored key without its secret."""

    name: str
    role: Role
    key_id: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {"name": self.name, "role": self.role, "key_id": self.key_id,
                "created_at": self.created_at.isoformat(),
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


def _metadata():
    from sqlalchemy import Column, DateTime, MetaData, String, Table, Text

    metadata = MetaData()
    Table("api_keys", metadata,
          Column("key_id", String(12), primary_key=True),
          Column("name", String(100), nullable=False, unique=True),
          Column("role", String(20), nullable=False),
          Column("hash", Text, nullable=False),
          Column("created_at", DateTime(timezone=True), nullable=False),
          Column("revoked_at", DateTime(timezone=True)))
    return metadata


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


@overload
def _aware(value: dt.datetime) -> dt.datetime: ...
@overload
def _aware(value: None) -> None: ...
def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


class KeyStore:
    """The `api_keys` table behind one database URL; safe to share between threads."""

    def __init__(self, url: str, *, engine=None) -> None:
        self.url = url
        if engine is None:
            from sopilot.audit import engine_for

            engine = engine_for(url)  # the audit log's engine: one pool per URL, the same driver checks
        self.engine = engine
        from sopilot.audit.schema import migrate

        self.table = _metadata().tables["api_keys"]
        migrate(engine, url)  # the audit schema's migrations create `api_keys` (revision 0003)
        self._hasher = _hasher()
        self._cache: dict[bytes, tuple[float, Identity]] = {}
        self._lock = threading.Lock()

    def create(self, *, name: str, role: str) -> CreatedKey:
        """A new key for `name` with `role`; the secret is returned once and only its hash is kept.

        Raises:
            InputError: the name is empty, too long, already taken, or the role is unknown.
        """
        from sqlalchemy.exc import IntegrityError

        name = name.strip()
        if not _NAME.match(name):
            raise InputError(f"key name {name!r} is not usable: use 1 to 100 letters, digits, spaces or . _ - @ +")
        checked = parse_role(role)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        row = {"key_id": key_id, "name": name, "role": checked, "hash": self._hasher.hash(secret),
               "created_at": dt.datetime.now(dt.UTC), "revoked_at": None}
        try:
            with self.engine.begin() as conn:
                conn.execute(self.table.insert().values(**row))
        except IntegrityError:
            raise InputError(f"a key named {name!r} exists already: choose another name or revoke it first") from None
        return CreatedKey(name=name, role=checked, key=f"sop_{key_id}_{secret}", key_id=key_id)

    def keys(self) -> list[KeyInfo]:
        """Every key, oldest first, without secrets."""
        from sqlalchemy import select

        with self.engine.connect() as conn:
            rows = conn.execute(select(self.table).order_by(self.table.c.created_at)).mappings().all()
        return [KeyInfo(name=r["name"], role=r["role"], key_id=r["key_id"], created_at=_aware(r["created_at"]),
                        revoked_at=_aware(r["revoked_at"])) for r in rows]

    def revoke(self, name: str) -> KeyInfo:
        """Revoke the key named `name` (it stops working within `CACHE_SECONDS`)."""
        from sqlalchemy import update

        with self.engine.begin() as conn:
            done = conn.execute(update(self.table).where(self.table.c.name == name, self.table.c.revoked_at.is_(None))
                                .values(revoked_at=dt.datetime.now(dt.UTC)))
        if done.rowcount == 0:
            raise InputError(f"no active key named {name!r}: `sopilot keys list` shows the keys")
        with self._lock:
            self._cache.clear()
        return next(k for k in self.keys() if k.name == name)

    def authenticate(self, key: str | None) -> Identity:
        """The identity of `key`, or `AuthenticationError` when it is missing, malformed, unknown or revoked."""
        if not key:
            raise AuthenticationError("no API key: send the header 'Authorization: Bearer KEY' "
                                      "(create one with `sopilot keys create --name NAME --role agent`)")
        digest = hashlib.sha256(key.encode()).digest()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = _KEY.match(key)
        if found is None:
            raise AuthenticationError("the API key is malformed: keys read 'sop_<id>_<secret>' as "
                                      "`sopilot keys create` printed them")
        from argon2.exceptions import InvalidHashError, VerificationError
        from sqlalchemy import select

        with self.engine.connect() as conn:
            row = conn.execute(select(self.table).where(self.table.c.key_id == found["key_id"])).mappings().first()
        if row is None or row["revoked_at"] is not None:
            raise AuthenticationError("unknown or revoked API key: ask an admin for a key")
        try:
            self._hasher.verify(row["hash"], found["secret"])
        except (VerificationError, InvalidHashError):
            raise AuthenticationError("unknown or revoked API key: ask an admin for a key") from None
        identity = Identity(name=row["name"], role=row["role"])
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + CACHE_SECONDS, identity)
        return identity


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(given.encode(), expected.encode())


_STORES: PerKey[KeyStore] = PerKey(KeyStore)


def open_keys(settings) -> KeyStore:
    """The process-wide key store of `settings.audit_url`."""
    return _STORES.get(settings.audit_url)
