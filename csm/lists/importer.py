"""`import_list`: a list file into contacts, devices and a list, in one transaction.

The pipeline: read the header and bind the mapping (`mapping.resolve`), cut
the file into chunks of whole records (`reader.plan_chunks`), and validate
the chunks in worker processes (`rows`), which hand back COPY-ready bytes.
Meanwhile this process COPYs each batch of good rows into staging tables and
upserts them with a few set-based statements (`store`), so the database
works while the workers check the next rows. All batches share one
transaction: nothing is visible, and nothing is left behind, until the
commit. A small file is validated in this process: starting workers would
cost more than it saves.

The CLI (`csm lists import`) is a thin layer over this function.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.errors import CsmError
from csm.lists import store
from csm.lists.errors import StrictImportError
from csm.lists.mapping import (
    ColumnPlan,
    FileFormat,
    Mapping,
    MappingOverrides,
    apply_overrides,
    auto_mapping,
    resolve,
)
from csm.lists.reader import Chunk, Source, open_source, plan_chunks, records_at
from csm.lists.report import (
    FIRST_REJECTS,
    ImportReport,
    RejectSummary,
    default_rejects_path,
    write_rejects,
)
from csm.lists.rows import (
    DUPLICATE_ACCOUNT,
    ChunkResult,
    ChunkValidator,
    Reject,
    init_worker,
    run_chunk,
    scan_chunk,
)
from csm.names import line_problem
from csm.settings import asyncpg_dsn

#: (phase, done, total): "rows" counts bytes of the file checked and written, "commit" the end.
ProgressCallback = Callable[[str, int, int], None]

T = TypeVar("T")

#: About 12,000 rows of a typical file: small enough to keep both workers busy and the
#: progress bar moving, large enough that per-chunk overhead does not show.
CHUNK_BYTES = 1 << 20
#: Rows in the first round of upserts; each round after doubles, up to 8 times this. Small
#: rounds get the database going early, while the workers check the next rows; large ones
#: scan the (big) contacts and devices tables fewer times.
BATCH_ROWS = 50_000
_BATCH_GROWTH_LIMIT = 8
#: Session settings of the import connection: room for the staging tables and hash joins,
#: and no JIT compilation, which costs more than it saves on these simple plans.
_SESSION = {"temp_buffers": "256MB", "work_mem": "256MB", "jit": "off", "random_page_cost": "1.1"}
MAX_LIST_NAME = 200


async def import_list(
    engine: AsyncEngine,
    path: Path | str,
    list_name: str,
    mapping: Mapping | None = None,
    *,
    overrides: MappingOverrides | None = None,
    file_format: FileFormat | None = None,
    delimiter: str | None = None,
    default_region: str = "US",
    strict: bool = False,
    dry_run: bool = False,
    rejects_path: Path | str | None = None,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    batch_rows: int = BATCH_ROWS,
) -> ImportReport:
    """Import `path` into list `list_name`; see docs/lists.md for every rule.

    `mapping` None means the conventional headers; `overrides` (CLI flags)
    apply on top of either. Valid rows are imported and bad ones written to
    `rejects_path` (default `<file>.rejects.csv`), unless `strict`, where any
    bad row imports nothing and raises StrictImportError. `dry_run` checks
    and counts without writing to the database. `progress(phase, done,
    total)` hears how far the import is.
    """
    started = time.perf_counter()
    if not list_name.strip() or len(list_name) > MAX_LIST_NAME:
        raise CsmError(f"a list name needs 1 to {MAX_LIST_NAME} characters")
    if (problem := line_problem(list_name, "a list name")) is not None:
        raise CsmError(problem)
    path = Path(path)
    source = open_source(
        path,
        file_format or (mapping.format if mapping else None),
        delimiter or (mapping.delimiter if mapping else None),
    )
    plan = _plan(source, mapping, overrides, default_region)
    run = _Import(
        source,
        plan,
        ImportReport(
            list=list_name,
            file=str(path),
            format=source.format.value,
            dry_run=dry_run,
            strict=strict,
        ),
        progress=progress or (lambda phase, done, total: None),
        batch_rows=batch_rows,
        started=started,
    )
    async with _Workers(source, plan, workers or os.cpu_count() or 1, chunk_bytes) as pool:
        numeric = await pool.numeric_attributes()
        connection = await asyncpg.connect(
            asyncpg_dsn(engine.url.render_as_string(hide_password=False)),
            server_settings=_SESSION,
        )
        try:
            await run.run(connection, pool, numeric)
        except (asyncio.CancelledError, KeyboardInterrupt):
            connection.terminate()  # the server rolls the transaction back as the session ends
            raise
        finally:
            if not connection.is_closed():
                await connection.close()
    report = run.report
    if report.rejected:
        target = Path(rejects_path) if rejects_path else default_rejects_path(path)
        write_rejects(target, source.header, source.format, run.rejects)
        report.rejects_file = str(target)
    if strict and report.rejected:
        raise StrictImportError(_strict_message(run.rejects, report.rejects_file))
    report.seconds = time.perf_counter() - started
    return report


class _Import:
    """One import's state: the transaction, the batch being filled, counts and rejects."""

    def __init__(
        self,
        source: Source,
        plan: ColumnPlan,
        report: ImportReport,
        *,
        progress: ProgressCallback,
        batch_rows: int,
        started: float,
    ) -> None:
        self.source = source
        self.plan = plan
        self.report = report
        self.progress = progress
        self.batch_rows = self.first_batch_rows = batch_rows
        self.started = started
        self.collector = _Collector()
        self.counts = store.WriteCounts()
        self.zone_sources: Counter[str] = Counter()
        self.batch: list[tuple[ChunkResult, list[int]]] = []
        self.done_bytes = 0
        self.total_bytes = max(source.size - source.data_offset, 1)
        self.rejects: list[Reject] = []
        self.list_id: int | None = None
        self.connection: asyncpg.Connection | None = None

    async def run(
        self, connection: asyncpg.Connection, pool: _Workers, numeric: frozenset[str]
    ) -> None:
        report = self.report
        self.connection = connection
        transaction = connection.transaction()
        await transaction.start()
        try:
            await store.begin(connection)
            self.list_id = await store.list_id(connection, report.list, create=not report.dry_run)
            self.progress("rows", 0, self.total_bytes)
            async with contextlib.aclosing(pool.validate(numeric)) as results:
                async for result in results:
                    self.batch.append((result, self.collector.add(result)))
                    if sum(r.rows for r, _ in self.batch) >= self.batch_rows:
                        await self.flush()
            await self.flush()
            self.rejects = self.collector.rejects + self.collector.duplicate_rejects(
                self.source, self.plan
            )
            self._fill_report()
            if report.dry_run or (report.strict and self.rejects):
                await transaction.rollback()
                return
            self.progress("commit", 0, 1)
            await transaction.commit()
            self.progress("commit", 1, 1)
        except Exception:
            if not connection.is_closed():
                with contextlib.suppress(Exception):
                    await transaction.rollback()
            raise

    async def flush(self) -> None:
        """Stage the batch, take out duplicate keys, and write it (or count it, dry)."""
        if not self.batch:
            return
        connection = self.connection
        assert connection is not None
        report = self.report
        if not (report.strict and self.collector.rejects):  # else it is lost already
            for result, _ in self.batch:
                await store.stage(connection, result.contacts, result.devices)
            await store.drop_lines(connection, [line for _, drop in self.batch for line in drop])
            self.zone_sources.update(await store.zone_sources(connection))
            if report.dry_run:
                self.counts += await store.dry_run_counts(connection, self.list_id)
            else:
                assert self.list_id is not None
                self.counts += await store.write(connection, self.list_id)
            await store.clear(connection)
        self.done_bytes += sum(result.bytes for result, _ in self.batch)
        self.progress("rows", self.done_bytes, self.total_bytes)
        self.batch.clear()
        self.batch_rows = min(2 * self.batch_rows, _BATCH_GROWTH_LIMIT * self.first_batch_rows)

    def _fill_report(self) -> None:
        report, collector, rejects, counts = self.report, self.collector, self.rejects, self.counts
        report.rows = collector.rows
        report.rejected = len(rejects)
        report.valid = collector.rows - len(rejects)
        report.rejects_by_reason = dict(Counter(r.code for r in rejects).most_common())
        report.first_rejects = [
            RejectSummary(r.line, r.column, r.code, r.reason)
            for r in sorted(rejects, key=lambda r: r.line)[:FIRST_REJECTS]
        ]
        report.warnings = dict(collector.warnings.most_common())
        report.timezone_sources = dict(self.zone_sources.most_common())
        report.imported = counts.imported
        report.updated = counts.updated
        report.changed = counts.changed
        report.added_to_list = counts.added_to_list
        if not report.dry_run:
            report.devices = {
                "added": counts.devices_added,
                "updated": counts.devices_updated,
                "removed": counts.devices_removed,
            }


