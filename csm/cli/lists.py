"""`csm lists`: import contact list files and show what a list holds.

A thin layer over `csm.lists`: options become a mapping and keyword
arguments, the report becomes text or JSON. Everything is documented in
docs/lists.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

if TYPE_CHECKING:
    from csm.lists import ImportReport, ListSummary

lists_app = typer.Typer(
    help="Contact lists: import CSV / JSON Lines files, show counts.", no_args_is_help=True
)
console = Console()
JSON_OPTION = typer.Option(False, "--json", help="print JSON instead of text")
_DELIMITERS = {",": ",", ";": ";", "|": "|", "tab": "\t", "\\t": "\t", "\t": "\t"}


@lists_app.command("import")
def import_command(
    file: Path = typer.Argument(..., help="the list file: .csv (any of , ; | tab) or .jsonl"),
    list_name: str = typer.Option(..., "--list", help="the list to import into (created if new)"),
    mapping_file: Path | None = typer.Option(
        None, "--mapping", help="column mapping TOML (docs/lists.md); default: the headers"
    ),
    # csm.lists.mapping.FileFormat's values, spelled out so that `csm --help` need not load
    # the importer (a test checks they agree).
    file_format: Literal["csv", "jsonl"] | None = typer.Option(
        None, "--format", help="csv or jsonl; default: from the file name"
    ),
    delimiter: str | None = typer.Option(
        None, "--delimiter", help="CSV delimiter: , ; | or tab; default: sniffed"
    ),
    account: str | None = typer.Option(
        None, "--account", metavar="COLUMN", help="account key column"
    ),
    phones: list[str] | None = typer.Option(
        None,
        "--phone",
        metavar="COLUMN[:KIND]",
        help="phone column, KIND wireless (default) or landline (repeatable)",
    ),
    emails: list[str] | None = typer.Option(
        None, "--email", metavar="COLUMN", help="e-mail column (repeatable)"
    ),
    timezone: str | None = typer.Option(
        None, "--timezone", metavar="COLUMN", help="time zone column"
    ),
    postal_code: str | None = typer.Option(
        None, "--postal-code", metavar="COLUMN", help="postal code column"
    ),
    consent_voice: str | None = typer.Option(
        None, "--consent-voice", metavar="COLUMN", help="voice consent column"
    ),
    consent_sms: str | None = typer.Option(
        None, "--consent-sms", metavar="COLUMN", help="SMS consent column"
    ),
    consent_email: str | None = typer.Option(
        None, "--consent-email", metavar="COLUMN", help="e-mail consent column"
    ),
    attributes: list[str] | None = typer.Option(
        None,
        "--attribute",
        metavar="COLUMN[:TYPE]",
        help="attribute column, TYPE number, text, date or bool (repeatable)",
    ),
    ignore: list[str] | None = typer.Option(
        None, "--ignore", metavar="COLUMN", help="column to skip (repeatable)"
    ),
    strict: bool = typer.Option(False, "--strict", help="any bad row imports nothing (exit 1)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check and count; write nothing"),
    rejects: Path | None = typer.Option(
        None, "--rejects", help="where to write rejected rows; default FILE.rejects.csv"
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import a contact list file; valid rows go in, bad ones to a rejects file."""
    import asyncio

    from csm.lists import FileFormat, MappingOverrides, import_list, load_mapping
    from csm.lists.mapping import parse_attribute_flag, parse_device_flag
    from csm.settings import load_settings

    settings = load_settings()
    mapping = load_mapping(mapping_file) if mapping_file else None
    overrides = MappingOverrides(
        account=account,
        phones=tuple(parse_device_flag(flag) for flag in phones or ()),
        emails=tuple(emails or ()),
        timezone=timezone,
        postal_code=postal_code,
        consent_voice=consent_voice,
        consent_sms=consent_sms,
        consent_email=consent_email,
        attributes=tuple(parse_attribute_flag(flag) for flag in attributes or ()),
        ignore=tuple(ignore or ()),
    )
    chosen_delimiter = None
    if delimiter is not None:
        if delimiter not in _DELIMITERS:
            raise typer.BadParameter("use , ; | or tab", param_hint="--delimiter")
        chosen_delimiter = _DELIMITERS[delimiter]
    show_progress = not as_json and sys.stderr.isatty()

    async def run() -> ImportReport:
        from csm.database import engine_for

        with _ProgressBar(enabled=show_progress) as bar:
            async with engine_for(settings.effective_database_url, pool_size=1) as engine:
                return await import_list(
                    engine,
                    file,
                    list_name,
                    mapping,
                    overrides=None if overrides.is_empty() else overrides,
                    file_format=None if file_format is None else FileFormat(file_format),
                    delimiter=chosen_delimiter,
                    default_region=settings.default_region,
                    strict=strict,
                    dry_run=dry_run,
                    rejects_path=rejects,
                    progress=bar.update if show_progress else None,
                )

    report = asyncio.run(run())
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print("\n".join(report.summary()))  # plain lines: no wrapping, easy to grep


@lists_app.command("show")
def show_command(
    name: str = typer.Argument(..., help="the list's name"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Counts of a list: contacts, devices by kind, where the time zones came from."""
    import asyncio

    from csm.lists import show_list
    from csm.settings import load_settings

    settings = load_settings()

    async def run() -> ListSummary:
        from csm.database import engine_for

        async with engine_for(settings.effective_database_url, pool_size=1) as engine:
            return await show_list(engine, name)

    summary = asyncio.run(run())
    if as_json:
        print(json.dumps(summary.as_dict(), indent=2))
        return
    table = Table("what", "count", title=f"list {summary.name!r}")
    table.add_row("contacts", str(summary.contacts))
    for kind, count in summary.devices.items():
        table.add_row(f"devices: {kind}", str(count))
    table.add_row("contacts without devices", str(summary.contacts_without_devices))
    for source, count in summary.timezone_sources.items():
        label = "time zone unknown" if source == "unknown" else f"time zone from {source}"
        table.add_row(label, str(count))
    console.print(table)


class _ProgressBar:
    """A rich progress bar on stderr, fed by `import_list`'s progress callback."""

    _LABELS: ClassVar[dict[str, str]] = {
        "rows": "importing rows",
        "commit": "committing",
    }

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
            disable=not enabled,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _ProgressBar:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()

    def update(self, phase: str, done: int, total: int) -> None:
        task = self.tasks.get(phase)
        if task is None:
            task = self.progress.add_task(self._LABELS.get(phase, phase), total=total)
            self.tasks[phase] = task
        self.progress.update(task, completed=done, total=total)
