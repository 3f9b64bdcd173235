"""Identities and roles: API keys hashed with argon2, and who may do what (handbook §7).

`authenticate(key, store)` answers who is calling; `allowed(role, action)` whether they may. The
service and the Streamlit app share both, so the audit trail names the same people everywhere.
"""

from __future__ import annotations

from sopilot.identity.keys import (
    AuthenticationError,
    CreatedKey,
    Identity,
    KeyInfo,
    KeyStore,
    open_keys,
)
from sopilot.identity.roles import ACTIONS, PERMISSIONS, ROLES, Action, Role, allowed, parse_role


def authenticate(key: str | None, store: KeyStore) -> Identity:
    """The identity behind `key` in `store`; raises `AuthenticationError` (HTTP 401) otherwise."""
    return store.authenticate(key)


__all__ = ["ACTIONS", "PERMISSIONS", "ROLES", "Action", "AuthenticationError", "CreatedKey", "Identity", "KeyInfo",
           "KeyStore", "Role", "allowed", "authenticate", "open_keys", "parse_role"]
