"""The standing fuzz campaign: Hotline's decoders under a coverage-guided fuzzer.

    python tools/fuzz.py --target wire|protocol|envelope|receipt|desk-record|form|all --count N [--seed S]

Each target (``tools/fuzz_targets.py``) runs in a worker process of its own under atheris
(libFuzzer's engine for Python: it instruments the ``hotline`` package, and ``jsonschema`` for the
form target, and keeps the inputs that reach new code) starting from the seed corpus in
``tools/corpus/<target>/``. Where atheris is not installed (it ships wheels for CPython on Linux
and macOS), ``--engine mutate`` — the default then — mutates the seed corpus at random instead,
without coverage feedback.

A *crash* is any exception other than a ``HotlineError`` (the decoders' documented refusal), or a
disagreement between two decodings of the same bytes. Each distinct crash (by exception type and
where it was raised) is printed with its traceback and its input saved under
``tools/corpus/crashes/`` (``--crash-dir``); the run goes on. The exit status is 1 if anything
crashed. ``--make-corpus`` rewrites the seed corpus from the real code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
TARGETS = ["wire", "protocol", "envelope", "receipt", "desk-record", "form", "key-statement"]
MAX_LEN = 4096


def _have_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


# -- the worker: one target, one engine, in this process -----------------------------------------


class Recorder:
    """Counts inputs, keeps crashes (one file per distinct crash), and ends the run at ``count``."""

    def __init__(self, target: str, count: int, crash_dir: Path, harness: Callable[[bytes], None]) -> None:
        from hotline.core.errors import HotlineError

        self.target = target
        self.count = count
        self.crash_dir = crash_dir
        self.harness = harness
        self.allowed = HotlineError
        self.inputs = 0
        self.crashes: dict[str, dict[str, Any]] = {}
        self.started = time.monotonic()
        self.work: Path | None = None  # the fuzzer's own corpus of new finds, removed at the end

    def run_one(self, data: bytes) -> None:
        self.inputs += 1
        try:
            self.harness(data)
        except self.allowed:
            pass
        except Exception as e:
            self._crash(data, e)
        if self.inputs >= self.count:
            self.finish()

    def _crash(self, data: bytes, error: Exception) -> None:
        frames = traceback.extract_tb(error.__traceback__)
        where = next((f for f in reversed(frames) if "/hotline/" in f.filename), frames[-1] if frames else None)
        place = f"{Path(where.filename).name}:{where.lineno}" if where else "?"
        signature = f"{type(error).__name__} at {place}"
        known = self.crashes.get(signature)
        if known is not None:
            known["count"] += 1
            return
        digest = hashlib.sha256(data).hexdigest()[:16]
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        path = self.crash_dir / f"{self.target}-{digest}.bin"
        path.write_bytes(data)
        text = "".join(traceback.format_exception(error))
        path.with_suffix(".txt").write_text(f"{signature}\n{len(data)} bytes: {data[:200]!r}\n\n{text}")
        self.crashes[signature] = {"signature": signature, "input": str(path), "count": 1, "traceback": text}
        print(f"CRASH {self.target}: {signature}; input saved to {path}\n{text}", file=sys.stderr, flush=True)

    def finish(self) -> None:
        seconds = time.monotonic() - self.started
        summary = {"target": self.target, "inputs": self.inputs, "seconds": round(seconds, 3),
                   "crashes": list(self.crashes.values())}  # fmt: skip
        sys.stdout.write("SUMMARY " + json.dumps(summary) + "\n")
        sys.stdout.flush()
        sys.stderr.flush()
        if self.work is not None:
            shutil.rmtree(self.work, ignore_errors=True)
        os._exit(0)  # libFuzzer never returns from Fuzz(); neither does the mutation loop


def _import_targets(engine: str, target: str) -> Any:
    if engine == "atheris":
        import atheris

        include = ["hotline", "fuzz_targets"] + (["jsonschema"] if target == "form" else [])
        with atheris.instrument_imports(include=include):
            import fuzz_targets
    else:
        import fuzz_targets
    return fuzz_targets


def worker(target: str, count: int, seed: int, engine: str, crash_dir: Path) -> None:
    targets = _import_targets(engine, target)
    harness, _ = targets.TARGETS[target]
    recorder = Recorder(target, count, crash_dir, harness)
    seeds = sorted((CORPUS / target).glob("*"))
    if engine == "atheris":
        import atheris

        work = Path(tempfile.mkdtemp(prefix=f"hotline-fuzz-{target}-"))  # new finds go here, not into the repo
        recorder.work = work
        args = [sys.argv[0], f"-seed={seed}", f"-max_len={MAX_LEN}", f"-runs={count * 4 + 10_000}", "-timeout=30",
                "-rss_limit_mb=4096", "-print_final_stats=0", str(work), str(CORPUS / target)]  # fmt: skip
        atheris.Setup(args, recorder.run_one)
        try:
            atheris.Fuzz()
        finally:
            shutil.rmtree(work, ignore_errors=True)
    corpus = [p.read_bytes() for p in seeds] or [b""]
    rng = random.Random(seed)
    for data in corpus:
        recorder.run_one(data)
    while True:
        recorder.run_one(mutate(rng.choice(corpus), corpus, rng))


_INTERESTING = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xCC, 0xCD, 0xCE, 0xCF, 0xD0, 0xD9,
                0xDA, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF, 0x90, 0x9F, 0x80, 0x8F, 0xA0, 0xBF, 0xE0]  # fmt: skip


def mutate(data: bytes, corpus: list[bytes], rng: random.Random) -> bytes:
    """The fallback engine's mutator: a few byte-level edits, msgpack markers favoured."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(9)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(pos, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            out[min(pos, len(out) - 1)] = rng.choice(_INTERESTING)
        elif op == 2:
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3 and out:
            del out[pos : pos + rng.randint(1, 16)]
        elif op == 4 and out:
            start = rng.randrange(len(out))
            out[pos:pos] = out[start : start + rng.randint(1, 32)]
        elif op == 5:
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            out = out[:pos] + bytearray(other[cut:])
        elif op == 6:
            del out[pos:]
        elif op == 7 and len(out) >= 4:
            at = rng.randrange(len(out) - 3)
            out[at : at + 4] = rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, len(out), 2**31]).to_bytes(4, "big")
        else:
            out += bytes([rng.choice(_INTERESTING)])
    return bytes(out[:MAX_LEN])


