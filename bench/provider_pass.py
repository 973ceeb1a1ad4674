"""SMS and voice passes through the Twilio adapter and the local carrier, next to a bare
httpx loop in the same run; then the webhook receiver at 500 callbacks/s (issue 15).

The pass side is csm's real one: two sub-campaign workflows on a tuned Temporal dev
server (one SMS pass over a list of `--sms` contacts, one voice pass over another list
of `--calls` contacts, contact policy on with hours "any"), their pass activities in a
worker of this process whose voice and SMS providers are the Twilio adapter
(CSM_VOICE_PROVIDER / CSM_SMS_PROVIDER "twilio"), pointed at the local carrier
(`python -m csm.devstack.carrier`, speed 0: every callback at once, still in order),
which calls back csm's webhook receiver (`csm webhooks`); each attempt is claimed in
provider_attempts, POSTed, and settled from the callbacks the receiver wrote.

The ceiling, after the passes in the same run: a bare httpx loop in this process with
as many lanes as the pass has concurrency. It POSTs the very requests the passes made
(read back from the ledger: same To, From, Body, the same Url / StatusCallback shape
with the same attempt key after another sub-campaign number, so the carrier's world
draws the same outcome for it) to the same carrier, a contact's attempts one after the
other in one lane as the pass does, and waits for each one's final status. Its
callbacks go to a bare sink (bench/callback_sink.py) that only notes the first final
status per key and streams the keys back to the loop: the ceiling is the carrier's
round trip with nothing of csm's in it (no signature check, no database, no polling).
Pointing it at csm's receiver instead would put csm's own costs on both sides and
measure nothing.

Processes: the carrier, the receiver and the sink each run as their own process, as
they do in production (the carrier is somebody else's machine, the receiver its own
service). On this 2-core machine, in-process they would share one interpreter (and its
GIL) with the worker, so every callback the carrier sends and the receiver handles
would be charged to the pass, and the ceiling's loop would share its process with its
sink; as processes the OS spreads the load over both cores, as it does for PostgreSQL
and the dev server. The receiver and the sink run side by side but only one of them
gets traffic at a time.

Checks (the run fails otherwise): every pass attempt key was placed exactly once in the
carrier's record (`GET /_carrier/record`), opted-out texts refused and placed never;
the ledger has no `unknown`, its result for every key is what the carrier's world drew
(so the ledger's counts of success, failed, opted_out, ... equal the carrier's), every
provider_attempts row is settled, the receiver kept no orphan; every ceiling request
was placed once and reached its final status.

Last, bench/webhook_receiver.py runs as a step (its own database and receiver): p50/p99
of signed status callbacks sent on an open-loop schedule at 500/s, and its flat-out rate.

    python bench/provider_pass.py --sms 20000 --calls 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import string
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from bench.stack import bench_servers, task_queue
from csm.campaigns import create_campaign
from csm.compliance.store import set_policy
from csm.control import start_sub_campaign
from csm.devstack.carrier.world import World
from csm.providers.twilio import protocol
from csm.settings import Settings
from csm.strategy import load_strategy
from csm.synthetic import create_synthetic_list
from csm.testing.servers import free_port
from csm.vocabulary import Channel
from worker import build_worker

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-provider-token"
ACCOUNT = "ACbench0000000000000000000000000"
FROM = "+15005550006"
SEED = 11
SMS_TEMPLATE = "Hello $first_name, your balance of $balance is $days_past_due days past due."
VOICE_TEMPLATE = "Hello $first_name, this is a payment reminder about your balance of $balance."
#: The ceiling's keys: the pass's key with this added to its sub-campaign number.
CEILING_OFFSET = 1_000_000


def strategy_text(channel: str, template: str, concurrency: int) -> str:
    return f"""
