"""How long `csm` takes to start: `--help`, `status --help`, and a real `status SUB`.

Each command runs as its own process, as a user runs it, `--runs` times after
`--warmup` runs that are not counted; the whole process is timed (interpreter
start, imports, the work, exit). Prints min / median / max wall seconds per
command: quote the median. Issue 13's goals on the project's machine: `csm --help`
<= 0.4 s, `csm status` <= 0.7 s.

    python bench/cli_startup.py                      # status against nothing: fails fast
    python bench/cli_startup.py --sub march --runs 20   # status of a real sub-campaign
    python bench/cli_startup.py --sub march --against /tmp/old   # vs another checkout

`--against DIR` runs each command from this checkout and from DIR (another
checkout of csm, e.g. `git archive REV | tar -x -C DIR`) in turns, A B A B ...,
and prints both medians and the median of the per-pair ratios: on a machine
shared with other work the load moves between two series run one after the
other, much less between the two runs of a pair.

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
from pathlib import Path

CSM = [sys.executable, "-m", "csm.cli"]
#: Where nothing listens: a status that fails on its first connection.
NOWHERE = {
    "DATABASE_URL": "postgresql://csm@127.0.0.1:9/csm",
    "CSM_TEMPORAL_ADDRESS": "127.0.0.1:9",
}


def timed(args: list[str], env: dict[str, str], cwd: str | None = None) -> tuple[float, int]:
    """Wall seconds of one whole run of `csm args`, and its exit code.

    `cwd`: run the checkout there (`python -m` imports from the working directory first).
    """
    started = time.perf_counter()
    done = subprocess.run(
        [*CSM, *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
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


def compare(label: str, args: list[str], env: dict[str, str], other: str, runs: int) -> None:
    """This checkout (A) and `other` (B) in turns; both medians and the median A/B ratio."""
    here = str(Path(__file__).resolve().parent.parent)
    timed(args, env, here), timed(args, env, other)  # warm both
    ours, theirs, ratios = [], [], []
    for _ in range(runs):
        a, b = timed(args, env, here)[0], timed(args, env, other)[0]
        ours.append(a)
        theirs.append(b)
        ratios.append(a / b)
    print(
        f"{label:<34} A {statistics.median(ours):.3f} s  B {statistics.median(theirs):.3f} s"
        f"  A/B {statistics.median(ratios):.2f}  ({runs} pairs; A {here}, B {other})",
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
    parser.add_argument(
        "--against", metavar="DIR", help="another checkout: run both in turns, print the ratio"
    )
    args = parser.parse_args()
    env = {**os.environ, "COLUMNS": "80"}
    commands = [("csm --help", ["--help"], env), ("csm status --help", ["status", "--help"], env)]
    if args.sub:
        commands.append(("csm status SUB", ["status", args.sub], env))
    else:
        commands.append(("csm status SUB (no stack: fails)", ["status", "x"], {**env, **NOWHERE}))
    for label, command, environment in commands:
        if args.against:
            compare(label, command, environment, args.against, args.runs)
        else:
            measure(label, command, environment, args.runs, args.warmup)


if __name__ == "__main__":
    main()
