"""The HTTP API against two real running terminals: every endpoint, every role, bad input.

One pair of terminals serves the whole module (they take seconds to start);
each test makes its own tokens, sessions and messages, so the tests do not
depend on one another's order.
"""

from __future__ import annotations

import base64
import json
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import PASSWORD, Terminal, free_port, wait_for
from hotline.web.api import ENDPOINTS

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("api")]


class Side:
    """One terminal and helpers to call its API."""

    def __init__(self, terminal: Terminal) -> None:
        self.t = terminal
        self.url = terminal.console_url()
        self.tokens: dict[str, str] = {}

    def token(self, role: str) -> str:
        if role not in self.tokens:
            self.tokens[role] = self.t.create_token(role)
        return self.tokens[role]

    def as_(self, role: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"authorization": f"Bearer {self.token(role)}"}, timeout=30)

    def login(self, user: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
        client = httpx.Client(base_url=self.url, timeout=30)
        r = client.post("/api/session", json={"name": user, "password": password})
        assert r.status_code == 200, r.text
        return client, r.json()["csrf"]

    def actions(self) -> list[dict[str, Any]]:
        lines = self.t.cli("journal", "export").stdout.splitlines()
        return [e["body"] for e in map(json.loads, lines) if e["kind"] == "operator.action"]


@pytest.fixture(scope="module")
def ends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Side, Side]]:
    root: Path = tmp_path_factory.mktemp("api")
    w, m = Terminal(root, "washington"), Terminal(root, "moscow")
    try:
        for t in (w, m):
            t.init("--api", f"127.0.0.1:{free_port()}")
            for user, role in (("alice", "operator"), ("sam", "supervisor"), ("audrey", "auditor")):
                t.add_user(user, role, PASSWORD)
        w.pair_with(m)
        m.pair_with(w)
        w.start()
        m.start()
        w.wait_link("moscow")
        m.wait_link("washington")
        yield Side(w), Side(m)
    finally:
        for t in (w, m):
            if t.proc is not None and t.proc.poll() is None:
                t.stop()


