"""HTTP: /readyz follows the database: 503 while the test's own PostgreSQL is stopped, 200 again once it is back,
without restarting mrgate (the store reconnects by itself)."""
import concurrent.futures
import os
import subprocess
import time

import harness
from harness import Mrgate, run

PG = os.path.join(harness.SOURCE_DIR, "scripts", "pg.sh")
cluster = os.path.join(harness.workdir("readyz"), "pg")


def pg(*args):
    r = subprocess.run([PG, *args, cluster], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


pg("start-fast")
admin = subprocess.run([PG, "url", cluster, "postgres"], capture_output=True, text=True).stdout.strip()
subprocess.run(["psql", "-X", "-q", "-d", admin, "-c", "CREATE DATABASE readyz"], check=True)
db_url = subprocess.run([PG, "url", cluster, "readyz"], capture_output=True, text=True).stdout.strip()
srv = Mrgate("readyz", db_url=db_url)


def wait_status(path, want, timeout=20, says=None):
    """The first answer with status want (and, with says, a message holding it)."""
    c = srv.client()
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = c.get(path)
        if r.status == want and (says is None or says in r.json().get("message", "")):
            return r
        time.sleep(0.2)
    raise AssertionError(f"{path} did not answer {want} within {timeout}s (last {r.status} {r.body})")


def test_ready_with_database():
    r = wait_status("/readyz", 200)
    assert r.json()["schema_version"] >= 1


def login():
    return srv.client().post("/api/session", {"username": "admin", "password": harness.ADMIN_PASSWORD}).status


def test_not_ready_without_database_then_ready_again():
    # several pooled connections open before the restart (parallel logins take one each)
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as ex:
        got = list(ex.map(lambda _: login(), range(6)))
        assert got == [200] * 6, got
    pg("stop")
    try:
        r = wait_status("/readyz", 503)
        assert r.json()["error"] == "unavailable" and "unreachable" in r.json()["message"]
        # liveness is independent of the database
        assert srv.client().get("/healthz").status == 200
        # an API call that needs the database says so instead of hanging or crashing
        r = srv.client().post("/api/session", {"username": "admin", "password": harness.ADMIN_PASSWORD})
        assert r.status == 503, (r.status, r.body)
    finally:
        pg("start-fast")
    wait_status("/readyz", 200)
    # logins work again on the same process, each at once: a pooled connection the restart ended is noticed when it
    # is taken from the pool, not by failing its first statement (CI saw "503 could not log in" after readyz was 200)
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as ex:
        got = list(ex.map(lambda _: login(), range(6)))
        assert got == [200] * 6, got
    for _ in range(6):
        assert srv.client().get("/healthz").status == 200 and login() == 200
    assert srv.proc.alive()


def test_not_ready_when_schema_is_behind():
    subprocess.run(["psql", "-X", "-q", "-d", db_url, "-c",
                    "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)"],
                   check=True)
    # (a pooled connection left from the restart above may first answer "unreachable" once, then reconnect)
    r = wait_status("/readyz", 503, says="mrgate migrate")
    assert r.json()["error"] == "unavailable", r.body


def test_not_ready_when_schema_is_ahead():
    """A database migrated by a newer mrgate: "run mrgate migrate" would not help (it has nothing to apply); the
    answer says to run the newer mrgate instead."""
    subprocess.run(["psql", "-X", "-q", "-d", db_url, "-c",
                    "INSERT INTO schema_migrations (version, name) SELECT max(version) + 2, 'from_the_future'"
                    " FROM schema_migrations"], check=True)
    r = wait_status("/readyz", 503, says="newer mrgate")
    assert "mrgate migrate" not in r.json()["message"], r.body


try:
    run([test_ready_with_database, test_not_ready_without_database_then_ready_again,
         test_not_ready_when_schema_is_behind, test_not_ready_when_schema_is_ahead])
finally:
    pg("stop")
