"""Issue 8's e-mail and list-import benches at tiny sizes, each run as its own process.

They start their own servers (a counting SMTP sink, embedded PostgreSQL or
DATABASE_URL, a dev server). Only that they run to the end and print their
figures and ratios is checked, and that both sides of the e-mail bench sent
every message (the bench itself checks the sink's count). No time is asserted.
"""

from __future__ import annotations

import re

from tests.bench_runner import refused, run_bench

RATE = r"[\d,]+ msg/s"


def test_email_pass_prints_the_pass_the_ceiling_and_their_ratio() -> None:
    out = run_bench("email_pass.py", "--contacts", "150", "--connections", "4")
    assert re.search(
        rf"ceiling before \(raw aiosmtplib, 4 connections\): 150 messages .* {RATE}", out
    )
    assert re.search(
        rf"ceiling after \(raw aiosmtplib, 4 connections\): 150 messages .* {RATE}", out
    )
    assert re.search(
        rf"e-mail pass \(sub-campaign workflow, .* 150 selected, 150 sent, .* = {RATE}", out
    ), out
    assert re.search(r"e-mail pass / raw ceiling: [\d,]+ / [\d,]+ msg/s = \d+\.\d\d", out), out


def test_email_pass_refuses_a_bad_size() -> None:
    assert "--contacts and --connections must be at least 1" in refused(
        "email_pass.py", "--contacts", "0"
    )


def test_import_throughput_prints_imports_the_bare_copy_and_their_ratio() -> None:
    out = run_bench("import_throughput.py", "--rows", "2000")
    assert re.search(r"parse\+validate \(\d+ workers, no database\): [\d,]+ rows/s", out), out
    assert re.search(r"import \(new list\): [\d,]+ rows/s .*imported 2,000, updated 0", out), out
    assert re.search(r"re-import \(all known\): [\d,]+ rows/s .*imported 0, updated 2,000", out)
    assert re.search(r"ceiling, bare COPY of the file into a plain table: [\d,]+ rows/s", out), out
    assert re.search(r"import \(new list\) / bare COPY: [\d,]+ / [\d,]+ rows/s = \d\.\d{3}", out)
