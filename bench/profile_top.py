"""Where a terminal's time goes: the top functions of a py-spy profile, by self and inclusive share.

Reads the collapsed stacks ``py-spy record --format raw`` writes (one line per stack:
``frame;frame;... COUNT``; ``bench/_common.py`` writes them for each terminal when
HOTLINE_BENCH_PROFILE=DIR is set) and prints, for each file, the functions that take
the most samples: *self* (the function itself was running) and *inclusive* (it was on
the stack). Samples are of the busy terminal only (py-spy leaves idle waits out).

    HOTLINE_BENCH_PROFILE=/tmp/prof .venv/bin/python bench/throughput.py
    .venv/bin/python bench/profile_top.py /tmp/prof/washington.txt /tmp/prof/moscow.txt

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def frame_name(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``module.func``; anything else stays as it is."""
    found = _FRAME.match(frame.strip())
    if found is None:
        return frame.strip()
    module = Path(found["file"]).stem
    return f"{module}.{found['func']}"


def summarise(path: Path, under: str = "") -> tuple[int, Counter[str], Counter[str], Counter[str]]:
    """Busy samples, then samples by function: self, inclusive, and (with ``under``) by the callee
    of the outermost ``under`` frame of each stack ("<self>" when it was ``under`` itself)."""
    total, own, inclusive, callees = 0, Counter[str](), Counter[str](), Counter[str]()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_name(f) for f in stack.split(";") if f.strip()]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
        if under in frames:
            at = frames.index(under)
            callees[frames[at + 1] if at + 1 < len(frames) else "<self>"] += count
    return total, own, inclusive, callees


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="", help="only functions whose name contains this")
    parser.add_argument("--under", default="", help="also: the time of this function by its callees")
    args = parser.parse_args()
    for path in args.files:
        total, own, inclusive, callees = summarise(path, args.under)
        print(f"== {path} ({total} busy samples)")
        tables = [("self", own), ("inclusive", inclusive)] + ([(f"under {args.under}", callees)] if args.under else [])
        for title, counter in tables:
            print(f"-- {title}")
            shown = [(n, c) for n, c in counter.most_common() if args.match in n][: args.top]
            for name, count in shown:
                print(f"{100 * count / max(total, 1):6.1f} %  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
