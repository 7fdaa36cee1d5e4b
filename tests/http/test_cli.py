"""CLI: --help lists every MRGATE_* setting the code reads, and the README documents each of them;
`mrgate migrate` reports the schema; a bad setting is refused with a message naming it."""
import os
import re
import subprocess

import harness
from harness import run

BIN = harness.env_required("MRGATE_BIN")


def settings_in_code():
    text = open(os.path.join(harness.SOURCE_DIR, "core", "config.c")).read()
    return set(re.findall(r'"(MRGATE_[A-Z_]+)"', text))


def test_help_lists_all_settings():
    out = subprocess.run([BIN, "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    names = settings_in_code()
    assert len(names) >= 15, names
    for name in names:
        assert name in out.stdout, name
    for cmd in ["serve", "migrate", "user add", "token create"]:
        assert cmd in out.stdout, cmd
    # every configure option, and what each does one level down (a walk found 4 of its 12 options listed)
    for opt in ["--no-block-merge", "--comment", "--ungate", "--reapply", "--resend-hook-tokens", "--dry-run",
                "--confirm-no-scanner", "--new-group"]:
        assert opt in out.stdout, opt
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRGATE_")}
    out = subprocess.run([BIN, "configure", "--help"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "--ungate: stop gating" in out.stdout and "--dry-run:" in out.stdout, out


def test_readme_documents_all_settings():
    readme = open(os.path.join(harness.SOURCE_DIR, "README.md")).read()
    for name in settings_in_code():
        assert name in readme, f"README.md does not document {name}"
    # the Quick start shows the two commands first
    quick = readme[readme.index("Quick start"):]
    assert quick.index("make run") < quick.index("make test") < quick.index("docker")


def test_bad_setting_is_refused():
    out = subprocess.run([BIN, "--workers", "0", "migrate"], capture_output=True, text=True)
    assert out.returncode != 0
    assert "MRGATE_WORKERS" in out.stderr


def test_migrate_command():
    url = harness.fresh_database("cli")
    env = dict(os.environ, MRGATE_DATABASE_URL=url, MRGATE_LOG_FORMAT="text")
    out = subprocess.run([BIN, "migrate"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    m = re.search(r"\((\d+) migrations? applied now\)", out.stdout)
    assert m and int(m.group(1)) >= 1, out.stdout
    again = subprocess.run([BIN, "migrate"], capture_output=True, text=True, env=env)
    assert "(0 migrations applied now)" in again.stdout, again.stdout


def test_unknown_command():
    out = subprocess.run([BIN, "frobnicate"], capture_output=True, text=True)
    assert out.returncode == 2 and 'unknown command "frobnicate"' in out.stderr


def test_wrong_arguments_are_refused_before_anything_runs():
    """A misspelt subcommand or a stray argument is a usage error (exit 2) that says what is expected; nothing
    connects to a database first (none is configured here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRGATE_")}
    cases = [
        (["user"], 'mrgate user: expected "user add"'),
        (["user", "remove", "bob"], 'mrgate user: expected "user add"'),
        (["token"], 'mrgate token: expected "token create"'),
        (["serve", "now"], 'mrgate serve takes no arguments (got "now")'),
        (["migrate", "--yes"], 'mrgate migrate takes no arguments (got "--yes")'),
        (["export", "out.json"], 'mrgate export takes no arguments (got "out.json")'),
        (["user", "add", "ann", "viewer"], 'unexpected argument "viewer"'),
        (["user", "add", "bob", "--role", "viewer", "--role", "admin"], "give the role once"),
        (["user", "add", "carl", "--admin", "--role", "viewer"], "give the role once"),
        (["token", "create", "ed", "script", "extra"], "usage: mrgate token create USER NAME"),
        (["--log-level", "loud", "migrate"], "log-level"),
        (["--log-format", "xml", "migrate"], "log-format"),
    ]
    for argv, want in cases:
        out = subprocess.run([BIN] + argv, capture_output=True, text=True, env=env)
        assert out.returncode == 2 and want in out.stderr, (argv, out.returncode, out.stderr)


run([test_help_lists_all_settings, test_readme_documents_all_settings, test_bad_setting_is_refused,
     test_migrate_command, test_unknown_command, test_wrong_arguments_are_refused_before_anything_runs])
