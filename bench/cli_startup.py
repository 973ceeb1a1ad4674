"""How long `csm` takes to start: `--help`, `status --help`, and a real `status SUB`.

Each command runs as its own process, as a user runs it, `--runs` times after
`--warmup` runs that are not counted; the whole process is timed (interpreter
start, imports, the work, exit). Prints min / median / max wall seconds per
command: quote the median. Issue 13's goals on the project's machine: `csm --help`
<= 0.4 s, `csm status` <= 0.7 s.

    python bench/cli_startup.py                      # status against nothing: fails fast
    python bench/cli_startup.py --sub march --runs 20   # status of a real sub-campaign

Without `--sub`, `csm status` reads a sub-campaign on a PostgreSQL port where
nothing listens, so it pays for every import of a real status and then fails
at once on the connection (exit 1). With `--sub`, it reads that sub-campaign on
the stack the environment points at (CSM_TEMPORAL_ADDRESS, DATABASE_URL...);
a worker must serve its task queue.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CSM = [sys.executable, "-m", "csm.cli"]
#: Where nothing listens: a status that fails on its first connection.
NOWHERE = {
    "DATABASE_URL": "postgresql://csm@127.0.0.1:9/csm",
    "CSM_TEMPORAL_ADDRESS": "127.0.0.1:9",
}


def timed(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds of one whole run of `csm args`, and its exit code."""
    started = time.perf_counter()
    done = subprocess.run(
        [*CSM, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120
    )
    return time.perf_counter() - started, done.returncode


def measure(label: str, args: list[str], env: dict[str, str], runs: int, warmup: int) -> None:
    for _ in range(warmup):
        timed(args, env)
    seconds, codes = [], set()
    for _ in range(runs):
        wall, code = timed(args, env)
        seconds.append(wall)
        codes.add(code)
    exits = ",".join(str(code) for code in sorted(codes))
    print(
        f"{label:<34} wall s  min {min(seconds):.3f}  median {statistics.median(seconds):.3f}"
        f"  max {max(seconds):.3f}  ({runs} runs, exit {exits})",
        flush=True,
    )


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=positive, default=10, help="counted runs per command")
    parser.add_argument("--warmup", type=int, default=1, help="runs first, not counted")
    parser.add_argument(
        "--sub", help="a sub-campaign on the running stack (default: a status that fails fast)"
    )
    args = parser.parse_args()
    env = {**os.environ, "COLUMNS": "80"}
    measure("csm --help", ["--help"], env, args.runs, args.warmup)
    measure("csm status --help", ["status", "--help"], env, args.runs, args.warmup)
    if args.sub:
        measure("csm status SUB", ["status", args.sub], env, args.runs, args.warmup)
    else:
        nowhere = {**env, **NOWHERE}
        label = "csm status SUB (no stack: fails)"
        measure(label, ["status", "x"], nowhere, args.runs, args.warmup)


if __name__ == "__main__":
    main()
