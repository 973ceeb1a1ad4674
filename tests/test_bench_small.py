"""Benches at tiny sizes, each run as its own process like a developer runs it.

They start their own servers (embedded PostgreSQL or DATABASE_URL, a dev server).
Only that they run to the end and print their figures is checked, and for the
history bench the claim itself: the event counts are the same at every size.
No time is asserted.
"""

from __future__ import annotations

import re

from tests.bench_runner import refused, run_bench


def test_workflow_per_contact_prints_both_designs_and_the_ratio() -> None:
    out = run_bench("workflow_per_contact.py", "--contacts", "300", "--sample", "20")
    assert re.search(r"ours, policy off: .* 300 contacts, .* contacts/s", out), out
    assert re.search(r"ours, policy on: .* 300 contacts, .* contacts/s", out), out
    assert re.search(r"theirs: 20 ContactJourney workflows .* contacts/s", out), out
    assert re.search(r"ratio ours \(policy off\) / theirs: [\d,]+x", out), out
    # The journeys did the same work as our pass: the same outcome function, the same rows.
    agree, rows = map(int, re.search(r"fairness: (\d+) of the journeys' (\d+)", out).groups())
    assert rows >= 20 and agree >= 0.9 * rows, out


def test_history_events_are_the_same_at_every_size() -> None:
    out = run_bench("history_events.py", "--sizes", "50,400")
    counts = re.findall(
        r"at ([\d,]+) contacts: day run with 1 pass (\d+), with 3 passes (\d+)", out
    )
    assert [size for size, _, _ in counts] == ["50", "400"], out
    assert len({(one, three) for _, one, three in counts}) == 1, out
    assert "flat across 50 / 400 contacts: yes" in out


def test_history_events_refuses_bad_sizes() -> None:
    assert "--sizes takes list sizes separated by commas" in refused(
        "history_events.py", "--sizes", "1000,lots"
    )


def test_control_latency_prints_round_trips_and_pause_latencies() -> None:
    out = run_bench(
        "control_latency.py",
        *("--updates", "10", "--repeats", "2", "--contacts", "500", "--settle", "0.5"),
    )
    assert re.search(r"amendment update round trip .* over 10: p50 [\d.]+ ms, p95", out), out
    assert re.search(r"no-op workflow update round trip, same server over 10: p50", out), out
    assert re.search(r"amendment / no-op update: p50 [\d.]+x", out), out
    assert re.search(r"pause → last attempt \(attempted_at\) over 2: p50 -?[\d.]+ ms", out), out
    assert re.search(r"pause → lifecycle update returned over 2: p50", out), out


def test_cli_startup_prints_min_median_max_per_command() -> None:
    out = run_bench("cli_startup.py", "--runs", "2", "--warmup", "0")
    for label in ("csm --help", "csm status --help", "csm status SUB (no stack: fails)"):
        assert re.search(
            rf"^{re.escape(label)} +wall s  min [\d.]+  median [\d.]+  max [\d.]+  \(2 runs, exit",
            out,
            re.M,
        ), out
    assert "(2 runs, exit 1)" in out.splitlines()[-1]  # nothing listens: status fails fast


def test_web_refresh_prints_the_page_and_the_ledger_counts() -> None:
    out = run_bench("web_refresh.py", "--contacts", "2000", "--repeats", "3")
    assert re.search(r"2,000 ledger rows in [\d.]+s", out), out
    assert re.search(r"one page refresh \(pass totals\): p50 [\d.]+ ms, max [\d.]+ ms", out), out
    assert re.search(r"the same counts from the ledger: p50 \d+ ms, max \d+ ms", out), out


def test_web_index_prints_both_ways_and_their_ratio() -> None:
    out = run_bench("web_index.py", "--rows", "5", "--repeats", "2")
    assert "5 sub-campaigns, 2 runs each" in out, out
    assert re.search(r"before / now \(p50\) +[\d.]+", out), out


def test_provider_pass_prints_both_ratios_and_the_receiver_p99() -> None:
    out = run_bench(
        "provider_pass.py",
        *("--sms", "200", "--calls", "50", "--concurrency", "16", "--receiver-callbacks", "400"),
    )
    assert re.search(r"^sms pass .* [\d,]+ contacts attempted, .* contacts/s$", out, re.M), out
    assert re.search(r"^voice pass .* [\d,]+ contacts attempted, .* contacts/s$", out, re.M), out
    assert re.search(r"^ceiling sms \(bare httpx loop, 16 lanes.* contacts/s$", out, re.M), out
    # the checks ran: every key placed once, no unknown, the ledger is the carrier's world
    assert re.search(r"^check sms: [\d,]+ ledger attempts = [\d,]+ placed once each", out, re.M)
    assert re.search(r"^check voice: .* 0 unknown, 0 unsettled$", out, re.M), out
    assert re.search(
        r"^provider pass: sms [\d.]+, calls [\d.]+ of the bare loop \(goal >= 0\.6\);"
        r" receiver p99 [\d.]+ ms at 500/s \(goal < 100\)$",
        out.splitlines()[-1],
    ), out


def test_provider_pass_refuses_bad_sizes() -> None:
    assert "--sms, --calls, --concurrency and --pool must be at least 1" in refused(
        "provider_pass.py", "--sms", "0"
    )


def test_concurrent_subcampaigns_prints_the_issue_s_last_line() -> None:
    out = run_bench(
        "concurrent_subcampaigns.py",
        *("--sub-campaigns", "3", "--contacts", "150", "--alone-contacts", "300"),
    )
    assert re.search(r"one voice pass alone: [\d,]+ rows in [\d.]+s = [\d,]+ rows/s", out), out
    assert re.search(r"together: [\d,]+ rows .* 3 of 3 completed", out), out
    assert re.search(r"by channel: email [\d,]+ rows .*, sms .*, voice ", out), out
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(
        r"concurrent: 3 sub-campaigns, ratio [\d.]+, failed activity attempts 0, unknown 0,"
        r" over cap 0, longest stall [\d.]+ s",
        last,
    ), last
