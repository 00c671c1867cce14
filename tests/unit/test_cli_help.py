"""Every command of the ``backorder`` CLI says what it does and what each of its parameters is, and
the help shows what was written (rich markup eats ``[words]`` that are not escaped)."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from backorder.cli import cli


def _commands() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []

    def walk(prefix: str, command: Any) -> None:
        found.append((prefix, command))
        if hasattr(command, "commands"):  # a group (typer ships its own click)
            for name, sub in command.commands.items():
                walk(f"{prefix} {name}".strip(), sub)

    walk("", typer.main.get_command(cli))
    return found


COMMANDS = _commands()


def test_the_tree_is_walked() -> None:
    names = {name for name, _ in COMMANDS}
    assert {"bop", "receive", "outbox replay", "po ack", "inbox reprocess", "apikey revoke"} <= names


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[name or "backorder" for name, _ in COMMANDS])
def test_every_command_and_parameter_has_help(name: str, command: Any) -> None:
    assert (command.help or "").strip(), f"`backorder {name}` has no help text"
    assert "``" not in (command.help or ""), f"`backorder {name}` shows reStructuredText markup"
    undocumented = [p.name for p in command.params if p.name != "help" and not (getattr(p, "help", None) or "").strip()]
    assert not undocumented, f"`backorder {name}` parameters without help: {undocumented}"


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["connect", "--help"], "[channels.<id>]"),
        (["serve", "--help"], "[server] host"),
    ],
)
def test_bracketed_config_names_survive_rich_markup(args: list[str], shown: str) -> None:
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert shown in result.output


@pytest.mark.parametrize(("group", "valid"), [("outbox", "'dead'"), ("inbox", "'failed'")])
def test_an_unknown_status_is_refused_with_the_valid_ones(group: str, valid: str) -> None:
    result = CliRunner().invoke(cli, [group, "list", "--status", "bogus"], env={"COLUMNS": "160"})
    assert result.exit_code == 2
    assert "'bogus' is not one of" in result.output
    assert valid in result.output
