"""`csm lists`: (being written)."""

from __future__ import annotations

import typer

lists_app = typer.Typer(help="lists", no_args_is_help=True)
