"""The `csm` command line: help, config, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

CSM = [sys.executable, "-m", "csm.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CSM, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


def test_help_names_every_command_group() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("config", "worker", "dev", "db"):
        assert command in result.stdout


def test_config_json_masks_secrets() -> None:
    result = run(
        "config",
        "--json",
        env={"CSM_SMTP_PASSWORD": "hunter2", "DATABASE_URL": "postgresql://u:pw@h/d"},
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert "hunter2" not in result.stdout and ":pw@" not in result.stdout
    assert shown["smtp_password"] == "********"
    assert shown["effective_database_url"] == "postgresql+asyncpg://u:********@h/d"


def test_unknown_command_exits_2_with_usage() -> None:
    result = run("launch-rockets")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_run_and_exit_keeps_the_command_code() -> None:
    script = (
        "import sys\n"
        "from csm.exit import run_and_exit\n"
        "def command():\n"
        "    print('done')\n"
        "    sys.exit(3)\n"
        "run_and_exit(command)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 3
    assert result.stdout == "done\n"


def test_csm_errors_are_one_line_not_a_traceback() -> None:
    script = (
        "from csm.exit import run_and_exit\n"
        "from csm.errors import StackError\n"
        "def command():\n"
        "    raise StackError('port 1 is taken')\n"
        "run_and_exit(command)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == "csm: error: port 1 is taken\n"


#: What `csm --help` must not load: Temporal's client, SQLAlchemy's asyncio layer, the list
#: importer, and the settings and strategy models behind them (issue 13: a slow start).
HEAVY_MODULES = (
    "temporalio",
    "sqlalchemy.ext.asyncio",
    "csm.lists.importer",
    "alembic",
    "pydantic_settings",
    "csm.strategy.model",
)


def test_the_command_line_imports_no_heavy_module_until_a_command_runs() -> None:
    script = (
        "import sys\n"
        "import csm.cli.main\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


#: Every module `csm status` (with --watch, --json) loads while it runs: the command, its
#: reads, the plan's types and Temporal's client.
STATUS_PATH = (
    "csm.cli.main",
    "csm.cli.subcampaigns",
    "csm.cli.status_view",
    "csm.cli.temporal",
    "csm.control",
    "csm.settings",
    "csm.lookups",
    "csm.results",
    "csm.temporal_client",
)
#: What it must not load (issue 13: `csm status` in 0.7 s): SQLAlchemy, SQLModel and the
#: tables, and the workflow module with the activities behind it.
NOT_FOR_STATUS = (
    "sqlalchemy",
    "sqlmodel",
    "csm.tables",
    "csm.database",
    "workflows.subcampaign",
    "activities",
)


def test_the_status_command_loads_neither_sqlalchemy_nor_the_workflow_module() -> None:
    script = (
        "import sys\n"
        f"for name in {STATUS_PATH!r}: __import__(name)\n"
        "from csm.results import live_status, query_plan\n"
        f"print(sorted(m for m in {NOT_FOR_STATUS!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


def test_the_list_format_choices_are_the_importers() -> None:
    from typing import get_args, get_type_hints

    from csm.cli.lists import import_command
    from csm.lists.mapping import FileFormat

    hint = get_type_hints(import_command)["file_format"]  # Literal["csv", "jsonl"] | None
    choices = next(arg for arg in get_args(hint) if arg is not type(None))
    assert set(get_args(choices)) == {f.value for f in FileFormat}
