"""bench/scale_out.py at a small size, run as its own process like a developer runs it:
both runs complete over every contact and the speed-up line is printed. No time is
asserted (on 2 shared cores the speed-up may be below 1)."""

from __future__ import annotations

import re

from tests.bench_runner import refused, run_bench


def test_scale_out_prints_both_runs_and_the_speed_up() -> None:
    out = run_bench("scale_out.py", "--contacts", "2000")
    assert re.search(r"unsharded, 1 worker process: 2,000 contacts, .* contacts/s", out), out
    assert re.search(r"shards = 2, 2 worker processes: 2,000 contacts, .* contacts/s", out), out
    assert re.search(r"speed-up with 2 shards on 2 worker processes: \d+\.\d\dx", out), out


def test_scale_out_refuses_bad_sizes() -> None:
    assert "--contacts and --rounds must be at least 1" in refused(
        "scale_out.py", "--contacts", "0"
    )
