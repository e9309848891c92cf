"""The `hotline` command.

Every listing takes ``--json`` and then prints exactly one JSON document on
stdout. Errors go to stderr as one line a person can act on, with exit code 1
(2 for usage errors, from argparse). ``HOTLINE_HOME`` stands in for ``--home``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from hotline import __version__
from hotline.cli import access as cli_access
from hotline.core.errors import ConfigError, ControlError, ControlTimeout, DeliveryError, HotlineError, PassphraseError
from hotline.core.model import Address, canonical_message_id, safe_file_name, uuid7, validate_label, validate_name
from hotline.crypto.identity import (
    MAX_CARD_BYTES,
    ContactCard,
    Identity,
    fingerprint,
    load_keys,
    make_card,
    save_keys,
    write_atomic,
)
from hotline.engine.pairing import confirm_safety_number, pair, peer_listing
from hotline.home.config import (
    CONFIG_FILE,
    JOURNAL_FILE,
    KEYS_FILE,
    Config,
    load_config,
    parse_api_listen,
    resolve_home,
)
from hotline.storage import audit
from hotline.storage.sqlite.journal import Journal
from hotline.storage.sqlite.store import Store
from hotline.terminal.control import ControlClient, build_content

CARD_FILE = "card.json"
EPILOG = """\
examples:
  hotline init --home ~/dc-washington --name washington --listen 127.0.0.1:7401
  hotline --home ~/dc-washington card > washington.card
  hotline --home ~/dc-washington pair moscow.card      # read the safety number aloud
  hotline --home ~/dc-washington run                   # the terminal, in the foreground
  hotline --home ~/dc-washington send --to moscow --precedence flash "Call in ten minutes"
  hotline --home ~/dc-washington outbox --json

