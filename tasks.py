#!/usr/bin/env python3
"""One entry point for a fresh machine (only Python 3.11+ needed).

    python3 tasks.py demo    # set up .venv, start the embedded stack, run the demo
    python3 tasks.py test    # set up .venv (and Debian's chromium), run the whole test suite
    python3 tasks.py setup   # only create .venv and install csm with its dev extras

Extra arguments after `test` go to pytest; after `demo`, to `csm demo`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".csm-installed"


def _say(message: str) -> None:
    print(f"[tasks] {message}", flush=True)


def setup() -> None:
    """Create .venv and install csm[dev] unless pyproject.toml is unchanged since last time."""
    if sys.version_info < (3, 11):  # noqa: UP036 (this file runs on any python3)
        sys.exit(f"csm needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        _say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    _say("installing csm and its dev extras (first time: about a minute)")
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-e", f"{ROOT}[dev]"], check=True, cwd=ROOT)
    STAMP.write_text(wanted)


def browser() -> None:
    """The browser test drives Debian's chromium: install it when we may (root, apt)."""
    import shutil

    if shutil.which("chromium") or shutil.which("chromium-browser"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        _say("installing Debian's chromium for the browser test (apt-get)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    else:
        _say("no chromium found: the browser test will fail; install it (apt-get install chromium)")


def _exec(argv: list[str]) -> None:
    os.chdir(ROOT)
    sys.stdout.flush()
    os.execv(argv[0], argv)


def main() -> None:
    task, *rest = sys.argv[1:] or ["--help"]
    if task not in {"setup", "demo", "test"}:
        print(__doc__)
        sys.exit(0 if task in {"-h", "--help"} else 2)
    setup()
    if task == "demo":
        _exec([str(BIN / "csm"), "demo", *rest])
    elif task == "test":
        browser()
        _exec([str(BIN / "python"), "-m", "pytest", *rest])


if __name__ == "__main__":
    main()
