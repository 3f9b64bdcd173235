"""API keys and roles (handbook §7) against a real SQLite database, and the `sopilot keys` command."""

from __future__ import annotations

import json
import re

import pytest

from sopilot.cli import main
from sopilot.core.errors import AuthenticationError, InputError
from sopilot.identity import ACTIONS, ROLES, KeyStore, allowed, authenticate


@pytest.fixture
def store(tmp_path):
    return KeyStore(f"sqlite:///{tmp_path / 'audit.db'}")


@pytest.mark.parametrize(("role", "action", "expected"), [
    pytest.param("agent", "suggest", True, id="agent suggests"),
    pytest.param("agent", "send", True, id="agent sends"),
    pytest.param("agent", "override", False, id="agent may not override"),
    pytest.param("senior", "override", True, id="senior overrides"),
    pytest.param("senior", "stop", False, id="senior may not stop a policy"),
    pytest.param("lead", "stop", True, id="lead stops"),
    pytest.param("lead", "manage_keys", False, id="lead may not manage keys"),
    pytest.param("admin", "manage_keys", True, id="admin manages keys"),
    pytest.param("admin", "override", True, id="admin overrides"),
    pytest.param("root", "suggest", False, id="unknown role is never allowed"),
    pytest.param("admin", "delete_everything", False, id="unknown action is never allowed"),
])
def test_allowed(role, action, expected):
    assert allowed(role, action) is expected


def test_every_action_is_allowed_to_admins_and_roles_only_grow_upwards():
    for action in ACTIONS:
        granted = [allowed(role, action) for role in ROLES]
        assert granted[-1], action
        assert granted == sorted(granted), f"{action}: a lower role has it but a higher one has not"


def test_a_created_key_authenticates_and_only_its_hash_is_stored(store, tmp_path):
    created = store.create(name="Ana Agent", role="agent")
    assert re.fullmatch(r"sop_[0-9a-f]{12}_[A-Za-z0-9_-]+", created.key)
    identity = authenticate(created.key, store)
    assert (identity.name, identity.role) == ("Ana Agent", "agent")
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*"))  # the database and its write-ahead log
    secret = created.key.split("_", 2)[2]
    assert secret.encode() not in raw
    assert b"$argon2id$" in raw


@pytest.mark.parametrize("key", [None, "", "Bearer", "sop_000000000000_" + "x" * 43, "not a key at all"])
def test_missing_malformed_or_unknown_keys_are_refused(store, key):
    store.create(name="someone", role="admin")
    with pytest.raises(AuthenticationError):
        store.authenticate(key)


def test_a_wrong_secret_for_a_real_key_id_is_refused(store):
    created = store.create(name="lee", role="lead")
    forged = created.key[:-4] + ("AAAA" if not created.key.endswith("AAAA") else "BBBB")
    with pytest.raises(AuthenticationError, match="unknown or revoked"):
        store.authenticate(forged)


def test_a_revoked_key_stops_working(store):
    created = store.create(name="sam", role="senior")
    store.authenticate(created.key)
    store.revoke("sam")
    with pytest.raises(AuthenticationError):
        store.authenticate(created.key)


def test_names_are_unique_and_roles_checked(store):
    store.create(name="dup", role="agent")
    with pytest.raises(InputError, match=re.escape("a key named 'dup' exists already")):
        store.create(name="dup", role="lead")
    message = "unknown role 'boss': use one of ['agent', 'senior', 'lead', 'admin']"
    with pytest.raises(InputError, match=re.escape(message)):
        store.create(name="x", role="boss")


def test_keys_create_prints_one_json_document(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SOPILOT_DATA_DIR", str(tmp_path / "data"))
    assert main(["keys", "create", "--name", "Lena Lead", "--role", "lead", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["name"] == "Lena Lead" and doc["role"] == "lead" and doc["key"].startswith("sop_")
    store = KeyStore(f"sqlite:///{tmp_path / 'data' / 'audit.db'}")
    assert store.authenticate(doc["key"]).name == "Lena Lead"
    assert main(["keys", "create", "--name", "Lena Lead", "--role", "lead", "--json"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["keys", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["keys"]
    assert [k["name"] for k in listed] == ["Lena Lead"] and "key" not in listed[0]
