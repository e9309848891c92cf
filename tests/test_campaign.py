"""The fuzz and crash campaign (tools/fuzz.py, tools/soak.py), in a short version that keeps the
tools from rotting, and the regressions the campaign found."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_port
from hotline.core.errors import RemoteProtocolError
from hotline.core.wire import MAX_NESTING, nested_deeper_than, pack, unpack
from hotline.crypto.identity import Identity
from hotline.desk.records import DESK_CONTEXT, open_record
from hotline.home.forms import load_forms

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"


def test_fuzz_every_target_briefly(tmp_path: Path) -> None:
    """2,000 inputs a target under the fuzzer, from the seed corpus: no crash."""
    run = subprocess.run(
        [sys.executable, str(TOOLS / "fuzz.py"), "--target", "all", "--count", "2000", "--seed", "7", "--jobs", "2",
         "--crash-dir", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr[-5000:]
    summaries = json.loads(run.stdout[run.stdout.index("\n[") :])
    assert [s["target"] for s in summaries] == [
        "wire",
        "protocol",
        "envelope",
        "receipt",
        "desk-record",
        "form",
        "key-statement",
    ]
    assert all(s["inputs"] == 2000 and s["crashes"] == [] for s in summaries), summaries
    assert list(tmp_path.iterdir()) == []


def test_the_fallback_engine_runs(tmp_path: Path) -> None:
    """Without atheris (other platforms, newer Pythons) the random mutation loop stands in."""
    run = subprocess.run(
        [sys.executable, str(TOOLS / "fuzz.py"), "--target", "wire", "--count", "500", "--engine", "mutate",
         "--crash-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0 and "500 inputs" in run.stdout and "0 crashes" in run.stdout, run.stdout + run.stderr


def test_the_seed_corpus_is_small_and_decodes() -> None:
    """The corpus in the repo (made by `tools/fuzz.py --make-corpus`) is small, and every seed runs
    through its own target without a crash."""
    sys.path.insert(0, str(TOOLS))
    try:
        import fuzz_targets
    finally:
        sys.path.remove(str(TOOLS))
    for target, (harness, _) in fuzz_targets.TARGETS.items():
        seeds = sorted((TOOLS / "corpus" / target).iterdir())
        assert 5 <= len(seeds) <= 60 and all(p.stat().st_size <= 4096 for p in seeds), target
        for path in seeds:
            with contextlib.suppress(RemoteProtocolError):  # a seed may be refused; it must not crash
                harness(path.read_bytes())


@pytest.mark.e2e
def test_soak_two_cycles_briefly() -> None:
    """Two real terminals, each SIGKILLed once mid-stream, the link cut once: nothing lost."""
    run = subprocess.run(
        [sys.executable, str(TOOLS / "soak.py"), "--cycles", "2", "--messages", "50", "--cut-every", "2",
         "--port-base", str(free_port()), "--json"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr[-5000:]
    result = json.loads(run.stdout[run.stdout.index("\n{") :])
    assert (result["sent"], result["delivered"], result["lost"], result["duplicated"], result["out_of_order"]) == (
        200,
        200,
        0,
        0,
        0,
    )
    assert result["washington_verify"] == result["moscow_verify"] == "OK"
    assert result["washington_killed"] == result["moscow_killed"] == 1 and result["cuts"] == 1


# -- regressions found by the campaign -----------------------------------------------------------


def _nested(value: object, depth: int) -> object:
    for _ in range(depth):
        value = [value]
    return value


def test_unpack_refuses_deep_nesting() -> None:
    """msgpack decodes up to 1024 levels, deeper than Python code reading the value can recurse
    (repr in an error message, pack, json.dumps): the decoder now refuses past MAX_NESTING."""
    assert unpack(pack({"a": _nested(1, MAX_NESTING - 1)})) == {"a": _nested(1, MAX_NESTING - 1)}
    for depth in (MAX_NESTING, 500, 1023):
        with pytest.raises(RemoteProtocolError, match="nested more than"):
            unpack(pack({"a": _nested(1, depth)}) if depth < 400 else b"\x81\xa1a" + b"\x91" * depth + b"\x01")
    assert nested_deeper_than(_nested(0, 10**5), 3) and not nested_deeper_than([[1], {"a": [2]}], 3)


def test_a_deeply_nested_desk_record_is_refused_not_a_crash() -> None:
    """Found by tools/fuzz.py (desk-record): a record signed by the peer with 500 levels in a
    field made open_record raise RecursionError (repr of the value, or pack of form data) instead
    of refusing it — an exception the engine does not catch."""
    moscow = Identity.generate("moscow")
    body = (b"\x89\xa2at\x00\xa6author\xa6moscow\xa1f\x80\xa2id\xa1x\xa7lamport\x01\xa4peer\xaawashington"
            b"\xa6thread\xa1x\xa4type" + b"\x91" * 500 + b"\x00\xa1v\x01")  # fmt: skip
    signed = pack({"b": body, "s": moscow.sign(DESK_CONTEXT, body)})
    with pytest.raises(RemoteProtocolError):
        open_record(signed, moscow.public_key)


def test_a_deeply_nested_form_is_a_field_error_not_a_crash() -> None:
    """Found by tools/fuzz.py (form): FormType.validate raised RecursionError (json.dumps) on a
    form nested ~1000 deep; it now names the problem like any other field error, in the reader's
    language."""
    form = load_forms(None).types["exercise"]
    deep = {"exercise": _nested("NAVAL", 990)}
    assert [e.text for e in form.validate(deep)] == [f"{form.title('en')}: nested too deeply"]
    assert "вложенность" in form.validate(deep, "ru")[0].text
    assert form.validate({"exercise": _nested("NAVAL", 3)})  # shallow: the schema's own errors


def test_a_form_with_a_key_that_is_not_text_is_a_field_error_not_a_crash() -> None:
    """Found by tools/fuzz.py (form, after the merges of 2026-12-04): a peer's signed notification may
    carry msgpack data with a bytes map key, which json.dumps in FormType.validate refused with
    TypeError — not a project error, so it escaped the receiver's checks."""
    form = load_forms(None).types["exercise"]
    for data in ({b"exercise": "NAVAL"}, {"exercise": {b"kind": "NAVAL"}}):
        assert [e.text for e in form.validate(data)] == ["the form's data is not JSON: every map key must be text"]