timezone = "America/Chicago"
[[passes]]
name = "{channel}"
channel = "{channel}"
template = {json.dumps(template)}
[passes.pacing]
concurrency = {concurrency}
"""


# ---- processes --------------------------------------------------------------------------------


@asynccontextmanager
async def process(
    what: str, args: list[str], env: dict[str, str], ready: str
) -> AsyncIterator[int]:
    """Run `args` as a process until the block ends, once `ready` (a URL) answers; its pid."""
    child = await asyncio.create_subprocess_exec(*args, env={**os.environ, **env}, cwd=ROOT)
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                if child.returncode is not None:
                    raise SystemExit(f"the {what} exited {child.returncode} on start")
                try:
                    await http.get(ready)
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                raise SystemExit(f"the {what} did not answer {ready} in 30 s")
        yield child.pid
    finally:
        if child.returncode is None:
            child.terminate()
            try:
                await asyncio.wait_for(child.wait(), 10)
            except TimeoutError:
                child.kill()
        await child.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds each named process spent over a stretch: where a side's time went."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = {name: cpu_seconds(pid) for name, pid in pids.items()}

    def line(self, seconds: float) -> str:
        spent = {n: cpu_seconds(p) - self.start[n] for n, p in self.pids.items()}
        shares = ", ".join(f"{n} {s:.1f}s ({s / seconds:.0%})" for n, s in spent.items())
        return f"  CPU over those {seconds:.1f}s: {shares}"


# ---- the pass side ----------------------------------------------------------------------------


@dataclass
class PassRun:
    channel: Channel
    sub_campaign: int
    contacts: int  # contacts attempted (at least one request to the carrier)
    seconds: float
    results: Counter[str]

    @property
    def rate(self) -> float:
        return self.contacts / self.seconds


async def run_pass(
    env: WorkflowEnvironment, engine: AsyncEngine, settings: Settings, campaign: str
) -> PassRun:
    """Run the campaign's one pass through a sub-campaign workflow on a worker of this process."""
    queue = task_queue("bench-provider")
    async with build_worker(env.client, settings, engine=engine, task_queue=queue):
        launched = await start_sub_campaign(
            env.client, engine, campaign=campaign, list_name=campaign, task_queue=queue
        )
        summary = await launched.handle.result()
    if summary.state != "completed":
        raise SystemExit(f"the {campaign} sub-campaign ended {summary.state}")
    sub = launched.sub_campaign.id
    async with engine.connect() as connection:
        span = await connection.scalar(
            text(
                "SELECT extract(epoch FROM max(updated_at) - min(started_at))"
                " FROM pass_progress WHERE sub_campaign_id = :s"
            ),
            {"s": sub},
        )
        rows = (
            await connection.execute(
                text(
                    "SELECT result, count(*), count(DISTINCT contact_id) FROM attempts"
                    " WHERE sub_campaign_id = :s AND device_id <> 0 GROUP BY result"
                ),
                {"s": sub},
            )
        ).all()
        contacts = await connection.scalar(
            text(
                "SELECT count(DISTINCT contact_id) FROM attempts"
                " WHERE sub_campaign_id = :s AND device_id <> 0"
            ),
            {"s": sub},
        )
    channel = Channel.SMS if campaign == "sms" else Channel.VOICE
    run = PassRun(channel, sub, int(contacts), float(span), Counter({r[0]: r[1] for r in rows}))
    print(
        f"{channel.value} pass (sub-campaign workflow, Twilio adapter → carrier → receiver):"
        f" {run.contacts:,} contacts attempted, {sum(run.results.values()):,} attempts"
        f" {dict(sorted(run.results.items()))} in {run.seconds:.2f}s"
        f" = {run.rate:,.0f} contacts/s",
        flush=True,
    )
    return run


# ---- the ceiling ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    key: str  # the ceiling's key
    form: dict[str, str | list[str]]


async def ceiling_requests(engine: AsyncEngine, run: PassRun, sink: str) -> list[list[Request]]:
    """The pass's requests per contact, in the order it made them, aimed at the sink."""
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT a.day, a.pass_number, a.contact_id, a.device_id, a.try_number,"
                    " d.value, c.attributes::text FROM attempts a"
                    " JOIN devices d ON d.id = a.device_id JOIN contacts c ON c.id = a.contact_id"
                    " WHERE a.sub_campaign_id = :s AND a.device_id <> 0"
                    " ORDER BY a.contact_id, a.attempted_at, a.try_number, d.position"
                ),
                {"s": run.sub_campaign},
            )
        ).all()
    body = string.Template(SMS_TEMPLATE)
    contacts: dict[int, list[Request]] = defaultdict(list)
    for day, pass_number, contact, device, try_number, address, attributes in rows:
        key = (
            f"{run.sub_campaign + CEILING_OFFSET}-{day:%Y%m%d}-{pass_number}-{contact}"
            f"-{device}-{try_number}"
        )
        form: dict[str, str | list[str]]
        if run.channel is Channel.SMS:
            form = {
                "To": address,
                "From": FROM,
                "Body": body.safe_substitute(json.loads(attributes)),
                "StatusCallback": protocol.callback_url(sink, protocol.SMS_STATUS_PATH, key),
            }
        else:
            form = {
                "To": address,
                "From": FROM,
                "Url": protocol.callback_url(sink, protocol.VOICE_ANSWER_PATH, key),
                "StatusCallback": protocol.callback_url(sink, protocol.VOICE_STATUS_PATH, key),
                "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
                "MachineDetection": "DetectMessageEnd",
            }
        contacts[contact].append(Request(key, form))
    return list(contacts.values())


