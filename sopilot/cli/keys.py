"""`sopilot keys create|list|revoke`: the service's API keys (docs/interface.md §7).

`create` prints the key once (`{"name", "role", "key"}` with `--json`); only its argon2 hash is
stored, in the audit database.
"""

from __future__ import annotations

import argparse
import json
import sys

from sopilot.core.settings import Settings


def add_parser(commands) -> None:
    """Register `keys` and its subcommands on the top-level subparsers."""
    p = commands.add_parser("keys", help="API keys of the HTTP service")
    sub = p.add_subparsers(dest="keys_command", required=True)
    c = sub.add_parser("create", help="create a key (printed once)")
    c.add_argument("--name", required=True, help="who uses it; the audit log records this name")
    c.add_argument("--role", required=True, choices=["agent", "senior", "lead", "admin"])
    c.add_argument("--json", action="store_true")
    c.set_defaults(run=cmd_keys)
    ls = sub.add_parser("list", help="the keys, without secrets")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(run=cmd_keys)
    r = sub.add_parser("revoke", help="revoke a key by name")
    r.add_argument("--name", required=True)
    r.add_argument("--json", action="store_true")
    r.set_defaults(run=cmd_keys)


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    """Run one `keys` subcommand."""
    from sopilot.identity import open_keys

    store = open_keys(settings)
    if args.keys_command == "create":
        created = store.create(name=args.name, role=args.role)
        if args.json:
            sys.stdout.write(json.dumps(created.to_json()) + "\n")
        else:
            print(created.key)
            print(f"key for {created.name!r} ({created.role}); it is shown only this once", file=sys.stderr)
        return 0
    if args.keys_command == "list":
        keys = store.keys()
        if args.json:
            sys.stdout.write(json.dumps({"keys": [k.to_json() for k in keys]}) + "\n")
        else:
            for k in keys:
                revoked = f"  revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else ""
                print(f"{k.key_id}  {k.role:7} {k.name}{revoked}")
        return 0
    gone = store.revoke(args.name)
    if args.json:
        sys.stdout.write(json.dumps(gone.to_json()) + "\n")
    else:
        print(f"revoked the key {gone.key_id} of {gone.name!r}", file=sys.stderr)
    return 0
