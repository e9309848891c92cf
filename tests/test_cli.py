"""The command-line contract, without running terminals: what an operator types and reads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import Terminal


def test_pairing_gives_the_same_safety_number_on_both_sides(paired: tuple[Terminal, Terminal]) -> None:
    a, b = paired
    na = a.cli_json("peers")["peers"][0]["safety_number"]
    nb = b.cli_json("peers")["peers"][0]["safety_number"]
    assert na == nb
    groups = na.split(" ")
    assert len(groups) == 12 and all(len(g) == 5 and g.isdigit() for g in groups)


def test_verify_records_a_matching_safety_number_and_refuses_another(paired: tuple[Terminal, Terminal]) -> None:
    a, _ = paired
    peer = a.cli_json("peers")["peers"][0]
    assert peer["verified"] is False
    wrong = a.cli("verify", "moscow", "1" * 60, check=False)
    assert wrong.returncode == 1 and "does not match" in wrong.stderr
    assert a.cli_json("peers")["peers"][0]["verified"] is False
    a.cli("verify", "moscow", peer["safety_number"])
    assert a.cli_json("peers")["peers"][0]["verified"] is True
    export = [json.loads(x) for x in a.cli("journal", "export").stdout.splitlines()]
    assert any(e["body"].get("action") == "verify-peer" for e in export)


def test_pairing_the_same_card_twice_is_harmless(paired: tuple[Terminal, Terminal]) -> None:
    a, b = paired
    again = a.pair_with(b)
    assert "already paired" in again and "hotline verify" not in again  # nothing new to verify
    assert len(a.cli_json("peers")["peers"]) == 1


def test_send_offline_is_queued_and_listed(paired: tuple[Terminal, Terminal]) -> None:
    a, _ = paired
    out = json.loads(a.cli("send", "--to", "moscow", "--precedence", "flash", "--subject", "S", "--json", "hi").stdout)
    outbox = a.cli_json("outbox")["messages"]
    assert [(m["id"], m["state"], m["precedence"]) for m in outbox] == [(out["id"], "queued", "flash")]
    status = a.cli_json("status")
    assert status["running"] is False and status["peers"][0]["queue"]["queued"] == 1


def test_listings_say_when_they_show_only_the_latest(paired: tuple[Terminal, Terminal]) -> None:
    a, _ = paired
    for n in range(3):
        a.cli("send", "--to", "moscow", "--subject", f"s{n}", "queued")
    shown = a.cli_json("outbox", "--limit", "2")
    assert [m["subject"] for m in shown["messages"]] == ["s1", "s2"] and shown["total"] == 3
    text = a.cli("outbox", "--limit", "2").stdout
    assert "showing the latest 2 of 3; --limit to see more" in text
    assert "showing" not in a.cli("outbox").stdout, "nothing to say when all are shown"


def test_the_demo_leaves_no_keys_behind() -> None:
    # A short folder of its own: a control socket's path must stay under the 108 bytes Unix allows.
    demo_tmp = Path(tempfile.mkdtemp(prefix="hl-"))
    try:
        env = {**os.environ, "TMPDIR": str(demo_tmp)}
        r = subprocess.run([sys.executable, "-m", "hotline", "demo", "--no-wait"], capture_output=True, text=True,
                           env=env, timeout=120, check=False)  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("delivered in") == 5
        assert "removed" in r.stdout and list(demo_tmp.iterdir()) == []
    finally:
        shutil.rmtree(demo_tmp, ignore_errors=True)


def test_send_refuses_an_unknown_peer_and_bad_arguments(paired: tuple[Terminal, Terminal]) -> None:
    a, _ = paired
    r = a.cli("send", "--to", "beijing", "hello", check=False)
    assert r.returncode == 1 and "no peer named 'beijing'" in r.stderr
    r = a.cli("send", "--to", "moscow", "--lang", "not a tag!", "hello", check=False)
    assert r.returncode == 1 and "invalid language tag" in r.stderr
    r = a.cli("send", "--to", "moscow", check=False)
    assert r.returncode == 1 and "give the message text" in r.stderr
    r = a.cli("send", "--to", "moscow", "--classification", "TOP SECRET", "hello", check=False)
    assert r.returncode == 1 and "UNCLASSIFIED, CONFIDENTIAL, SECRET" in r.stderr
    assert a.cli_json("outbox")["messages"] == []


def test_send_speaks_plainly_about_what_it_refuses_and_forgives_letter_case(
    paired: tuple[Terminal, Terminal], tmp_path: Path
) -> None:
    a, _ = paired
    big = tmp_path / "sixteen.bin"
    big.write_bytes(b"\0" * 16 * 1024 * 1024)
    r = a.cli("send", "--to", "moscow", "--attach", str(big), "--attach", str(big), "--attach", str(big), "x",
              check=False)  # fmt: skip
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "the limit is 32 MiB for the body and attachments together" in r.stderr
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)))
    r = a.cli("send", "--to", "moscow", "--file", str(binary), check=False)
    assert r.returncode == 1 and "not UTF-8 text; send a binary file with --attach" in r.stderr
    r = a.cli("send", "--to", "moscow", "--file", str(tmp_path / "missing.txt"), check=False)
    assert r.returncode == 1 and r.stderr.strip().endswith("No such file or directory"), r.stderr
    assert a.cli_json("outbox")["messages"] == []
    a.cli("send", "--to", "Moscow", "--precedence", "FLASH", "--classification", "secret", "case forgiven")
    [sent] = a.cli_json("outbox")["messages"]
    assert (sent["peer"], sent["precedence"], sent["classification"]) == ("moscow", "flash", "SECRET")
    r = a.cli("outbox", "--limit", "-1", check=False)
    assert r.returncode == 2 and "not a positive number" in r.stderr


def test_version_and_home_after_any_subcommand(paired: tuple[Terminal, Terminal]) -> None:
    a, _ = paired
    r = subprocess.run([sys.executable, "-m", "hotline", "--version"], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stdout.startswith("hotline ")
    env = {k: v for k, v in a.env().items() if k != "HOTLINE_HOME"}
    for args in (["journal", "verify"], ["journal", "export"]):
        r = subprocess.run([sys.executable, "-m", "hotline", *args, "--home", str(a.home)], capture_output=True,
                           text=True, env=env, check=False)  # fmt: skip
        assert r.returncode == 0, (args, r.stderr)


def test_an_empty_passphrase_is_named_as_such(tmp_path: Path) -> None:
    env = {**os.environ, "HOTLINE_PASSPHRASE": ""}
    r = subprocess.run([sys.executable, "-m", "hotline", "--home", str(tmp_path / "t"), "init", "--name", "t",
                        "--listen", "127.0.0.1:1"], capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert r.returncode == 1 and "HOTLINE_PASSPHRASE is set but empty" in r.stderr and "--no-passphrase" in r.stderr


def test_send_with_the_same_id_is_idempotent(paired: tuple[Terminal, Terminal]) -> None:
    a, _ = paired
    mid = "0190f2a0-0000-7000-8000-000000000001"
    first = json.loads(a.cli("send", "--to", "moscow", "--id", mid, "--json", "once").stdout)
    again = json.loads(a.cli("send", "--to", "moscow", "--id", mid, "--json", "once").stdout)
    assert first["created"] is True and again["created"] is False
    r = a.cli("send", "--to", "moscow", "--id", mid, "--classification", "SECRET", "once", check=False)
    assert r.returncode == 1 and "already used by a different message" in r.stderr
    assert len(a.cli_json("outbox")["messages"]) == 1


def test_init_refuses_an_existing_home_and_home_comes_from_the_environment(paired: tuple[Terminal, Terminal]) -> None:
    a, _ = paired
    r = a.cli("init", "--name", "washington", "--listen", "127.0.0.1:1", "--no-passphrase", check=False)
    assert r.returncode == 1 and "already holds a terminal" in r.stderr
    env = {**a.env(), "HOTLINE_HOME": str(a.home)}
    r2 = subprocess.run([sys.executable, "-m", "hotline", "peers", "--json"], capture_output=True, text=True,
                        env=env, check=False)  # fmt: skip
    assert r2.returncode == 0 and json.loads(r2.stdout)["peers"][0]["name"] == "moscow"


def test_no_home_is_a_clear_error() -> None:
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_HOME"}
    r = subprocess.run([sys.executable, "-m", "hotline", "peers"], capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 1 and "--home" in r.stderr and "HOTLINE_HOME" in r.stderr


def test_a_reader_that_goes_away_is_no_traceback(paired: tuple[Terminal, Terminal]) -> None:
    """`hotline outbox --json | head -1`: the pipe closes before the listing is written."""
    a, _ = paired
    a.cli("send", "--to", "moscow", "a message to list")
    for args in (["outbox", "--json"], ["journal", "export"], ["peers"]):
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader is gone before hotline writes a byte
        try:
            r = subprocess.run([sys.executable, "-m", "hotline", "--home", str(a.home), *args], stdout=write_end,
                               stderr=subprocess.PIPE, text=True, env=a.env(), timeout=60, check=False)  # fmt: skip
        finally:
            os.close(write_end)
        assert r.returncode == 141, (args, r.returncode, r.stderr)
        assert r.stderr == "", (args, r.stderr)


def test_listings_name_an_unknown_peer_and_give_every_time_twice(paired: tuple[Terminal, Terminal]) -> None:
    a, _ = paired
    r = a.cli("inbox", "--peer", "beijing", check=False)
    assert r.returncode == 1 and "no peer named 'beijing'" in r.stderr
    a.cli("send", "--to", "moscow", "listed")
    [m] = a.cli_json("outbox")["messages"]
    for key in [k for k in m if k.endswith("_at_ns")]:
        assert key.removesuffix("_ns") in m, key  # nanoseconds for programs, RFC 3339 for people
    assert a.cli_json("status")["peers"][0]["last_contact"] is None  # no contact yet: null, not "-"
    a.create_token("auditor")
    [token] = a.cli_json("token", "list")["tokens"]
    assert token["created_at"].endswith("Z") and token["revoked_at"] is None


def test_attachments_are_listed_and_saved_from_the_command_line(
    paired: tuple[Terminal, Terminal], tmp_path: Path
) -> None:
    a, _ = paired
    readout = tmp_path / "readout.pdf"
    readout.write_bytes(b"%PDF-1.7 " + bytes(range(256)) * 100)
    mid = a.cli("send", "--to", "moscow", "--attach", str(readout), "see the readout").stdout.strip()
    assert f"1 attachment(s): `hotline attachment {mid}`" in a.cli("outbox").stdout
    [listed] = a.cli_json("attachment", mid)["attachments"]
    assert (listed["index"], listed["name"], listed["size"]) == (0, "readout.pdf", readout.stat().st_size)
    out = tmp_path / "saved.pdf"
    a.cli("attachment", mid, "0", "-o", str(out))
    assert out.read_bytes() == readout.read_bytes()
    r = a.cli("attachment", mid, "0", "-o", str(out), check=False)
    assert r.returncode == 1 and "already exists" in r.stderr
    a.cli("attachment", mid, "0", "-o", str(out), "--force")
    r = a.cli("attachment", mid, "1", check=False)
    assert r.returncode == 1 and "has 1 attachment(s); there is no number 1" in r.stderr
    raw = subprocess.run([sys.executable, "-m", "hotline", "--home", str(a.home), "attachment", mid, "0", "-o", "-"],
                         capture_output=True, env=a.env(), check=True)  # fmt: skip
    assert raw.stdout == readout.read_bytes()


def test_help_teaches() -> None:
    r = subprocess.run([sys.executable, "-m", "hotline", "--help"], capture_output=True, text=True, check=False)
    assert r.returncode == 0
    for word in ("init", "pair", "send", "inbox", "outbox", "status", "journal", "demo", "examples:"):
        assert word in r.stdout


def test_classification_markings_come_from_the_config(paired: tuple[Terminal, Terminal]) -> None:
    a, _ = paired
    a.configure("messages", markings=["OFFICIAL", "OFFICIAL-SENSITIVE"])
    a.cli("send", "--to", "moscow", "--subject", "default marking", "one")
    a.cli("send", "--to", "moscow", "--classification", "OFFICIAL-SENSITIVE", "two")
    assert [m["classification"] for m in a.cli_json("outbox")["messages"]] == ["OFFICIAL", "OFFICIAL-SENSITIVE"]
    assert "(OFFICIAL) default marking" in a.cli("outbox").stdout
    a.configure("messages", markings=["SECRET", "SECRET"])
    r = a.cli("outbox", check=False)
    assert r.returncode == 1 and "markings must be a list of distinct texts" in r.stderr
    a.configure("messages", markings=[["SECRET"]])
    r = a.cli("outbox", check=False)
    assert r.returncode == 1 and "markings must be a list of distinct texts" in r.stderr
    a.configure("messages", markings=["SECRET\n"])
    r = a.cli("outbox", check=False)
    assert r.returncode == 1 and "invalid classification marking" in r.stderr
