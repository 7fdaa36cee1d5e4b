#!/usr/bin/env python3
"""tests/secrets-corpus/corpus.py — a generated, deterministic corpus for secret scanners.

    python3 tests/secrets-corpus/corpus.py OUTDIR [--seed 18] [--bytes N]

Writes realistic files (.env, YAML, JSON, TOML, properties, INI, XML, Terraform, Dockerfiles, shell, Python,
JavaScript, TypeScript, Go, Java, C#, Ruby, PHP) under OUTDIR/files/ and OUTDIR/manifest.json, which says for every
line that matters what it is: a fake secret of a named format ("secret"), a near miss of a named category that a
scanner must not flag ("near"), and how many ordinary lines ("filler") there are.

Never a real secret: every token is drawn from a seeded random generator (random.Random(seed)) in the shape its
provider documents (prefix, alphabet, length), so the same seed gives the same bytes on every machine, and none of
them was ever issued by anyone. The source of each shape is the rule's source in core/scan_secrets.c. Near misses
are what scanners over-report: placeholders, vendor documentation examples, UUIDs, hashes, git SHAs, test fixtures,
environment variable names, class names, URLs whose password is literally "password", public keys, references to
variables, key names of metadata, masked values and prose about token prefixes.

--bytes N pads the corpus with more generated files of the same kinds (more secrets and near misses, same formats)
until it holds about N bytes: the speed variant of bench/scan-quality.

Used by tests/secrets-corpus/test_corpus.py (make test) and bench/scan-quality. The manifest holds the fake secrets
themselves (the evaluators need them to tell which finding is which); it is written only into OUTDIR, which the
callers make in a temporary directory. Nothing here prints a secret.
"""
import argparse
import base64
import json
import os
import random
import string
import uuid

ALNUM = string.ascii_letters + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
LOWER_ALNUM = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
BECH32 = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"

# Substrings the generated random parts must not contain: scanners' placeholder allowlists would hide them, which
# would measure the allowlist rather than the rule.
AVOID = ("example", "xxxx", "test", "fake", "dummy", "sample", "0123", "1234", "abcd", "aaaa", "pass", "mock",
         "redact", "todo")


class Gen:
    """The seeded random source and the token shapes built from it."""

    def __init__(self, seed):
        self.r = random.Random(seed)

    def s(self, alphabet, n):
        while True:
            v = "".join(self.r.choice(alphabet) for _ in range(n))
            low = v.lower()
            if not any(a in low for a in AVOID):
                return v

    def mixed(self, alphabet, n):
        """At least one digit and one letter (a shape most providers' random parts have)."""
        while True:
            v = self.s(alphabet, n)
            if any(c.isdigit() for c in v) and any(c.isalpha() for c in v):
                return v

    def hex(self, n):
        return self.mixed(HEX, n)

    def uuid(self):
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def digits(self, lo, hi):
        n = self.r.randint(lo, hi)
        return str(self.r.randint(1, 9)) + "".join(self.r.choice(string.digits) for _ in range(n - 1))

    def choice(self, xs):
        return self.r.choice(xs)

    def password(self):
        sym = "!#%^*-_+=.@"
        while True:
            n = self.r.randint(14, 22)
            v = self.s(ALNUM + sym, n)
            if (any(c.isdigit() for c in v) and any(c.isupper() for c in v) and any(c.islower() for c in v)
                    and v[0] not in "$@-" and "://" not in v):
                return v


# ---------------------------------------------------------------------------------------------------------------
# Secret formats: id -> (generator, key names). A key name list of None means "a provider token with a documented
# prefix or shape": it is written under a neutral name half of the time (value, item, cfg_entry, ...), so a scanner
# that needs a telling variable name misses it. Other formats get key names people use for them.

NEUTRAL = ["value", "item", "cfg_entry", "data", "conf_value", "setting_a", "x1", "opt", "field_3", "arg0",
           "primary", "main_value", "entry", "val"]


def _jwt(g):
    head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    payload = json.dumps({"sub": g.s(LOWER_ALNUM, 10), "iat": g.r.randint(1600000000, 1800000000),
                          "role": g.choice(["svc", "admin", "ci"])}, separators=(",", ":")).encode()
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    return f"{head}.{body}.{g.mixed(B64URL, 43)}"


def _mapbox(g):
    payload = json.dumps({"u": g.s(string.ascii_lowercase, 8), "a": g.s(LOWER_ALNUM, 25)},
                         separators=(",", ":")).encode()
    return "sk." + base64.urlsafe_b64encode(payload).rstrip(b"=").decode() + "." + g.mixed(B64URL, 22)


