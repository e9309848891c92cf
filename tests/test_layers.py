"""The import rule of docs/design.md ("The tree") holds, and would catch a wrong import.

import-linter reads its contracts from pyproject.toml. The second test copies the
package, adds imports a careless change might add, and shows the rule refuses them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(cwd: Path, src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_tree_keeps_its_layers() -> None:
    r = _lint(ROOT, ROOT / "src")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "BROKEN" not in r.stdout


def test_a_lower_layer_importing_a_higher_one_or_the_core_doing_io_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "src" / "hotline"
    shutil.copytree(ROOT / "src" / "hotline", copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    model = tmp_path / "src" / "hotline" / "core" / "model.py"
    model.write_text(model.read_text() + "\nimport hotline.engine.engine  # noqa\n")
    wire = tmp_path / "src" / "hotline" / "core" / "wire.py"
    wire.write_text(wire.read_text() + "\nimport sqlite3  # noqa\n")
    terminal = tmp_path / "src" / "hotline" / "terminal" / "daemon.py"
    terminal.write_text(terminal.read_text() + "\nimport hotline.web  # noqa\n")
    r = _lint(tmp_path, tmp_path / "src")
    assert r.returncode != 0
    assert "hotline.core.model -> hotline.engine.engine" in r.stdout
    assert "hotline.core.wire -> sqlite3" in r.stdout
    assert "hotline.terminal.daemon -> hotline.web" in r.stdout
