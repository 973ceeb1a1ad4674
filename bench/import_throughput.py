"""List import throughput: parse/validate alone, a first import, and a re-import.

Generates a seeded CSV of N contacts (account, one wireless number in mixed
spellings, one e-mail, a ZIP code, a numeric balance), then measures:

- parse: reading and validating every row in worker processes (no database);
- import: the whole `import_list` into a new list (COPY to staging, upserts);
- re-import: the same file again (every contact already known, nothing changes);
- ceiling: in the same database, a bare COPY of the same file into a plain
  table of text columns (no checks, no indexes, no upserts), and the ratio of
  the first import's rows/s to it.

Progress goes to stderr while an import runs. Uses DATABASE_URL when set (a
fresh database on that server, dropped after), else an embedded PostgreSQL.

    python bench/import_throughput.py --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg

from csm.database import engine_for
from csm.lists import import_list
from csm.lists.importer import CHUNK_BYTES, _plan, _Workers
from csm.lists.reader import open_source
from csm.settings import asyncpg_dsn
from csm.testing.servers import fresh_database

#: Area codes the US numbering plan assigns (phonenumbers accepts them as US numbers).
_AREA_CODE_TEXT = (
    "201 202 203 205 206 207 208 212 213 214 215 216 217 218 219 224 225 228 229 231 234 239 "
    "240 248 251 252 253 254 256 260 262 267 269 270 272 276 281 301 302 303 304 305 307 308 "
    "309 310 312 313 314 315 316 317 318 319 320 321 323 325 330 331 334 336 337 339 347 351 "
    "352 360 361 385 386 401 402 404 405 406 407 408 409 410 412 413 414 415 417 419 423 424 "
    "425 430 432 434 435 440 442 443 469 470 475 478 479 480 484 501 502 503 504 505 507 508 "
    "509 510 512 513 515 516 517 518 520 530 540 541 551 559 561 562 563 567 570 571 573 574 "
    "575 580 585 586 601 602 603 605 606 607 608 609 610 612 614 615 616 617 618 619 620 623 "
    "626 630 631 636 641 646 650 651 657 660 661 662 678 682 701 702 703 704 706 707 708 712 "
    "713 714 715 716 717 718 719 720 724 727 731 732 734 740 747 754 757 760 762 763 765 770 "
    "772 773 774 775 779 781 785 786 801 802 803 804 805 806 808 810 812 813 814 815 816 817 "
    "818 828 830 831 832 843 845 847 848 850 856 857 858 859 860 862 863 864 865 870 878 901 "
    "903 904 906 907 908 909 910 912 913 914 915 916 917 918 919 920 925 928 931 936 937 940 "
    "941 947 949 951 952 954 956 970 971 972 973 978 979 980 985 989"
)
AREA_CODES = tuple(re.findall(r"\d{3}", _AREA_CODE_TEXT))
DOMAINS = ("example.com", "mail.example.org", "example.net", "corp.example.com")
ZIPS = ("94110", "10001", "60601", "73301", "98101", "33101", "80202", "02108", "")


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """A CSV a collections agency might export, deterministic for a given seed."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("account,wireless,email,postal_code,balance\n")
        for n in range(rows):
            area = rng.choice(AREA_CODES)
            exchange = rng.randint(200, 999)
            line = rng.randint(0, 9999)
            style = n % 3
            if style == 0:
                phone = f"({area}) {exchange}-{line:04d}"
            elif style == 1:
                phone = f"{area}-{exchange}-{line:04d}"
            else:
                phone = f"+1{area}{exchange}{line:04d}"
            email = f"First.Last{n}@{rng.choice(DOMAINS)}"
            balance = f"{rng.randint(0, 500000) / 100:.2f}"
            handle.write(f"ACC{n:08d},{phone},{email},{rng.choice(ZIPS)},{balance}\n")


async def parse_only(path: Path, workers: int) -> tuple[int, float]:
    """Rows/s of reading and validating alone, in the same worker pool an import uses."""
    source = open_source(path, None, None)
    plan = _plan(source, None, None, "US")
    started = time.perf_counter()
    rows = 0
    async with _Workers(source, plan, workers, CHUNK_BYTES) as pool:
        numeric = await pool.numeric_attributes()
        async with contextlib.aclosing(pool.validate(numeric)) as results:
            async for result in results:
                rows += result.rows
    return rows, time.perf_counter() - started


def progress_printer(label: str, rows: int) -> Callable[[str, int, int], None]:
    """An `import_list` progress callback printing every tenth of the file to stderr."""
    started = time.perf_counter()
    shown = [-1]

    def show(phase: str, done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if phase == "rows" and tenth > shown[0]:
            shown[0] = tenth
            took = time.perf_counter() - started
            about = rows * done // max(total, 1)
            print(
                f"  {label}: {done / max(total, 1):4.0%} of the file, ~{about:,} rows"
                f" in {took:.1f}s",
                file=sys.stderr,
                flush=True,
            )
        elif phase == "commit" and done:
            print(f"  {label}: committed", file=sys.stderr, flush=True)

    return show


async def bare_copy(url: str, path: Path) -> tuple[int, float]:
    """The ceiling: COPY the CSV as it is into a plain unindexed table of text columns."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute(
            "CREATE TABLE bench_bare_copy (account text, wireless text, email text,"
            " postal_code text, balance text)"
        )
        started = time.perf_counter()
        async with connection.transaction():
            status = await connection.copy_to_table(
                "bench_bare_copy", source=path, format="csv", header=True
            )
        took = time.perf_counter() - started
        await connection.execute("DROP TABLE bench_bare_copy")
    finally:
        await connection.close()
    return int(status.split()[-1]), took


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep", type=Path, help="write the CSV here and keep it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="csm-bench-") as scratch:
        path = args.keep or Path(scratch) / "contacts.csv"
        started = time.perf_counter()
        generate(path, args.rows)
        size = path.stat().st_size / 1e6
        took = time.perf_counter() - started
        print(f"generated {args.rows:,} rows ({size:.1f} MB) in {took:.1f}s")

        rows, seconds = await parse_only(path, args.workers)
        print(
            f"parse+validate ({args.workers} workers, no database): "
            f"{rows / seconds:,.0f} rows/s ({seconds:.2f}s)"
        )

        async with fresh_database(os.environ.get("DATABASE_URL")) as url, engine_for(url) as engine:
            rates = []
            for label in ("import (new list)", "re-import (all known)"):
                report = await import_list(
                    engine,
                    path,
                    "bench",
                    workers=args.workers,
                    progress=progress_printer(label, args.rows),
                )
                assert report.rejected == 0, report.first_rejects
                rates.append(report.rows / report.seconds)
                print(
                    f"{label}: {rates[-1]:,.0f} rows/s ({report.seconds:.2f}s;"
                    f" imported {report.imported:,}, updated {report.updated:,})",
                    flush=True,
                )
            copied, seconds = await bare_copy(url, path)
            if copied != args.rows:
                raise SystemExit(f"the bare COPY wrote {copied:,} rows of {args.rows:,}")
            ceiling = copied / seconds
            print(
                f"ceiling, bare COPY of the file into a plain table: {ceiling:,.0f} rows/s"
                f" ({seconds:.2f}s)",
                flush=True,
            )
            print(
                f"import (new list) / bare COPY: {rates[0]:,.0f} / {ceiling:,.0f} rows/s"
                f" = {rates[0] / ceiling:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
