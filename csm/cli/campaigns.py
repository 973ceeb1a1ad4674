"""`csm campaigns`: (being written)."""

from __future__ import annotations

import typer

campaigns_app = typer.Typer(help="campaigns", no_args_is_help=True)