def send(side: Side, role: str = "operator", **fields: Any) -> str:
    body = {"to": "moscow", "subject": "test", "body": "hello", **fields}
    with side.as_(role) as c:
        r = c.post("/api/messages", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def arrived(side: Side, message_id: str) -> dict[str, Any]:
    with side.as_("operator") as c:

        def found() -> dict[str, Any] | None:
            r = c.get(f"/api/messages/{message_id}")
            return r.json() if r.status_code == 200 else None

        return dict(wait_for(found, 10, f"message {message_id} at {side.t.name}"))


def concrete(path: str) -> str:
    return path.replace("{id}", str(uuid.uuid4())).replace("{index:int}", "0").replace("{name}", "x")


# -- authentication ---------------------------------------------------------------------------


def test_every_endpoint_refuses_a_caller_without_credentials(ends: tuple[Side, Side]) -> None:
    w, _ = ends
    with httpx.Client(base_url=w.url, timeout=10) as anonymous:
        for e in ENDPOINTS:
            if e.permission is None:
                continue
            r = anonymous.request(e.method, concrete(e.path), json={})
            assert r.status_code == 401, f"{e.method} {e.path}: {r.status_code} {r.text}"
            assert r.json()["error"], e.path
            assert r.headers["www-authenticate"].startswith("Bearer"), e.path
        for bad in ("Bearer hlt_00000000_forged", "Bearer nonsense", "Basic YWxpY2U6cHc="):
            r = anonymous.get("/api/status", headers={"authorization": bad})
            assert r.status_code == 401, bad


def test_the_openapi_schema_is_public_and_lists_every_endpoint(ends: tuple[Side, Side]) -> None:
    w, _ = ends
    schema = httpx.get(f"{w.url}/openapi.json", timeout=30).json()
    assert schema["openapi"].startswith("3.")
    listed = {(path, method.upper()) for path, ops in schema["paths"].items() for method in ops}
    assert listed == {(e.path.replace(":int}", "}"), e.method) for e in ENDPOINTS}


def test_roles_are_enforced_by_the_api(ends: tuple[Side, Side]) -> None:
    w, _ = ends
    message_id = send(w)
    refused = {
        "operator": [("GET", "/api/journal/verify"), ("GET", "/api/journal/export"), ("GET", "/api/users"),
                     ("POST", "/api/users"), ("GET", "/api/tokens"), ("POST", "/api/tokens"),
                     ("POST", "/api/peers"), ("DELETE", "/api/users/alice")],
        "auditor": [("POST", "/api/messages"), ("POST", f"/api/messages/{message_id}/ack"), ("GET", "/api/users"),
                    ("POST", "/api/tokens"), ("POST", "/api/peers")],
    }  # fmt: skip
    for role, calls in refused.items():
        with w.as_(role) as c:
            for method, path in calls:
                r = c.request(method, path, json={"to": "moscow", "role": "operator"})
                assert r.status_code == 403, f"{role} {method} {path}: {r.status_code} {r.text}"
                assert role in r.json()["error"]
    with w.as_("supervisor") as c:
        assert c.get("/api/journal/verify").json()["ok"] is True
        assert c.get("/api/users").status_code == 200
        assert c.post("/api/messages", json={"to": "moscow", "body": "from the supervisor"}).status_code == 201
    with w.as_("auditor") as c:
        assert c.get("/api/journal/verify").status_code == 200
        assert c.get("/api/messages", params={"box": "outbox"}).status_code == 200


def test_a_revoked_token_stops_working(ends: tuple[Side, Side]) -> None:
    w, _ = ends
    with w.as_("supervisor") as admin:
        made = admin.post("/api/tokens", json={"role": "operator", "label": "pager bridge"})
        assert made.status_code == 201, made.text
        token, token_id = made.json()["token"], made.json()["id"]
        listed = admin.get("/api/tokens").json()["tokens"]
        assert token_id in [t["id"] for t in listed]
        assert token not in json.dumps(listed), "a token's secret must never be listed"
        headers = {"authorization": f"Bearer {token}"}
        assert httpx.get(f"{w.url}/api/status", headers=headers, timeout=30).status_code == 200
        assert admin.delete(f"/api/tokens/{token_id}").status_code == 200
        assert httpx.get(f"{w.url}/api/status", headers=headers, timeout=30).status_code == 401
        assert admin.delete(f"/api/tokens/{token_id}").status_code == 404  # no live token by that id


def test_sessions_need_csrf_on_writes_and_end_at_logout(ends: tuple[Side, Side]) -> None:
    w, _ = ends
    client, csrf = w.login("alice")
    with closing(client):
        cookie = client.post("/api/session", json={"name": "alice", "password": PASSWORD}).headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower(), cookie
        csrf = client.post("/api/session", json={"name": "alice", "password": PASSWORD}).json()["csrf"]
        me = client.get("/api/whoami").json()
        assert me["name"] == "alice" and me["markings"] == ["UNCLASSIFIED", "CONFIDENTIAL", "SECRET"]
        no_csrf = client.post("/api/messages", json={"to": "moscow", "body": "x"})
        assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["error"]
        wrong = client.post("/api/messages", json={"to": "moscow", "body": "x"}, headers={"x-csrf-token": "no"})
        assert wrong.status_code == 403
        ok = client.post("/api/messages", json={"to": "moscow", "body": "x"}, headers={"x-csrf-token": csrf})
        assert ok.status_code == 201, ok.text
        assert client.delete("/api/session", headers={"x-csrf-token": csrf}).status_code == 200
        assert client.get("/api/whoami").status_code == 401


def test_a_flood_on_one_user_slows_only_that_user_from_that_address(ends: tuple[Side, Side]) -> None:
    """Issue 14: a flood of wrong passwords for one user once locked out every user behind the
    address (429 for all); now it delays only that user from that address, and says so."""
    _, m = ends  # its own terminal's throttle, so other tests' logins are not slowed
    wrong = {"name": "sam", "password": "wrong password"}

    def guess(_: int) -> httpx.Response:
        return httpx.post(f"{m.url}/api/session", json=wrong, timeout=30)

    # Twelve guesses at once must not slip past the five allowed while the first are being checked.
    with ThreadPoolExecutor(12) as pool:
        answers = sorted(r.status_code for r in pool.map(guess, range(12)))
    assert answers == [401] * 5 + [429] * 7
    with httpx.Client(base_url=m.url, timeout=30) as c:
        failures = 5
        while failures < 8:  # the attacker waits each delay out: 1 s, 2 s, 4 s; the next is 8 s
            r = c.post("/api/session", json=wrong)
            if r.status_code == 429:
                time.sleep(int(r.headers["retry-after"]))
                continue
            assert r.status_code == 401, r.text
            failures += 1
        r = c.post("/api/session", json={"name": "sam", "password": PASSWORD})
        assert r.status_code == 429, "sam from the flooding address waits, even with the password"
        assert 1 <= int(r.headers["retry-after"]) <= 8
        # No proxy stands in front of the console: a forwarded-for header is only the caller's word.
        forged = c.post("/api/session", json={"name": "sam", "password": PASSWORD},
                        headers={"x-forwarded-for": "10.9.8.7", "forwarded": "for=10.9.8.7"})  # fmt: skip
        assert forged.status_code == 429, forged.text
        page = c.post("/login?lang=ru", data={"name": "sam", "password": PASSWORD})  # the console's form says it too
        assert page.status_code == 429 and 1 <= int(page.headers["retry-after"]) <= 8
        assert f"Попробуйте снова через {page.headers['retry-after']} с." in page.text
        other_user = c.post("/api/session", json={"name": "alice", "password": PASSWORD})
        assert other_user.status_code == 200, "another user behind the same address gets in: " + other_user.text
        unknown = c.post("/api/session", json={"name": "nobody", "password": "x" * 12})
        assert unknown.status_code == 401, "and a wrong name there is only wrong"
    elsewhere = httpx.HTTPTransport(local_address="127.0.0.2")  # another loopback address
    with httpx.Client(base_url=m.url, timeout=30, transport=elsewhere) as c:
        r = c.post("/api/session", json={"name": "sam", "password": PASSWORD})
        assert r.status_code == 200, "sam from another address gets in: " + r.text
        csrf = r.json()["csrf"]
        alarms = c.get("/api/alarms").json()["alarms"]  # sam is a supervisor: the flood is in front of him
        flood = [a for a in alarms if a["kind"] == "login-flood"]
        assert [a["subject"] for a in flood] == ["sam@127.0.0.1"], alarms
        assert "other users and addresses are not delayed" in flood[0]["detail"]
        assert c.delete("/api/session", headers={"x-csrf-token": csrf}).status_code == 200
    throttles = [a for a in m.actions() if a["action"] == "login.throttle"]  # one entry, not one per try
    assert throttles == [{"action": "login.throttle", "state": "started", "scope": "pair", "user": "sam",
                          "from": "127.0.0.1", "failures": 5, "delay_s": 1.0}]  # fmt: skip
    logins = [(a["by"], a["from"]) for a in m.actions() if a["action"] == "login"]
    assert ("alice", "127.0.0.1") in logins and ("sam", "127.0.0.2") in logins, "journaled from where they came"


def test_only_loopback_host_names_are_answered(ends: tuple[Side, Side]) -> None:
    """A page elsewhere that makes its own name resolve to 127.0.0.1 (DNS rebinding) gets nothing."""
    w, _ = ends
    port = w.url.rstrip("/").rsplit(":", 1)[1]
    with w.as_("auditor") as c:
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.nip.io"):
            r = c.get("/api/status", headers={"host": host})
            assert r.status_code == 421, (host, r.status_code)
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"127.0.0.2:{port}", f"[::1]:{port}"):
            assert c.get("/api/status", headers={"host": host}).status_code == 200, host