FORMATS = {
    # cloud
    "aws-access-key-id": (lambda g: "AKIA" + g.mixed("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16), None),
    "aws-secret-access-key": (lambda g: g.mixed(B64, 40),
                              ["aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "aws_secret_key", "secret_key",
                               "secretAccessKey"]),
    "gcp-api-key": (lambda g: "AIza" + g.mixed(B64URL, 35), None),
    "gcp-oauth-client-secret": (lambda g: "GOCSPX-" + g.mixed(B64URL, 28), None),
    "gcp-service-account-key": (lambda g: g.hex(40), ["private_key_id"]),
    "azure-storage-account-key": (lambda g: g.mixed(B64, 86) + "==", None),
    "azure-sas-token": (lambda g: (g.mixed(B64, 43) + "=").replace("+", "%2B").replace("/", "%2F")
                        .replace("=", "%3D"), None),
    "azure-ad-client-secret": (lambda g: g.mixed(ALNUM, 3) + g.choice(string.digits) + "Q~" +
                               g.mixed(ALNUM + "_~.-", 34), None),
    "alibaba-access-key-id": (lambda g: "LTAI" + g.mixed(ALNUM, 20), None),
    "digitalocean-token": (lambda g: g.choice(["dop", "doo", "dor"]) + "_v1_" + g.hex(64), None),
    "heroku-api-key": (lambda g: g.uuid(), ["HEROKU_API_KEY", "heroku_api_key", "heroku.api.key"]),
    "heroku-api-key-v2": (lambda g: "HRKU-AA" + g.mixed(B64URL, 58), None),
    # source hosting and CI
    "gitlab-pat": (lambda g: "glpat-" + g.mixed(B64URL, 20), None),
    "gitlab-runner-token": (lambda g: "glrt-" + g.mixed(B64URL, 20), None),
    "gitlab-runner-registration-token": (lambda g: "GR1348941" + g.mixed(B64URL, 20), None),
    "gitlab-deploy-token": (lambda g: "gldt-" + g.mixed(B64URL, 20), None),
    "gitlab-pipeline-trigger-token": (lambda g: "glptt-" + g.hex(40), None),
    "gitlab-feed-token": (lambda g: "glft-" + g.mixed(B64URL, 20), None),
    "gitlab-oauth-app-secret": (lambda g: "gloas-" + g.hex(64), None),
    "gitlab-ci-job-token": (lambda g: "glcbt-" + g.mixed(B64URL, 20), None),
    "gitlab-agent-token": (lambda g: "glagent-" + g.mixed(B64URL, 50), None),
    "github-pat": (lambda g: "ghp_" + g.mixed(ALNUM, 36), None),
    "github-oauth-token": (lambda g: "gho_" + g.mixed(ALNUM, 36), None),
    "github-user-to-server-token": (lambda g: "ghu_" + g.mixed(ALNUM, 36), None),
    "github-server-to-server-token": (lambda g: "ghs_" + g.mixed(ALNUM, 36), None),
    "github-refresh-token": (lambda g: "ghr_" + g.mixed(ALNUM, g.choice([36, 76, 120, 251])), None),
    "github-fine-grained-pat": (lambda g: "github_pat_" + g.mixed(ALNUM, 22) + "_" + g.mixed(ALNUM, 59), None),
    "buildkite-token": (lambda g: "bkua_" + g.hex(40), None),
    "dockerhub-pat": (lambda g: g.choice(["dckr_pat_", "dckr_oat_"]) + g.mixed(B64URL, 27), None),
    "npm-token": (lambda g: "npm_" + g.mixed(ALNUM, 36), None),
    "pypi-token": (lambda g: "pypi-AgEIcHlwaS5vcmc" + g.mixed(B64URL, 70), None),
    "rubygems-api-key": (lambda g: "rubygems_" + g.hex(48), None),
    "clojars-token": (lambda g: "CLOJARS_" + g.mixed(LOWER_ALNUM, 60), None),
    # chat
    "slack-bot-token": (lambda g: f"xoxb-{g.digits(11, 12)}-{g.digits(12, 13)}-{g.mixed(ALNUM, 24)}", None),
    "slack-user-token": (lambda g: f"xoxp-{g.digits(11, 12)}-{g.digits(11, 12)}-{g.digits(12, 13)}-"
                                   f"{g.hex(32)}", None),
    "slack-app-token": (lambda g: f"xapp-1-A{g.mixed(UPPER_ALNUM, 10)}-{g.digits(13, 13)}-{g.hex(64)}", None),
    "slack-webhook-url": (lambda g: f"https://hooks.slack.com/services/T{g.mixed(UPPER_ALNUM, 8)}/"
                                    f"B{g.mixed(UPPER_ALNUM, 10)}/{g.mixed(ALNUM, 24)}", None),
    "discord-bot-token": (lambda g: g.choice("MNO") + g.mixed(B64URL, 25) + "." + g.mixed(B64URL, 6) + "." +
                          g.mixed(B64URL, 38), None),
    "telegram-bot-token": (lambda g: g.digits(9, 10) + ":AA" + g.mixed(B64URL, 33), None),
    # payments and SaaS
    "stripe-secret-key": (lambda g: "sk_live_" + g.mixed(ALNUM, g.choice([24, 99])), None),
    "stripe-restricted-key": (lambda g: "rk_live_" + g.mixed(ALNUM, g.choice([24, 99])), None),
    "stripe-webhook-secret": (lambda g: "whsec_" + g.mixed(ALNUM, 32), None),
    "twilio-api-key": (lambda g: "SK" + g.hex(32), None),
    "sendgrid-api-key": (lambda g: "SG." + g.mixed(B64URL, 22) + "." + g.mixed(B64URL, 43), None),
    "mailgun-api-key": (lambda g: "key-" + g.hex(32), None),
    "mailchimp-api-key": (lambda g: g.hex(32) + "-us" + str(g.r.randint(1, 21)), None),
    "shopify-token": (lambda g: g.choice(["shpat_", "shpca_", "shppa_", "shpss_"]) + g.hex(32), None),
    "square-access-token": (lambda g: "EAAA" + g.mixed(B64URL, 60), None),
    "square-oauth-secret": (lambda g: "sq0csp-" + g.mixed(B64URL, 43), None),
    "shippo-api-token": (lambda g: "shippo_live_" + g.hex(40), None),
    "postman-api-key": (lambda g: f"PMAK-{g.hex(24)}-{g.hex(34)}", None),
    "atlassian-api-token": (lambda g: "ATATT3xFfGF0" + g.mixed(B64URL, 171) + "=" + g.hex(8).upper(), None),
    "linear-api-key": (lambda g: "lin_api_" + g.mixed(ALNUM, 40), None),
    "sentry-user-token": (lambda g: "sntryu_" + g.hex(64), None),
    "mapbox-secret-token": (_mapbox, None),
    # observability
    "datadog-api-key": (lambda g: g.hex(32), ["DD_API_KEY", "datadog_api_key", "app.dd.api.key", "dd-api-key",
                                              "datadogApiKey"]),
    "datadog-app-key": (lambda g: g.hex(40), ["DD_APP_KEY", "DD_APPLICATION_KEY", "datadog_app_key",
                                              "app.dd.app.key", "datadogAppKey"]),
    "newrelic-user-key": (lambda g: "NRAK-" + g.mixed(UPPER_ALNUM, 27), None),
    "newrelic-license-key": (lambda g: g.hex(36) + "NRAL", None),
    "newrelic-insert-key": (lambda g: "NRII-" + g.mixed(B64URL, 32), None),
    "grafana-service-account-token": (lambda g: "glsa_" + g.mixed(ALNUM, 32) + "_" + g.hex(8), None),
    "grafana-cloud-token": (lambda g: "glc_" + g.mixed(ALNUM, 64) + "==", None),
    "dynatrace-token": (lambda g: f"dt0c01.{g.mixed(UPPER_ALNUM, 24)}.{g.mixed(UPPER_ALNUM, 64)}", None),
    # infrastructure and data
    "vault-token": (lambda g: "hvs." + g.mixed(B64URL, 90), None),
    "terraform-cloud-token": (lambda g: g.mixed(ALNUM, 14) + ".atlasv1." + g.mixed(B64URL, 67), None),
    "pulumi-token": (lambda g: "pul-" + g.hex(40), None),
    "doppler-token": (lambda g: "dp.pt." + g.mixed(ALNUM, 43), None),
    "databricks-token": (lambda g: "dapi" + g.hex(32), None),
    "planetscale-token": (lambda g: g.choice(["pscale_tkn_", "pscale_pw_", "pscale_oauth_"]) +
                          g.mixed(B64URL, 43), None),
    "supabase-token": (lambda g: "sbp_" + g.hex(40), None),
    "age-secret-key": (lambda g: "AGE-SECRET-KEY-1" + g.mixed(BECH32, 58), None),
    # AI
    "openai-api-key": (lambda g: g.choice(["sk-proj-" + g.mixed(B64URL, 156),
                                           "sk-" + g.mixed(ALNUM, 20) + "T3BlbkFJ" + g.mixed(ALNUM, 20)]), None),
    "anthropic-api-key": (lambda g: "sk-ant-api03-" + g.mixed(B64URL, 93) + "AA", None),
    "huggingface-token": (lambda g: "hf_" + g.s(string.ascii_letters, 34), None),
    "groq-api-key": (lambda g: "gsk_" + g.mixed(ALNUM, 52), None),
    "replicate-api-token": (lambda g: "r8_" + g.mixed(ALNUM, 37), None),
    "perplexity-api-key": (lambda g: "pplx-" + g.mixed(ALNUM, 48), None),
    # tokens, keys and URLs
    "jwt": (_jwt, None),
    # made by their layout (PEM blocks, URLs, headers, calls; see LAYOUT), not by a generator of their own
    **dict.fromkeys(["private-key-rsa", "private-key-ec", "private-key-openssh", "private-key-pkcs8",
                     "url-basic-auth", "http-authorization-header", "netrc-password", "docker-config-auth",
                     "generic-password", "password-call-argument", "generic-secret"], (None, None)),
}

# How each format's secret sits in a file. "kv" is key = value in the file's own syntax; the others are lines of
# their own (connection strings, URLs, PEM blocks, calls).
LAYOUT = {
    "azure-storage-account-key": "azure-conn",
    "azure-sas-token": "azure-sas",
    "slack-webhook-url": "kv-url",
    "private-key-rsa": "pem",
    "private-key-ec": "pem",
    "private-key-openssh": "pem",
    "private-key-pkcs8": "pem-json",
    "url-basic-auth": "url-auth",
    "http-authorization-header": "auth-header",
    "netrc-password": "netrc",
    "docker-config-auth": "docker-auth",
    "generic-password": "generic-password",
    "password-call-argument": "call",
    "generic-secret": "generic-secret",
    "gcp-service-account-key": "json-only",
}

# File kinds: extension and the render of key = value (quoted, the usual case).
KINDS = ["env", "yaml", "json", "toml", "properties", "ini", "xml", "tf", "dockerfile", "sh", "py", "js", "ts",
         "go", "java", "cs", "rb", "php"]
EXT = {"env": ".env", "yaml": ".yaml", "json": ".json", "toml": ".toml", "properties": ".properties",
       "ini": ".ini", "xml": ".config", "tf": ".tf", "dockerfile": "Dockerfile", "sh": ".sh", "py": ".py",
       "js": ".js", "ts": ".ts", "go": ".go", "java": ".java", "cs": ".cs", "rb": ".rb", "php": ".php"}


def _words(key):
    out, cur = [], ""
    for c in key:
        if c in "._- ":
            if cur:
                out.append(cur)
            cur = ""
        elif c.isupper() and cur and not cur[-1].isupper():
            out.append(cur)
            cur = c
        else:
            cur += c
    if cur:
        out.append(cur)
    return [w.lower() for w in out]


def style(kind, key):
    """The key as a file of this kind would spell it."""
    w = _words(key)
    if kind in ("env", "dockerfile", "sh"):
        return "_".join(w).upper()
    if kind == "java":
        return "_".join(w).upper() if len(w) > 1 else w[0].upper()
    if kind in ("js", "ts", "go", "cs"):
        return w[0] + "".join(x.capitalize() for x in w[1:])
    if kind == "properties" or "." in key:
        return ".".join(w) if kind in ("properties", "yaml", "ini", "toml") and "." in key else key
    return key


def render_kv(kind, key, value):
    k = style(kind, key)
    if kind == "env":
        return f"{k}={value}"
    if kind == "yaml":
        return f"  {k}: \"{value}\""
    if kind == "json":
        return f"  \"{k}\": \"{value}\","
    if kind == "toml":
        return f"{k} = \"{value}\""
    if kind == "properties":
        return f"{k}={value}"
    if kind == "ini":
        return f"{k} = {value}"
    if kind == "xml":
        return f"    <add key=\"{k}\" value=\"{value}\" />"
    if kind == "tf":
        return f"  {k} = \"{value}\""
    if kind == "dockerfile":
        return f"ENV {k}={value}"
    if kind == "sh":
        return f"export {k}=\"{value}\""
    if kind == "py":
        return f"{k.replace('.', '_').replace('-', '_')} = \"{value}\""
    if kind in ("js", "ts"):
        return f"const {k.replace('.', '_').replace('-', '_')} = '{value}';"
    if kind == "go":
        return f"\t{k.replace('.', '_').replace('-', '_')} := \"{value}\""
    if kind == "java":
        return f"    private static final String {k.replace('.', '_').replace('-', '_')} = \"{value}\";"
    if kind == "cs":
        return f"        var {k.replace('.', '_').replace('-', '_')} = \"{value}\";"
    if kind == "rb":
        return f"  config.{k.replace('.', '_').replace('-', '_').lower()} = '{value}'"
    if kind == "php":
        return f"    '{k}' => '{value}',"
    raise ValueError(kind)


# ---------------------------------------------------------------------------------------------------------------
# Filler: ordinary lines of each kind.

FILLER = {
    "env": ["APP_ENV=production", "PORT=8080", "LOG_LEVEL=info", "FEATURE_NEW_UI=true", "TZ=UTC",
            "WORKERS=4", "CACHE_TTL=300"],
    "yaml": ["  replicas: 3", "  image: registry.internal/app:1.4.2", "  port: 8080", "name: billing",
             "  timeoutSeconds: 30", "  - name: web", "    enabled: true"],
    "json": ["  \"name\": \"billing-service\",", "  \"version\": \"2.3.1\",", "  \"port\": 8080,",
             "  \"debug\": false,", "  \"retries\": 3,", "  \"region\": \"eu-west-1\","],
    "toml": ["[server]", "port = 8080", "host = \"0.0.0.0\"", "workers = 4", "[logging]", "level = \"info\""],
    "properties": ["server.port=8080", "spring.application.name=orders", "logging.level.root=INFO",
                   "management.endpoints.web.exposure.include=health", "spring.jpa.open-in-view=false"],
    "ini": ["[database]", "host = db.internal", "port = 5432", "pool_size = 10", "[cache]", "enabled = true"],
    "xml": ["    <add key=\"Environment\" value=\"Production\" />", "  <appSettings>", "  </appSettings>",
            "    <add key=\"MaxRetries\" value=\"5\" />"],
    "tf": ["  region = \"eu-west-1\"", "  instance_type = \"t3.medium\"", "  tags = {", "    Team = \"payments\"",
           "  }", "resource \"aws_s3_bucket\" \"logs\" {", "}"],
    "dockerfile": ["FROM debian:12-slim", "WORKDIR /app", "COPY . .", "RUN apt-get update && apt-get install -y curl",
                   "EXPOSE 8080", "USER app", "CMD [\"./server\"]"],
    "sh": ["set -euo pipefail", "cd \"$(dirname \"$0\")\"", "echo \"deploying $APP\"", "make build",
           "./scripts/migrate.sh", "exit 0"],
    "py": ["import os", "import logging", "log = logging.getLogger(__name__)", "def handler(event):",
           "    return {\"status\": 200}", "TIMEOUT = 30"],
    "js": ["'use strict';", "const express = require('express');", "const app = express();",
           "app.listen(8080);", "module.exports = app;"],
    "ts": ["import { Injectable } from '@angular/core';", "export const environment = {", "  production: true,",
           "};", "export default environment;"],
    "go": ["package config", "import \"os\"", "func Load() *Config {", "\treturn &Config{}", "}",
           "var Timeout = 30"],
    "java": ["package com.acme.billing;", "import java.util.List;", "public class Settings {", "}",
             "    private int retries = 3;"],
    "cs": ["using System;", "namespace Acme.Billing {", "    public class Settings {", "    }", "}"],
    "rb": ["Rails.application.configure do", "  config.cache_classes = true", "end", "require 'json'"],
    "php": ["<?php", "return [", "    'debug' => false,", "];"],
}


# ---------------------------------------------------------------------------------------------------------------
# Near misses: category -> function(g, kind) returning one line (or several) a scanner must not flag.

def _b64(g, n):
    return g.mixed(B64, n)


AWS_DOC_ID = "AKIA" + "IOSFODNN7" + "EXAMPLE"
AWS_DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
JWT_IO = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
          "." + "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/" + "K1SZFPTOtr/KBHBeksoGMGw==")


def near_placeholder(g, kind):
    key = g.choice(["api_key", "password", "secret_key", "token", "client_secret", "auth_token", "db_password"])
    val = g.choice(["your-api-key-here", "<YOUR_TOKEN>", "${DB_PASSWORD}", "changeme", "REPLACE_ME",
                    "ghp_" + "x" * 36, "****************", "{{ vault_db_password }}", "insert-secret-key-here",
                    "sk_live_...", "%(db_password)s", "<redacted>", "TODO", "xxxxxxxxxxxxxxxx", "${{ secrets.TOKEN }}",
                    "your_token_goes_here", "PUT_YOUR_KEY_HERE", "$API_KEY", "__SECRET__", "<password>",
                    "glpat-" + "X" * 20, "AKIA" + "X" * 16, "replace-with-a-long-random-string",
                    "ENC[AES256_GCM,data:" + _b64(g, 24) + ",type:str]", "dd" + "0" * 30])
    return render_kv(kind, key, val)


def near_vendor_doc(g, kind):
    c = g.r.randint(0, 8)
    if c == 0:
        return render_kv(kind, "aws_access_key_id", AWS_DOC_ID)
    if c == 1:
        return render_kv(kind, "aws_secret_access_key", AWS_DOC_SECRET)
    if c == 2:
        return render_kv(kind, g.choice(["example_jwt", "token", "id_token"]), JWT_IO)
    if c == 3:
        return render_kv(kind, "connection_string", "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                         "AccountKey=" + AZURITE_KEY + ";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;")
    if c == 4:
        return render_kv(kind, g.choice(["stripe_secret_key", "stripe_key", "secret_key", "api_key"]),
                         "sk_test_" + g.mixed(ALNUM, 24))
    if c == 5:
        return render_kv(kind, g.choice(["stripe_publishable_key", "publishable_key", "stripe_pk", "api_key"]),
                         g.choice(["pk_live_", "pk_test_"]) + g.mixed(ALNUM, 24))
    if c == 6:
        return render_kv(kind, "azurite_key", AZURITE_KEY)
    if c == 7:
        return render_kv(kind, "slack_webhook", "https://hooks.slack.com/services/T00000000/B00000000/" + "X" * 24)
    return render_kv(kind, "stripe_test_secret", "rk_test_" + g.mixed(ALNUM, 24))


def near_uuid(g, kind):
    key = g.choice(["api_key_id", "request_id", "client_id", "tenant_id", "subscription_id", "token_id",
                    "correlation_id", "trace_id", "access_key_id_ref", "secret_version_id", "account_id",
                    "credential_id", "password_reset_id"])
    return render_kv(kind, key, g.uuid())


def near_hash(g, kind):
    c = g.r.randint(0, 6)
    if c == 0:
        return render_kv(kind, "checksum", "sha256:" + g.hex(64))
    if c == 1:
        return "      \"integrity\": \"sha512-" + _b64(g, 86) + "==\","
    if c == 2:
        return render_kv(kind, "md5", g.hex(32))
    if c == 3:
        return render_kv(kind, "password_hash", "$2b$12$" + g.mixed(ALNUM + "./", 53))
    if c == 4:
        return render_kv(kind, "digest", "sha256:" + g.hex(64))
    if c == 5:
        return render_kv(kind, "token_sha256", g.hex(64))
    return render_kv(kind, "etag", g.hex(32))


def near_git_sha(g, kind):
    c = g.r.randint(0, 5)
    sha = g.hex(40)
    if c == 0:
        return render_kv(kind, "commit", sha)
    if c == 1:
        return render_kv(kind, "rev", sha)
    if c == 2:
        return f"      - uses: actions/checkout@{sha} # v4"
    if c == 3:
        return f"github.com/acme/lib v1.{g.r.randint(0, 9)}.{g.r.randint(0, 9)} h1:{_b64(g, 43)}="
    if c == 4:
        return render_kv(kind, "GIT_COMMIT", sha)
    return render_kv(kind, "base_sha", sha)


def near_fixture(g, kind):
    key = g.choice(["password", "secret", "token", "api_key", "db_password", "client_secret", "auth_token"])
    val = g.choice(["test_password_123", "password", "secret", "test-token", "fake-api-key", "hunter2",
                    "dummy_secret_value", "mock-token-123", "testpass123", "testing123", "not-a-real-secret",
                    "sample_api_key_1", "test1234", "fake_client_secret_42", "p@ssw0rd", "letmein",
                    "unit-test-secret", "fixture-token-7", "s3cr3t", "test_api_key_abc123"])
    return render_kv(kind, key, val)


def near_env_name(g, kind):
    c = g.r.randint(0, 4)
    name = g.choice(["DJANGO_SECRET_KEY", "GITHUB_TOKEN", "OPENAI_API_KEY", "DB_PASSWORD", "SLACK_BOT_TOKEN",
                     "AWS_SECRET_ACCESS_KEY", "STRIPE_SECRET_KEY", "DATADOG_API_KEY", "NPM_TOKEN",
                     "SENTRY_AUTH_TOKEN"])
    if c == 0:
        return render_kv(kind, g.choice(["secret_key", "token", "api_key", "password", "token_env"]), name)
    if c == 1:
        return f"secret_key = os.environ[\"{name}\"]"
    if c == 2:
        return f"        String token = System.getenv(\"{name}\");"
    if c == 3:
        return f"  \"secretName\": \"{name}\","
    return f"        - name: {name}"


def near_class_name(g, kind):
    key = g.choice(["token_class", "password_hasher", "secret_backend", "auth_provider", "token", "secret",
                    "password_validator_class", "api_key_provider", "credentials"])
    val = g.choice(["AbstractTokenResolver", "JwtTokenProvider", "Argon2PasswordHasher", "VaultSecretBackend",
                    "OAuth2TokenAuthenticator", "BearerTokenInterceptor", "DefaultCredentialsProvider",
                    "SecretManagerServiceClient", "PasswordEncoderFactories", "ApiKeyAuthenticationFilter",
                    "django.contrib.auth.hashers.PBKDF2PasswordHasher", "StaticCredentialsProvider",
                    "RefreshTokenGrantHandler", "com.acme.auth.TokenStore2"])
    return render_kv(kind, key, val)


def near_url_password(g, kind):
    url = g.choice(["postgres://user:password@localhost:5432/app", "redis://:password@localhost:6379/0",
                    "amqp://guest:guest@rabbitmq:5672/", "mysql://root:root@127.0.0.1:3306/test",
                    "mongodb://admin:changeme@mongo:27017", "postgresql://postgres:postgres@localhost/test",
                    "postgres://app:${DB_PASSWORD}@db:5432/app", "https://user:pass@localhost:8443/",
                    "postgres://app:password123@localhost/app_test", "smtp://mailer:secret@localhost:25",
                    "ftp://anonymous:anonymous@ftp.local/"])
    return render_kv(kind, g.choice(["database_url", "DATABASE_URL", "broker_url", "redis_url", "dsn"]), url)


def near_public_key(g, kind):
    c = g.r.randint(0, 4)
    if c == 0:
        return ["-----BEGIN PUBLIC KEY-----"] + [_b64(g, 64) for _ in range(3)] + ["-----END PUBLIC KEY-----"]
    if c == 1:
        return f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{_b64(g, 43)} deploy@ci"
    if c == 2:
        return ["-----BEGIN CERTIFICATE-----"] + [_b64(g, 64) for _ in range(3)] + ["-----END CERTIFICATE-----"]
    if c == 3:
        return "    if pem.startswith(\"-----BEGIN RSA PRIVATE KEY-----\"):"
    return f"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ{_b64(g, 200)} ops@bastion"


def near_reference(g, kind):
    return g.choice([
        "password = request.form[\"password\"]", "token = generate_token(user)", "api_key = config.api_key",
        "secret = getpass.getpass()", "        self.token = token", "token := os.Getenv(\"TOKEN\")",
        "const secret = process.env.SECRET;", "  password = var.db_password",
        "  password = random_password.db.result", "  secret_key = aws_iam_access_key.ci.secret",
        "          NPM_TOKEN: ${{ secrets.NPM_TOKEN }}", "password: !vault |",
        "    password = settings.DATABASES[\"default\"][\"PASSWORD\"]", "api_key=$(cat /run/secrets/api_key)",
        "  token: \"{{ .Values.token }}\"", "secret_key = Rails.application.credentials.secret_key_base",
        "        var token = await _tokenService.GetTokenAsync(user);", "  password = local.db_password",
        "client_secret = self.client_secret", "password = data.vault_generic_secret.db.data[\"password\"]"])


def near_metadata_key(g, kind):
    key, val = g.choice([
        ("token_url", "https://auth.internal/oauth/token"), ("password_min_length", "12"),
        ("secret_name", "prod/db/credentials"), ("token_ttl", "3600"), ("api_key_header", "X-Api-Key"),
        ("password_reset_timeout", "86400"), ("tokenEndpoint", "https://login.internal/token"),
        ("secret_arn", "arn:aws:secretsmanager:eu-west-1:" + g.digits(12, 12) + ":secret:prod/db-" + g.s(ALNUM, 6)),
        ("passwordPolicy", "strong"), ("token_type", "Bearer"), ("secret_mount_path", "/var/run/secrets/app"),
        ("api_key_prefix", "sk_live_"), ("credential_source", "Ec2InstanceMetadata"),
        ("token_audience", "api://default"), ("kms_key_id", "alias/app-secrets"),
        ("password_pattern", "^(?=.*[A-Z])(?=.*[0-9]).{12,}$"), ("auth_token_expiry", "15m")])
    return render_kv(kind, key, val)


def near_high_entropy(g, kind):
    c = g.r.randint(0, 6)
    if c == 0:
        return f"  <img src=\"data:image/png;base64,iVBORw0KGgo{_b64(g, 120)}\" />"
    if c == 1:
        return render_kv(kind, "trace_id", g.hex(32))
    if c == 2:
        return render_kv(kind, "_id", g.hex(24))
    if c == 3:
        return f"  <script src=\"/static/js/main.{g.hex(8)}.js\" integrity=\"sha384-{_b64(g, 64)}\"></script>"
    if c == 4:
        return render_kv(kind, "nonce_seed", g.s(string.digits, 20))
    if c == 5:
        return render_kv(kind, "build_id", g.hex(40))
    return render_kv(kind, "uid", g.uuid())


def near_prose(g, kind):
    return g.choice([
        "# Personal access tokens start with glpat- followed by 20 characters.",
        "// Set DD_API_KEY to your Datadog API key before starting the agent.",
        "# GitHub tokens look like ghp_ followed by 36 characters; never commit one.",
        "<!-- sk_live_ keys must never be committed; use sk_test_ keys in tests -->",
        "# The password must be at least 12 characters long.",
        "    raise ValueError(\"token expired, please log in again\")",
        "  description: \"The API key used to authenticate against the billing service\"",
        "# Rotate the AWS secret access key every 90 days (see runbook).",
        "        log.info(\"refreshing access token for %s\", user_id)",
        "    // password: at least one digit, one upper-case letter",
        "# Docker Hub access tokens begin with dckr_pat_.",
        "* New Relic license keys end in NRAL."])


def near_masked(g, kind):
    key = g.choice(["token", "password", "api_key", "aws_access_key_id", "secret"])
    val = g.choice(["ghp_" + "*" * 36, "********", "AKIA" + "*" * 16, "sk_live_" + "*" * 20 + g.s(ALNUM, 4),
                    "xoxb-****-****-****", "glpat-" + "*" * 20, "****" + g.s(ALNUM, 4), "[REDACTED]",
                    "<hidden>", "•••••••••"])
    return render_kv(kind, key, val)


def near_auth_header(g, kind):
    return g.choice([
        "  Authorization: Bearer ${API_TOKEN}", "curl -H \"Authorization: Bearer $TOKEN\" https://api.internal/",
        "    headers = {\"Authorization\": f\"Bearer {token}\"}", "  Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        "      \"auth\": \"\"", "      \"auth\": \"" + base64.b64encode(b"admin:admin").decode() + "\"",
        "  Authorization: Bearer <token>", "machine github.com login octo password ${GITHUB_TOKEN}",
        "        req.headers['Authorization'] = 'Bearer ' + self.token",
        "  \"Authorization\": \"Basic " + base64.b64encode(b"user:password").decode() + "\""])


def near_infra(g, kind):
    return g.choice([
        "ARG NPM_TOKEN", "ENV API_KEY=\"\"", "RUN --mount=type=secret,id=npmrc,target=/root/.npmrc npm ci",
        "  sensitive = true", "variable \"db_password\" {", "  type      = string",
        "resource \"random_password\" \"db\" {", "  length = 32", "    secretKeyRef:", "      key: api-token",
        "      name: app-secrets", "ENV PASSWORD_FILE=/run/secrets/db_password", "  password_wo_version = 1",
        "kind: Secret", "  GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}", "export VAULT_TOKEN=$(vault print token)"])


def near_short(g, kind):
    key = g.choice(["password", "token", "secret", "api_key", "pwd", "passwd"])
    val = g.choice(["admin", "abc", "12345", "root", "none", "null", "true", "false", "0", "off", "required",
                    "optional", "string", "bearer", "basic"])
    return render_kv(kind, key, val)


NEAR = {
    "placeholder": near_placeholder,
    "vendor-doc-example": near_vendor_doc,
    "uuid": near_uuid,
    "hash": near_hash,
    "git-sha": near_git_sha,
    "test-fixture": near_fixture,
    "env-var-name": near_env_name,
    "class-name": near_class_name,
    "url-literal-password": near_url_password,
    "public-key-or-cert": near_public_key,
    "variable-reference": near_reference,
    "metadata-key": near_metadata_key,
    "high-entropy-non-secret": near_high_entropy,
    "prose": near_prose,
    "masked": near_masked,
    "infra-reference": near_infra,
    "short-value": near_short,
    "auth-header-reference": near_auth_header,
}


# ---------------------------------------------------------------------------------------------------------------
# Secret lines.

def _pem_body(g, lines, width=64):
    return [g.mixed(B64, width) for _ in range(lines)] + [g.mixed(B64, g.r.randint(20, 60)) + "="]


PEM_HEAD = {"private-key-rsa": "RSA PRIVATE KEY", "private-key-ec": "EC PRIVATE KEY",
            "private-key-openssh": "OPENSSH PRIVATE KEY", "private-key-pkcs8": "PRIVATE KEY"}

CALLS = {
    "java": ["        user.setPassword(\"{v}\");", "        ds.setPassword(\"{v}\");",
             "        builder.password(\"{v}\").build();"],
    "cs": ["        options.WithPassword(\"{v}\");", "        conn.SetPassword(\"{v}\");"],
    "py": ["client.set_password(\"{v}\")", "conn = psycopg2.connect(host=\"db\", user=\"app\", password=\"{v}\")",
           "mail.login(\"ops\", password=\"{v}\")"],
    "js": ["db.setPassword('{v}');", "await client.auth({ user: 'svc', password: '{v}' });"],
    "go": ["\tcfg.SetPassword(\"{v}\")", "\tdb.Open(mysql.Config{User: \"app\", Passwd: \"{v}\"})"],
    "rb": ["  user.password = '{v}'", "  smtp.authenticate('ops', password: '{v}')"],
    "php": ["    $mailer->setPassword('{v}');"],
    "ts": ["  ds.setPassword(\"{v}\");"],
}

PASSWORD_KEYS = ["password", "db_password", "DB_PASSWORD", "spring.datasource.password", "app.db.password",
                 "mysql_root_password", "admin_pass", "smtp.password", "passwd", "redis_password", "PGPASSWORD",
                 "keystore_password", "ldap.bind.password", "rabbitmq-password"]
SECRET_KEYS = ["client_secret", "api_key", "secret_key", "jwt_secret", "signing_secret", "app.oauth.client.secret",
               "webhook_secret", "APP_SECRET", "access_token", "auth_token", "encryption_key", "x-api-key",
               "service.api.token", "apiKey", "private_token"]


def secret_lines(g, fmt, kind, neutral):
    """(lines, index of the line the secret is reported on, the secret, kind actually used)."""
    layout = LAYOUT.get(fmt, "kv")
    if layout == "json-only":
        kind = "json"
    if layout in ("pem", "pem-json"):
        body = _pem_body(g, g.r.randint(4, 8))
        head = PEM_HEAD[fmt]
        if layout == "pem-json" or kind == "json":
            text = "\\n".join([f"-----BEGIN {head}-----"] + body + [f"-----END {head}-----"]) + "\\n"
            return [f"  \"private_key\": \"{text}\","], 0, body[0], "json"
        if kind == "yaml":
            return ([f"  tls.key: |", f"    -----BEGIN {head}-----"] + ["    " + b for b in body] +
                    [f"    -----END {head}-----"]), 1, body[0], kind
        kind = "pem"
        return [f"-----BEGIN {head}-----"] + body + [f"-----END {head}-----"], 0, body[0], kind
    if layout == "azure-conn":
        v = FORMATS[fmt][0](g)
        conn = (f"DefaultEndpointsProtocol=https;AccountName={g.s(string.ascii_lowercase, 10)};AccountKey={v};"
                "EndpointSuffix=core.windows.net")
        return [render_kv(kind, g.choice(["connection_string", "storage", "value"]), conn)], 0, v, kind
    if layout == "azure-sas":
        v = FORMATS[fmt][0](g)
        url = (f"https://{g.s(string.ascii_lowercase, 9)}.blob.core.windows.net/backups?sv=2022-11-02&ss=b&srt=co"
               f"&sp=rl&se=2031-01-01T00:00:00Z&st=2024-01-01T00:00:00Z&spr=https&sig={v}")
        return [render_kv(kind, g.choice(["backup_url", "sas_url", "value"]), url)], 0, v, kind
    if layout == "url-auth":
        v = g.password().replace("@", "").replace(":", "")
        user = g.choice(["app", "svc_billing", "deploy", "etl"])
        host = g.choice(["db.prod.internal:5432/app", "10.2.3.4:3306/orders", "mq.internal:5672/",
                         "cache.internal:6379/0"])
        scheme = g.choice(["postgres", "mysql", "amqp", "redis", "mongodb"])
        return [render_kv(kind, g.choice(["database_url", "broker", "conn"]), f"{scheme}://{user}:{v}@{host}")], \
            0, v, kind
    if layout == "auth-header":
        if g.r.random() < 0.5:
            v = g.mixed(B64URL, g.r.randint(32, 48))
            scheme = "Bearer"
        else:
            v = base64.b64encode(f"{g.choice(['svc', 'deploy', 'admin'])}:{g.password()}".encode()).decode()
            scheme = "Basic"
        line = g.choice([f"curl -sf -H \"Authorization: {scheme} {v}\" https://api.internal/v1/jobs",
                         f"    headers = {{\"Authorization\": \"{scheme} {v}\"}}",
                         f"  Authorization: {scheme} {v}",
                         f"        req.headers['Authorization'] = '{scheme} {v}'"])
        return [line], 0, v, kind
    if layout == "netrc":
        v = g.password()
        return [f"machine {g.choice(['github.com', 'gitlab.internal', 'artifacts.internal'])} login "
                f"{g.choice(['ci', 'deploy', 'octo'])} password {v}"], 0, v, "netrc"
    if layout == "docker-auth":
        v = base64.b64encode(f"{g.choice(['ci', 'robot$push', 'deploy'])}:{g.password()}".encode()).decode()
        return [f"      \"auth\": \"{v}\""], 0, v, "json"
    if layout == "generic-password":
        v = g.password()
        return [render_kv(kind, g.choice(PASSWORD_KEYS), v)], 0, v, kind
    if layout == "generic-secret":
        v = g.choice([g.mixed(ALNUM, g.r.randint(32, 48)), g.hex(g.choice([32, 48, 64])), g.mixed(B64URL, 43)])
        return [render_kv(kind, g.choice(SECRET_KEYS), v)], 0, v, kind
    if layout == "call":
        if kind not in CALLS:
            kind = g.choice(sorted(CALLS))
        v = g.password()
        return [g.choice(CALLS[kind]).replace("{v}", v)], 0, v, kind
    gen, keys = FORMATS[fmt]
    v = gen(g)
    if layout == "kv-url":
        key = g.choice(["webhook_url", "notify", "value"])
    elif keys is None:
        key = g.choice(NEUTRAL) if neutral else g.choice(["token", "api_key", "secret", "key", "credentials",
                                                          fmt.replace("-", "_")])
    else:
        key = g.choice(keys)
    return [render_kv(kind, key, v)], 0, v, kind


# ---------------------------------------------------------------------------------------------------------------

def generate(outdir, seed=18, target_bytes=0, per_format=3, near_per_category=24):
    """Write the corpus; returns the manifest (also written to outdir/manifest.json). With target_bytes the files
    are about ten times larger (40 to 80 items each), as source files of a big merge request are."""
    g = Gen(seed)
    files_dir = os.path.join(outdir, "files")
    os.makedirs(files_dir, exist_ok=True)
    items = []  # ("secret", fmt, neutral) or ("near", category)
    for fmt in FORMATS:
        for i in range(per_format):
            items.append(("secret", fmt, i % 2 == 0))
    for cat in NEAR:
        for _ in range(near_per_category):
            items.append(("near", cat, False))
    manifest = {"seed": seed, "secrets": [], "near": [], "files": [], "filler_lines": 0, "bytes": 0}
    round_no = 0
    while True:
        g.r.shuffle(items)
        file_no = 0
        pos = 0
        while pos < len(items):
            kind = KINDS[(file_no + round_no) % len(KINDS)]
            take = g.r.randint(40, 80) if target_bytes else g.r.randint(3, 7)
            chunk = items[pos:pos + take]
            pos += take
            _write_file(g, files_dir, f"r{round_no:03d}", file_no, kind, chunk, manifest)
            file_no += 1
        round_no += 1
        if manifest["bytes"] >= target_bytes:
            break
    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    return manifest


def _write_file(g, files_dir, round_tag, file_no, kind, chunk, manifest):
    lines, secrets, nears = [], [], []
    fill = FILLER[kind]
    for _ in range(g.r.randint(1, 3)):
        lines.append(g.choice(fill))
    for it in chunk:
        if it[0] == "secret":
            fmt, neutral = it[1], it[2]
            sl, at, secret, used = secret_lines(g, fmt, kind, neutral)
            secrets.append({"line": len(lines) + at + 1, "format": fmt, "secret": secret, "kind": used,
                            "neutral_name": neutral})
            lines.extend(sl)
        else:
            out = NEAR[it[1]](g, kind)
            out = out if isinstance(out, list) else [out]
            for k, text in enumerate(out):
                nears.append({"line": len(lines) + k + 1, "category": it[1]})
            lines.extend(out)
        for _ in range(g.r.randint(0, 2)):
            lines.append(g.choice(fill))
    sub = os.path.join(files_dir, round_tag, kind)
    os.makedirs(sub, exist_ok=True)
    ext = EXT[kind]
    name = f"Dockerfile.{file_no:04d}" if kind == "dockerfile" else f"f{file_no:04d}{ext}"
    rel = os.path.join("files", round_tag, kind, name)
    text = "\n".join(lines) + "\n"
    with open(os.path.join(files_dir, round_tag, kind, name), "w") as f:
        f.write(text)
    marked = {s["line"] for s in secrets} | {n["line"] for n in nears}
    # Lines of a multi-line secret other than the reported one are neither filler nor near misses.
    body = set()
    for s in secrets:
        if s["format"].startswith("private-key") and s["kind"] != "json":
            first = s["line"]
            for k in range(first, len(lines) + 1):
                body.add(k)
                if "-----END" in lines[k - 1]:
                    break
    filler = [i + 1 for i in range(len(lines)) if (i + 1) not in marked and (i + 1) not in body]
    for s in secrets:
        s["path"] = rel
        manifest["secrets"].append(s)
    for n in nears:
        n["path"] = rel
        manifest["near"].append(n)
    manifest["files"].append({"path": rel, "kind": kind, "lines": len(lines), "filler": filler,
                              "secret_body": sorted(body - marked)})
    manifest["filler_lines"] += len(filler)
    manifest["bytes"] += len(text.encode())


# ---------------------------------------------------------------------------------------------------------------
# Scoring, shared by the test and the bench.

def _split(entries, key, flagged):
    """The manifest entries grouped by entry[key] (in order of appearance): per group the "path:line" of the
    flagged ones and of the others."""
    groups = {}
    for e in entries:
        hit, miss = groups.setdefault(e[key], ([], []))
        (hit if (e["path"], e["line"]) in flagged else miss).append(f"{e['path']}:{e['line']}")
    return groups


def score(manifest, flagged):
    """flagged: set of (path, line) a scanner reported. Returns a dict of recall per format and false positives."""
    by_format = {fmt: {"total": len(hit) + len(miss), "found": len(hit), "missed": miss}
                 for fmt, (hit, miss) in _split(manifest["secrets"], "format", flagged).items()}
    secret_lines_set = {(s["path"], s["line"]) for s in manifest["secrets"]}
    body = {(f["path"], ln) for f in manifest["files"] for ln in f["secret_body"]}
    near_by = {cat: {"total": len(hit) + len(miss), "flagged": len(hit), "lines": hit}
               for cat, (hit, miss) in _split(manifest["near"], "category", flagged).items()}
    near_set = {(n["path"], n["line"]) for n in manifest["near"]}
    filler_fp = sorted(f"{p}:{ln}" for (p, ln) in flagged
                       if (p, ln) not in secret_lines_set and (p, ln) not in near_set and (p, ln) not in body)
    found = sum(d["found"] for d in by_format.values())
    total = sum(d["total"] for d in by_format.values())
    fp_lines = sum(d["flagged"] for d in near_by.values()) + len(filler_fp)
    return {"recall": found / total if total else 0.0, "found": found, "total": total, "by_format": by_format,
            "near_by_category": near_by, "near_total": len(manifest["near"]), "filler_fp": filler_fp,
            "fp_lines": fp_lines,
            "fp_per_100": 100.0 * fp_lines / len(manifest["near"]) if manifest["near"] else 0.0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--bytes", type=int, default=0)
    a = ap.parse_args()
    m = generate(a.outdir, a.seed, a.bytes)
    print(f"{len(m['secrets'])} secrets in {len(set(s['format'] for s in m['secrets']))} formats, "
          f"{len(m['near'])} near-miss lines in {len(set(n['category'] for n in m['near']))} categories, "
          f"{m['filler_lines']} filler lines, {len(m['files'])} files, {m['bytes']} bytes")


if __name__ == "__main__":
    main()
