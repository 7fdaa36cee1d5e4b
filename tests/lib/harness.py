"""Shared test harness for the Python-driven tests (labels http, sim).

It starts real processes (mrgate, the GitLab simulator) on free loopback ports, creates a fresh PostgreSQL
database per test file on the test cluster named by MRGATE_TEST_DATABASE_URL, and stops everything at exit.
A test that needs PostgreSQL, mrgate or the simulator fails when it is missing; nothing is skipped.
"""
import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

BUILD_DIR = os.environ.get("MRGATE_BUILD_DIR", os.path.abspath("build"))
SOURCE_DIR = os.environ.get("MRGATE_SOURCE_DIR", os.path.abspath("."))
_procs = []


def env_required(name):
    v = os.environ.get(name)
    if not v:
        raise SystemExit(f"test setup: {name} is not set (run the tests through 'make test')")
    return v


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workdir(name):
    """A fresh directory under the build tree for one test's files (logs, keys, clusters)."""
    d = os.path.join(BUILD_DIR, "test-work", name)
    os.makedirs(d, exist_ok=True)
    path = tempfile.mkdtemp(prefix="run-", dir=d)
    os.chmod(path, 0o755)  # a private PostgreSQL cluster in here runs as another user when we are root
    return path


class Proc:
    """A child process whose stdout+stderr go to a log file; stopped at exit."""

    def __init__(self, argv, log_path, env=None, stdin_data=None):
        self.argv = argv
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.log_start = self.log.tell()  # the log is appended to across restarts: this run's part starts here
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=full_env,
                                  stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                                  start_new_session=True)
        if stdin_data is not None:
            self.p.stdin.write(stdin_data.encode())
            self.p.stdin.close()
        _procs.append(self)

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.flush()
        return self.p.returncode

    def kill(self):
        return self.stop(signal.SIGKILL)

    def output(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def output_this_run(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            f.seek(self.log_start)
            return f.read().decode("utf-8", "replace")


@atexit.register
def _stop_all():
    for p in reversed(_procs):
        try:
            p.stop(timeout=5)
        except Exception:
            pass


def wait_http(url, timeout=30, proc=None):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc is not None and not proc.alive():
            raise AssertionError(f"{proc.argv[0]} exited early ({proc.p.returncode}):\n{proc.output()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except Exception as e:  # connection refused while starting
            last = e
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {timeout}s: {last}")


def wait_serving(proc, port, timeout=30):
    """Wait until the mrgate that proc runs (itself or through scripts/run.sh) holds port: any server on the port would
    answer /healthz, and a free port may be taken by another suite before ours binds it, but mrgate logs "serving on
    <scheme>://<listen>" only once it holds the port. Returns whether proc is still alive (False: it gave up, its output
    says why)."""
    listen = f"://127.0.0.1:{port} "
    wait_for(lambda: listen in proc.output_this_run() or not proc.alive(), timeout=timeout,
             what=f"mrgate to log that it serves on port {port}")
    return proc.alive()


def wait_for(fn, timeout=30, what="condition", interval=0.2, logs=None):
    """Call fn every interval seconds until it returns a truthy value, and return that value. After timeout seconds
    raise AssertionError naming what, with fn's last value and, when logs is given (an object with .logs(), such
    as a Mrgate or a Sim), the tail of its log."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    tail = f"\n{logs.logs()[-3000:]}" if logs is not None else ""
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}{tail}")


# --- HTTP client -------------------------------------------------------------------------------------------------

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name)


class Client:
    """A small HTTP client with a cookie jar and optional default headers (no redirects followed)."""

    def __init__(self, base, headers=None, ssl_context=None, spec=False):
        self.base = base.rstrip("/")
        self.headers = dict(headers or {})
        self.cookies = {}
        self.ssl_context = ssl_context  # for https bases with a private CA
        self.spec = spec  # check every answer against web/openapi.yaml (mrgate's clients)

    def request(self, method, path, body=None, headers=None, raw=None, timeout=60):
        url = path if path.startswith("http") else self.base + path
        h = dict(self.headers)
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
        elif body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        req = urllib.request.Request(url, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context) as r:
                resp = Response(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            resp = Response(e.code, e.headers, e.read())
        if self.spec:
            import openapi_check
            openapi_check.check_response(method, url, resp.status, resp.headers.get("Content-Type"), resp.body)
        for v in resp.headers.get_all("Set-Cookie") or []:
            k, _, rest = v.partition("=")
            val = rest.split(";", 1)[0]
            if val == "" or "Max-Age=0" in v:
                self.cookies.pop(k, None)
            else:
                self.cookies[k] = val
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


# --- PostgreSQL ------------------------------------------------------------------------------------------------------

def _psql(url, sql):
    r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"psql failed: {r.stderr}")
    return r.stdout


def db_url_with_name(url, dbname):
    """Replace the database name of a libpq URL."""
    p = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((p.scheme, p.netloc, "/" + dbname, p.query, p.fragment))


def fresh_database(name):
    """Create an empty database for this test on the test cluster and return its URL."""
    admin = env_required("MRGATE_TEST_DATABASE_URL")
    dbname = f"t_{name}_{os.getpid()}".lower()
    _psql(admin, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    _psql(admin, f'CREATE DATABASE "{dbname}"')
    return db_url_with_name(admin, dbname)


def sql(url, query):
    """Run a query and return rows as lists of strings (psql unaligned, tab-separated)."""
    r = subprocess.run(["psql", "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", query],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"psql failed: {r.stderr}")
    return [line.split("\t") for line in r.stdout.splitlines() if line != ""]


def wait_other_clients_gone(url, timeout=10):
    """Wait until no other client is connected to this database. After a SIGKILL, a statement the killed process
    had already sent (a claim, a commit) still runs to its end in its PostgreSQL backend; state read before that
    backend exits can be overtaken by it."""
    deadline = time.time() + timeout
    q = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
         " AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
    while int(sql(url, q)[0][0]) != 0:
        if time.time() > deadline:
            raise AssertionError(f"clients still connected to the database after {timeout}s: "
                                 f"{sql(url, 'SELECT pid, state, left(query, 80) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()')}")
        time.sleep(0.02)


# --- mrgate ----------------------------------------------------------------------------------------------------------

ADMIN_PASSWORD = "correct horse battery staple"


class Mrgate:
    """A running `mrgate serve` on a free port against a given database."""

    def __init__(self, name, db_url=None, env=None, workdir_path=None, port=None):
        self.bin = env_required("MRGATE_BIN")
        self.dir = workdir_path or workdir(name)
        self.db_url = db_url or fresh_database(name)
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            "MRGATE_DATABASE_URL": self.db_url,
            "MRGATE_LISTEN": f"127.0.0.1:{self.port}",
            "MRGATE_PUBLIC_URL": self.base,
            "MRGATE_SECRET_KEY_FILE": os.path.join(self.dir, "secret.key"),
            "MRGATE_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MRGATE_WEB_ROOT": os.path.join(SOURCE_DIR, "web"),
            "MRGATE_LOG_LEVEL": "debug",
        }
        if env:
            self.env.update(env)
        self.proc = None
        self.start()

    def start(self):
        self.proc = Proc([self.bin, "serve"], os.path.join(self.dir, "mrgate.log"), env=self.env)
        wait_serving(self.proc, self.port)
        wait_http(self.base + "/healthz", proc=self.proc)
        return self

    def stop(self, sig=signal.SIGTERM):
        return self.proc.stop(sig)

    def cli(self, *args, stdin=None, env=None):
        e = dict(os.environ)
        e.update(self.env)
        if env:
            e.update(env)
        return subprocess.run([self.bin, *args], input=stdin, capture_output=True, text=True, env=e)

    def client(self):
        """A client whose every answer is checked against web/openapi.yaml."""
        return Client(self.base, spec=True)

    def login(self, user="admin", password=ADMIN_PASSWORD):
        """A client logged in as the admin, with the CSRF token set for writes."""
        c = self.client()
        r = c.post("/api/session", {"username": user, "password": password})
        assert r.status == 200, (r.status, r.body)
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c

    def wait_for(self, fn, timeout=30, what="condition", interval=0.2):
        """harness.wait_for, failing with the tail of this instance's log."""
        return wait_for(fn, timeout, what, interval, logs=self)

    def sql(self, query):
        """Run a query on this instance's database (harness.sql)."""
        return sql(self.db_url, query)

    def logs(self):
        return self.proc.output()


# --- minimal test runner ----------------------------------------------------------------------------------------------

def run(tests):
    """Run test functions in order; print a closing 'N passed, N failed' line; exit 1 on any failure."""
    import traceback
    passed = failed = 0
    only = os.environ.get("TEST_ONLY")
    for t in tests:
        if only and only not in t.__name__:
            continue
        start = time.time()
        try:
            t()
            passed += 1
            print(f"ok   {t.__name__} ({time.time() - start:.2f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__} ({time.time() - start:.2f}s)", flush=True)
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed", flush=True)
    _stop_all()
    sys.exit(1 if failed or not passed else 0)
