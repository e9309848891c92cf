"""`hotline init` and `hotline card`: create a terminal, and print the card its peers import."""

from __future__ import annotations

import argparse
import sys

from hotline.cli.common import Add, ask_passphrase, now_ns, open_home, open_journal
from hotline.core import times
from hotline.core.errors import ConfigError
from hotline.core.model import Address, validate_name
from hotline.crypto.identity import Identity, fingerprint, make_card
from hotline.home.config import CONFIG_FILE, KEYS_FILE, Config, parse_api_listen, resolve_home
from hotline.home.keyfile import save_keys, write_atomic

CARD_FILE = "card.json"


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
    passphrase = None if args.no_passphrase else ask_passphrase(None, confirm=True)
    identity = Identity.generate(name)
    save_keys(home / KEYS_FILE, identity, passphrase)
    write_atomic(home / CONFIG_FILE, config.to_toml().encode(), 0o644)
    card = make_card(identity, advertise, times.rfc3339(now_ns()).split(".")[0] + "Z")
    write_atomic(home / CARD_FILE, card.to_json().encode(), 0o644)
    with open_journal(home) as storage, storage.record.transaction():
        storage.store.record_created(name, identity.public_key, identity.dh_public, identity.cert_der, now_ns())
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
    home, _ = open_home(args)
    card = (home / CARD_FILE).read_text()
    sys.stdout.write(card if card.endswith("\n") else card + "\n")
    return 0


def register(add: Add) -> None:
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