HOTLINE_HOME may replace --home; HOTLINE_PASSPHRASE supplies the key passphrase.
"""


def _now_ns() -> int:
    return time.time_ns()


def _out_json(value: Any) -> None:
    json.dump(value, sys.stdout, ensure_ascii=False, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def _ts(ns: int | None) -> str:
    return audit.rfc3339(ns) if ns else "-"


def _passphrase(config: Config | None, *, confirm: bool = False) -> str | None:
    if config is not None and not config.passphrase:
        return None
    value = os.environ.get("HOTLINE_PASSPHRASE")
    if value:
        return value
    if value == "":
        raise PassphraseError("HOTLINE_PASSPHRASE is set but empty; an empty passphrase is not allowed "
                              "(use --no-passphrase at init for a demo terminal)")  # fmt: skip
    if not sys.stdin.isatty():
        what = "the new keys need a passphrase" if confirm else "the keys are passphrase-protected"
        raise PassphraseError(f"{what}: set HOTLINE_PASSPHRASE or run from a terminal")
    value = getpass.getpass("Hotline key passphrase: ")
    if confirm and getpass.getpass("Repeat the passphrase: ") != value:
        raise PassphraseError("the two passphrases differ")
    if not value:
        raise PassphraseError("an empty passphrase is not allowed; use --no-passphrase for a demo terminal")
    return value


def _open(args: argparse.Namespace) -> tuple[Path, Config]:
    home = resolve_home(args.home)
    return home, load_config(home)


def _identity(home: Path, config: Config) -> Identity:
    return load_keys(home / KEYS_FILE, _passphrase(config))


def _journal(home: Path, *, readonly: bool = False) -> Journal:
    return Journal(home / JOURNAL_FILE, readonly=readonly)


# -- commands ----------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    name = validate_name(args.name)
    listen = _named_addresses(args.listen)
    advertise = _named_addresses(args.advertise) if args.advertise else listen
    if {a.path for a in advertise} != {a.path for a in listen}:
        raise ConfigError("--advertise must name the same paths as --listen (e.g. primary=HOST:PORT)")
    if (home / CONFIG_FILE).exists():
        raise ConfigError(f"{home} already holds a terminal; choose another --home")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = Config(name=name, listen=listen, passphrase=not args.no_passphrase)
    if args.api is not None:
        host, port = parse_api_listen(args.api)
        config.extra["api"] = {"listen": f"[{host}]:{port}" if ":" in host else f"{host}:{port}"}
    passphrase = None if args.no_passphrase else _passphrase(None, confirm=True)
    identity = Identity.generate(name)
    save_keys(home / KEYS_FILE, identity, passphrase)
    write_atomic(home / CONFIG_FILE, config.to_toml().encode(), 0o644)
    card = make_card(identity, advertise, audit.rfc3339(_now_ns()).split(".")[0] + "Z")
    write_atomic(home / CARD_FILE, card.to_json().encode(), 0o644)
    journal = _journal(home)
    with journal.transaction():
        Store(journal).record_created(name, identity.public_key, identity.dh_public, identity.cert_der, _now_ns())
    journal.close()
    print(f"created terminal {name!r} in {home}")
    print(f"identity key fingerprint: {fingerprint(identity.public_key)}")
    if args.no_passphrase:
        print("WARNING: --no-passphrase: the private keys are stored unencrypted (demo and test use only)")
    print(f"next: `hotline --home {home} card > {name}.card`, give it to your peer, and `hotline pair` theirs")
    return 0


def _named_addresses(texts: list[str]) -> tuple[Address, ...]:
    """``[PATH=]HOST:PORT`` items; unnamed ones are primary, backup, path3, ... in order."""
    defaults = ["primary", "backup"] + [f"path{i}" for i in range(3, len(texts) + 1)]
    out = []
    for i, text in enumerate(texts):
        path, sep, rest = text.partition("=")
        out.append(Address.parse(rest, path=path) if sep else Address.parse(text, path=defaults[i]))
    if len({a.path for a in out}) != len(out):
        raise ConfigError("each path name may appear once")
    return tuple(out)


def cmd_card(args: argparse.Namespace) -> int:
    home, _ = _open(args)
    sys.stdout.write((home / CARD_FILE).read_text())
    if not (home / CARD_FILE).read_text().endswith("\n"):
        sys.stdout.write("\n")
    return 0


def _read_card(path: str) -> ContactCard:
    source = Path(path)
    try:
        with sys.stdin.buffer if path == "-" else source.open("rb") as f:
            data = f.read(MAX_CARD_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"cannot read card {path}: {e.strerror or e}") from None
    return ContactCard.from_json(data)


def _notify(home: Path, op: str) -> Any:
    try:
        with ControlClient(home, timeout=10) as client:
            return client.request(op)
    except ControlError:
        return None  # not running: it reads the journal when it starts


def cmd_pair(args: argparse.Namespace) -> int:
    home, config = _open(args)
    card = _read_card(args.file)
    identity = _identity(home, config)
    journal = _journal(home)
    try:
        result = pair(Store(journal), identity, card, _now_ns())
    finally:
        journal.close()
    old = result.replaced
    if result.already:
        print(f"{card.name} is already paired with this key.")
    else:
        if old is not None:
            print(
                f"WARNING: this REPLACES the key for {card.name} paired on {_ts(old.paired_at_ns)} "
                f"({fingerprint(old.identity_key)} -> {fingerprint(card.identity_key)})."
            )
        print(f"paired {card.name} ({fingerprint(card.identity_key)}) at {', '.join(str(a) for a in card.addresses)}")
    _notify(home, "reload")
    number = result.safety_number
    print("safety number (read it aloud with the other operator; both screens must show the same digits):")
    print(f"  {number[:35]}\n  {number[36:]}")
    if not result.already:
        print(f"next: once the digits match, `hotline verify {card.name} DIGITS` records it")
    return 0


def cmd_peers(args: argparse.Namespace) -> int:
    home, _ = _open(args)
    journal = _journal(home, readonly=True)
    peers = peer_listing(Store(journal))
    journal.close()
    if args.json:
        _out_json({"peers": peers})
        return 0
    if not peers:
        print("no peers yet: `hotline pair FILE` with the other side's card")
    for p in peers:
        state = f"verified {p['verified_at']}" if p["verified"] else "UNVERIFIED (see `hotline verify`)"
        print(f"{p['name']:<16} {p['fingerprint']}  paired {p['paired_at']}  {state}")
        print(f"  safety number {p['safety_number']}")
        print(f"  paths: {', '.join(a['path'] + '=' + a['address'] for a in p['addresses'])}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    home, _ = _open(args)
    journal = _journal(home)
    try:
        confirm_safety_number(Store(journal), args.peer, args.safety_number, _now_ns())
    finally:
        journal.close()
    print(f"{args.peer}: safety number confirmed and recorded in the journal")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    home, config = _open(args)
    logging.basicConfig(
        level=getattr(logging, (args.log_level or config.log_level).upper(), logging.INFO),
        format="%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )
    logging.Formatter.converter = time.gmtime
    identity = _identity(home, config)
    from hotline.app import run_terminal

    run_terminal(home, config, identity)
    return 0


def _read_attachment(path: str) -> list[Any]:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > 16 * 1024 * 1024:
            raise ConfigError(f"attachment {path} is {size} bytes; the limit is 16 MiB")
        return [p.name, p.read_bytes()]
    except OSError as e:
        raise ConfigError(f"cannot read attachment {path}: {e.strerror or e}") from None


def cmd_send(args: argparse.Namespace) -> int:
    home, config = _open(args)
    if (args.text is None) == (args.file is None):
        raise ConfigError("give the message text, or --file F, but not both")
    if args.file is not None:
        try:
            body = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read {args.file}: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{args.file} is not UTF-8 text; send a binary file with --attach") from None
    else:
        body = args.text
    request = {
        "to": args.to, "precedence": args.precedence, "lang": args.lang, "subject": args.subject or "",
        "body": body, "attachments": [_read_attachment(a) for a in args.attach or []],
        "classification": args.classification or "",
    }  # fmt: skip
    # The id is chosen here, so that it can be named even if the wait below is cut short.
    request["id"] = canonical_message_id(args.id) if args.id else uuid7(_now_ns() // 1_000_000, os.urandom(10))
    # Checked here first, whichever way it goes: the same clear refusal from a running terminal or
    # not, and nothing too large for the control socket is ever put on it.
    content = build_content(config.name, request, _now_ns(), config.markings)
    try:
        client = ControlClient(home, timeout=60)
    except ControlError:
        client = None
    if client is not None:
        with client:
            if args.wait:
                request["wait"] = "delivered"
            req_id = client.submit("send", **request)
            try:
                result = client.result(req_id, deadline=time.monotonic() + args.timeout if args.wait else None)
            except (ControlTimeout, KeyboardInterrupt) as e:  # a refusal (ControlError) is said as such
                return _wait_cut_short(home, str(request["id"]), e, args.timeout)
        via = "running terminal"
    else:
        if args.wait:
            raise ControlError("--wait needs the terminal running (`hotline run`)")
        journal = _journal(home)
        with journal.transaction():
            created = Store(journal).accept(content, _now_ns())
        journal.close()
        result = {"id": content.id, "created": created}
        via = "journal (terminal not running; the next `hotline run` sends it)"
    if args.json:
        _out_json({**result, "queued_via": via})
    else:
        print(result["id"])
    return 0


def _wait_cut_short(home: Path, message_id: str, cause: BaseException, timeout: float) -> int:
    """`send --wait` stopped waiting (Ctrl-C, or no receipt in time): say plainly where the message
    stands, from the journal, and name it, so nobody sends it twice to be sure."""
    journal = _journal(home, readonly=True)
    row = Store(journal).message(message_id)
    journal.close()
    print(message_id)  # the request was made: whatever happened, this is the message's name
    why = "interrupted" if isinstance(cause, KeyboardInterrupt) else f"no delivery receipt within {timeout:g} s"
    if row is None:
        where = "is not in the journal yet; the terminal may still take it (`hotline outbox` tells)"
    else:
        where = f"is in the journal ({row['state']}) and goes out as the line allows; `hotline outbox` follows it"
    print(f"hotline: {why}; message {message_id} {where}", file=sys.stderr)
    return 130 if isinstance(cause, KeyboardInterrupt) else 3


def _listing(args: argparse.Namespace, direction: str) -> int:
    home, _ = _open(args)
    journal = _journal(home, readonly=True)
    store = Store(journal)
    if args.peer is not None and store.peer(args.peer) is None:
        journal.close()
        raise ConfigError(f"no peer named {args.peer!r}; see `hotline peers`")
    rows = store.messages(direction, peer=args.peer, limit=args.limit)
    journal.close()
    for row in rows:
        for key in [k for k in row if k.endswith("_at_ns")]:  # every time also in RFC 3339
            row[key.removesuffix("_ns")] = audit.rfc3339(row[key]) if row[key] else None
    if args.json:
        _out_json({"messages": rows})
        return 0
    if not rows:
        print("no messages")
    for r in rows:
        when = r["received_at"] if direction == "in" else (r["delivered_at"] or r["sent_at"] or r["queued_at"])
        who = ("from " if direction == "in" else "to ") + r["peer"]
        marking = f"({r['classification']}) " if r["classification"] else ""
        print(
            f"{when}  {r['precedence'].upper():<9} {r['state']:<9} #{r['seq'] or '-':<6} {who:<16} "
            f"[{r['lang']}] {marking}{r['subject']}"
        )
        if r["acknowledged_at_ns"]:
            who_acked = f" by {r['acknowledged_by']}" if r["acknowledged_by"] else ""
            print(f"    acknowledged {audit.rfc3339(r['acknowledged_at_ns'])}{who_acked}")
        body = r["body"].replace("\n", " ")
        print(f"    {body[:110]}{'…' if len(body) > 110 else ''}  ({r['id']})")
        if r["attachments"]:
            print(f"    {r['attachments']} attachment(s): `hotline attachment {r['id']}`")
    return 0


def cmd_attachment(args: argparse.Namespace) -> int:
    home, _ = _open(args)
    journal = _journal(home, readonly=True)
    try:
        store = Store(journal)
        args.id = canonical_message_id(args.id)
        found = store.message(args.id)
        if found is None:
            raise DeliveryError(f"no message with id {args.id}; see `hotline inbox` or `hotline outbox`")
        listing = found["attachments"]
        if args.index is None:
            if args.json:
                _out_json({"id": args.id, "attachments": listing})
                return 0
            if not listing:
                print("no attachments")
            for a in listing:
                shown = safe_file_name(a["name"])  # never a peer's control characters on our terminal
                print(f"{a['index']:>2}  {a['size']:>10,} bytes  {shown}  sha256 {a['sha256'][:16]}")
            return 0
        got = store.attachment(args.id, args.index) if 0 <= args.index < len(listing) else None
        if got is None:
            raise DeliveryError(f"message {args.id} has {len(listing)} attachment(s); there is no number {args.index}")
    finally:
        journal.close()
    name, data = got
    if args.output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    target = Path(args.output) if args.output else Path(safe_file_name(name))
    try:
        with target.open("wb" if args.force else "xb") as f:
            f.write(data)
    except FileExistsError:
        raise ConfigError(f"{target} already exists; choose another with -o, or --force to replace it") from None
    except OSError as e:
        raise ConfigError(f"cannot write {target}: {e.strerror or e}") from None
    if args.json:
        _out_json({"id": args.id, "index": args.index, "name": name, "size": len(data), "saved_to": str(target)})
    else:
        print(f"saved {name} ({len(data):,} bytes) to {target}")
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    home, config = _open(args)
    by = args.by or os.environ.get("USER") or "operator"
    validate_label(by, "--by")
    args.id = canonical_message_id(args.id)
    journal = _journal(home, readonly=True)
    found = Store(journal).message(args.id)
    journal.close()
    if found is not None and found["direction"] == "out":
        raise DeliveryError(f"message {args.id} is one this terminal sent; only its recipient acknowledges it")
    if found is not None and found["acknowledged_at_ns"]:
        print(f"{args.id}: already acknowledged {audit.rfc3339(found['acknowledged_at_ns'])} by "
              f"{found['acknowledged_by'] or '?'}; nothing more to send")  # fmt: skip
        return 0
    when = "now"
    try:
        with ControlClient(home, timeout=30) as client:
            client.request("ack", id=args.id, by=by)
    except ControlError as e:
        if "no running terminal" not in str(e):
            raise
        _ack_offline(home, config, args.id, by)
        when = "at the next `hotline run`"
    print(f"{args.id}: acknowledged (received and understood) by {by}; the signed receipt goes back to the "
          f"sender {when}")  # fmt: skip
    return 0


def _ack_offline(home: Path, config: Config, message_id: str, by: str) -> None:
    """The terminal is stopped: run the engine's own acknowledgement once, against the journal."""
    from hotline.engine.engine import Engine
    from hotline.terminal.daemon import SystemClock

    identity = _identity(home, config)
    journal = _journal(home)
    errors: list[Exception] = []
    try:
        engine = Engine(
            identity=identity, config=config, journal=journal, clock=SystemClock(), request_flush=lambda: None
        )
        engine.acknowledge(message_id, by, lambda e: errors.append(e) if e else None)
        engine.flush()
    finally:
        journal.close()
    if errors:
        raise errors[0]


