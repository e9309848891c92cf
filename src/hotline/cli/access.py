"""`hotline user ...` and `hotline token ...`: who may use the console and the API.

They write straight to the journal database (SQLite serialises the writers), so
they work whether the terminal runs or not, and each change is journaled as an
operator action naming the local account that made it.
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from hotline.cli.common import Add, home_option, json_option, now_ns, open_home, open_journal, out_json
from hotline.core.access import LANGUAGES, MIN_PASSWORD, USER_ROLES, Role, new_password_hash
from hotline.core.errors import AccessError
from hotline.core.times import rfc3339
from hotline.storage.base import AccessStore

PASSWORD_ENV = "HOTLINE_USER_PASSWORD"  # noqa: S105 -- the variable's name, not a password


@contextmanager
def _access(args: argparse.Namespace) -> Iterator[AccessStore]:
    home, _ = open_home(args)  # a clear error if this is not a terminal's home
    with open_journal(home) as storage:
        yield storage.access


def _local_actor() -> str:
    return f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}"


def _made_up_password() -> str:
    """Four groups of four from an alphabet without look-alikes: easy to read out and type."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


def _password(generate: bool) -> tuple[str, bool]:
    """The new user's password, and whether we made it up (then it is printed once)."""
    if generate:
        return _made_up_password(), True
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV], False
    if sys.stdin.isatty():
        first = getpass.getpass(f"password for the new user (at least {MIN_PASSWORD} characters): ")
        if first != getpass.getpass("the same password again: "):
            raise AccessError("the two passwords differ; nothing was changed")
        return first, False
    line = sys.stdin.readline().rstrip("\n")
    return (line, False) if line else (_made_up_password(), True)


def cmd_user(args: argparse.Namespace) -> int:
    with _access(args) as access:
        if args.user_cmd == "add":
            password, generated = _password(args.generate_password)
            role, password_hash = Role.parse_user(args.role), new_password_hash(password)
            access.add_user(args.name, role, password_hash, args.lang, by=_local_actor(), at_ns=now_ns())
            print(f"added {args.role} {args.name!r} (console language {args.lang})")
            if generated:
                print(f"password: {password}")
                print("  shown once; give it to the user, who logs in to the console with it")
        elif args.user_cmd == "remove":
            access.remove_user(args.name, by=_local_actor(), at_ns=now_ns())
            print(f"removed user {args.name!r} and closed their console sessions")
        else:
            users = access.users()
            if args.json:
                out_json({"users": [{**u, "created_at": rfc3339(u["created_at_ns"])} for u in users]})
            elif not users:
                print("no users yet: `hotline user add NAME --role operator`")
            for u in [] if args.json else users:
                print(f"{u['name']:<20} {u['role']:<11} {u['lang']}  added {rfc3339(u['created_at_ns'])}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    with _access(args) as access:
        if args.action == "create":
            token_id, secret = access.create_token(
                Role.parse(args.role), args.label or "", by=_local_actor(), at_ns=now_ns()
            )
            if args.json:
                out_json({"id": token_id, "role": args.role, "token": secret})
            else:
                print(secret)
                print(
                    f"token {token_id} ({args.role}) created; shown once. Use it as 'Authorization: Bearer TOKEN'.",
                    file=sys.stderr,
                )
        elif args.action == "revoke":
            access.revoke_token(args.id, by=_local_actor(), at_ns=now_ns())
            print(f"revoked token {args.id}")
        else:
            tokens = access.tokens()
            if args.json:
                out_json({"tokens": [
                    {**t, "created_at": rfc3339(t["created_at_ns"]),
                     "revoked_at": rfc3339(t["revoked_at_ns"]) if t["revoked_at_ns"] else None}
                    for t in tokens
                ]})  # fmt: skip
            elif not tokens:
                print("no tokens yet: `hotline token create --role operator`")
            for t in [] if args.json else tokens:
                state = f"revoked {rfc3339(t['revoked_at_ns'])}" if t["revoked_at_ns"] else "live"
                print(f"{t['id']}  {t['role']:<11} {state:<8} {t['label']!r} by {t['created_by']}")
    return 0


def register(add: Add) -> None:
    roles = [r.value for r in Role]
    user_roles = [r.value for r in USER_ROLES]
    p = add("user", cmd_user, "console users: add, remove, list (operator, supervisor, auditor)")
    usub = p.add_subparsers(dest="user_cmd", required=True, metavar="add|remove|list")
    a = usub.add_parser(
        "add",
        help="add a user; the password comes from $HOTLINE_USER_PASSWORD, a prompt, or stdin",
        description="Add a console user. Operators send, read and acknowledge; supervisors also manage "
        "users, tokens and pairing; auditors read and verify the journal but cannot send. The password "
        f"comes from ${PASSWORD_ENV}, a prompt, or the first line of stdin; with none, or with "
        "--generate-password, one is made up and printed once.",
    )
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=user_roles)
    a.add_argument("--lang", default="en", choices=LANGUAGES, help="console language (default en)")
    a.add_argument("--generate-password", action="store_true", help="make up a password and print it once")
    r = usub.add_parser(
        "remove",
        help="remove a user and close their sessions",
        description="Remove a console user; their open pages go to the login page at once.",
    )
    r.add_argument("name")
    ls = usub.add_parser("list", help="list users", description="List console users with their roles.")
    json_option(ls)

    p = add("token", cmd_token, "API tokens for programs: create, revoke, list")
    tsub = p.add_subparsers(dest="action", required=True, metavar="create|revoke|list")
    c = tsub.add_parser(
        "create",
        help="create a bearer token for a role; the secret is printed once",
        description="Create a bearer token for a program (Authorization: Bearer SECRET on /api/...). Only a "
        "digest is stored: the secret is printed once. The terminal must run with --api for it to be of use. "
        "A monitor token may read /metrics (for Prometheus) and nothing else.",
    )
    c.add_argument("--role", required=True, choices=roles)
    c.add_argument("--label", help="what the token is for, e.g. 'pager bridge'")
    json_option(c)
    rv = tsub.add_parser(
        "revoke",
        help="revoke a token by its id",
        description="Revoke a token by the id `hotline token list` shows; it stops working at once.",
    )
    rv.add_argument("id")
    lt = tsub.add_parser(
        "list",
        help="list tokens (never their secrets)",
        description="List API tokens: id, role, label, when made and revoked; never secrets.",
    )
    json_option(lt)
    for sp in (a, r, ls, c, rv, lt):
        home_option(sp)
