"""Staff accounts and sign-in throttling (a user audit):

* ``backorder user disable NAME`` revokes access at once (their sessions end; they cannot sign
  in) and is audited; ``user enable NAME`` restores it; ``user list`` shows the users;
* ``user add NAME --update`` keeps the role unless ``--role`` is given, and a password or role
  change ends the user's sessions;
* failed sign-ins lock the (user name, client address) pair and the address, never the user
  name for everybody: the real user, from another address, still signs in.

The CLI runs for real (``CliRunner``) on the test's database; the web app through its client."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_dashboard_support import PASSWORD, TestClient, add_user, client, csrf_of, seed, sign_in
from typer.testing import CliRunner, Result

from backorder import cli
from backorder.bootstrap import Application
from backorder.store import tables as t
from backorder.web import security
from backorder.web.app import create_app

NEW_PASSWORD = "a brand new passphrase"
ATTACKER = "203.0.113.9"
HOME = "198.51.100.7"


@pytest.fixture
def staffed(app: Application) -> Application:
    seed(app)
    for name, role in (("vera", "viewer"), ("otto", "operator"), ("ada", "admin")):
        add_user(app, name, role)
    return app


Run = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path, database_url: str, staffed: Application) -> Run:
    """``backorder user …`` on the test's database."""
    config = tmp_path / "backorder.toml"
    config.write_text("")

    def invoke(*args: str) -> Result:
        env = {"BACKORDER_CONFIG": None, "BACKORDER_DATABASE_URL": None, "BACKORDER_PASSWORD": None, "COLUMNS": "120"}
        return CliRunner().invoke(cli.cli, ["--config", str(config), "--db", database_url, "user", *args], env=env)

    return invoke


def role_of(app: Application, name: str) -> str:
    assert app.staff is not None
    found = app.staff.user(name)
    assert found is not None
    return found.role


def sessions_of(app: Application, name: str) -> int:
    s, u = t.staff_sessions.c, t.staff_users.c
    with app.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(t.staff_sessions.join(t.staff_users, u.id == s.user_id))
                .where(u.username == name)
            ).scalar_one()
        )


def audit_rows(app: Application) -> list[tuple[str, str, str, str, dict[str, object]]]:
    a = t.audit_log.c
    with app.engine.connect() as conn:
        return [
            (r.actor, r.action, r.target, r.outcome, r.detail) for r in conn.execute(select(t.audit_log).order_by(a.id))
        ]


def from_address(app: Application, address: str) -> TestClient:
    return TestClient(create_app(app), base_url="http://testserver", client=(address, 40000))


def attempt(http: TestClient, username: str, password: str) -> int:
    """One sign-in through the login form; the HTTP status (303 signed in, 401 refused, 429 locked)."""
    token = csrf_of(http.get("/login").text)
    response = http.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}, follow_redirects=False
    )
    return response.status_code


def signed_in(http: TestClient) -> bool:
    return http.get("/dashboard", follow_redirects=False).status_code == 200


# --- disable / enable -------------------------------------------------------------------------


def test_disabling_a_user_ends_their_session_at_once_and_refuses_their_sign_in(staffed: Application, run: Run) -> None:
    http = client(staffed)
    sign_in(http, "otto")
    assert signed_in(http) and sessions_of(staffed, "otto") == 1
    done = run("disable", "otto")
    assert done.exit_code == 0, done.output
    assert "disabled otto; 1 session(s) ended" in done.output
    assert sessions_of(staffed, "otto") == 0
    assert not signed_in(http)
    assert http.get("/dashboard/backorders", follow_redirects=False).headers["location"].startswith("/login")
    assert attempt(client(staffed), "otto", PASSWORD) == 401
    rows = audit_rows(staffed)
    assert ("cli", "user_disable", "otto", "ok", {"sessions_ended": 1}) in rows
    assert any(r[:4] == ("user:otto", "login", "", "failed") and r[4].get("reason") == "disabled" for r in rows), rows
    with staffed.engine.connect() as conn:
        assert (
            conn.execute(select(t.staff_users.c.active).where(t.staff_users.c.username == "otto")).scalar_one() is False
        )


def test_enabling_a_disabled_user_lets_them_sign_in_again(staffed: Application, run: Run) -> None:
    assert run("disable", "vera").exit_code == 0
    assert attempt(client(staffed), "vera", PASSWORD) == 401
    done = run("enable", "vera")
    assert done.exit_code == 0 and "enabled vera" in done.output
    assert attempt(client(staffed), "vera", PASSWORD) == 303
    assert ("cli", "user_enable", "vera", "ok", {}) in audit_rows(staffed)


def test_disabling_or_enabling_an_unknown_user_fails_and_says_so(staffed: Application, run: Run) -> None:
    for command in ("disable", "enable"):
        done = run(command, "nobody")
        assert done.exit_code == 2 and "no user 'nobody'" in done.output, done.output


def test_disabling_one_user_leaves_the_others_signed_in(staffed: Application, run: Run) -> None:
    vera, ada = client(staffed), client(staffed)
    sign_in(vera, "vera")
    sign_in(ada, "ada")
    assert run("disable", "vera").exit_code == 0
    assert not signed_in(vera) and signed_in(ada)


# --- user add --update -----------------------------------------------------------------------


def test_updating_a_password_without_role_keeps_the_admin_an_admin_and_ends_their_sessions(
    staffed: Application, run: Run
) -> None:
    http = client(staffed)
    sign_in(http, "ada")
    done = run("add", "ada", "--update", "--password", NEW_PASSWORD)
    assert done.exit_code == 0, done.output
    assert "updated ada (admin); 1 session(s) ended" in done.output
    assert role_of(staffed, "ada") == "admin"
    assert not signed_in(http)
    assert attempt(client(staffed), "ada", PASSWORD) == 401
    fresh = client(staffed)
    assert attempt(fresh, "ada", NEW_PASSWORD) == 303
    assert fresh.get("/dashboard/audit").status_code == 200  # still an admin
    assert ("cli", "user_update", "ada", "ok", {"role": "admin", "password": True, "sessions_ended": 1}) in audit_rows(
        staffed
    )