def cmd_inbox(args: argparse.Namespace) -> int:
    return _listing(args, "in")


def cmd_outbox(args: argparse.Namespace) -> int:
    return _listing(args, "out")


def cmd_status(args: argparse.Namespace) -> int:
    home, config = _open(args)
    try:
        with ControlClient(home, timeout=10) as client:
            status = client.request("status")
    except ControlError:
        journal = _journal(home, readonly=True)
        store = Store(journal)
        status = {"name": config.name, "running": False, "peers": [], "alarms": store.active_alarms()}
        for row in store.peers():
            cursors = store.cursors(row.name)
            depth = store.queue_depth(row.name)
            status["peers"].append(
                {
                    "name": row.name, "fingerprint": fingerprint(row.identity_key),
                    "link": "down (terminal not running)",
                    "last_contact_ns": cursors.last_contact_ns,
                    "queue": {"queued": depth["queued"], "unacknowledged": depth["sent"],
                              "next_seq": cursors.out_next_seq, "delivered_upto": cursors.out_acked,
                              "received_upto": cursors.in_upto},
                    "refused": None, "last_error": None,
                }
            )  # fmt: skip
        journal.close()
    for peer in status["peers"]:
        ns = peer.get("last_contact_ns")
        peer["last_contact"] = audit.rfc3339(ns) if ns else None  # JSON says null; the text says "-"
    console = home / "console.url"  # written by the running terminal once its console is bound
    status["console"] = console.read_text().strip() if status["running"] and console.exists() else None
    if args.json:
        _out_json(status)
        return 0
    print(f"terminal {status['name']}: {'running' if status['running'] else 'NOT RUNNING'}")
    if status["console"]:
        print(f"console and API at {status['console']}")
    for p in status["peers"]:
        rtt = f" rtt {p['rtt_ms']:.2f} ms" if p.get("rtt_ms") else ""
        via = f" via {p['address']}" if p.get("address") else ""
        print(f"  {p['name']:<14} link {p['link'].upper()}{via}{rtt}; last contact {p['last_contact'] or '-'}")
        q = p["queue"]
        print(
            f"    queued {q['queued']}, awaiting receipt {q['unacknowledged']}, "
            f"delivered up to #{q['delivered_upto']}, received up to #{q['received_upto']}"
        )
        for path in p.get("paths", []):
            marker = "*" if path["active"] else " "
            rtt = f"rtt {path['rtt_ms']:.2f} ms (p50 {path['rtt_p50_ms']:.2f})" if path.get("rtt_ms") else "rtt -"
            beat = path.get("last_heartbeat_ms_ago")
            test = path.get("last_test") or {}
            test_text = ("ok" if test.get("ok") else "FAILED") + f" {_ts(test.get('at_ns'))}" if test else "none yet"
            print(
                f"   {marker}{path['name']:<10} {path['state'].upper():<5} {rtt}; "
                f"last heartbeat {beat if beat is not None else '-'} ms ago; last test {test_text}"
            )
        if p.get("refused"):
            print(f"    REFUSED: {p['refused']}")
        elif p.get("last_error"):
            print(f"    last error: {p['last_error']}")
    _print_alarms(status.get("alarms", []))
    return 0