async def ceiling(
    carrier: str, sink: str, contacts: list[list[Request]], channel: Channel, lanes: int
) -> tuple[float, Counter[int]]:
    """POST every request, each lane waiting for a request's final status before its next;
    seconds from the first POST to the last final status, and the POSTs' HTTP statuses."""
    collection = "Messages.json" if channel is Channel.SMS else "Calls.json"
    url = f"{carrier}/2010-04-01/Accounts/{ACCOUNT}/{collection}"
    waiting: dict[str, asyncio.Future[None]] = {}
    statuses: Counter[int] = Counter()
    loop = asyncio.get_running_loop()

    async def listen(lines: AsyncIterator[str]) -> None:
        async for line in lines:
            future = waiting.pop(line, None)
            if future is not None and not future.done():
                future.set_result(None)

    async with (
        httpx.AsyncClient(timeout=None) as listener,
        listener.stream("GET", f"{sink}/finals") as stream,
        httpx.AsyncClient(
            auth=httpx.BasicAuth(ACCOUNT, TOKEN),
            timeout=httpx.Timeout(30.0),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
        ) as http,
    ):
        lines = stream.aiter_lines()
        if await anext(lines) != "ready":
            raise SystemExit("the sink's /finals stream did not start")
        listening = asyncio.create_task(listen(lines))
        pending = iter(contacts)

        async def lane() -> None:
            for requests in pending:
                for request in requests:
                    future = waiting[request.key] = loop.create_future()
                    response = await http.post(url, data=request.form)
                    statuses[response.status_code] += 1
                    if response.status_code == 201:
                        await asyncio.wait_for(future, 60)
                    else:
                        waiting.pop(request.key, None)

        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(lanes)))
        seconds = time.perf_counter() - started
        listening.cancel()
    return seconds, statuses


# ---- checks -----------------------------------------------------------------------------------


async def check_pass(engine: AsyncEngine, run: PassRun, record: dict, world: World) -> str:
    """The pass's ledger against the carrier's record and world; a line saying what agreed."""
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT day, pass_number, contact_id, device_id, try_number, result"
                    " FROM attempts WHERE sub_campaign_id = :s AND device_id <> 0"
                ),
                {"s": run.sub_campaign},
            )
        ).all()
        unsettled = await connection.scalar(
            text(
                "SELECT count(*) FROM provider_attempts"
                " WHERE sub_campaign_id = :s AND state <> 'settled'"
            ),
            {"s": run.sub_campaign},
        )
    placements, refused = record["placements"], record["refused"]
    problems: list[str] = []
    keys = set()
    for day, pass_number, contact, device, try_number, result in rows:
        key = f"{run.sub_campaign}-{day:%Y%m%d}-{pass_number}-{contact}-{device}-{try_number}"
        keys.add(key)
        drawn = world.result(key, run.channel)
        if result != drawn:
            problems.append(f"{key}: ledger {result}, the carrier's world {drawn}")
        expected = (0, 1) if result == "opted_out" else (1, 0)
        if (placements.get(key, 0), refused.get(key, 0)) != expected:
            problems.append(
                f"{key}: placed {placements.get(key, 0)}, refused {refused.get(key, 0)} times"
            )
    ours = {k for k in placements if k.startswith(f"{run.sub_campaign}-")}
    stray = ours - keys
    if stray:
        problems.append(f"{len(stray)} keys placed that the ledger does not have")
    results = Counter(row[5] for row in rows)
    if results.get("unknown"):
        problems.append(f"{results['unknown']} attempts unknown")
    if unsettled:
        problems.append(f"{unsettled} provider_attempts not settled")
    if problems:
        raise SystemExit(f"{run.channel.value} pass check failed: " + "; ".join(problems[:5]))
    placed = sum(placements[k] for k in ours)
    return (
        f"check {run.channel.value}: {len(rows):,} ledger attempts = {placed:,} placed once each"
        f" + {results.get('opted_out', 0):,} refused (opted_out); every result the carrier's"
        f" draw, 0 unknown, 0 unsettled"
    )