# -- the driver: a worker per target, and the report ---------------------------------------------


def run_target(target: str, count: int, seed: int, engine: str, crash_dir: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--target", target, "--count", str(count),
           "--seed", str(seed), "--engine", engine, "--crash-dir", str(crash_dir)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("SUMMARY ")), None)
    crash_lines = [x for x in proc.stderr.splitlines() if x.startswith("CRASH ")]
    if line is None:
        # The worker died (a libFuzzer timeout or memory limit, or a crash in C): that is a crash too.
        tail = "\n".join(proc.stderr.splitlines()[-30:])
        return {"target": target, "inputs": 0, "seconds": 0.0, "died": f"worker exited {proc.returncode}:\n{tail}",
                "crashes": [{"signature": "worker died", "count": 1, "traceback": tail, "input": "-"}]}  # fmt: skip
    summary: dict[str, Any] = json.loads(line[len("SUMMARY ") :])
    summary["engine"] = engine
    if engine == "atheris":
        cov = [int(m) for m in re.findall(r"\bcov: (\d+)", proc.stderr)]
        inited = re.search(r"INITED cov: (\d+)", proc.stderr)
        summary["coverage"] = {
            "after_seeds": int(inited.group(1)) if inited else None,
            "final": max(cov) if cov else None,
            "new_inputs": len(re.findall(r"\tNEW ", proc.stderr)),
        }
    for crash in summary["crashes"]:
        crash.setdefault("line", next((x for x in crash_lines if crash["signature"] in x), ""))
    return summary


def report(summary: dict[str, Any]) -> str:
    inputs, seconds = summary["inputs"], summary["seconds"]
    rate = inputs / seconds if seconds else 0.0
    text = f"{summary['target']:<12} {inputs:>10,} inputs in {seconds:8.1f} s ({rate:>8,.0f}/s)"
    cov = summary.get("coverage")
    if cov:
        text += f", coverage {cov['after_seeds']} -> {cov['final']} edges ({cov['new_inputs']} new inputs)"
    crashes = summary["crashes"]
    text += f", crashes: {sum(c['count'] for c in crashes)} ({len(crashes)} distinct)"
    if summary.get("died"):
        text += f"\n  the worker died: {summary['died']}"
    for crash in crashes:
        text += f"\n  CRASH {crash['signature']} x{crash['count']}: {crash['input']}"
    return text


def make_corpus() -> None:
    """Write the seed corpus from the real code (``tools/corpus/<target>/``)."""
    import fuzz_targets

    for target, (_, seeds) in fuzz_targets.TARGETS.items():
        folder = CORPUS / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for i, data in enumerate(seeds()):
            (folder / f"seed-{i:03d}").write_bytes(data)
        print(f"{target}: {len(seeds())} seeds in {folder}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    parser.add_argument("--count", type=int, default=10_000, help="inputs to run, per target")
    parser.add_argument("--seed", type=int, default=None, help="the engine's random seed (default: from the clock)")
    parser.add_argument("--engine", choices=["auto", "atheris", "mutate"], default="auto")
    parser.add_argument("--crash-dir", type=Path, default=CORPUS / "crashes")
    parser.add_argument("--jobs", type=int, default=1, help="targets fuzzed at once (a worker process each)")
    parser.add_argument("--json", action="store_true", help="print the summaries as JSON too")
    parser.add_argument("--make-corpus", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.make_corpus:
        make_corpus()
        return 0
    engine = args.engine if args.engine != "auto" else ("atheris" if _have_atheris() else "mutate")
    seed = args.seed if args.seed is not None else int(time.time()) % 2**31
    if args.worker:
        worker(args.target, args.count, seed, engine, args.crash_dir)
        return 0  # not reached
    targets = TARGETS if args.target == "all" else [args.target]
    print(f"fuzzing {', '.join(targets)}: {args.count:,} inputs each, engine {engine}, seed {seed}", flush=True)
    started = time.monotonic()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        runs = [pool.submit(run_target, target, args.count, seed, engine, args.crash_dir) for target in targets]
        summaries = []
        for run in runs:  # reported in the order asked, as each is done
            summary = run.result()
            summaries.append(summary)
            print(report(summary), flush=True)
            for crash in summary["crashes"]:
                print(crash["traceback"], file=sys.stderr)
    total = sum(s["inputs"] for s in summaries)
    crashed = sum(c["count"] for s in summaries for c in s["crashes"])
    print(f"total: {total:,} inputs in {time.monotonic() - started:.1f} s, {crashed} crashes")
    if args.json:
        print(json.dumps(summaries, indent=2))
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
