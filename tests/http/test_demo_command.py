"""HTTP: the merge request command `make demo` prints (scripts/demo.sh) does what it says: run as printed against
the demo simulator, it opens a merge request whose secret the gate of a gated demo repository catches.

Before issue 11 the command sent no JSON content type and its sample secret was on the scanner's placeholder
allowlist, so the demo's gate passed.
"""
import os
import re
import subprocess
import time

import harness
from harness import Mrgate, run
from sim import Sim

sim = Sim("demo_cmd_sim", args=["--seed-demo"])
srv = Mrgate("demo_cmd", env={"MRGATE_LOG_LEVEL": "info"})
c = srv.login()


def printed_command():
    """The curl line of the message demo.sh prints (an unquoted here-document), as the shell prints it."""
    text = open(os.path.join(harness.SOURCE_DIR, "scripts", "demo.sh")).read()
    line = next(x for x in text.splitlines() if "__sim/merge_requests" in x).strip()
    line = line.replace("\\\\", "\x00").replace("\\$", "$").replace("\x00", "\\")  # here-document escapes
    return line.replace("$sim_listen", f"127.0.0.1:{sim.port}")


def test_printed_command_opens_an_mr_the_gate_fails():
    cmd = printed_command()
    assert "Content-Type: application/json" in cmd, cmd
    pid = int(re.search(r'"project_id": (\d+)', cmd).group(1))
    r = c.put("/api/connection", {"gitlab_url": sim.base, "group": "demo", "token": "glpat-demo-0123456789abcdef"})
    assert r.status == 200, r.body
    assert c.post("/api/sync").status == 202
    deadline = time.time() + 60
    while c.get("/api/sync").json()["state"] == "running" and time.time() < deadline:
        time.sleep(0.2)
    r = c.post("/api/configure", {"selection": {"ids": [pid]}, "config": {"enabled": True, "scans": ["secrets"]}})
    assert r.status == 202, r.body
    while c.get(f"/api/repos/{pid}").json()["status"] == "applying" and time.time() < deadline:
        time.sleep(0.2)
    assert c.get(f"/api/repos/{pid}").json()["status"] in ("gated", "exception")
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    while time.time() < deadline:
        runs = c.get(f"/api/gates?repo={pid}").json()["items"]
        if runs and runs[0]["state"] == "done":
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"no finished gate run: {runs}")
    g = c.get(f"/api/gates/{runs[0]['id']}").json()
    assert g["verdict"] == "failed", g
    assert any(f["scan_type"] == "secrets" and f["path"] == "config.py" for f in g["findings"]), g["findings"]
    assert g["mr_title"] == "Add the deploy token" and g["mr_web_url"].endswith("/-/merge_requests/1"), g


run([test_printed_command_opens_an_mr_the_gate_fails])
