#!/usr/bin/env python3
"""Set up a virtual environment for spela-hw and run the main job or the tests.

    python3 bootstrap.py run [spela-hw args...]   # the main job (defaults: bundled data)
    python3 bootstrap.py test [pytest args...]    # the whole test suite

Needs only Python 3.11+. The environment lives in ``.venv`` beside this file and is reinstalled
only when ``pyproject.toml`` changes. The newest Python >= 3.11 found (``python3.13``,
``python3.12``, pyenv's versions, then the interpreter running this script) is used, because the
spiking backend (Brian2 2.11) needs 3.13; on 3.11 Brian2 2.9 with numpy < 2.4 is installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
# SPELA_HW_EXTRAS adds extras, e.g. "nir-sim" (a NIR-consuming simulator, ~0.7 GB) as CI does.
EXTRAS = ",".join(filter(None, ["dev,brian2,dask,nir", os.environ.get("SPELA_HW_EXTRAS", "")]))


def _version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
        major, minor = map(int, out.stdout.split())
        return major, minor
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def find_python() -> str:
    candidates = [shutil.which(n) for n in ("python3.13", "python3.12")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for minor in ("3.13", "3.12"):
        candidates += sorted(str(p) for p in pyenv_root.glob(f"versions/{minor}*/bin/python3"))
    candidates.append(sys.executable)
    best, best_v = None, (0, 0)
    for c in candidates:
        v = _version(c) if c else None
        if v and v >= (3, 11) and v > best_v:
            best, best_v = c, v
    if best is None:
        sys.exit("spela-hw needs Python 3.11 or newer")
    return best


def ensure_venv() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        python = find_python()
        print(f"[bootstrap] creating .venv with {python}", file=sys.stderr)
        subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    stamp = VENV / ".bootstrap-stamp"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + EXTRAS.encode()).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        print("[bootstrap] installing spela-hw and its dependencies (about a minute the first time)", file=sys.stderr)
        pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.run(pip + ["--upgrade", "pip"], check=True)
        subprocess.run(pip + ["-e", f"{ROOT}[{EXTRAS}]"], check=True)
        stamp.write_text(digest)
    return py


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test"):
        print(__doc__, file=sys.stderr)
        return 2
    py = ensure_venv()
    if argv[0] == "test":
        cmd = [str(py), "-m", "pytest", *argv[1:]]
    else:
        cmd = [str(VENV / "bin" / "spela-hw"), *(argv[1:] or ["report"])]
    return subprocess.run(cmd, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