def test_an_anonymous_upload_is_refused_before_its_body_is_read(ends: tuple[Side, Side]) -> None:
    w, _ = ends
    host, port = w.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    head = (
        f"POST /api/messages HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 200000000\r\n\r\n"
    )
    with closing(socket.create_connection((host, int(port)), timeout=10)) as s:
        s.sendall(head.encode() + b"--x\r\n")  # 200 MB announced, a few bytes sent: the answer must not wait
        answer = s.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 401"), answer[:200]


def test_one_message_id_however_it_is_written(ends: tuple[Side, Side]) -> None:
    w, _ = ends
    mid = uuid.uuid4()
    first = send(w, id=str(mid))
    with w.as_("operator") as c:
        for spelling in (str(mid).upper(), "{" + str(mid) + "}", mid.urn):
            r = c.post("/api/messages", json={"to": "moscow", "subject": "test", "body": "hello", "id": spelling})
            assert r.status_code in (200, 201) and r.json()["id"] == first, r.text
        rows = c.get("/api/messages", params={"box": "outbox", "limit": 1000}).json()["messages"]
    assert [m["id"] for m in rows].count(first) == 1


def test_console_pages_keep_the_query_and_compose_takes_defaults(ends: tuple[Side, Side]) -> None:
    w, _ = ends
    with httpx.Client(base_url=w.url, timeout=30) as anonymous:
        r = anonymous.get("/alarms?since=1&x=2", headers={"accept": "text/html"})
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/alarms%3Fsince%3D1%26x%3D2"
        page = anonymous.get(r.headers["location"]).text
        assert 'action="/login?next=/alarms%3Fsince%3D1%26x%3D2&amp;lang=' in page
    client, csrf = w.login("alice")
    with closing(client):
        r = client.post("/compose", data={"csrf": csrf, "to": "moscow", "body": "no precedence, no language"})
        assert r.status_code == 303, r.text[:300]
        message_id = r.headers["location"].rsplit("/", 1)[1]
        view = client.get(f"/api/messages/{message_id}").json()
        missing = client.get(f"/messages/{uuid.uuid4()}", headers={"accept": "text/html"})
        assert missing.status_code == 404 and "No peers yet" not in missing.text  # the status bar is real there too
        assert "moscow" in missing.text
        big = {"attachment": ("big.bin", b"\0" * (16 * 1024 * 1024 + 1))}
        r = client.post("/compose", data={"csrf": csrf, "to": "moscow", "body": "too big"}, files=big)
        assert r.status_code == 400 and "larger than the 16 MiB limit" in r.text
    assert (view["precedence"], view["lang"]) == ("routine", "en")


