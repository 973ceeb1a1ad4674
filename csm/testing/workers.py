"""Start real `python worker.py` processes for tests and benchmarks, as operators run them.

A test that kills a worker, shards a pass over several workers or reads what a
worker prints needs the worker in a process of its own, not in the test's event
loop. Everything such a test needs is here, once: the environment that makes the
child run with given `Settings`, starting it with its output kept in a log,
waiting until Temporal sees it poll, stopping it gracefully or killing it, and
showing its output when something went wrong.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from csm.settings import Settings

#: The source checkout whose `worker.py` runs (csm/testing/workers.py → the repository).
ROOT = Path(__file__).resolve().parents[2]
#: Environment variables whose names do not follow `CSM_<FIELD>`.
_ALIASES = {"database_url": ("DATABASE_URL", "CSM_DATABASE_URL")}
#: Lines of a worker's output shown when a test fails around it.
TAIL_LINES = 40


def _names(field: str) -> tuple[str, ...]:
    return _ALIASES.get(field, (f"CSM_{field.upper()}",))


def environment(settings: Settings, **overrides: Any) -> dict[str, str]:
    """The environment of a worker process that runs with exactly `settings` and `overrides`.

    `overrides` are Settings field names (`task_queue="q"`, `simulator_latency_ms=15`).
    Every field is written out and a field that is None is removed from the inherited
    environment, so the child's settings are the ones given, whatever the caller's
    shell holds. Metrics are off unless `metrics_address` is given: several workers
    of one test machine cannot all bind the default port.
    """
    unknown = set(overrides) - set(Settings.model_fields)
    if unknown:
        raise TypeError(f"not a setting: {', '.join(sorted(unknown))}")
    overrides.setdefault("metrics_address", "")
    chosen = settings.model_copy(update=overrides)
    env = dict(os.environ)
    for field in Settings.model_fields:
        value = getattr(chosen, field)
        names = _names(field)
        for name in names:
            env.pop(name, None)
        if value is not None:
            shown = value.get_secret_value() if isinstance(value, SecretStr) else value
            env[names[0]] = str(shown)
    return env


class WorkerProcess:
    """One `python worker.py` child, its stdout and stderr going to one log file.

    Without a `log` path the log is a temporary file, read into memory and removed
    once the process has ended; with one (a fault test's record), it stays and is
    appended to.
    """

    def __init__(self, process: asyncio.subprocess.Process, task_queue: str, log: Path, kept: bool):
        self._process = process
        self.task_queue = task_queue
        self.log = log
        self._kept = kept
        self._output: str | None = None

    @classmethod
    async def start(cls, env: Mapping[str, str], *, log: Path | None = None) -> WorkerProcess:
        """Start `python worker.py` in the repository with `env` (see `environment`)."""
        if not (ROOT / "worker.py").is_file():
            raise FileNotFoundError(f"no worker.py in {ROOT}: csm.testing runs a source checkout")
        kept = log is not None
        if log is None:
            output, name = tempfile.mkstemp(prefix="csm-worker-", suffix=".log")
            log = Path(name)
        else:
            output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "worker.py",
                cwd=ROOT,
                env=dict(env),
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
            )
        finally:
            os.close(output)  # the child has its own descriptor
        return cls(process, env.get("CSM_TASK_QUEUE", "csm"), log, kept)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    def output(self) -> str:
        """What the process printed so far (all of it once it has ended)."""
        if self._output is not None:
            return self._output
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    async def wait(self) -> int:
        """Its exit code, once it has ended."""
        code = await self._process.wait()
        self._ended()
        return code

    async def kill(self) -> int:
        """SIGKILL, as a crash: nothing is shut down cleanly."""
        if self._process.returncode is None:
            self._process.send_signal(signal.SIGKILL)
        return await self.wait()

    async def stop(self, sig: signal.Signals = signal.SIGTERM, *, grace: float = 20) -> int:
        """`sig` (SIGTERM or SIGINT: a graceful shutdown), SIGKILL if still running after
        `grace` seconds. The exit code tells which: 0 after a clean shutdown."""
        if self._process.returncode is None:
            self._process.send_signal(sig)
        try:
            async with asyncio.timeout(grace):
                return await self.wait()
        except TimeoutError:
            return await self.kill()

    async def polling(self, client: Client, *, within: float = 120) -> None:
        """Until this very process polls its task queue for activities.

        Matched by process id (the SDK's default worker identity is `pid@host`):
        a count of pollers would also count a killed process Temporal still lists.
        """
        async with asyncio.timeout(within):
            while str(self.pid) not in await _polling_pids(client, self.task_queue):
                if self._process.returncode is not None:
                    self._ended()
                    raise RuntimeError(
                        f"worker {self.pid} exited {self.returncode} before it polled:\n"
                        + self.tail()
                    )
                await asyncio.sleep(0.2)

    def _ended(self) -> None:
        """Keep the output of an ended process; remove its temporary log."""
        if self._output is None and not self._kept:
            self._output = self.output()
            with suppress(FileNotFoundError):
                self.log.unlink()


async def _polling_pids(client: Client, task_queue: str) -> set[str]:
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
    )
    return {poller.identity.split("@")[0] for poller in described.pollers}


@asynccontextmanager
async def worker_processes(
    env: Mapping[str, str], n: int = 1, *, client: Client | None = None
) -> AsyncIterator[list[WorkerProcess]]:
    """`n` worker processes; with `client`, once every one of them polls.

    Waiting matters where work is shared: a process that starts seconds later on a
    busy machine would find the others had taken every shard. A process the caller
    adds to the list is stopped with the others on the way out (SIGTERM, then
    SIGKILL). If the block fails, the end of each process's output goes to stderr.
    """
    processes = [await WorkerProcess.start(env) for _ in range(n)]
    failed = True
    try:
        if client is not None:
            for process in processes:  # they start side by side: the slowest sets the wait
                await process.polling(client)
        yield processes
        failed = False
    finally:
        await asyncio.gather(*(process.stop() for process in processes))
        if failed:
            for process in processes:
                print(
                    f"--- worker {process.pid} (exit {process.returncode}), last lines ---\n"
                    + process.tail(),
                    file=sys.stderr,
                )
