"""A database that cannot be used is one line, not a traceback: every command answers
``error: cannot connect to the database <url>: <reason>`` (or ``<url> is not a database URL``),
a hint naming where the URL comes from, and exit 2; a password in the URL is never printed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backorder.cli import cli
from backorder.store.engine import mask_url

ENV = {"BACKORDER_DATABASE_URL": None, "BACKORDER_CONFIG": None}
HINT = "--db URL, else BACKORDER_DATABASE_URL, else [database] url"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=ENV)
    # click 8.2+ keeps stderr apart and also in output; either way the text is in output
    return result.exit_code, result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens on it


def _server_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def _assert_one_error(output: str) -> list[str]:
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output
    assert len(lines) == 2, output  # the error and the hint
    assert lines[0].startswith("error: "), output
    return lines


@pytest.mark.parametrize("command", [["po", "list"], ["outbox", "list"], ["db", "upgrade"]])
def test_a_server_that_refuses_connections_is_one_line_without_the_password(command: list[str]) -> None:
    port = _free_port()
    code, output = _run("--db", f"postgresql+psycopg://bob:s3cret@127.0.0.1:{port}/shop", *command)
    assert code == 2, output
    error, hint = _assert_one_error(output)
    assert error.startswith(
        f"error: cannot connect to the database postgresql+psycopg://bob:***@127.0.0.1:{port}/shop: "
    )
    assert "refused" in error.lower()
    assert "s3cret" not in output
    assert HINT in hint


@pytest.mark.postgres
def test_a_database_that_does_not_exist_is_one_line() -> None:
    if not _server_answers(5432):
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432")
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/fix_w_no_such_database"
    code, output = _run("--db", url, "po", "list")
    assert code == 2, output
    error, hint = _assert_one_error(output)
    assert error.startswith(f"error: cannot connect to the database {url}: ")
    assert 'database "fix_w_no_such_database" does not exist' in error
    assert HINT in hint


@pytest.mark.parametrize("url", ["nonsense", "bob:s3cret@db.example/shop", "mysqlx://bob:s3cret@localhost/shop"])
def test_an_unparsable_url_is_named_as_such(url: str) -> None:
    code, output = _run("--db", url, "po", "list")
    assert code == 2, output
    error, hint = _assert_one_error(output)
    masked = url.replace(":s3cret@", ":***@")
    assert error == (
        f"error: {masked} is not a database URL (e.g. sqlite:///backorder.db or postgresql+psycopg://user@host/db)"
    )
    assert "s3cret" not in output
    assert "BACKORDER_DATABASE_URL" in hint and "--db" in hint and "[database] url" in hint


def test_the_url_from_the_config_file_is_the_one_named(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "backorder.toml"
    config.write_text(f'[database]\nurl = "postgresql+psycopg://ann:pw@127.0.0.1:{port}/shop"\n')
    code, output = _run("--config", str(config), "po", "list")
    assert code == 2, output
    error, _ = _assert_one_error(output)
    assert f"postgresql+psycopg://ann:***@127.0.0.1:{port}/shop" in error
    assert ":pw@" not in output


def test_sqlite_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'backorder.db'}"
    code, output = _run("--db", url, "po", "list")
    assert code == 2, output
    error, _ = _assert_one_error(output)
    assert error == f"error: cannot connect to the database {url}: unable to open database file"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://bob:s3cret@h/db", "postgresql+psycopg://bob:***@h/db"),
        ("postgresql://bob@h/db", "postgresql://bob@h/db"),
        ("sqlite:///backorder.db", "sqlite:///backorder.db"),
        ("not a url bob:pw@h", "not a url bob:***@h"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown
