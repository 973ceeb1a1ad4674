"""Workflow history events per day run and per pass, for lists of growing size.

For each size, a synthetic list of that many contacts is worked by two
sub-campaigns, each to the end of its day (contact policy checks on): one with
a single voice pass, one with three passes (voice; sms to those not reached;
voice again to those whose text failed). Prints the events of each day run's
history, the events one more pass adds ((3-pass - 1-pass) / 2) and the
history's size in bytes, then whether the event counts are flat: the same at
every size (invariant 5, "history stays small").

    python bench/history_events.py --sizes 1000,100000,1000000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stack import EVERY_DAY, BenchStack, bench_stack, task_queue, with_morning_zone
from csm.campaigns import create_campaign
from csm.control import start_sub_campaign
from csm.exit import run_and_exit
from csm.strategy import load_strategy
from csm.synthetic import create_synthetic_list
from workflows.subcampaign import SubCampaignWorkflow

ONE_PASS = f"""
[[passes]]
name = "first call"
channel = "voice"
allowed_days = {EVERY_DAY}
"""
THREE_PASSES = f"""
[response_groups.reached]
codes = ["delivered_person", "success"]

[[passes]]
name = "first call"
channel = "voice"
allowed_days = {EVERY_DAY}

[[passes]]
name = "text the rest"
channel = "sms"
filter = "not ever('reached')"
allowed_days = {EVERY_DAY}

[[passes]]
name = "call failed texts"
channel = "voice"
source = "previous"
filter = "last_result = 'failed'"
allowed_days = {EVERY_DAY}
"""
#: How often a long day run prints its progress.
PROGRESS_EVERY = 15.0


def parse_sizes(text: str) -> list[int]:
    """`1000,100000` → [1000, 100000]; a clear error for anything else."""
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes takes list sizes separated by commas, e.g. 1000,100000; got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--sizes must list sizes of at least 1; got {text!r}")
    return sizes


async def day_run(stack: BenchStack, campaign: str, list_name: str) -> tuple[int, int, int]:
    """Work one sub-campaign day to its end; (history events, history bytes, passes)."""
    queue = task_queue("history")
    async with stack.worker(queue):
        launched = await start_sub_campaign(
            stack.client, stack.engine, campaign=campaign, list_name=list_name, task_queue=queue
        )
        started = time.monotonic()
        result = asyncio.ensure_future(launched.handle.result())
        while True:
            done, _ = await asyncio.wait({result}, timeout=PROGRESS_EVERY)
            if done:
                break
            progress = await launched.handle.query(SubCampaignWorkflow.progress)
            print(
                f"  … {campaign}: {time.monotonic() - started:.0f}s, passes done "
                f"{progress.get('passes_done', 0)} of {progress['passes']}",
                flush=True,
            )
        summary = await result
        plan = await launched.handle.query(SubCampaignWorkflow.plan_query)
    statuses = [p.status.value for p in plan.passes]
    if summary.state != "completed" or any(status != "done" for status in statuses):
        raise SystemExit(f"{campaign} did not complete its day: {summary.state}, {statuses}")
    history = await launched.handle.fetch_history()
    size = sum(event.ByteSize() for event in history.events)
    selected = ", ".join(f"{p.counts.selected:,}" for p in plan.passes if p.counts)
    print(
        f"  {campaign}: {len(history.events)} events, {size:,} bytes of history, "
        f"passes selected {selected} ({time.monotonic() - started:.1f}s)",
        flush=True,
    )
    return len(history.events), size, len(plan.passes)


async def run(sizes: list[int]) -> None:
    async with bench_stack() as stack:
        one_text, three_text = with_morning_zone(ONE_PASS), with_morning_zone(THREE_PASSES)
        one_pass, three_passes = load_strategy(one_text), load_strategy(three_text)
        figures: list[tuple[int, int, int]] = []
        for size in sizes:
            list_name = f"history-{size}"
            started = time.perf_counter()
            await create_synthetic_list(stack.engine, list_name, contacts=size, seed=11)
            print(
                f"size {size:,}: list created in {time.perf_counter() - started:.1f}s",
                flush=True,
            )
            await create_campaign(stack.engine, f"one-{size}", one_pass, one_text)
            await create_campaign(stack.engine, f"three-{size}", three_passes, three_text)
            one, one_bytes, _ = await day_run(stack, f"one-{size}", list_name)
            three, three_bytes, passes = await day_run(stack, f"three-{size}", list_name)
            per_pass = (three - one) / (passes - 1)
            figures.append((size, one, three))
            print(
                f"history events at {size:,} contacts: day run with 1 pass {one}, "
                f"with 3 passes {three}; per further pass {per_pass:g} "
                f"(history {one_bytes:,} / {three_bytes:,} bytes)",
                flush=True,
            )
        flat = len({(one, three) for _, one, three in figures}) == 1
        print(
            "history events flat across "
            + " / ".join(f"{size:,}" for size, _, _ in figures)
            + f" contacts: {'yes' if flat else 'NO'}",
            flush=True,
        )
        if not flat:
            raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=[1_000, 100_000, 1_000_000],
        help="list sizes separated by commas (default 1000,100000,1000000)",
    )
    args = parser.parse_args()
    run_and_exit(lambda: asyncio.run(run(args.sizes)))


if __name__ == "__main__":
    main()
