#!/usr/bin/env bash
# scripts/demo.sh — `make demo`: mrgate plus the GitLab simulator seeded with a demo group, so the whole flow can
# be tried without a GitLab. Called by scripts/run.sh with the database ready and MRGATE_* exported.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
sim_listen=${MRGATE_DEMO_GITLAB:-127.0.0.1:8929}
${GITLAB_SIM_BIN:-build/tests/gitlab-sim/gitlab-sim} --seed-demo --allow-local-hooks --listen "$sim_listen" >.mrgate/gitlab-sim.log 2>&1 &
sim_pid=$!
trap 'kill $sim_pid 2>/dev/null || true' EXIT INT TERM
up=
for _ in $(seq 50); do
  curl -fsS "http://$sim_listen/__sim/health" >/dev/null 2>&1 && { up=1; break; }
  sleep 0.1
done
if [ -z "$up" ]; then
  echo "make demo: the GitLab simulator did not start on $sim_listen (MRGATE_DEMO_GITLAB is host:port, e.g." \
    "127.0.0.1:8929); its log:" >&2
  tail -5 .mrgate/gitlab-sim.log >&2
  exit 1
fi

cat <<MSG

  mrgate demo: ${MRGATE_PUBLIC_URL}
  Log in as "admin" with the password printed by: cat .mrgate/admin-password

  On the Connection page, connect the simulated GitLab:
    GitLab URL  http://$sim_listen
    Group       demo            (300 repositories in nested subgroups)
    Token       glpat-demo-0123456789abcdef

  The simulator opens merge requests on request through its control API, e.g.
    curl -X POST http://$sim_listen/__sim/merge_requests -H 'Content-Type: application/json' -d '{"project_id": 1000, "title": "Add the deploy token", "files": [{"path": "config.py", "content": "TOKEN = \"glpat-R7xKq2VmZ9tLw4PbN8sJ\"\\n"}]}'
  Stop with Ctrl-C.

MSG
"${MRGATE_BIN:-build/mrgate}" serve