def _print_alarms(alarms: list[dict[str, Any]]) -> None:
    if not alarms:
        print("no alarms")
        return
    print(f"{len(alarms)} ALARM(S):")
    for a in alarms:
        print(f"  ! {a['kind']:<16} {a['peer']:<12} since {_ts(a['raised_ns'])}  {a['detail']}")


def cmd_alarms(args: argparse.Namespace) -> int:
    home, _ = _open(args)
    try:
        with ControlClient(home, timeout=10) as client:
            alarms = client.request("alarms")["alarms"]
    except ControlError:
        journal = _journal(home, readonly=True)
        alarms = Store(journal).active_alarms()
        journal.close()
    for a in alarms:
        a["raised"] = _ts(a["raised_ns"])
    if args.json:
        _out_json({"alarms": alarms})
    else:
        _print_alarms(alarms)
    return 0


def cmd_journal(args: argparse.Namespace) -> int:
    home, _ = _open(args)
    journal = _journal(home, readonly=True)
    try:
        if args.journal_cmd == "verify":
            report = audit.verify(journal)
            if args.json:
                _out_json(report.as_dict())
            elif report.ok:
                print(
                    f"journal OK: {report.entries} entries, hash chain intact, {report.signatures} signatures verified"
                )
            else:
                print(f"journal FAILED verification ({report.entries} entries read):", file=sys.stderr)
                for text in report.problems:
                    print(f"  {text}", file=sys.stderr)
            return 0 if report.ok else 1
        out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
        try:
            for line in audit.export_lines(journal):
                out.write(line + "\n")
        finally:
            if out is not sys.stdout:
                out.close()
        return 0
    finally:
        journal.close()


