"""Drive the GitLab simulator (tests/gitlab-sim) from Python tests.

    from sim import Sim
    sim = Sim("my_test")                      # starts gitlab-sim on a free loopback port
    sim.add_token("glpat-x", scopes=["api"], access={"acme": 50})
    sim.seed("acme", projects=50, depth=2, fanout=3, tier="premium")
    gl = sim.client("glpat-x")                # harness.Client with PRIVATE-TOKEN set
    r = gl.get("/api/v4/groups/acme/projects?include_subgroups=true")

Every control method maps to one /__sim/ endpoint documented in tests/gitlab-sim/README.md and returns its
decoded JSON; a non-2xx answer raises AssertionError. The process is stopped at exit (harness.Proc).
"""
import json
import os
import ssl
import subprocess
import time
import urllib.parse

import harness


def sim_binary():
    return harness.env_required("GITLAB_SIM_BIN")


def make_self_signed(directory, cn="127.0.0.1"):
    """Write a self-signed certificate for 127.0.0.1/localhost. Returns (pem_with_key_and_cert, cert_only)."""
    key = os.path.join(directory, "sim.key")
    crt = os.path.join(directory, "sim.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", f"/CN={cn}",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    pem = os.path.join(directory, "sim.pem")
    with open(pem, "w") as out:
        out.write(open(key).read())
        out.write(open(crt).read())
    return pem, crt


class Sim:
    """A running gitlab-sim. tls=True serves HTTPS with a fresh self-signed certificate (self.ca_file).
    local_hooks=True starts it with --allow-local-hooks: GitLab refuses loopback and private hook URLs unless the
    instance allows local requests, and every mrgate under test listens on loopback, so its tests ask for it;
    the simulator's own strictness tests pass local_hooks=False."""

    def __init__(self, name="sim", tls=False, args=None, port=None, workdir_path=None, local_hooks=True):
        self.dir = workdir_path or harness.workdir(name)
        self.port = port or harness.free_port()
        self.tls = tls
        self.scheme = "https" if tls else "http"
        self.base = f"{self.scheme}://127.0.0.1:{self.port}"
        self.ca_file = None
        argv = [sim_binary(), "--listen", f"127.0.0.1:{self.port}"]
        if tls:
            pem, crt = make_self_signed(self.dir)
            self.ca_file = crt
            argv += ["--tls-cert", pem]
        if local_hooks:
            argv += ["--allow-local-hooks"]
        argv += list(args or [])
        self.proc = harness.Proc(argv, os.path.join(self.dir, "gitlab-sim.log"))
        self._wait_ready()

    def _ssl_context(self):
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=self.ca_file)

    def _wait_ready(self, timeout=20):
        import urllib.request
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if not self.proc.alive():
                raise AssertionError(f"gitlab-sim exited early:\n{self.proc.output()[-4000:]}")
            try:
                with urllib.request.urlopen(self.base + "/__sim/health", timeout=2,
                                            context=self._ssl_context()) as r:
                    # Another test's simulator may hold the port we picked: only our own process counts.
                    if r.status == 200 and json.loads(r.read()).get("pid") == self.proc.p.pid:
                        return
            except Exception as e:
                last = e
                time.sleep(0.05)
        raise AssertionError(f"gitlab-sim did not start: {last}\n{self.proc.output()[-4000:]}")

    # --- plumbing ----------------------------------------------------------------------------------------

    @property
    def api(self):
        """Base URL of the REST API (what mrgate calls its GitLab URL is self.base)."""
        return self.base + "/api/v4"

    def client(self, token=None, bearer=False):
        """A harness.Client on the simulator, authenticated with token (PRIVATE-TOKEN or Bearer)."""
        headers = {}
        if token is not None:
            headers = {"Authorization": f"Bearer {token}"} if bearer else {"PRIVATE-TOKEN": token}
        c = harness.Client(self.base, headers, ssl_context=self._ssl_context())
        return c

    def _call(self, method, path, body=None, expect=(200, 201, 204)):
        r = self.client().request(method, path, body)
        if r.status not in expect:
            raise AssertionError(f"gitlab-sim {method} {path}: {r.status} {r.body[:500]!r}")
        return r.json() if r.body else None

    def logs(self):
        return self.proc.output()

    def stop(self):
        return self.proc.stop()

    # --- world -------------------------------------------------------------------------------------------

    def health(self):
        return self._call("GET", "/__sim/health")

    def reset(self):
        return self._call("POST", "/__sim/reset")

    def add_token(self, token, kind="personal", scopes=("api",), expires_at=None, revoked=False, username=None,
                  bot=None, access=None, admin=False, name=None):
        body = {"token": token, "kind": kind, "scopes": list(scopes), "expires_at": expires_at,
                "revoked": revoked, "access": access or {}, "admin": admin}
        if username is not None:
            body["username"] = username
        if bot is not None:
            body["bot"] = bot
        if name is not None:
            body["name"] = name
        return self._call("POST", "/__sim/tokens", body)

    def revoke_token(self, token):
        return self._call("POST", "/__sim/tokens/revoke", {"token": token})

    def tokens(self):
        return self._call("GET", "/__sim/tokens")

    def add_group(self, full_path, tier=None, visibility=None):
        body = {"full_path": full_path}
        if tier:
            body["tier"] = tier
        if visibility:
            body["visibility"] = visibility
        return self._call("POST", "/__sim/groups", body)

    def seed(self, root, projects, depth=2, fanout=3, tier=None, visibility=None):
        body = {"root": root, "projects": projects, "depth": depth, "fanout": fanout}
        if tier:
            body["tier"] = tier
        if visibility:
            body["visibility"] = visibility
        return self._call("POST", "/__sim/seed", body)

    def add_project(self, namespace, path, name=None, files=None, visibility=None, default_branch=None,
                    notify=True, wait=False):
        body = {"namespace": namespace, "path": path, "notify": notify, "wait": wait}
        for k, v in (("name", name), ("files", files), ("visibility", visibility),
                     ("default_branch", default_branch)):
            if v is not None:
                body[k] = v
        return self._call("POST", "/__sim/projects", body)

    def project(self, project_id):
        """Internal view: settings, hooks with their secret tokens, head sha."""
        return self._call("GET", f"/__sim/projects/{_quote(project_id)}")

    def remove_project(self, project_id, wait=False):
        return self._call("DELETE", f"/__sim/projects/{_quote(project_id)}" + ("?wait=true" if wait else ""))

    def archive_project(self, project_id, archived=True):
        return self._call("POST", f"/__sim/projects/{_quote(project_id)}/archive", {"archived": archived})

    def transfer_project(self, project_id, namespace):
        """Move a project to another group (GitLab's PUT /projects/:id/transfer); returns the project view."""
        return self._call("POST", f"/__sim/projects/{_quote(project_id)}/transfer", {"namespace": namespace})

    def pending_delete(self, project_id, on="today"):
        body = {} if on == "today" else {"on": on}
        return self._call("POST", f"/__sim/projects/{_quote(project_id)}/pending_delete", body)

    # --- merge requests ----------------------------------------------------------------------------------

    def open_mr(self, project_id, files, source_branch=None, target_branch=None, title=None, notify=True,
                wait=False):
        """files: [{"path": ..., "content": str|None (deleted), "old_content": str|None (optional)}]."""
        body = {"project_id": project_id, "files": files, "notify": notify, "wait": wait}
        for k, v in (("source_branch", source_branch), ("target_branch", target_branch), ("title", title)):
            if v is not None:
                body[k] = v
        return self._call("POST", "/__sim/merge_requests", body)

    def push_mr(self, project_id, iid, files, message=None, wait=False):
        body = {"files": files, "wait": wait}
        if message:
            body["message"] = message
        return self._call("POST", f"/__sim/merge_requests/{_quote(project_id)}/{iid}/push", body)

    def mr(self, project_id, iid):
        """Internal view of an MR: state, sha, auto_merge, approved_by (user ids)."""
        return self._call("GET", f"/__sim/merge_requests/{_quote(project_id)}/{iid}")

    def close_mr(self, project_id, iid, wait=False):
        return self._call("POST", f"/__sim/merge_requests/{_quote(project_id)}/{iid}/close", {"wait": wait})

    def reopen_mr(self, project_id, iid, wait=False):
        return self._call("POST", f"/__sim/merge_requests/{_quote(project_id)}/{iid}/reopen", {"wait": wait})

    def merge_mr(self, project_id, iid, wait=False):
        return self._call("POST", f"/__sim/merge_requests/{_quote(project_id)}/{iid}/merge", {"wait": wait})

    # --- observation -------------------------------------------------------------------------------------

    def ci_pipeline(self, project_id, iid, kind="branch", status="running", wait=True):
        """A project's own CI pipeline for MR iid: kind branch | detached | merged_results (tests/gitlab-sim README)."""
        return self._call("POST", "/__sim/pipelines", {"project_id": project_id, "iid": iid, "kind": kind,
                                                       "status": status, "wait": wait})

    def set_pipeline(self, pipeline_id, status, wait=True):
        """Move a CI pipeline's job to status (the pipeline's status follows; a Pipeline Hook fires on a change)."""
        return self._call("POST", f"/__sim/pipelines/{pipeline_id}", {"status": status, "wait": wait})

    def counters(self):
        """{"total": N, "writes": N, "rate_limited": N (429s of the rate limit), "peak_in_flight": N,
        "by_route": {"GET /api/v4/projects/:id": N, ...}}"""
        return self._call("GET", "/__sim/counters")

    def reset_counters(self):
        return self._call("POST", "/__sim/counters/reset")

    def count(self, method, template):
        return self.counters()["by_route"].get(f"{method} {template}", 0)

    def deliveries(self, hook_id=None, event=None, since_id=None):
        q = {k: v for k, v in (("hook_id", hook_id), ("event", event), ("since_id", since_id)) if v is not None}
        return self._call("GET", "/__sim/deliveries" + ("?" + urllib.parse.urlencode(q) if q else ""))["deliveries"]

    def delivery(self, delivery_id):
        return self._call("GET", f"/__sim/deliveries/{delivery_id}")

    def wait_deliveries(self, ids=None, timeout_ms=30000):
        body = {"timeout_ms": timeout_ms}
        if ids is not None:
            body["ids"] = list(ids)
        return self._call("POST", "/__sim/deliveries/wait", body)

    def redeliver(self, delivery_id, wait=False):
        return self._call("POST", f"/__sim/deliveries/{delivery_id}/redeliver", {"wait": wait})

    def hooks(self):
        """Every live hook with its secret token, failure count and custom header values."""
        return self._call("GET", "/__sim/hooks")

    def hooks_by_project(self, url):
        """{project id: [its hooks with this url]} over every live hook (hooks())."""
        out = {}
        for h in self.hooks():
            if h["url"] == url:
                out.setdefault(h["project_id"], []).append(h)
        return out

    def disable_hook(self, hook_id, alert_status="disabled", disabled_for_s=None):
        body = {"alert_status": alert_status}
        if disabled_for_s is not None:
            body["disabled_for_s"] = disabled_for_s
        return self._call("POST", f"/__sim/hooks/{hook_id}/disable", body)

    def statuses(self, project_id=None, sha=None):
        q = {k: v for k, v in (("project_id", project_id), ("sha", sha)) if v is not None}
        return self._call("GET", "/__sim/statuses" + ("?" + urllib.parse.urlencode(q) if q else ""))

    def notes(self, project_id=None, iid=None):
        q = {k: v for k, v in (("project_id", project_id), ("iid", iid)) if v is not None}
        return self._call("GET", "/__sim/notes" + ("?" + urllib.parse.urlencode(q) if q else ""))

    # --- faults ------------------------------------------------------------------------------------------

    def set_faults(self, latency_ms=0, jitter_ms=0, error_rate=0.0, reset_rate=0.0, stall_rate=0.0, stall_ms=0,
                   rate_limit_per_minute=0, hook_backoff_s=60):
        """Replace all faults (arguments left out go back to off)."""
        return self._call("POST", "/__sim/faults", {
            "latency_ms": latency_ms, "jitter_ms": jitter_ms, "error_rate": error_rate, "reset_rate": reset_rate,
            "stall_rate": stall_rate, "stall_ms": stall_ms, "rate_limit_per_minute": rate_limit_per_minute,
            "hook_backoff_s": hook_backoff_s})

    def settings(self, **changes):
        """GitLab application settings the simulator honours (diff limits, per-endpoint rate limits, local hook
        URLs, the status lock, the merge check); with keyword arguments, change those and return all."""
        if changes:
            return self._call("POST", "/__sim/settings", changes)
        return self._call("GET", "/__sim/settings")

    def script(self, method, path, responses):
        """Script the next len(responses) answers to METHOD path (concrete path or route template such as
        /api/v4/projects/:id/statuses/:sha). Each response: {"status", "body", "headers"}, {"reset": True}
        or {"stall_ms": N} (delay, then answer normally)."""
        return self._call("POST", "/__sim/script", {"method": method, "path": path, "responses": responses})

    def clear_scripts(self):
        return self._call("DELETE", "/__sim/script")


def _quote(project_id):
    return urllib.parse.quote(str(project_id), safe="")