# -- messages ---------------------------------------------------------------------------------


def test_send_read_download_and_acknowledge_across_the_link(ends: tuple[Side, Side]) -> None:
    w, m = ends
    data = bytes(range(256)) * 40
    message_id = send(w, precedence="flash", lang="en", subject="Readout", classification="SECRET",
                      attachments=[{"name": "readout.bin", "data": base64.b64encode(data).decode()}])  # fmt: skip
    got = arrived(m, message_id)
    assert (got["direction"], got["precedence"], got["subject"]) == ("in", "flash", "Readout")
    assert got["classification"] == "SECRET"
    assert [(a["name"], a["size"]) for a in got["attachments"]] == [("readout.bin", len(data))]
    assert [t["event"] for t in got["timeline"]] == ["created", "received"]
    with m.as_("operator") as c:
        download = c.get(f"/api/messages/{message_id}/attachments/0")
        assert download.content == data
        assert "readout.bin" in download.headers["content-disposition"]
        inbox = c.get("/api/messages", params={"box": "inbox", "peer": "washington"}).json()["messages"]
        assert message_id in [x["id"] for x in inbox]
        acked = c.post(f"/api/messages/{message_id}/ack")
        assert acked.status_code == 200, acked.text
        by = acked.json()["by"]
        assert by.startswith("token:") and acked.json()["already"] is False
    with m.as_("supervisor") as c:  # a second acknowledgement changes nothing, and says whose stands
        again = c.post(f"/api/messages/{message_id}/ack").json()
        assert (again["by"], again["already"]) == (by, True)

    def acknowledged() -> dict[str, Any] | None:
        with w.as_("operator") as c:
            view = c.get(f"/api/messages/{message_id}").json()
        return view if view["acknowledged_at_ns"] else None

    view = wait_for(acknowledged, 10, "the acknowledgement at washington")
    assert view["acknowledged_by"] == by
    assert [t["event"] for t in view["timeline"]][-3:] == ["delivered", "read", "acknowledged"]
    # Who did it is in both records.
    assert any(a["action"] == "send" and a["id"] == message_id and a["by"].startswith("token:") for a in w.actions())
    assert any(a["action"] == "acknowledge" and a["id"] == message_id and a["by"] == by for a in m.actions())