def test_a_role_change_ends_the_users_sessions_and_applies_at_their_next_sign_in(
    staffed: Application, run: Run
) -> None:
    http = client(staffed)
    sign_in(http, "otto")
    done = run("add", "otto", "--update", "--role", "viewer", "--password", NEW_PASSWORD)
    assert done.exit_code == 0, done.output
    assert role_of(staffed, "otto") == "viewer"
    assert not signed_in(http)
    sign_in(http, "otto", NEW_PASSWORD)
    assert "Cancel selected lines" not in http.get("/dashboard/backorders").text


def test_an_unknown_role_is_refused_on_update_and_nothing_changes(staffed: Application, run: Run) -> None:
    http = client(staffed)
    sign_in(http, "otto")
    done = run("add", "otto", "--update", "--role", "root", "--password", NEW_PASSWORD)
    assert done.exit_code == 2 and "role must be one of" in done.output
    assert role_of(staffed, "otto") == "operator" and signed_in(http)
    assert attempt(client(staffed), "otto", PASSWORD) == 303  # the password did not change either


def test_a_new_user_without_role_is_a_viewer(staffed: Application, run: Run) -> None:
    done = run("add", "nina", "--password", NEW_PASSWORD)
    assert done.exit_code == 0 and "added nina (viewer)" in done.output
    assert role_of(staffed, "nina") == "viewer"
    assert run("add", "nina", "--password", NEW_PASSWORD).exit_code == 2


def test_user_list_shows_names_roles_whether_active_and_last_sign_in(staffed: Application, run: Run) -> None:
    sign_in(client(staffed), "otto")
    assert run("disable", "vera").exit_code == 0
    done = run("list")
    assert done.exit_code == 0, done.output
    lines = {line.split()[1]: line for line in done.output.splitlines() if line.strip().startswith("│")}
    assert set(lines) >= {"ada", "otto", "vera"}
    assert "admin" in lines["ada"] and "yes" in lines["ada"] and "never" in lines["ada"]
    assert "operator" in lines["otto"] and "2026-03-02 09:00" in lines["otto"]
    assert "viewer" in lines["vera"] and "disabled" in lines["vera"]


def test_the_audit_page_says_how_to_disable_users(staffed: Application) -> None:
    http = client(staffed)
    sign_in(http, "ada")
    page = http.get("/dashboard/audit").text
    assert "backorder user disable NAME" in page and "backorder user enable NAME" in page


# --- throttling ------------------------------------------------------------------------------


def test_wrong_passwords_from_one_address_do_not_lock_the_user_out_from_another(staffed: Application) -> None:
    attacker = from_address(staffed, ATTACKER)
    for _ in range(security.THROTTLE_LIMIT):
        assert attempt(attacker, "otto", "wrong password") == 401
    assert attempt(attacker, "otto", PASSWORD) == 429  # a brute force from one address is still stopped
    assert attempt(from_address(staffed, HOME), "otto", PASSWORD) == 303
    # and the attacker stays locked out of otto after the real user signed in
    assert attempt(attacker, "otto", PASSWORD) == 429


def test_a_locked_name_from_one_address_leaves_other_names_from_that_address_alone(staffed: Application) -> None:
    shared = from_address(staffed, ATTACKER)
    for _ in range(security.THROTTLE_LIMIT):
        assert attempt(shared, "otto", "wrong password") == 401
    assert attempt(from_address(staffed, ATTACKER), "vera", PASSWORD) == 303


def test_an_address_trying_many_names_is_locked_for_every_name(staffed: Application) -> None:
    attacker = from_address(staffed, ATTACKER)
    names = [f"guess{i}" for i in range(security.THROTTLE_ADDRESS_LIMIT // (security.THROTTLE_LIMIT - 1) + 1)]
    tried = 0
    for name in names:  # fewer than THROTTLE_LIMIT per name: no pair locks, only the address
        for _ in range(security.THROTTLE_LIMIT - 1):
            if tried < security.THROTTLE_ADDRESS_LIMIT:
                assert attempt(attacker, name, "wrong password") == 401
                tried += 1
    assert tried == security.THROTTLE_ADDRESS_LIMIT
    assert attempt(attacker, "vera", PASSWORD) == 429
    assert attempt(from_address(staffed, HOME), "vera", PASSWORD) == 303
    staffed.clock.advance(minutes=16)  # type: ignore[attr-defined]
    assert attempt(attacker, "vera", PASSWORD) == 303


def test_no_failure_is_ever_counted_under_the_user_name_alone(staffed: Application) -> None:
    attacker = from_address(staffed, ATTACKER)
    for _ in range(security.THROTTLE_LIMIT + 1):
        attempt(attacker, "Otto", "wrong password")
    with staffed.engine.connect() as conn:
        keys = set(conn.execute(select(t.login_failures.c.key)).scalars())
    assert keys == {f"pair:{ATTACKER}|otto", f"ip:{ATTACKER}"}


def test_ipv6_clients_count_by_their_64_network_and_mapped_ipv4_as_ipv4() -> None:
    assert security.client_key("2001:db8:1:2::5") == security.client_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert security.client_key("2001:db8:1:3::5") != security.client_key("2001:db8:1:2::5")
    assert security.client_key("::ffff:203.0.113.9") == ATTACKER
    assert security.client_key(ATTACKER) == ATTACKER
    assert security.client_key("testclient") == "testclient"