def _strict_message(rejects: list[Reject], rejects_file: str | None) -> str:
    first = min(rejects, key=lambda r: r.line)
    where = f"line {first.line}" + (f", column {first.column!r}" if first.column else "")
    return (
        f"{len(rejects)} bad rows (first: {where}: {first.reason}); --strict: nothing imported; "
        f"rejected rows in {rejects_file}"
    )


def _plan(
    source: Source,
    mapping: Mapping | None,
    overrides: MappingOverrides | None,
    default_region: str,
) -> ColumnPlan:
    header = list(source.header)
    effective = mapping or auto_mapping(header)
    if overrides is not None:
        effective = apply_overrides(effective, overrides)
    if source.format is FileFormat.JSONL:
        # JSON Lines records may leave keys out: a mapped key need not be in the first one.
        header += [column for column in _named_columns(effective) if column not in header]
    return resolve(effective, header, default_region=default_region)


def _named_columns(mapping: Mapping) -> list[str]:
    named = [
        mapping.account,
        *(d.column for d in mapping.devices),
        mapping.timezone,
        mapping.postal_code,
        mapping.consent_voice,
        mapping.consent_sms,
        mapping.consent_email,
        *(a.column for a in mapping.attributes),
    ]
    return list(dict.fromkeys(column for column in named if column))