def test_multipart_send_with_attachments(ends: tuple[Side, Side]) -> None:
    w, m = ends
    with w.as_("operator") as c:
        r = c.post(
            "/api/messages",
            data={"to": "moscow", "precedence": "immediate", "lang": "ru", "subject": "Итоги", "body": "см. файл"},
            files=[("attachment", ("итоги.txt", "Стороны договорились.".encode())),
                   ("attachment", ("b.txt", b"second"))],
        )  # fmt: skip
    assert r.status_code == 201, r.text
    got = arrived(m, r.json()["id"])
    assert (got["lang"], got["subject"], got["precedence"]) == ("ru", "Итоги", "immediate")
    assert [a["name"] for a in got["attachments"]] == ["итоги.txt", "b.txt"]
    with m.as_("operator") as c:
        download = c.get(f"/api/messages/{got['id']}/attachments/0")
    assert download.content.decode() == "Стороны договорились."
    assert "filename*=UTF-8''" in download.headers["content-disposition"]


def test_a_device_name_is_never_what_a_browser_saves_and_a_list_for_to_is_named(ends: tuple[Side, Side]) -> None:
    w, m = ends
    with w.as_("operator") as c:
        r = c.post("/api/messages", data={"to": "moscow", "body": "see file"}, files=[("attachment", ("con", b"x"))])
        assert r.status_code == 201, r.text
        listed = c.post("/api/messages", json={"to": ["moscow"], "body": "to whom?"})
    assert listed.status_code == 400 and "'to' must be one peer's name as text, not a list" in listed.text
    got = arrived(m, r.json()["id"])
    assert [a["name"] for a in got["attachments"]] == ["con"], "the record keeps the name as sent"
    with m.as_("operator") as c:
        download = c.get(f"/api/messages/{got['id']}/attachments/0")
    assert 'filename="_con"' in download.headers["content-disposition"]


