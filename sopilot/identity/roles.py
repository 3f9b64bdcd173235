"""Who may do what (handbook §7), as data: one table of actions and the roles allowed each.

Agents suggest and send; senior agents, team leads and admins (managers) may also override a
decision; only leads and admins may switch an Emergency Stop; only admins manage keys. The
service asks `allowed(role, action)` before every endpoint, and the app asks it before showing a
control, so both read the same table.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, get_args

from sopilot.core.errors import InputError

Role = Literal["agent", "senior", "lead", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)

Action = Literal["read", "suggest", "send", "override", "stop", "audit", "manage_keys"]
ACTIONS: tuple[Action, ...] = get_args(Action)

PERMISSIONS: Mapping[Action, frozenset[Role]] = MappingProxyType({
    "read": frozenset(ROLES),
    "suggest": frozenset(ROLES),
    "send": frozenset(ROLES),
    "override": frozenset({"senior", "lead", "admin"}),
    "stop": frozenset({"lead", "admin"}),
    "audit": frozenset({"lead", "admin"}),
    "manage_keys": frozenset({"admin"}),
})
"""Action → the roles that may take it. `read`: policies, stops, retrieval, guard checks."""


def parse_role(value: str) -> Role:
    """`value` as a role, or an `InputError` that lists the valid ones."""
    if value not in ROLES:
        raise InputError(f"unknown role {value!r}: use one of {list(ROLES)}")
    return value


def allowed(role: str, action: str) -> bool:
    """Whether `role` may take `action`; unknown roles and actions are never allowed."""
    return role in PERMISSIONS.get(action, frozenset())  # type: ignore[call-overload]