def check_ceiling(
    run: PassRun, contacts: list[list[Request]], statuses: Counter[int], record: dict
) -> None:
    keys = [request.key for requests in contacts for request in requests]
    placements = record["placements"]
    twice = [k for k in keys if placements.get(k, 0) > 1]
    placed = sum(1 for k in keys if placements.get(k, 0) == 1)
    if twice or placed != statuses[201] or sum(statuses.values()) != len(keys):
        raise SystemExit(
            f"ceiling {run.channel.value}: {len(keys)} requests, {placed} placed once,"
            f" {len(twice)} twice, POST statuses {dict(statuses)}"
        )
    if statuses[201] != sum(n for r, n in run.results.items() if r != "opted_out"):
        raise SystemExit(
            f"ceiling {run.channel.value}: {statuses[201]} placed, the pass placed"
            f" {sum(run.results.values()) - run.results.get('opted_out', 0)}"
        )


# ---- the receiver step ------------------------------------------------------------------------


def receiver_step(callbacks: int, rate: float) -> float:
    """bench/webhook_receiver.py as its own process; its p99 (ms) at `rate`."""
    import subprocess

    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "webhook_receiver.py"),
            *("--callbacks", str(callbacks), "--rate", f"{rate:g}"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    for line in done.stdout.splitlines():
        print(f"receiver: {line}", flush=True)
    found = re.search(r"p99 ([\d.]+) ms", done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"bench/webhook_receiver.py failed ({done.returncode}):\n{done.stderr}")
    return float(found.group(1))


# ---- the run ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> tuple[float, float]:
    """Both passes, both ceilings, the checks; (sms ratio, calls ratio)."""
    carrier_port, receiver_port, sink_port = free_port(), free_port(), free_port()
    carrier = f"http://127.0.0.1:{carrier_port}"
    receiver = f"http://127.0.0.1:{receiver_port}"
    sink = f"http://127.0.0.1:{sink_port}"
    identity = {"CSM_TWILIO_ACCOUNT_SID": ACCOUNT, "CSM_TWILIO_AUTH_TOKEN": TOKEN}
    async with bench_servers(pool_size=args.pool) as (env, engine, url):
        started = time.perf_counter()
        sizes = {"sms": args.sms, "voice": args.calls}
        templates = {"sms": SMS_TEMPLATE, "voice": VOICE_TEMPLATE}
        for channel, size in sizes.items():
            await create_synthetic_list(engine, channel, contacts=size, seed=7, email_share=0)
            strategy = strategy_text(channel, templates[channel], args.concurrency)
            await create_campaign(engine, channel, load_strategy(strategy), strategy)
            await set_policy(engine, f'[hours]\n{channel} = "any"\n', campaign=channel)
        print(
            f"lists of {args.sms:,} (sms) and {args.calls:,} (voice) contacts ready in"
            f" {time.perf_counter() - started:.1f}s; pass concurrency {args.concurrency}",
            flush=True,
        )
        settings = Settings(
            database_url=url,
            voice_provider="twilio",
            sms_provider="twilio",
            twilio_base_url=carrier,
            twilio_account_sid=ACCOUNT,
            twilio_auth_token=TOKEN,
            twilio_from=FROM,
            public_url=receiver,
            _env_file=None,
        )
        carrier_cmd = [sys.executable, "-m", "csm.devstack.carrier", "--port", str(carrier_port)]
        carrier_cmd += ["--speed", "0", "--seed", str(SEED), "--public-url", receiver]
        receiver_cmd = [sys.executable, "-m", "csm.cli", "webhooks", "--port", str(receiver_port)]
        receiver_env = {**identity, "DATABASE_URL": url, "CSM_PUBLIC_URL": receiver}
        sink_cmd = [
            sys.executable,
            str(ROOT / "bench" / "callback_sink.py"),
            "--port",
            str(sink_port),
        ]
        async with (
            process("carrier", carrier_cmd, identity, f"{carrier}/_carrier/record") as carrier_pid,
            process("receiver", receiver_cmd, receiver_env, f"{receiver}/twilio/health") as rpid,
            process("sink", sink_cmd, {}, f"{sink}/count") as sink_pid,
            httpx.AsyncClient() as http,
        ):
            pids = {"bench": os.getpid(), "carrier": carrier_pid}
            runs = []
            for channel in ("sms", "voice"):
                meter = CpuMeter({**pids, "receiver": rpid})
                began = time.perf_counter()
                runs.append(await run_pass(env, engine, settings, channel))
                print(meter.line(time.perf_counter() - began), flush=True)
            health = (await http.get(f"{receiver}/twilio/health")).json()
            ratios = []
            plans = {r.channel: await ceiling_requests(engine, r, sink) for r in runs}
            outcomes = {}
            for r in runs:
                contacts = plans[r.channel]
                meter = CpuMeter({**pids, "sink": sink_pid})
                seconds, statuses = await ceiling(
                    carrier, sink, contacts, r.channel, args.concurrency
                )
                cpu = meter.line(seconds)
                outcomes[r.channel] = statuses
                rate = len(contacts) / seconds
                print(
                    f"ceiling {r.channel.value} (bare httpx loop, {args.concurrency} lanes,"
                    f" callbacks to a counting sink): {len(contacts):,} contacts,"
                    f" {sum(statuses.values()):,} POSTs {dict(statuses)} in {seconds:.2f}s"
                    f" = {rate:,.0f} contacts/s",
                    flush=True,
                )
                print(cpu, flush=True)
                ratios.append(r.rate / rate)
            record = (await http.get(f"{carrier}/_carrier/record")).json()
        world = World(SEED)
        for r in runs:
            print(await check_pass(engine, r, record, world), flush=True)
            check_ceiling(r, plans[r.channel], outcomes[r.channel], record)
        if health["orphans"]:
            raise SystemExit(f"the receiver kept {health['orphans']} orphan callbacks")
        print(
            f"check: every ceiling request placed once and its final status heard; carrier"
            f" callbacks sent {record['callbacks_sent']:,}, failed {record['callbacks_failed']},"
            f" refused {record['callbacks_refused']}; receiver orphans {health['orphans']},"
            f" events {health['events']:,}",
            flush=True,
        )
        for r, ratio in zip(runs, ratios, strict=True):
            print(f"{r.channel.value} pass / bare loop: {ratio:.2f} (goal >= 0.6)", flush=True)
        if record["callbacks_failed"] or record["callbacks_refused"]:
            raise SystemExit("the carrier's callbacks failed or were refused")
    return ratios[0], ratios[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] + " " + __doc__.splitlines()[1],
        epilog="Needs DATABASE_URL (a PostgreSQL server to make a fresh database on) or runs an"
        " embedded PostgreSQL; starts its own Temporal dev server, carrier, receiver and sink."
        " The last line is the summary: both ratios (pass contacts/s over the bare loop's) and"
        " the receiver's p99 at the target rate.",
    )
    parser.add_argument("--sms", type=int, default=20_000, help="contacts of the SMS pass")
    parser.add_argument("--calls", type=int, default=5_000, help="contacts of the voice pass")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="attempts in flight: the pass's pacing concurrency and the bare loop's lanes",
    )
    parser.add_argument("--pool", type=int, default=16, help="the worker's database connections")
    parser.add_argument(
        "--receiver-callbacks",
        type=int,
        default=20_000,
        help="callbacks of the receiver step (bench/webhook_receiver.py); 0 skips it",
    )
    parser.add_argument("--receiver-rate", type=float, default=500.0, help="its target callbacks/s")
    args = parser.parse_args()
    if min(args.sms, args.calls, args.concurrency, args.pool) < 1:
        parser.error("--sms, --calls, --concurrency and --pool must be at least 1")
    if args.receiver_callbacks < 0 or args.receiver_rate <= 0:
        parser.error("--receiver-callbacks must be 0 or more and --receiver-rate positive")
    sms, calls = asyncio.run(run(args))
    p99 = (
        receiver_step(args.receiver_callbacks, args.receiver_rate)
        if args.receiver_callbacks
        else float("nan")
    )
    print(
        f"provider pass: sms {sms:.2f}, calls {calls:.2f} of the bare loop (goal >= 0.6);"
        f" receiver p99 {p99:.1f} ms at {args.receiver_rate:g}/s (goal < 100)",
        flush=True,
    )
    sys.stdout.flush()
    os._exit(0)  # temporalio can crash at interpreter exit after the work succeeded


if __name__ == "__main__":
    main()