def test_bad_input_gets_a_4xx_with_a_reason_never_a_500(ends: tuple[Side, Side]) -> None:
    w, _ = ends
    unknown = str(uuid.uuid4())
    multipart_x = "multipart/form-data; boundary=x"
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("POST", "/api/messages", {"content": b"{not json"}, 400),
        ("POST", "/api/messages", {"content": b"[1, 2]"}, 400),
        ("POST", "/api/messages", {"json": {"body": "no recipient"}}, 400),
        ("POST", "/api/messages", {"json": {"to": "nobody", "body": "x"}}, 400),
        ("POST", "/api/messages", {"json": {"to": "moscow", "precedence": "urgent"}}, 400),
        ("POST", "/api/messages", {"json": {"to": "moscow", "subject": "x" * 501}}, 400),
        ("POST", "/api/messages", {"json": {"to": "moscow", "classification": "COSMIC TOP SECRET"}}, 400),
        ("POST", "/api/messages", {"json": {"to": "moscow", "classification": ["SECRET"]}}, 400),
        ("POST", "/api/messages", {"json": {"to": "moscow", "attachments": [{"name": "a", "data": "@@@"}]}}, 400),
        ("POST", "/api/messages", {"json": {"to": "moscow", "attachments": "not a list"}}, 400),
        ("POST", "/api/messages", {"json": {"to": 7}}, 400),
        ("POST", "/api/messages", {"content": b"x" * (33 * 1024 * 1024)}, 413),
        ("POST", "/api/messages", {"content": b"--x\r\nbroken", "headers": {"content-type": multipart_x}}, 400),
        ("GET", f"/api/messages/{unknown}", {}, 404),
        ("POST", f"/api/messages/{unknown}/ack", {}, 404),
        ("GET", f"/api/messages/{unknown}/attachments/0", {}, 404),
        ("GET", "/api/messages?limit=abc", {}, 400),
        ("GET", "/api/messages?limit=0", {}, 400),
        ("GET", "/api/messages?box=junk", {}, 400),
        ("GET", "/api/no-such-thing", {}, 404),
        ("PUT", "/api/messages", {}, 405),
        # Text that is not Unicode (a lone surrogate, as a JSON escape) once stopped the terminal.
        ("POST", "/api/messages", {"content": rb'{"to": "moscow", "subject": "\ud800"}'}, 400),
        ("POST", "/api/messages", {"content": rb'{"to": "moscow", "body": "x\udfff"}'}, 400),
        ("POST", "/api/messages", {"content": rb'{"to": "moscow", "attachments": [{"name": "\ud800", "data": ""}]}'},
         400),
        ("POST", "/api/messages", {"content": b'{"to": "moscow", "to": "nobody"}'}, 400),
        ("POST", "/api/messages", {"content": b'{"to": "moscow", "subject": NaN}'}, 400),
        ("POST", "/api/messages", {"content": b'{"to": "moscow", "subject": 1e400}'}, 400),
        ("POST", "/api/messages", {"content": b"[" * 100_000}, 400),
        ("POST", "/api/messages", {"content": b"to=moscow", "headers": {"content-type": "text/plain"}}, 415),
        ("GET", "/api/messages?limit=\u00b2", {}, 400),
        ("GET", f"/api/messages/{unknown}/attachments/99999999999999999999999", {}, 404),
    ]  # fmt: skip
    for name in ("..", ".", "a\\b.txt", "a\r\nX-Evil: 1.txt", "tab\there", "readout\u202efdp.exe", "c:report"):
        attachment = {"name": name, "data": base64.b64encode(b"x").decode()}
        cases.append(("POST", "/api/messages", {"json": {"to": "moscow", "attachments": [attachment]}}, 400))
    with w.as_("operator") as c:
        for method, path, kwargs, status in cases:
            r = c.request(method, path, **kwargs)
            assert r.status_code == status, f"{method} {path} {str(kwargs)[:80]}: {r.status_code} {r.text[:200]}"
            assert r.json()["error"], path
        sent = send(w)
        r = c.get(f"/api/messages/{sent}/attachments/3")
        assert r.status_code == 404
    with w.as_("supervisor") as c:
        admin_cases = [
            ({"name": "bob", "role": "operator", "password": "short"}, "at least"),
            ({"name": "alice", "role": "operator", "password": "a long password"}, "already"),
            ({"name": "bob", "role": "admin", "password": "a long password"}, "unknown role"),
            ({"name": "bob", "role": "monitor", "password": "a long password"}, "for a program's token"),
            ({"name": "bob", "role": "operator", "password": "a long password", "lang": "de"}, "speaks"),
            ({"name": "../etc", "role": "operator", "password": "a long password"}, "name"),
            ({"name": "bob"}, "password"),
        ]
        for body, reason in admin_cases:
            r = c.post("/api/users", json=body)
            assert r.status_code == 400 and reason in r.json()["error"], (body, r.text)
        assert c.post("/api/tokens", json={"role": "root"}).status_code == 400
        assert c.post("/api/tokens", json={"role": "monitor", "label": "prometheus"}).json()["role"] == "monitor"
        assert c.delete("/api/users/nobody").status_code == 404
        assert c.delete("/api/tokens/ffffffff").status_code == 404
        assert c.post("/api/peers/nobody/verify", json={"safety_number": "1" * 60}).status_code == 404
        assert c.post("/api/tokens", json={"role": "auditor", "label": "pager\r\nX: 1"}).status_code == 400
        assert c.post("/api/tokens", json={"role": "auditor", "label": "x" * 101}).status_code == 400
        assert c.post("/api/tokens", json={"role": "Auditor"}).json()["role"] == "auditor"
        made = c.post("/api/users", json={"name": "bob", "role": "OPERATOR", "password": "a long password"})
        assert made.status_code == 201 and made.json()["role"] == "operator", made.text
        assert c.delete("/api/users/bob").status_code == 200
        assert c.delete("/api/session").status_code == 400  # a bearer token has no session to end
        surrogate_password = b'{"name": "bob", "role": "operator", "password": "' + rb"\ud800" * 10 + b'"}'
        assert c.post("/api/users", content=surrogate_password).status_code == 400
        assert c.post("/api/tokens", content=rb'{"role": "auditor", "label": "\ud800"}').status_code == 400
    with httpx.Client(base_url=w.url, timeout=30) as anonymous:  # before any login, too
        assert anonymous.post("/api/session", content=b"[" * 100_000).status_code == 400
    assert w.t.proc is not None and w.t.proc.poll() is None, "the terminal must still run"


