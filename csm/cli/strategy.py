"""`csm strategy`: (being written)."""

from __future__ import annotations

import typer

strategy_app = typer.Typer(help="strategy", no_args_is_help=True)