def cmd_demo(args: argparse.Namespace) -> int:
    from hotline.cli.demo import run_demo

    return run_demo(keep_running=not args.no_wait)


# -- parser ------------------------------------------------------------------------------


SEND_EPILOG = """\
examples:
  hotline send --to moscow "Line check. Please confirm."
  hotline send --to moscow --precedence flash --classification SECRET --subject "Launch detected" --wait \\
      "Acknowledge at once."
  hotline send --to moscow --lang ru --file note.txt --attach readout.pdf
The id is printed at once; the message is in the journal and goes out as soon as the line allows
(with the terminal stopped, at the next `hotline run`). --wait returns once the receipt is in.
"""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline",
        description="Hotline: a direct, end-to-end encrypted, always-tested link between a few parties.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    home_help = "terminal home folder (default: $HOTLINE_HOME)"
    parser.add_argument("--home", help=home_help)
    parser.add_argument("--version", action="version", version=f"hotline {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Any, help_text: str, listing: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--home", help=home_help, default=argparse.SUPPRESS)
        if listing:
            p.add_argument("--json", action="store_true", help="print one JSON document")
        p.set_defaults(func=func)
        return p

    p = add("init", cmd_init, "create a terminal: keys, config and journal in a new home folder")
    p.add_argument("--name", required=True, help="this terminal's name, e.g. washington")
    p.add_argument(
        "--listen",
        required=True,
        action="append",
        metavar="[PATH=]HOST:PORT",
        help="address to listen on, one per path in preference order (primary, backup, ...)",
    )
    p.add_argument("--advertise", action="append", metavar="[PATH=]HOST:PORT",
                   help="address the peer should dial for each path, if not the --listen one (NAT, relay)")  # fmt: skip
    p.add_argument("--no-passphrase", action="store_true", help="store keys unencrypted (demos and tests only)")
    p.add_argument("--api", metavar="[HOST:]PORT",
                   help="serve the console and HTTP API here (host 127.0.0.1 unless given; 0 = any port)")  # fmt: skip

    add("card", cmd_card, "print this terminal's signed contact card")
    p = add("pair", cmd_pair, "import a peer's contact card and print the safety number")
    p.add_argument("file", help="the peer's card file, or - for stdin")
    add("peers", cmd_peers, "list paired peers and whether their safety number was confirmed", listing=True)
    p = add("verify", cmd_verify, "record that the other operator read you the same safety number")
    p.add_argument("peer", help="peer name")
    p.add_argument("safety_number", help="the 60 digits as the other operator read them (spaces allowed)")
    p = add("run", cmd_run, "run the terminal in the foreground (SIGTERM or Ctrl-C stops it)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="override the config")

    p = add("send", cmd_send, "journal a message for a peer and print its id", listing=True)
    p.epilog = SEND_EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--to", required=True, help="peer name (see `hotline peers`)")
    p.add_argument(
        "--precedence",
        default="routine",
        type=str.lower,
        choices=["flash", "immediate", "priority", "routine"],
        help="flash overtakes all queued traffic and takes over the other end's console; "
        "acknowledgement due within 10 min, 30 min, 3 h, 6 h (default routine)",
    )
    p.add_argument("--lang", default="en", help="BCP 47 language tag of the text (default en)")
    p.add_argument("--subject", default="", help="a short subject line (up to 500 characters)")
    p.add_argument(
        "--classification",
        metavar="MARKING",
        help="classification marking, shown as a banner at both ends; one of [messages] markings in "
        "config.toml (default: the first, UNCLASSIFIED unless configured)",
    )
    p.add_argument("--file", help="read the body (UTF-8 text) from a file, - for stdin; instead of TEXT")
    p.add_argument("--attach", action="append", metavar="F",
                   help="attach a file (up to 16 MiB each, 32 MiB in all with the body; repeatable)")  # fmt: skip
    p.add_argument("--id", help="message id (UUID) to make a retried send idempotent")
    p.add_argument(
        "--wait",
        action="store_true",
        help="return only once the signed delivery receipt is journaled (exit 3 if none within --timeout)",
    )
    p.add_argument("--timeout", type=_seconds, default=60.0, metavar="S",
                   help="with --wait: seconds to wait for the receipt (default 60)")  # fmt: skip
    p.add_argument("text", nargs="?", help="the message text (or --file)")

    for name, func, direction in (("inbox", cmd_inbox, "received"), ("outbox", cmd_outbox, "sent")):
        p = add(name, func, f"list {direction} messages with their state and times", listing=True)
        p.add_argument("--peer", help="only this peer")
        p.add_argument("--limit", type=_positive, default=100, help="most recent N (default 100)")
    p = add("attachment", cmd_attachment, "list a message's attachments, or save one to a file", listing=True)
    p.add_argument("id", help="the message id (see `hotline inbox` or `outbox`)")
    p.add_argument("index", nargs="?", type=int, help="the attachment to save (0, 1, ...); without it, list them")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="where to save it (default: its own name in this folder; - for stdout)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace a file that already exists")
    p = add("ack", cmd_ack, "acknowledge a received message: 'received and understood', signed, sent back")
    p.add_argument("id", help="the message id (see `hotline inbox`)")
    p.add_argument("--by", help="who acknowledges (default: $USER)")
    add("alarms", cmd_alarms, "active alarms: path down, all paths down, test failed, key changed, ack overdue",
        listing=True)  # fmt: skip
    add("status", cmd_status, "peers, link state, queue depth, last contact", listing=True)

    cli_access.register(add)

    p = add("journal", cmd_journal, "verify or export the hash-chained journal")
    jsub = p.add_subparsers(dest="journal_cmd", required=True, metavar="verify|export")
    v = jsub.add_parser("verify", help="check the hash chain and every signature; exit 1 on any fault")
    v.add_argument("--home", help=home_help, default=argparse.SUPPRESS)
    v.add_argument("--json", action="store_true", help="print the report as one JSON document")
    e = jsub.add_parser("export", help="write the journal as JSON lines")
    e.add_argument("--home", help=home_help, default=argparse.SUPPRESS)
    e.add_argument("--output", "-o", help="file to write (default stdout)")

    p = add("demo", cmd_demo, "two terminals, washington and moscow, on loopback, ready to try")
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="exit after the exchange instead of waiting for Ctrl-C",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "home"):
        args.home = None
    try:
        return int(args.func(args))
    except HotlineError as e:
        print(f"hotline: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`hotline journal export | head`): not an error worth a traceback.
        # Point stdout at /dev/null so the interpreter's own final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a pipe's writer stopped by it


if __name__ == "__main__":
    sys.exit(main())
