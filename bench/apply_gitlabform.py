#!/usr/bin/python3
"""bench/apply_gitlabform.py — the baseline of bench/apply: GitLabForm's steps, sequential, with python-gitlab.

    bench/apply_gitlabform.py GITLAB_URL TOKEN GROUP HOOK_URL HOOK_TOKEN

For each project of the group's project list (subgroups included, pages of 100), what GitLabForm does for a
webhook and a merge setting, one project after the other: GET the project, GET its hooks, create the hook (POST)
or update it (PUT, with its token: GitLab never returns tokens, so it is always sent again), and PUT
only_allow_merge_if_pipeline_succeeds. Prints one JSON line: {"projects", "wall", "created", "updated"}.
Debian's python3-gitlab (scripts/deps.sh installs it) runs under /usr/bin/python3.
"""
import json
import sys
import time

import gitlab


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    url, token, group, hook_url, hook_token = sys.argv[1:]
    gl = gitlab.Gitlab(url, private_token=token, timeout=60)
    hook = {"url": hook_url, "token": hook_token, "merge_requests_events": True, "pipeline_events": True,
            "push_events": False, "enable_ssl_verification": hook_url.startswith("https://")}
    t0 = time.monotonic()
    n = created = updated = 0
    grp = gl.groups.get(group, lazy=True)
    for listed in grp.projects.list(iterator=True, include_subgroups=True, with_shared=False, per_page=100,
                                    order_by="id", sort="asc"):
        project = gl.projects.get(listed.id)
        ours = [h for h in project.hooks.list(get_all=True, per_page=100) if h.url == hook_url]
        if ours:
            project.hooks.update(ours[0].id, hook)
            updated += 1
        else:
            project.hooks.create(hook)
            created += 1
        gl.projects.update(project.id, {"only_allow_merge_if_pipeline_succeeds": True})
        n += 1
    print(json.dumps({"projects": n, "wall": time.monotonic() - t0, "created": created, "updated": updated}))


if __name__ == "__main__":
    main()
