-- bench/webhook.lua — wrk's request generator for bench/webhook: every request is a valid GitLab merge request
-- `open` delivery (X-Gitlab-Event: Merge Request Hook, the webhook token) with its own Idempotency-Key,
-- X-Gitlab-Event-UUID, MR iid and head sha, so that no delivery is a duplicate and no two wait on one MR's lock.
--
-- Read from the environment (bench/webhook sets them; the token is never printed):
--   MRGATE_BENCH_TOKEN    the installation's webhook secret (X-Gitlab-Token)
--   MRGATE_BENCH_PROJECT  the target project id
--   MRGATE_BENCH_RUN      a tag unique to this wrk run (keys and iids of earlier runs are never reused)
--   MRGATE_BENCH_EVENT    X-Gitlab-Event (default "Merge Request Hook"; "Push Hook" sends a push event instead)
local token = os.getenv("MRGATE_BENCH_TOKEN") or ""
local project = tonumber(os.getenv("MRGATE_BENCH_PROJECT") or "0")
local run = tonumber(os.getenv("MRGATE_BENCH_RUN") or "0")
local event = os.getenv("MRGATE_BENCH_EVENT") or "Merge Request Hook"

local next_thread = 0
function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
end

local counter = 0
function request()
  counter = counter + 1
  -- unique across threads and runs: run (< 1000) x 10^9 + thread x 10^7 + counter
  local iid = run * 1000000000 + tid * 10000000 + counter
  local key = string.format("bench-%d-%d-%d", run, tid, counter)
  local sha = string.format("%040d", iid)
  local body
  if event == "Merge Request Hook" then
    body = string.format(
      '{"object_kind":"merge_request","event_type":"merge_request","project":{"id":%d},' ..
      '"object_attributes":{"iid":%d,"target_project_id":%d,"source_project_id":%d,"action":"open",' ..
      '"state":"opened","source_branch":"bench-%d","target_branch":"main","last_commit":{"id":"%s"}}}',
      project, iid, project, project, iid, sha)
  else
    body = string.format('{"object_kind":"push","project_id":%d,"after":"%s","ref":"refs/heads/bench-%d"}',
      project, sha, iid)
  end
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-Gitlab-Event"] = event,
    ["X-Gitlab-Token"] = token,
    ["Idempotency-Key"] = key,
    ["X-Gitlab-Event-UUID"] = key,
  }
  return wrk.format("POST", "/hooks/gitlab", headers, body)
end