class _Workers:
    """Runs the chunk validators: in this process for small files, else in a process pool.

    Results come back in file order. At most `window` chunks are in flight,
    which bounds memory when the database is slower than the workers.
    """

    def __init__(self, source: Source, plan: ColumnPlan, workers: int, chunk_bytes: int) -> None:
        self.source = source
        self.plan = plan
        self.chunk_bytes = chunk_bytes
        self.workers = workers
        self.parallel = workers > 1 and source.size - source.data_offset > 2 * chunk_bytes
        self.window = 16 * workers
        self.pool: ProcessPoolExecutor | None = None
        self.local: ChunkValidator | None = None

    async def __aenter__(self) -> _Workers:
        if self.parallel:
            self.pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=_context(),
                initializer=init_worker,
                initargs=(self.source, self.plan),
            )
            # Start the workers now, before the caller opens sockets they would inherit.
            await asyncio.wrap_future(self.pool.submit(os.getpid))
        else:
            self.local = ChunkValidator(self.source, self.plan)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    async def numeric_attributes(self) -> frozenset[str]:
        """The auto-typed attributes whose every non-empty value in the file is a number."""
        auto = set(self.plan.auto_attributes)
        if not auto:
            return frozenset()
        found: set[str] = set()
        async with contextlib.aclosing(self._map(scan_chunk, ())) as results:
            async for chunk_found in results:
                found |= chunk_found
        return frozenset(auto - found)

    def validate(self, numeric: frozenset[str]) -> AsyncIterator[ChunkResult]:
        return self._map(run_chunk, (numeric,))

    async def _map(self, function: Callable[..., T], args: tuple[object, ...]) -> AsyncIterator[T]:
        chunks = plan_chunks(self.source, self.chunk_bytes)
        if self.pool is None:
            assert self.local is not None
            local = {run_chunk: _local_run, scan_chunk: _local_scan}[function]
            for chunk in chunks:
                yield local(self.local, chunk, *args)
                await asyncio.sleep(0)
            return
        window: deque[Future[T]] = deque()
        try:
            for chunk in chunks:
                window.append(self.pool.submit(function, chunk, *args))
                if len(window) >= self.window:
                    yield await asyncio.wrap_future(window.popleft())
            while window:
                yield await asyncio.wrap_future(window.popleft())
        finally:
            for future in window:
                future.cancel()


def _local_run(validator: ChunkValidator, chunk: Chunk, numeric: frozenset[str]) -> ChunkResult:
    validator.set_numeric(numeric)
    return validator.run(chunk)


def _local_scan(validator: ChunkValidator, chunk: Chunk) -> set[str]:
    return validator.non_numeric(chunk)


def _context() -> multiprocessing.context.BaseContext:
    """fork where there is one: workers start in milliseconds with every module loaded.

    forkserver and spawn re-import the caller's main module in each worker,
    which breaks any script that lacks an `if __name__ == "__main__"` guard.
    The workers only run `csm.lists.rows` on bytes they read themselves, and
    are forked before the import opens its database connection.
    """
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class _Collector:
    """Merges chunk results in file order: rejects, warnings, and account keys seen twice."""

    def __init__(self) -> None:
        self.rows = 0
        self.rejects: list[Reject] = []
        self.warnings: Counter[str] = Counter()
        self.first_line: dict[str, int] = {}
        self.duplicates: dict[int, int] = {}  # line -> first line with the same key

    def add(self, result: ChunkResult) -> list[int]:
        """Take in a chunk; returns the lines of its valid rows whose key came earlier."""
        self.rows += result.rows
        self.rejects.extend(result.rejects)
        self.warnings.update(result.warnings)
        rejected = {reject.line for reject in result.rejects}
        first_line = self.first_line
        duplicates = []
        for key, line in zip(result.keys, result.key_lines, strict=True):
            first = first_line.setdefault(key, line)
            if first != line and line not in rejected:
                self.duplicates[line] = first
                duplicates.append(line)
        return duplicates

    def duplicate_rejects(self, source: Source, plan: ColumnPlan) -> list[Reject]:
        """Rejects for rows whose key an earlier row had, with the rows re-read from the file."""
        if not self.duplicates:
            return []
        raw = records_at(source, set(self.duplicates))
        return [
            Reject(
                line,
                plan.header[plan.account],
                DUPLICATE_ACCOUNT,
                f"duplicate account key (first on line {first})",
                raw.get(line, []),
            )
            for line, first in sorted(self.duplicates.items())
        ]
