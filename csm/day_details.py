"""What ops see of a sub-campaign's day without a database: the Temporal UI's details and
the `progress` query's counts.

Pure functions of today's passes (the workflow calls them; tests may too). Ids, names,
codes and counts only: whatever is here shows in the Temporal UI.
"""

from __future__ import annotations

from datetime import date

from csm.plan import PassCounts, PassStatus, PlannedPass


def current_details(
    sub_campaign: str, day: date | None, state: str, passes: list[PlannedPass]
) -> str:
    """The workflow's current details (markdown): the day's passes, counts and notes."""
    lines = [
        f"**{sub_campaign}** · {day.isoformat() if day else ''} · {state}",
        "",
        "| # | pass | channel | status | selected | attempted | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in passes:
        c = p.counts or PassCounts()
        lines.append(
            f"| {p.number} | {p.definition.name} | {p.definition.channel.value} | "
            f"{p.status.value}{' (amended)' if p.amended else ''} | "
            f"{c.selected} | {c.attempted} | {p.note.replace('|', '/')} |"
        )
    return "\n".join(lines)


def progress_counts(passes: list[PlannedPass]) -> dict[str, int]:
    """Passes by status, and the counts of the passes that have reported theirs."""
    counts: dict[str, int] = {"passes": len(passes)}
    for status in PassStatus:
        counts[f"passes_{status.value}"] = sum(1 for p in passes if p.status is status)
    for planned in passes:
        if planned.counts:
            for name in ("selected", "attempted", "skipped", "unknown"):
                counts[name] = counts.get(name, 0) + getattr(planned.counts, name)
    return counts


def day_totals(earlier: dict[str, int], passes: list[PlannedPass]) -> dict[str, int]:
    """Attempts by result code over every day so far: `earlier` days' plus today's passes."""
    totals = dict(earlier)
    for planned in passes:
        for code, count in (planned.counts.results if planned.counts else {}).items():
            totals[code] = totals.get(code, 0) + count
    return totals
