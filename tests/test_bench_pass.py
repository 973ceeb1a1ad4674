"""bench/pass_throughput.py runs end to end at a small size and prints its figures.

No time is asserted: the bench measures, this test only holds it to printing the
ceiling, the pass's rate and their ratio (so the issue-8 figures stay reproducible).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"[\d,]+"


async def test_the_pass_bench_prints_ours_the_ceiling_and_the_ratio(database_url: str) -> None:
    env = dict(os.environ)
    env["DATABASE_URL"] = os.environ.get("DATABASE_URL") or database_url
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "pass_throughput.py"),
        "--contacts",
        "3000",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    text = out.decode()
    assert process.returncode == 0, text
    assert re.search(rf"ceiling \(bare COPY loop, batches of {NUMBER}\): {NUMBER} rows/s", text), (
        text
    )
    assert re.search(rf"ours, checks on: {NUMBER} contacts/s, {NUMBER} rows/s", text), text
    ratio = re.search(r"ratio to the ceiling: contacts/s (\d+\.\d+), rows/s (\d+\.\d+)", text)
    assert ratio is not None, text
    assert float(ratio[1]) > 0 and float(ratio[2]) > 0
    # every contact was handled, in both passes, and the day run's history stayed small
    assert text.count("voice pass, checks") == 2, text
    assert "3,000 selected" in text, text
    events = [int(n) for n in re.findall(r"history: (\d+) events", text)]
    assert events and all(n < 100 for n in events), text
