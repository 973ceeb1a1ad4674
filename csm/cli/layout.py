"""Tables that stay readable at any width: the wide table when it fits, else a narrow layout.

A rich table squeezed below its minimum width cuts column titles (`cha…`) and
breaks cells a letter or a word per line, which is what a log file, CI or an
80-column terminal got. `fits_or_narrow` decides at render time, for the width
the output really has (so `csm status --watch` follows a resized terminal), and
shows a vertical layout instead when the wide table would be cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult

#: A width no output has: for measuring a table's own minimum width.
UNBOUNDED = 100_000
#: Separates the facts of one line of a narrow layout.
DOT = " · "


def fits(table: Table, console: Console, options: ConsoleOptions) -> bool:
    """Whether `table` renders in the width at hand without cutting a title or a no-wrap cell."""
    return minimum_width(table, console, options) <= options.max_width


def minimum_width(table: Table, console: Console, options: ConsoleOptions) -> int:
    """The narrowest `table` gets before rich starts to cut: wrapping columns at their
    longest word, no-wrap columns whole (rich's own minimum takes their longest word
    too, and then cuts them).

    Uses rich's column measure and border width (`Table._measure_column`,
    `Table._extra_width`, both in rich 13 to 15): a reimplementation would drift from them.
    """
    roomy = options.update(max_width=UNBOUNDED)
    width = table._extra_width
    for column in table.columns:
        measured = table._measure_column(console, roomy, column)
        width += measured.maximum if column.no_wrap else measured.minimum
    return width


class WideOrNarrow:
    """The wide table when it fits the output's width, else the narrow layout."""

    def __init__(self, wide: Table, narrow: Callable[[], RenderableType]):
        self.wide = wide
        self.narrow = narrow

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.wide if fits(self.wide, console, options) else self.narrow()


def records(
    title: str | None, entries: Iterable[tuple[str, list[Text | str]]], *, heading: str
) -> Table:
    """A vertical layout: per entry its number, then its lines (the first one its name).

    Each line wraps on its own at word boundaries; nothing is cut.
    """
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("#", no_wrap=True)
    table.add_column(heading, overflow="fold")
    for number, lines in entries:
        cell = Text()
        for index, line in enumerate(lines):
            if index:
                cell.append("\n")
            cell.append(Text.from_markup(line) if isinstance(line, str) else line)
        table.add_row(number, cell)
    return table
