"""Run a bench/ script as its own process, as a developer does, for the bench smoke tests.

The smoke tests hold the benchmarks to running at a small size and printing their
figures; they never assert a time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench(script: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_bench(script: str, *args: str) -> str:
    """bench/<script> with `args`; its standard output (the test fails on a non-zero exit)."""
    done = bench(script, *args)
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def refused(script: str, *args: str) -> str:
    """bench/<script> with bad `args`: it must exit 2 (a usage error); its standard error."""
    done = bench(script, *args, timeout=60)
    assert done.returncode == 2, f"{script} exited {done.returncode}:\n{done.stderr}"
    return done.stderr