def test_users_managed_by_a_supervisor_are_journaled_with_who_did_it(ends: tuple[Side, Side]) -> None:
    w, _ = ends
    name = f"u{uuid.uuid4().hex[:8]}"
    client, csrf = w.login("sam")
    with closing(client):
        made = client.post("/api/users", json={"name": name, "role": "auditor", "password": "a long password"},
                           headers={"x-csrf-token": csrf})  # fmt: skip
        assert made.status_code == 201, made.text
        assert name in [u["name"] for u in client.get("/api/users").json()["users"]]
        new_client, _ = w.login(name, "a long password")
        with closing(new_client):
            assert new_client.get("/api/whoami").json()["role"] == "auditor"
        assert client.delete(f"/api/users/{name}", headers={"x-csrf-token": csrf}).status_code == 200
    actions = [(a["action"], a.get("user"), a.get("by")) for a in w.actions() if a.get("user") == name]
    assert actions == [("user.add", name, "sam"), ("user.remove", name, "sam")]


# -- reading the line and the record ----------------------------------------------------------


def test_status_peers_alarms_and_the_journal(ends: tuple[Side, Side]) -> None:
    w, _ = ends
    with w.as_("auditor") as c:
        status = c.get("/api/status").json()
        (peer,) = status["peers"]
        assert peer["name"] == "moscow" and peer["link"] == "up"
        assert [(p["name"], p["state"], p["active"]) for p in peer["paths"]] == [("primary", "up", True)]
        journal = status["journal"]  # operators see the last check of the record, and when it ran
        assert journal["state"] == "intact" and journal["damage"] == [] and journal["checked_upto"] >= 1
        assert journal["checked_at_ns"] > 0
        peers = c.get("/api/peers").json()["peers"]
        assert [(p["name"], len(p["safety_number"].replace(" ", ""))) for p in peers] == [("moscow", 60)]
        assert isinstance(c.get("/api/alarms").json()["alarms"], list)
        report = c.get("/api/journal/verify").json()
        assert report["ok"] is True and report["entries"] > 0 and report["problems"] == []
        export = c.get("/api/journal/export")
        assert export.headers["content-type"].startswith("application/x-ndjson")
        entries = [json.loads(line) for line in export.text.splitlines()]
        assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
        tail = c.get("/api/journal/export", params={"from": len(entries)}).text.splitlines()
        assert [json.loads(line)["seq"] for line in tail][:1] == [len(entries)]
    console, _ = w.login("audrey")
    try:
        bar = console.get("/fragments/status").text  # the console's status bar says it too
        assert "Journal intact" in bar and f"checked up to entry {journal['checked_upto']}" in bar
    finally:
        console.close()


def test_events_stream_tells_a_page_about_a_new_message_at_once(ends: tuple[Side, Side]) -> None:
    w, m = ends
    headers = {"authorization": f"Bearer {m.token('operator')}"}
    with httpx.stream("GET", f"{m.url}/api/events", headers=headers, timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        sent_at = time.monotonic()
        message_id = send(w, subject="live")
        deadline = sent_at + 5
        event = None
        for line in lines:
            if line == "event: received":
                event = json.loads(next(lines).removeprefix("data: "))
                if event["id"] == message_id:
                    break
            assert time.monotonic() < deadline, "no 'received' event within 5 s"
        assert event is not None and event["id"] == message_id and event["peer"] == "washington"


def test_events_stream_ends_once_its_token_is_revoked(ends: tuple[Side, Side]) -> None:
    _, m = ends
    token = m.t.create_token("auditor")
    token_id = token.split("_")[1]
    with httpx.stream("GET", f"{m.url}/api/events", headers={"authorization": f"Bearer {token}"}, timeout=10) as s:
        lines = s.iter_lines()
        assert next(lines).startswith("retry:")
        m.t.cli("token", "revoke", token_id)
        revoked_at = time.monotonic()
        for line in lines:
            if line == "event: expired":
                assert "revoked" in json.loads(next(lines).removeprefix("data: "))["error"]
                break
        else:
            pytest.fail("the stream ended without saying why")
        assert time.monotonic() - revoked_at < 5, "the revoked token kept its stream"
