/*
 * core/scan_secrets.c
 *    Rules, matching, redaction and fingerprints of the built-in secrets scanner. See scan_secrets.h.
 *
 * How a line is scanned: for each rule whose keywords occur in the line (the prefilter: one pass over the line
 * through a table of the keywords' first two bytes; case-insensitive for the case-insensitive rules, exact for the
 * others, whose regexes hold their keywords literally), the regex is run repeatedly from left to right. A match is
 * kept when its boundaries, length, entropy, allowlist and rule-specific checks pass and it does not overlap a match
 * kept before (rules run in table order, specific ones first, so the generic rules never double-report a known
 * token). Then the line is redacted once with every kept secret (and every other occurrence of the same text)
 * replaced, and one finding per kept match is appended with that common excerpt: an excerpt never shows another
 * finding's secret either.
 * Speed: glibc's regexec tries every start position that its fastmap allows, so a rule starts with a literal where
 * it can. The two generic rules (case-insensitive alternations, the costliest) are anchored with '^' and run only
 * at the positions where the prefilter finds one of their key words; the key-name check only needs the key's end.
 * Adding a rule: append it to the table (generic rules stay last) with the provider's page that documents the
 * format as its source, add a true positive and a near-miss negative for it to tests/unit/test_scan_secrets.c (the
 * unit test fails for a rule without them), and the format to tests/secrets-corpus/corpus.py.
 */
#include "scan_secrets.h"

#include "buf.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
	R_ICASE = 1 << 0,      /* regex and keywords are case-insensitive */
	R_BSTART = 1 << 1,     /* the match must not follow a word character */
	R_BEND = 1 << 2,       /* the secret must not be followed by a word character */
	R_GENERIC = 1 << 3,    /* a keyword/entropy heuristic: key-name checks, values without spaces or URLs */
	R_PRIVKEY = 1 << 4,    /* a PEM/PGP header: needs key material after it */
	R_NO_ALLOW = 1 << 5,   /* skip the placeholder allowlist and the minimum entropy */
	R_AT_KEYWORD = 1 << 6, /* the regex starts with '^' and is tried only where a keyword occurs */
	R_SETTER = 1 << 7,     /* the match must follow "set", "with", '.', "->" or a blank: a setter or builder call */
	R_URL_AUTH = 1 << 8,   /* user:password@host: group 1 the user, a default password is no secret */
	R_BASIC_AUTH = 1 << 9, /* base64 of "user:password" when it decodes so: a default password is no secret */
	R_HAND = 1 << 10,      /* matched by generic_match(), which does what the rule's regex says, faster */
};
#define R_B (R_BSTART | R_BEND)

#define MAX_GROUPS           10
#define MAX_MATCHES_PER_LINE 64
#define MAX_TRIES_PER_RULE   256
#define PEM_MIN_BODY         32 /* base64 characters that count as key material */
#define PEM_LOOKAHEAD        4  /* added lines after a BEGIN line searched for key material */
#define PEM_MAX_BODY_LINES   1000
#define SPECIFIC_MIN_ENTROPY 2.5
#define HEX_MIN_ENTROPY      3.0 /* bits per character a long hex value of a generic rule needs */

struct rule {
	struct scan_secrets_rule_info info;
	const char *regex;
	const char *keywords; /* '|'-separated; one must occur (case-insensitive) for the regex to run; NULL: always */
	unsigned flags;
	signed char groups[3];      /* capture groups holding the secret, the first that matched wins; 0: whole match */
	signed char key_group;      /* generic rules: the group holding the key name */
	signed char unquoted_group; /* generic rules: the group of an unquoted value (stricter checks) */
	unsigned char min_len;
	double min_entropy;
};

/* "(=|:=|:|=>)" between a key and its value, with optional quotes, a ']' (m["key"] = v) and blanks around; or the
 * 'key="NAME" value="..."' of .NET appSettings and similar XML. */
#define ASSIGN "[\"']?\\]?[ \t]*(=|:=|:|=>|[Vv]alue=)[ \t]*"
/* A quoted or unquoted value: groups +1 (whole), +2 ("..."), +3 ('...'), +4 (bare). */
#define VALUE "(\"([^\"]+)\"|'([^']+)'|([^][ \t\"',;&(){}<>`]+))"
#define GENERIC_VALUE_MAX                                                                                              \
	256 /* longer values are data, not a credential; checked in code ("{1,256}" is slow in glibc) */

static const struct rule rules[] = {
    /* Cloud providers */
    {{"aws-access-key-id", "AWS access key ID", SEV_HIGH,
      "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids"},
     "(AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}",
     "AKIA|ASIA|ABIA|ACCA|A3T",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"aws-secret-access-key", "AWS secret access key", SEV_CRITICAL,
      "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html"},
     "aws_?(secret_?access_?key|secret_?key)" ASSIGN "[\"']?([A-Za-z0-9/+]{40})",
     "aws",
     R_ICASE | R_BEND,
     {3},
     0,
     0,
     0,
     3.0},
    {{"gcp-service-account-key", "GCP service account key", SEV_CRITICAL,
      "https://cloud.google.com/iam/docs/keys-create-delete#creating"},
     "\"private_key_id\"[ \t]*:[ \t]*\"([0-9a-f]{40})\"",
     "private_key_id",
     0,
     {1},
     0,
     0,
     0,
     0},
    {{"gcp-api-key", "Google Cloud API key", SEV_HIGH, "https://cloud.google.com/docs/authentication/api-keys"},
     "AIza[0-9A-Za-z_-]{35}",
     "AIza",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"gcp-oauth-client-secret", "Google OAuth client secret", SEV_HIGH,
      "https://support.google.com/cloud/answer/15549257"},
     "GOCSPX-[0-9A-Za-z_-]{28}",
     "GOCSPX-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"azure-storage-account-key", "Azure storage account key", SEV_CRITICAL,
      "https://learn.microsoft.com/azure/storage/common/storage-configure-connection-string"},
     "AccountKey=([A-Za-z0-9+/]{86}==)",
     "AccountKey=",
     R_BEND,
     {1},
     0,
     0,
     0,
     0},
    {{"azure-sas-token", "Azure shared access signature", SEV_HIGH,
      "https://learn.microsoft.com/rest/api/storageservices/create-service-sas"},
     "sv=[0-9]{4}-[0-9]{2}-[0-9]{2}&[^ \t\"'<>]*sig=([A-Za-z0-9%+/]{40,}(%3D|=)?)",
     "sig=",
     0,
     {1},
     0,
     0,
     0,
     0},
    {{"azure-ad-client-secret", "Azure AD client secret", SEV_HIGH,
      "https://learn.microsoft.com/entra/identity-platform/how-to-add-credentials"},
     "[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}",
     "Q~",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    /* GitLab */
    {{"gitlab-pat", "GitLab personal access token", SEV_HIGH,
      "https://docs.gitlab.com/security/tokens/#token-prefixes"},
     "glpat-[0-9A-Za-z_.-]{20,}",
     "glpat-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"gitlab-runner-token", "GitLab runner authentication token", SEV_HIGH,
      "https://docs.gitlab.com/security/tokens/#token-prefixes"},
     "glrt-[0-9A-Za-z_.-]{20,}",
     "glrt-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"gitlab-runner-registration-token", "GitLab runner registration token", SEV_HIGH,
      "https://docs.gitlab.com/security/tokens/#token-prefixes"},
     "GR1348941[0-9A-Za-z_-]{20}",
     "GR1348941",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"gitlab-deploy-token", "GitLab deploy token", SEV_HIGH,
      "https://docs.gitlab.com/security/tokens/#token-prefixes"},
     "gldt-[0-9A-Za-z_.-]{20,}",
     "gldt-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"gitlab-pipeline-trigger-token", "GitLab pipeline trigger token", SEV_HIGH,
      "https://docs.gitlab.com/security/tokens/#token-prefixes"},
     "glptt-[0-9A-Za-z_.-]{20,}",
     "glptt-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"gitlab-feed-token", "GitLab feed token", SEV_MEDIUM, "https://docs.gitlab.com/security/tokens/#token-prefixes"},
     "glft-[0-9A-Za-z_.-]{20,}",
     "glft-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"gitlab-oauth-app-secret", "GitLab OAuth application secret", SEV_HIGH,
      "https://docs.gitlab.com/security/tokens/#token-prefixes"},
     "gloas-[0-9a-f]{64}",
     "gloas-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"gitlab-ci-job-token", "GitLab CI/CD job token", SEV_MEDIUM,
      "https://docs.gitlab.com/security/tokens/#token-prefixes"},
     "glcbt-[0-9A-Za-z_.-]{20,}",
     "glcbt-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"gitlab-agent-token", "GitLab agent for Kubernetes token", SEV_HIGH,
      "https://docs.gitlab.com/security/tokens/#token-prefixes"},
     "glagent-[0-9A-Za-z_-]{50}",
     "glagent-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    /* GitHub */
    {{"github-pat", "GitHub personal access token", SEV_HIGH,
      "https://github.blog/engineering/platform-security/behind-githubs-new-authentication-token-formats/"},
     "ghp_[0-9A-Za-z]{36}",
     "ghp_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"github-oauth-token", "GitHub OAuth access token", SEV_HIGH,
      "https://github.blog/engineering/platform-security/behind-githubs-new-authentication-token-formats/"},
     "gho_[0-9A-Za-z]{36}",
     "gho_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"github-user-to-server-token", "GitHub app user-to-server token", SEV_HIGH,
      "https://github.blog/engineering/platform-security/behind-githubs-new-authentication-token-formats/"},
     "ghu_[0-9A-Za-z]{36}",
     "ghu_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"github-server-to-server-token", "GitHub app installation token", SEV_HIGH,
      "https://github.blog/engineering/platform-security/behind-githubs-new-authentication-token-formats/"},
     "ghs_[0-9A-Za-z]{36}",
     "ghs_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"github-refresh-token", "GitHub refresh token", SEV_HIGH,
      "https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/"
      "refreshing-user-access-tokens"},
     "ghr_[0-9A-Za-z]{36}[0-9A-Za-z]*",
     "ghr_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"github-fine-grained-pat", "GitHub fine-grained personal access token", SEV_HIGH,
      "https://github.blog/security/application-security/introducing-fine-grained-personal-access-tokens-for-github/"},
     "github_pat_[0-9A-Za-z]{22}_[0-9A-Za-z]{59}",
     "github_pat_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    /* Slack */
    {{"slack-bot-token", "Slack bot token", SEV_HIGH, "https://api.slack.com/concepts/token-types"},
     "xoxb-[0-9]{10,13}-[0-9]{10,13}-[0-9A-Za-z]{24,34}",
     "xoxb-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"slack-user-token", "Slack user token", SEV_HIGH, "https://api.slack.com/concepts/token-types"},
     "xoxp-[0-9]{10,13}-[0-9]{10,13}-[0-9]{10,13}-[0-9A-Za-z]{28,34}",
     "xoxp-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"slack-legacy-token", "Slack workspace or legacy token", SEV_HIGH, "https://api.slack.com/concepts/token-types"},
     "xox[ar]-[0-9A-Za-z-]{30,}",
     "xoxa-|xoxr-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"slack-app-token", "Slack app-level token", SEV_HIGH, "https://api.slack.com/concepts/token-types"},
     "xapp-[0-9]-[A-Z0-9]{9,11}-[0-9]{10,13}-[0-9a-z]{64}",
     "xapp-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"slack-webhook-url", "Slack incoming webhook URL", SEV_MEDIUM, "https://api.slack.com/messaging/webhooks"},
     "hooks\\.slack\\.com/services/(T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/[0-9A-Za-z]{24})",
     "hooks.slack.com",
     R_BEND,
     {1},
     0,
     0,
     0,
     0},
    /* Payment, SaaS and developer platforms */
    {{"stripe-secret-key", "Stripe live secret key", SEV_CRITICAL, "https://docs.stripe.com/keys#obtain-api-keys"},
     "sk_live_[0-9A-Za-z]{24,99}",
     "sk_live_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"stripe-restricted-key", "Stripe live restricted key", SEV_HIGH, "https://docs.stripe.com/keys#limit-access"},
     "rk_live_[0-9A-Za-z]{24,99}",
     "rk_live_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"npm-token", "npm access token", SEV_HIGH,
      "https://github.blog/changelog/2021-09-23-npm-has-a-new-access-token-format/"},
     "npm_[0-9A-Za-z]{36}",
     "npm_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"pypi-token", "PyPI upload token", SEV_HIGH, "https://pypi.org/help/#apitoken"},
     "pypi-AgEIcHlwaS5vcmc[0-9A-Za-z_-]{50,}",
     "pypi-AgEI",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"twilio-api-key", "Twilio API key", SEV_HIGH, "https://www.twilio.com/docs/iam/api-keys"},
     "SK[0-9a-f]{32}",
     "SK",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"sendgrid-api-key", "SendGrid API key", SEV_HIGH,
      "https://www.twilio.com/docs/sendgrid/ui/account-and-settings/api-keys"},
     "SG\\.[0-9A-Za-z_-]{22}\\.[0-9A-Za-z_-]{43}",
     "SG.",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"mailgun-api-key", "Mailgun API key", SEV_HIGH,
      "https://documentation.mailgun.com/docs/mailgun/api-reference/authentication"},
     "key-[0-9a-f]{32}",
     "key-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"shopify-token", "Shopify access token or shared secret", SEV_HIGH,
      "https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens"},
     "shp(at|ca|pa|ss)_[0-9a-fA-F]{32}",
     "shpat_|shpca_|shppa_|shpss_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"square-access-token", "Square access token", SEV_HIGH,
      "https://developer.squareup.com/docs/build-basics/access-tokens"},
     "(sq0atp-[0-9A-Za-z_-]{22}|EAAA[0-9A-Za-z_+=-]{60})",
     "sq0atp-|EAAA",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"square-oauth-secret", "Square OAuth secret", SEV_HIGH, "https://developer.squareup.com/docs/oauth-api/overview"},
     "sq0csp-[0-9A-Za-z_-]{43}",
     "sq0csp-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"heroku-api-key", "Heroku API key", SEV_HIGH, "https://devcenter.heroku.com/articles/authentication"},
     "heroku[A-Za-z0-9_.-]{0,30}" ASSIGN "[\"']?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})",
     "heroku",
     R_ICASE | R_BEND,
     {2},
     0,
     0,
     0,
     0},
    {{"heroku-api-key-v2", "Heroku API key", SEV_HIGH, "https://devcenter.heroku.com/changelog-items/3173"},
     "HRKU-[0-9A-Za-z_-]{60}",
     "HRKU-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"digitalocean-token", "DigitalOcean token", SEV_HIGH,
      "https://docs.digitalocean.com/reference/api/create-personal-access-token/"},
     "do[opr]_v1_[a-f0-9]{64}",
     "_v1_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"vault-token", "HashiCorp Vault token", SEV_HIGH,
      "https://developer.hashicorp.com/vault/docs/concepts/tokens#token-prefixes"},
     "hv[sb]\\.[0-9A-Za-z_-]{24,}",
     "hvs.|hvb.",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"databricks-token", "Databricks access token", SEV_HIGH, "https://docs.databricks.com/dev-tools/auth/pat.html"},
     "dapi[0-9a-f]{32}(-[0-9]+)?",
     "dapi",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"discord-bot-token", "Discord bot token", SEV_HIGH,
      "https://discord.com/developers/docs/reference#authentication"},
     "[MNO][A-Za-z0-9_-]{23,25}\\.[A-Za-z0-9_-]{6}\\.[A-Za-z0-9_-]{27,38}",
     ".",
     R_B,
     {0},
     0,
     0,
     0,
     3.5},
    {{"telegram-bot-token", "Telegram bot token", SEV_HIGH, "https://core.telegram.org/bots/api#authorizing-your-bot"},
     "[0-9]{8,10}:AA[0-9A-Za-z_-]{33}",
     ":AA",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"anthropic-api-key", "Anthropic API key", SEV_HIGH,
      "https://docs.anthropic.com/en/api/admin-api/apikeys/get-api-key"},
     "sk-ant-(api|admin)[0-9]{2}-[A-Za-z0-9_-]{40,}",
     "sk-ant-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"openai-api-key", "OpenAI API key", SEV_HIGH, "https://platform.openai.com/docs/api-reference/authentication"},
     "sk-(proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}",
     "sk-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"huggingface-token", "Hugging Face access token", SEV_HIGH, "https://huggingface.co/docs/hub/security-tokens"},
     "hf_[A-Za-z0-9]{34}",
     "hf_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"atlassian-api-token", "Atlassian API token", SEV_HIGH,
      "https://support.atlassian.com/atlassian-account/docs/manage-api-tokens-for-your-atlassian-account/"},
     "ATATT3[A-Za-z0-9_=-]{60,}",
     "ATATT3",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"doppler-token", "Doppler token", SEV_HIGH, "https://docs.doppler.com/reference/auth-token-formats"},
     "dp\\.(pt|st|ct|sa|scim|audit)\\.[A-Za-z0-9]{40,44}",
     "dp.",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"postman-api-key", "Postman API key", SEV_HIGH,
      "https://learning.postman.com/docs/developer/postman-api/authentication/"},
     "PMAK-[0-9a-f]{24}-[0-9a-f]{34}",
     "PMAK-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"age-secret-key", "age secret key", SEV_CRITICAL, "https://age-encryption.org/v1"},
     "AGE-SECRET-KEY-1[0-9A-Z]{58}",
     "AGE-SECRET-KEY-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"newrelic-user-key", "New Relic user API key", SEV_HIGH,
      "https://docs.newrelic.com/docs/apis/intro-apis/new-relic-api-keys/#user-key"},
     "NRAK-[A-Z0-9]{27}",
     "NRAK-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"pulumi-token", "Pulumi access token", SEV_HIGH,
      "https://www.pulumi.com/docs/pulumi-cloud/access-management/access-tokens/"},
     "pul-[a-f0-9]{40}",
     "pul-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"terraform-cloud-token", "Terraform Cloud API token", SEV_HIGH,
      "https://developer.hashicorp.com/terraform/cloud-docs/users-teams-organizations/api-tokens"},
     "[A-Za-z0-9]{14}\\.atlasv1\\.[A-Za-z0-9_=-]{60,70}",
     ".atlasv1.",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"grafana-service-account-token", "Grafana service account token", SEV_HIGH,
      "https://grafana.com/docs/grafana/latest/administration/service-accounts/#service-account-tokens"},
     "glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}",
     "glsa_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"linear-api-key", "Linear API key", SEV_HIGH, "https://linear.app/developers/graphql#personal-api-keys"},
     "lin_api_[A-Za-z0-9]{40}",
     "lin_api_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    /* Added with the corpus of tests/secrets-corpus: documented prefixes found whatever the key is called */
    {{"dockerhub-pat", "Docker Hub access token", SEV_HIGH,
      "https://docs.docker.com/security/for-developers/access-tokens/"},
     "dckr_(pat|oat)_[A-Za-z0-9_-]{27,}",
     "dckr_pat_|dckr_oat_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"alibaba-access-key-id", "Alibaba Cloud AccessKey ID", SEV_HIGH,
      "https://www.alibabacloud.com/help/en/ram/user-guide/create-an-accesskey-pair"},
     "LTAI[A-Za-z0-9]{12,20}",
     "LTAI",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"newrelic-license-key", "New Relic license (ingest) key", SEV_HIGH,
      "https://docs.newrelic.com/docs/apis/intro-apis/new-relic-api-keys/#license-key"},
     "[a-f0-9]{36}NRAL",
     "NRAL",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"newrelic-insert-key", "New Relic insert key", SEV_HIGH,
      "https://docs.newrelic.com/docs/apis/intro-apis/new-relic-api-keys/#insights-insert-key"},
     "NRII-[A-Za-z0-9_-]{32}",
     "NRII-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"datadog-api-key", "Datadog API key", SEV_HIGH, "https://docs.datadoghq.com/account_management/api-app-keys/"},
     "(datadog|dd)[_.-]?api[_.-]?key[A-Za-z0-9_.-]{0,16}" ASSIGN "[\"']?([a-f0-9]{32})",
     "datadog|dd_a|dd.a|dd-a|ddapi",
     R_ICASE | R_BEND,
     {3},
     0,
     0,
     0,
     3.0},
    {{"datadog-app-key", "Datadog application key", SEV_HIGH,
      "https://docs.datadoghq.com/account_management/api-app-keys/#application-keys"},
     "(datadog|dd)[_.-]?app(lication)?[_.-]?key[A-Za-z0-9_.-]{0,16}" ASSIGN "[\"']?([a-f0-9]{40})",
     "datadog|dd_a|dd.a|dd-a|ddapp",
     R_ICASE | R_BEND,
     {4},
     0,
     0,
     0,
     3.0},
    {{"dynatrace-token", "Dynatrace API token", SEV_HIGH,
      "https://docs.dynatrace.com/docs/manage/identity-access-management/access-tokens-and-oauth-clients/"
      "access-tokens#token-format"},
     "dt0c01\\.[A-Z0-9]{24}\\.[A-Z0-9]{64}",
     "dt0c01.",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"grafana-cloud-token", "Grafana Cloud access policy token", SEV_HIGH,
      "https://grafana.com/docs/grafana-cloud/security-and-account-management/authentication-and-permissions/"
      "access-policies/"},
     "glc_[A-Za-z0-9+/]{32,}={0,2}",
     "glc_",
     R_BSTART,
     {0},
     0,
     0,
     0,
     0},
    {{"sentry-user-token", "Sentry user auth token", SEV_HIGH, "https://docs.sentry.io/account/auth-tokens/"},
     "sntryu_[a-f0-9]{64}",
     "sntryu_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"sentry-org-token", "Sentry organization auth token", SEV_HIGH, "https://docs.sentry.io/account/auth-tokens/"},
     "sntrys_eyJ[A-Za-z0-9_=+/-]{50,}",
     "sntrys_",
     R_BSTART,
     {0},
     0,
     0,
     0,
     0},
    {{"stripe-webhook-secret", "Stripe webhook signing secret", SEV_HIGH,
      "https://docs.stripe.com/webhooks#verify-official-libraries"},
     "whsec_[A-Za-z0-9]{32,}",
     "whsec_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"mailchimp-api-key", "Mailchimp API key", SEV_HIGH,
      "https://mailchimp.com/developer/marketing/guides/quick-start/#generate-your-api-key"},
     "[a-f0-9]{32}-us[0-9]{1,2}",
     "-us",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"mapbox-secret-token", "Mapbox secret access token", SEV_HIGH,
      "https://docs.mapbox.com/accounts/guides/tokens/#token-format"},
     "sk\\.eyJ[A-Za-z0-9_-]{20,}\\.[A-Za-z0-9_-]{20,}",
     "sk.eyJ",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"planetscale-token", "PlanetScale token or password", SEV_HIGH,
      "https://planetscale.com/docs/concepts/service-tokens"},
     "pscale_(tkn|pw|oauth)_[A-Za-z0-9_.=-]{32,64}",
     "pscale_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"rubygems-api-key", "RubyGems API key", SEV_HIGH, "https://guides.rubygems.org/api-key-scopes/"},
     "rubygems_[a-f0-9]{48}",
     "rubygems_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"clojars-token", "Clojars deploy token", SEV_HIGH, "https://github.com/clojars/clojars-web/wiki/Deploy-Tokens"},
     "CLOJARS_[a-z0-9]{60}",
     "CLOJARS_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"buildkite-token", "Buildkite API access token", SEV_HIGH, "https://buildkite.com/docs/apis/managing-api-tokens"},
     "bkua_[a-f0-9]{40}",
     "bkua_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"supabase-token", "Supabase access token", SEV_HIGH,
      "https://supabase.com/docs/reference/api/introduction#authentication"},
     "sbp_[a-f0-9]{40}",
     "sbp_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"shippo-api-token", "Shippo live API token", SEV_HIGH,
      "https://docs.goshippo.com/docs/guides_general/authentication/"},
     "shippo_live_[a-f0-9]{40}",
     "shippo_live_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"groq-api-key", "Groq API key", SEV_HIGH, "https://console.groq.com/docs/quickstart"},
     "gsk_[A-Za-z0-9]{52}",
     "gsk_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"replicate-api-token", "Replicate API token", SEV_HIGH, "https://replicate.com/docs/topics/security/api-tokens"},
     "r8_[A-Za-z0-9]{37}",
     "r8_",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"perplexity-api-key", "Perplexity API key", SEV_HIGH, "https://docs.perplexity.ai/guides/getting-started"},
     "pplx-[A-Za-z0-9]{48}",
     "pplx-",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    /* Private keys (key material must follow) */
    {{"private-key-rsa", "RSA private key", SEV_CRITICAL, "https://www.rfc-editor.org/rfc/rfc8017#appendix-A.1.2"},
     "-----BEGIN RSA PRIVATE KEY-----",
     "PRIVATE KEY",
     R_PRIVKEY | R_NO_ALLOW,
     {0},
     0,
     0,
     0,
     0},
    {{"private-key-ec", "EC private key", SEV_CRITICAL, "https://www.rfc-editor.org/rfc/rfc5915"},
     "-----BEGIN EC PRIVATE KEY-----",
     "PRIVATE KEY",
     R_PRIVKEY | R_NO_ALLOW,
     {0},
     0,
     0,
     0,
     0},
    {{"private-key-dsa", "DSA private key", SEV_CRITICAL, "https://www.rfc-editor.org/rfc/rfc7468"},
     "-----BEGIN DSA PRIVATE KEY-----",
     "PRIVATE KEY",
     R_PRIVKEY | R_NO_ALLOW,
     {0},
     0,
     0,
     0,
     0},
    {{"private-key-openssh", "OpenSSH private key", SEV_CRITICAL,
      "https://github.com/openssh/openssh-portable/blob/master/PROTOCOL.key"},
     "-----BEGIN OPENSSH PRIVATE KEY-----",
     "PRIVATE KEY",
     R_PRIVKEY | R_NO_ALLOW,
     {0},
     0,
     0,
     0,
     0},
    {{"private-key-pgp", "PGP private key block", SEV_CRITICAL, "https://www.rfc-editor.org/rfc/rfc4880#section-6.2"},
     "-----BEGIN PGP PRIVATE KEY BLOCK-----",
     "PRIVATE KEY",
     R_PRIVKEY | R_NO_ALLOW,
     {0},
     0,
     0,
     0,
     0},
    {{"private-key-pkcs8", "PKCS#8 private key", SEV_CRITICAL, "https://www.rfc-editor.org/rfc/rfc7468#section-10"},
     "-----BEGIN PRIVATE KEY-----",
     "PRIVATE KEY",
     R_PRIVKEY | R_NO_ALLOW,
     {0},
     0,
     0,
     0,
     0},
    {{"private-key-pkcs8-encrypted", "Encrypted PKCS#8 private key", SEV_HIGH,
      "https://www.rfc-editor.org/rfc/rfc7468#section-11"},
     "-----BEGIN ENCRYPTED PRIVATE KEY-----",
     "PRIVATE KEY",
     R_PRIVKEY | R_NO_ALLOW,
     {0},
     0,
     0,
     0,
     0},
    /* Tokens (JWT) and credentials in URLs */
    {{"jwt", "JSON Web Token", SEV_MEDIUM, "https://www.rfc-editor.org/rfc/rfc7519#section-3"},
     "eyJ[A-Za-z0-9_-]{10,}\\.eyJ[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]{16,}",
     "eyJ",
     R_B,
     {0},
     0,
     0,
     0,
     0},
    {{"url-basic-auth", "Password in URL", SEV_HIGH, "https://www.rfc-editor.org/rfc/rfc3986#section-3.2.1"},
     "[A-Za-z][A-Za-z0-9+.-]{1,20}://([^]:/@[ \t\"'<>]{1,128}):([^][@/ \t\"'<>]{3,128})@[A-Za-z0-9.-]+",
     "://",
     R_URL_AUTH,
     {2},
     0,
     0,
     0,
     0},
    {{"http-authorization-header", "Credentials in an HTTP Authorization header", SEV_HIGH,
      "https://www.rfc-editor.org/rfc/rfc9110#section-11.6.2"},
     "^(authorization)[\"']?\\]?[ \t]*[:=][ \t]*[\"']?(bearer|basic|token)[ \t]+([A-Za-z0-9._~+/=-]{16,})",
     "authorization",
     R_ICASE | R_GENERIC | R_AT_KEYWORD | R_BASIC_AUTH,
     {3},
     1,
     0,
     16,
     3.5},
    {{"netrc-password", "Password in a .netrc entry", SEV_HIGH,
      "https://www.gnu.org/software/inetutils/manual/html_node/The-_002enetrc-file.html"},
     "(machine|login)[ \t]+[^ \t]+[ \t]+(login[ \t]+[^ \t]+[ \t]+)?password[ \t]+([^ \t\"']+)",
     "password",
     R_BSTART,
     {3},
     0,
     0,
     8,
     3.0},
    {{"docker-config-auth", "Registry credentials in a Docker config.json", SEV_HIGH,
      "https://docs.docker.com/reference/cli/docker/login/#credential-stores"},
     "\"auth\"[ \t]*:[ \t]*\"([A-Za-z0-9+/]{12,}={0,2})\"",
     "\"auth\"",
     R_BASIC_AUTH,
     {1},
     0,
     0,
     12,
     3.0},
    {{"password-call-argument", "Hard-coded password passed to a setter", SEV_MEDIUM,
      "https://cwe.mitre.org/data/definitions/259.html"},
     "^(password)[ \t]*\\([ \t]*(\"([^\"]+)\"|'([^']+)')[ \t]*[),]",
     "password",
     R_ICASE | R_GENERIC | R_AT_KEYWORD | R_SETTER,
     {3, 4},
     1,
     0,
     8,
     3.0},
    /* Generic heuristics: keep last */
    {{"generic-password", "Hard-coded password", SEV_MEDIUM, "https://cwe.mitre.org/data/definitions/259.html"},
     "^((password|passwd|passphrase|pwd)[A-Za-z0-9_.-]*|pass([_.-][A-Za-z0-9_.-]*)?)" ASSIGN VALUE,
     "pass|pwd",
     R_ICASE | R_GENERIC | R_AT_KEYWORD | R_HAND,
     {6, 7, 8},
     1,
     8,
     8,
     3.0},
    {{"generic-secret", "Hard-coded secret or token", SEV_MEDIUM, "https://cwe.mitre.org/data/definitions/798.html"},
     "^((secret|token|api[_.-]?key|access[_.-]?key|auth[_.-]?key|private[_.-]?key|credential|"
     "(encryption|signing|master)[_.-]?key)"
     "[A-Za-z0-9_.-]*)" ASSIGN VALUE,
     "secret|token|api|access|auth|private|credential|encryption|signing|master",
     R_ICASE | R_GENERIC | R_AT_KEYWORD | R_HAND,
     {6, 7, 8},
     1,
     8,
     16,
     3.5},
};

#define RULE_COUNT (sizeof(rules) / sizeof(rules[0]))

#define KW_MAX 12
#define KW_LEN 32

/* A rule's keywords, lower-cased (and as written, for a case-sensitive rule), split at init. */
struct kw_set {
	char word[KW_MAX][KW_LEN];
	char exact[KW_MAX][KW_LEN]; /* as written: a case-sensitive rule's keyword must occur so */
	size_t len[KW_MAX];
	size_t count; /* 0: no prefilter */
};

static regex_t compiled[RULE_COUNT];
static size_t nmatch_of[RULE_COUNT]; /* capture groups a rule reads, plus the whole match */
/* Cheap tests on the lower-cased line for rules whose keyword is common (set at init by rule id); NULL: none. */
static bool (*prefilter_of[RULE_COUNT])(const char *lower, size_t len);
static bool pre_discord(const char *l, size_t len);
static bool pre_url_auth(const char *l, size_t len);
static struct kw_set kwsets[RULE_COUNT];

/*
 * The keyword index: every keyword of two bytes or more under its first two (lower-case) bytes, so that one pass
 * over a line finds which rules' keywords occur in it (instead of one memmem per keyword and rule). Keywords of
 * one byte are looked up with memchr.
 */
struct kw_ref {
	unsigned short rule;
	unsigned char word;
};
#define KW_REFS_MAX (RULE_COUNT * KW_MAX)
static unsigned short kw_bucket[65536 + 1]; /* refs of bigram b: kw_refs[kw_bucket[b] .. kw_bucket[b + 1]) */
static struct kw_ref kw_refs[KW_REFS_MAX];
static struct kw_ref kw_single[KW_REFS_MAX];
static size_t kw_single_count;

static unsigned bigram(const char *p)
{
	return (unsigned)(unsigned char)p[0] << 8 | (unsigned char)p[1];
}

static void build_kw_index(void)
{
	static unsigned short counts[65536];
	for (size_t r = 0; r < RULE_COUNT; r++)
		for (size_t w = 0; w < kwsets[r].count; w++)
			if (kwsets[r].len[w] >= 2)
				counts[bigram(kwsets[r].word[w])]++;
			else
				kw_single[kw_single_count++] = (struct kw_ref){(unsigned short)r, (unsigned char)w};
	unsigned short at = 0;
	for (size_t b = 0; b < 65536; b++) {
		kw_bucket[b] = at;
		at = (unsigned short)(at + counts[b]);
		counts[b] = kw_bucket[b]; /* next free slot of bucket b */
	}
	kw_bucket[65536] = at;
	for (size_t r = 0; r < RULE_COUNT; r++)
		for (size_t w = 0; w < kwsets[r].count; w++)
			if (kwsets[r].len[w] >= 2)
				kw_refs[counts[bigram(kwsets[r].word[w])]++] =
				    (struct kw_ref){(unsigned short)r, (unsigned char)w};
}

/*
 * The rules worth running on a line: a bit per rule (table order), set when one of the rule's keywords occurs in
 * the line: for a case-insensitive rule in lower (the line lower-cased), for a case-sensitive one exactly as
 * written in text (its regex holds the keyword literally, so "SK" of twilio-api-key never runs on "task"). Rules
 * without keywords are always set.
 */
#define RULE_WORDS ((RULE_COUNT + 63) / 64)
struct rule_bits {
	uint64_t w[RULE_WORDS];
	unsigned short words[RULE_COUNT]; /* which of a rule's keywords occur (bit w: kwsets[r].word[w]) */
};
static struct rule_bits always_bits; /* rules without keywords; set at init */

static void bit_set(struct rule_bits *b, size_t r)
{
	b->w[r / 64] |= (uint64_t)1 << (r % 64);
}

static bool keyword_at(const char *text, const char *lower, size_t len, size_t i, const struct kw_ref *ref)
{
	const struct kw_set *ks = &kwsets[ref->rule];
	size_t wl = ks->len[ref->word];
	if (wl > len - i)
		return false;
	if (rules[ref->rule].flags & R_ICASE)
		return memcmp(lower + i, ks->word[ref->word], wl) == 0;
	return memcmp(text + i, ks->exact[ref->word], wl) == 0;
}

static void keywords_in_line(const char *text, const char *lower, size_t len, struct rule_bits *present)
{
	memcpy(present->w, always_bits.w, sizeof(present->w));
	memset(present->words, 0, sizeof(present->words));
	for (size_t i = 0; i < kw_single_count; i++) {
		const struct kw_ref *ref = &kw_single[i];
		bool icase = rules[ref->rule].flags & R_ICASE;
		const char *w = icase ? kwsets[ref->rule].word[ref->word] : kwsets[ref->rule].exact[ref->word];
		if (memchr(icase ? lower : text, w[0], len)) {
			bit_set(present, ref->rule);
			present->words[ref->rule] |= (unsigned short)(1u << ref->word);
		}
	}
	for (size_t i = 0; i + 1 < len; i++) {
		unsigned b = bigram(lower + i);
		for (unsigned k = kw_bucket[b]; k < kw_bucket[b + 1]; k++) {
			const struct kw_ref *ref = &kw_refs[k];
			unsigned bit = 1u << ref->word;
			if (!(present->words[ref->rule] & bit) && keyword_at(text, lower, len, i, ref)) {
				bit_set(present, ref->rule);
				present->words[ref->rule] |= (unsigned short)bit;
			}
		}
	}
}
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static enum core_status init_status = CORE_EINTERNAL;

static void init_rules(void)
{
	for (size_t i = 0; i < RULE_COUNT; i++) {
		struct kw_set *k = &kwsets[i];
		for (const char *w = rules[i].keywords; w && *w;) {
			size_t l = strcspn(w, "|");
			if (k->count == KW_MAX || l == 0 || l >= KW_LEN) {
				fprintf(stderr, "scan_secrets: rule %s has a bad keyword list\n", rules[i].info.id);
				return;
			}
			for (size_t j = 0; j < l; j++) {
				k->word[k->count][j] = (char)tolower((unsigned char)w[j]);
				k->exact[k->count][j] = w[j];
			}
			k->len[k->count++] = l;
			w += l;
			if (*w == '|')
				w++;
		}
		int cflags = REG_EXTENDED | ((rules[i].flags & R_ICASE) ? REG_ICASE : 0);
		if (regcomp(&compiled[i], rules[i].regex, cflags) != 0) {
			/* Compiled regexes are kept for the process lifetime; a failed table is a bug. */
			fprintf(stderr, "scan_secrets: rule %s does not compile\n", rules[i].info.id);
			return;
		}
	}
	for (size_t i = 0; i < RULE_COUNT; i++) {
		const struct rule *r = &rules[i];
		int hi = r->key_group > r->unquoted_group ? r->key_group : r->unquoted_group;
		for (int k = 0; k < 3; k++)
			hi = r->groups[k] > hi ? r->groups[k] : hi;
		if ((r->flags & R_URL_AUTH) && hi < 2)
			hi = 2;
		nmatch_of[i] = (size_t)hi + 1;
		if (strcmp(r->info.id, "discord-bot-token") == 0)
			prefilter_of[i] = pre_discord;
		else if (strcmp(r->info.id, "url-basic-auth") == 0)
			prefilter_of[i] = pre_url_auth;
	}
	for (size_t i = 0; i < RULE_COUNT; i++)
		if (kwsets[i].count == 0)
			bit_set(&always_bits, i);
	build_kw_index();
	init_status = CORE_OK;
}

enum core_status scan_secrets_init(void)
{
	if (pthread_once(&init_once, init_rules) != 0)
		return CORE_EINTERNAL;
	return init_status;
}

size_t scan_secrets_rule_count(void)
{
	return RULE_COUNT;
}

const struct scan_secrets_rule_info *scan_secrets_rule(size_t i)
{
	return i < RULE_COUNT ? &rules[i].info : NULL;
}

const char *scan_secrets_rule_regex(size_t i, bool *icase_out)
{
	if (i >= RULE_COUNT)
		return NULL;
	if (icase_out)
		*icase_out = (rules[i].flags & R_ICASE) != 0;
	return rules[i].regex;
}

double scan_secrets_entropy(const char *s, size_t len)
{
	size_t counts[256] = {0};
	if (!len)
		return 0;
	for (size_t i = 0; i < len; i++)
		counts[(unsigned char)s[i]]++;
	double h = 0;
	for (int c = 0; c < 256; c++) {
		if (!counts[c])
			continue;
		double p = (double)counts[c] / (double)len;
		h -= p * log2(p);
	}
	return h;
}

static bool is_word(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

static bool ci_find(const char *h, size_t hl, const char *n, size_t nl)
{
	if (nl == 0)
		return true;
	for (size_t i = 0; i + nl <= hl; i++) {
		if (tolower((unsigned char)h[i]) != tolower((unsigned char)n[0]))
			continue;
		if (strncasecmp(h + i, n, nl) == 0)
			return true;
	}
	return false;
}

/* Placeholder values that are never reported. */
static bool allowlisted(const char *s, size_t len)
{
#define M(x)                                                                                                           \
	{                                                                                                              \
		x, sizeof(x) - 1                                                                                       \
	}
	static const struct {
		const char *s;
		size_t len;
	} markers[] = {M("example"),     M("xxxx"),       M("changeme"),  M("change_me"),  M("change-me"),
	               M("placeholder"), M("dummy"),      M("redacted"),  M("your_"),      M("your-"),
	               M("<"),           M(">"),          M("${"),        M("$("),         M("{{"),
	               M("}}"),          M("%("),         M("****"),      M("...."),       M("process.env"),
	               M("environ"),     M("getenv"),     M("secrets."),  M("vault:"),     M("enc["),
	               M("arn:aws:"),    M("0123456789"), M("123456789"), M("abcdefghij"), M("replace"),
	               M("not-a-real"),  M("not_a_real"), M("_here"),     M("-here")};
#undef M
	char low[GENERIC_VALUE_MAX + 1];
	if (len <= GENERIC_VALUE_MAX) {
		/* Markers are lower case: compare against the value lower-cased once. */
		for (size_t i = 0; i < len; i++)
			low[i] = (char)tolower((unsigned char)s[i]);
		for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++)
			if (memmem(low, len, markers[i].s, markers[i].len))
				return true;
	} else {
		for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++)
			if (ci_find(s, len, markers[i].s, markers[i].len))
				return true;
	}
	if (len && s[0] == '$')
		return true;
	/* A printf placeholder: "%s" not followed by a letter or digit ("%s@%s", "pass=%s"). */
	for (const char *p = s; (p = memmem(p, (size_t)(s + len - p), "%s", 2)); p += 2)
		if (p + 2 == s + len || !isalnum((unsigned char)p[2]))
			return true;
	bool same = true;
	for (size_t i = 1; i < len && same; i++)
		same = s[i] == s[0];
	return same;
}

/*
 * Near-miss heuristics. Each one names a kind of value that scanners commonly over-report; each is unit-tested on
 * its own in tests/unit/test_scan_secrets.c (a near miss it drops and a close true positive it keeps).
 */

/* Keys ending in "_id", "-id", ".id" or "Id" (api_key_id, token_id, credential_id) name an identifier, not the
 * secret; "secret_id" is the exception (HashiCorp Vault's AppRole SecretID is a credential). */
static bool key_is_identifier_id(const char *k, size_t kl)
{
	if (kl < 3)
		return false;
	bool sep_id = (k[kl - 3] == '_' || k[kl - 3] == '-' || k[kl - 3] == '.') &&
	              tolower((unsigned char)k[kl - 2]) == 'i' && tolower((unsigned char)k[kl - 1]) == 'd';
	bool camel_id = k[kl - 2] == 'I' && (k[kl - 1] == 'd' || k[kl - 1] == 'D') && islower((unsigned char)k[kl - 3]);
	if (!sep_id && !camel_id)
		return false;
	static const char secret_id[] = "secret";
	size_t stem = kl - (sep_id ? 3 : 2);
	if (stem >= 6 && strncasecmp(k + stem - 6, secret_id, 6) == 0)
		return false;
	return true;
}

/* Values that providers and tools publish in their documentation; never a leaked secret. The literals are split
 * so that no other scanner reports this file. */
static bool known_doc_example(const char *v, size_t len)
{
	static const char *const examples[] = {
	    /* jwt.io's sample token: its payload {"sub":"1234567890","name":"John Doe","iat":1516239022}, and its
	     * signature */
	    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6"
	    "IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
	    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_"
	    "adQssw5c",
	    /* The Azurite (Azure Storage emulator) account key of devstoreaccount1, the same on every machine:
	     * https://learn.microsoft.com/azure/storage/common/storage-use-azurite#http-connection-strings */
	    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
	    "K1SZFPTOtr/KBHBeksoGMGw==",
	};
	for (size_t i = 0; i < sizeof(examples) / sizeof(examples[0]); i++)
		if (memmem(v, len, examples[i], strlen(examples[i])))
			return true;
	return false;
}

/*
 * A class or type name ("AbstractTokenResolver", "Argon2PasswordHasher", "django.contrib.auth.hashers.
 * PBKDF2PasswordHasher"): after an optional dotted package, at least two CamelCase words cover 60% of the name and
 * the last one is a word that types end with. A passphrase such as "CorrectHorseBatteryStaple" is not one.
 */
static bool looks_like_class_name(const char *v, size_t len)
{
	static const char *const type_words[] = {
	    "Provider",   "Resolver",       "Hasher",    "Backend",       "Authenticator", "Interceptor", "Factory",
	    "Factories",  "Filter",         "Handler",   "Service",       "Client",        "Manager",     "Store",
	    "Encoder",    "Validator",      "Exception", "Error",         "Helper",        "Builder",     "Adapter",
	    "Strategy",   "Impl",           "Config",    "Configuration", "Controller",    "Generator",   "Serializer",
	    "Middleware", "Authentication", "Grant",     "Source",        "Loader",        "Repository",  "Util",
	    "Utils",      "Type",           "Policy",    "Plugin",        "Module",        "Interface",   "Base",
	    "Wrapper",    "Listener"};
	size_t b = 0;
	for (size_t i = 0; i < len; i++) {
		if (!isalnum((unsigned char)v[i]) && v[i] != '_' && v[i] != '.')
			return false;
		if (v[i] == '.')
			b = i + 1;
	}
	size_t e = len;
	while (e > b && isdigit((unsigned char)v[e - 1]))
		e--;
	if (e - b < 6 || !isupper((unsigned char)v[b]))
		return false;
	size_t words = 0, covered = 0, last_s = 0, last_e = 0;
	for (size_t i = b; i < e;) {
		if (isupper((unsigned char)v[i])) {
			size_t j = i + 1;
			while (j < e && islower((unsigned char)v[j]))
				j++;
			if (j - i >= 3) {
				words++;
				covered += j - i;
				last_s = i;
				last_e = j;
			}
			i = j;
		} else {
			i++;
		}
	}
	if (words < 2 || covered * 10 < (e - b) * 6 || last_e != e)
		return false;
	for (size_t i = 0; i < sizeof(type_words) / sizeof(type_words[0]); i++)
		if (strlen(type_words[i]) == last_e - last_s && memcmp(v + last_s, type_words[i], last_e - last_s) == 0)
			return true;
	return false;
}

/* The name of an environment variable ("DJANGO_SECRET_KEY", "GITHUB_TOKEN"): upper-case words of at least two
 * characters joined by '_', mostly letters. The value is read from that variable elsewhere. */
static bool looks_like_env_name(const char *v, size_t len)
{
	size_t letters = 0, seg = 0, unders = 0;
	if (len < 4 || !isupper((unsigned char)v[0]))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		if (c == '_') {
			if (seg < 2)
				return false;
			seg = 0;
			unders++;
		} else if (isupper((unsigned char)c) || isdigit((unsigned char)c)) {
			letters += isupper((unsigned char)c) != 0;
			seg++;
		} else {
			return false;
		}
	}
	return unders > 0 && seg >= 2 && letters * 10 >= len * 7;
}

/* A test fixture: one of the words test, testing, fake, dummy, mock, sample, fixture, stub, demo, or a value that
 * names what it stands for (password, passwd, secret, token), split at non-alphanumerics and CamelCase humps; or a
 * value that starts with test, fake, dummy, mock or sample ("test_password_123", "fake_client_secret_42",
 * "testpass123", "dave-password"). */
static bool looks_like_fixture(const char *v, size_t len)
{
	static const char *const words[] = {"test",    "testing", "tests", "fake",     "dummy",  "mock",   "sample",
	                                    "fixture", "stub",    "demo",  "password", "passwd", "secret", "token"};
	static const char *const starts[] = {"test", "fake", "dummy", "mock", "sample"};
	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++)
		if (len >= strlen(starts[i]) && strncasecmp(v, starts[i], strlen(starts[i])) == 0)
			return true;
	for (size_t i = 0; i < len;) {
		while (i < len && !isalpha((unsigned char)v[i]))
			i++;
		size_t j = i + 1;
		while (j < len && islower((unsigned char)v[j]))
			j++;
		if (i < len && (j >= len || !isalnum((unsigned char)v[j]) || isupper((unsigned char)v[j]))) {
			for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++)
				if (strlen(words[w]) == j - i && strncasecmp(v + i, words[w], j - i) == 0)
					return true;
		}
		i = j;
	}
	return false;
}

/* Code, not a value: a function name and its opening parenthesis ("setPassword(", "crypto_sha256_hex("). */
static bool looks_like_call(const char *v, size_t len, const char *after)
{
	size_t i = 0;
	while (i < len && (is_word(v[i]) || v[i] == '.'))
		i++;
	if (i == 0 || !isalpha((unsigned char)v[0]))
		return false;
	if (i == len)
		return *after == '('; /* an unquoted name followed by '(' */
	return v[i] == '(' && (i + 1 == len || (i + 2 == len && v[i + 1] == ')'));
}

/* A value that starts with a provider's documented prefix ("glpat-", "ghp_", "xoxb-") but that the provider's own
 * rule did not take: its shape is wrong, so it is no such token (a test value like "glpat-discoveryToken0001"). */
static bool failed_provider_prefix(const char *v, size_t len)
{
	for (size_t r = 0; r < RULE_COUNT; r++) {
		if (rules[r].flags & (R_GENERIC | R_PRIVKEY))
			continue;
		const struct kw_set *k = &kwsets[r];
		for (size_t w = 0; w < k->count; w++) {
			size_t wl = k->len[w];
			char last = k->word[w][wl - 1];
			if (wl >= 4 && (last == '-' || last == '_') && len > wl && strncasecmp(v, k->word[w], wl) == 0)
				return true;
		}
	}
	return false;
}

/* Keys that are public by design or only work in a provider's test mode (Stripe's publishable pk_ keys and
 * sk_test_/rk_test_ keys: https://docs.stripe.com/keys#obtain-api-keys). */
static bool non_secret_key_prefix(const char *v, size_t len)
{
	static const char *const prefixes[] = {"sk_test_", "rk_test_", "pk_test_", "pk_live_"};
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (len >= strlen(prefixes[i]) && memcmp(v, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/* A URL's password that is a default or equals the user ("user:password@", "guest:guest@", "postgres:postgres@",
 * "app:password123@"): what local development setups and documentation use. */
static bool default_url_password(const char *user, size_t ul, const char *pw, size_t pl)
{
	static const char *const defaults[] = {
	    "password", "passwd", "pass",  "pwd",   "secret", "guest", "root",    "admin",    "postgres", "anonymous",
	    "changeme", "test",   "mysql", "redis", "user",   "demo",  "default", "rabbitmq", "mongo",    "toor"};
	if (ul == pl && memcmp(user, pw, pl) == 0)
		return true;
	size_t stem = pl;
	while (stem > 0 && isdigit((unsigned char)pw[stem - 1]))
		stem--;
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (strlen(defaults[i]) == stem && strncasecmp(pw, defaults[i], stem) == 0)
			return true;
	return false;
}

/*
 * A base64 "user:password" (HTTP Basic, a Docker config's "auth") whose password is a default or the user, as in
 * the RFC 7617 example "Aladdin:open sesame" or "admin:admin". must_decode: a value that does not decode to
 * "user:password" is no credential either (a Docker "auth" always is one).
 */
static bool basic_default_password(const char *v, size_t len, bool must_decode)
{
	unsigned char bin[256];
	size_t bl = 0;
	char b64[352];
	if (len >= sizeof(b64))
		return false;
	memcpy(b64, v, len);
	b64[len] = '\0';
	if (sodium_base642bin(bin, sizeof(bin) - 1, b64, len, NULL, &bl, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 &&
	    sodium_base642bin(bin, sizeof(bin) - 1, b64, len, NULL, &bl, NULL,
	                      sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0)
		return must_decode;
	const unsigned char *colon = memchr(bin, ':', bl);
	if (!colon)
		return must_decode;
	for (size_t i = 0; i < bl; i++)
		if (bin[i] < 0x20 || bin[i] > 0x7e)
			return must_decode; /* not text: a bearer token that happens to decode */
	size_t ul = (size_t)(colon - bin);
	const char *pw = (const char *)colon + 1;
	size_t pl = bl - ul - 1;
	return pl < 4 || default_url_password((const char *)bin, ul, pw, pl) ||
	       (strncmp((const char *)bin, "Aladdin", ul) == 0 && pl == 11 && memcmp(pw, "open sesame", 11) == 0);
}

/* Generic rules: key names that hold something other than the secret itself. */
static bool key_is_metadata(const char *k, size_t kl)
{
	static const char *const suffixes[] = {
	    "url",         "uri",      "path",        "file",      "name",       "type",      "length",   "len",
	    "size",        "field",    "label",       "header",    "endpoint",   "prompt",    "regex",    "pattern",
	    "format",      "count",    "expiry",      "expires",   "expiration", "ttl",       "timeout",  "env",
	    "var",         "hint",     "placeholder", "mode",      "enabled",    "policy",    "hash",     "salt",
	    "question",    "reset",    "rotation",    "validator", "parser",     "tokenizer", "tokens",   "limit",
	    "index",       "lifetime", "min",         "max",       "changed",    "required",  "strength", "store",
	    "manager",     "sha",      "sha1",        "sha256",    "sha512",     "md5",       "digest",   "checksum",
	    "fingerprint", "class",    "backend",     "provider",  "hasher",     "handler",   "factory",  "filter",
	    "interceptor", "version",  "arn",         "prefix",    "audience",   "source",    "ref"};
	while (kl && !isalnum((unsigned char)k[kl - 1]))
		kl--;
	if (key_is_identifier_id(k, kl))
		return true;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t sl = strlen(suffixes[i]);
		if (kl >= sl && strncasecmp(k + kl - sl, suffixes[i], sl) == 0)
			return true;
	}
	return false;
}

/* One word of an identifier (split at '.' and '_'): digits only at its end, at most two lower-to-upper humps
 * ("getApiKey"); random text ("BiCzIpdS", "qtt0") is not one. */
static bool identifier_word(const char *w, size_t n)
{
	size_t humps = 0;
	bool digits = false;
	for (size_t i = 0; i < n; i++) {
		if (isdigit((unsigned char)w[i])) {
			digits = true;
			continue;
		}
		if (digits)
			return false;
		if (i > 0 && isupper((unsigned char)w[i]) && islower((unsigned char)w[i - 1]))
			humps++;
	}
	return humps <= 2;
}

/* "a.b.c" style references (config.password, self.token): not a literal value. */
static bool looks_like_reference(const char *v, size_t len)
{
	for (size_t i = 0, w = 0; i <= len; i++) {
		if (i == len || v[i] == '.' || v[i] == '_') {
			if (!identifier_word(v + w, i - w))
				return false;
			w = i + 1;
		}
	}
	bool dot = false, start = true;
	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		if (c == '.') {
			if (start)
				return false;
			dot = true;
			start = true;
		} else if (isalpha((unsigned char)c) || c == '_') {
			start = false;
		} else if (isdigit((unsigned char)c) && !start) {
			continue;
		} else {
			return false;
		}
	}
	return dot;
}

static bool has_digit_and_letter(const char *v, size_t len)
{
	bool d = false, a = false;
	for (size_t i = 0; i < len; i++) {
		d = d || isdigit((unsigned char)v[i]);
		a = a || isalpha((unsigned char)v[i]);
	}
	return d && a;
}

static bool is_b64(char c)
{
	return isalnum((unsigned char)c) || c == '+' || c == '/' || c == '=';
}

/*
 * Key material on the BEGIN line itself: base64 (with blanks and "\n" escapes) after the header, and an optional
 * END marker. Returns the end of the span to redact, or 0 when there is no key material.
 */
static size_t pem_same_line_end(const char *t, size_t len, size_t from)
{
	size_t i = from, b64 = 0;
	while (i < len) {
		if (is_b64(t[i])) {
			b64++;
			i++;
		} else if (t[i] == ' ' || t[i] == '\t') {
			i++;
		} else if (t[i] == '\\' && i + 1 < len && (t[i + 1] == 'n' || t[i + 1] == 'r')) {
			i += 2;
		} else {
			break;
		}
	}
	if (b64 < PEM_MIN_BODY)
		return 0;
	if (len - i > 9 && memcmp(t + i, "-----END ", 9) == 0) {
		const char *close = memmem(t + i + 9, len - i - 9, "-----", 5);
		if (close)
			i = (size_t)(close - t) + 5;
	}
	return i;
}

/* A line that is only base64 (blanks around allowed), at least PEM_MIN_BODY characters of it. */
static bool pem_body_line(const char *t, size_t len, size_t *b_out, size_t *e_out)
{
	size_t b = 0, e = len;
	while (b < e && isspace((unsigned char)t[b]))
		b++;
	while (e > b && isspace((unsigned char)t[e - 1]))
		e--;
	if (e - b < PEM_MIN_BODY)
		return false;
	for (size_t i = b; i < e; i++)
		if (!is_b64(t[i]))
			return false;
	*b_out = b;
	*e_out = e;
	return true;
}

struct match {
	size_t rule;
	size_t ms;          /* start of the secret span (redacted) */
	size_t me;          /* end of the span */
	bool pem_multiline; /* fingerprint from the following lines' key material */
	size_t pem_first;   /* index of the first body line in the added lines */
	size_t ks, ke;      /* generic rules: the key name [ks, ke) the value was assigned to; ks == ke: none */
};

/* The context a line is scanned in: the file's added lines, for private keys whose body follows. */
struct line_ctx {
	const char *path;
	const struct diff_added *added; /* NULL for a lone line */
	size_t index;                   /* of the line in added */
};

/* Is there key material on the added lines right after ctx's line? Sets *first to its index. */
static bool pem_following_body(const struct line_ctx *ctx, size_t *first)
{
	if (!ctx->added)
		return false;
	const struct diff_line *cur = &ctx->added->lines[ctx->index];
	for (size_t k = 1; k <= PEM_LOOKAHEAD && ctx->index + k < ctx->added->count; k++) {
		const struct diff_line *l = &ctx->added->lines[ctx->index + k];
		if (l->line != cur->line + (long)k)
			return false; /* not contiguous: the body is not part of this change */
		size_t b, e;
		if (pem_body_line(l->text, l->len, &b, &e)) {
			*first = ctx->index + k;
			return true;
		}
		if (memmem(l->text, l->len, "-----", 5))
			return false; /* another BEGIN/END line: this header has no body of its own */
	}
	return false;
}

/* Only blanks (or a "\n" escape, a line continuation) follow a BEGIN header whose key material is on the next
 * lines; code that looks for the header ("if pem.startswith(\"-----BEGIN ...-----\"):") has more after it. */
static bool pem_header_ends_line(const char *t, size_t len, size_t from)
{
	for (size_t i = from; i < len; i++) {
		if (t[i] == ' ' || t[i] == '\t' || t[i] == '\r')
			continue;
		if (t[i] == '\\' && (i + 1 == len || t[i + 1] == 'n')) {
			i++;
			continue;
		}
		return false;
	}
	return true;
}

static bool overlaps(const struct match *m, size_t n, size_t s, size_t e)
{
	for (size_t i = 0; i < n; i++)
		if (s < m[i].me && m[i].ms < e)
			return true;
	return false;
}

/* The same rule already matched the same text on this line: one finding is enough (all copies get redacted). */
static bool repeated(const char *t, const struct match *m, size_t n, const struct match *c)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].rule == c->rule && m[i].me - m[i].ms == c->me - c->ms &&
		    memcmp(t + m[i].ms, t + c->ms, c->me - c->ms) == 0)
			return true;
	return false;
}

/*
 * The entropy a value must reach. Hex values (32 characters or more) carry at most 4 bits per character and a
 * random 32-character one often has less than 3.7: the generic rules ask them for HEX_MIN_ENTROPY instead.
 */
static double min_entropy_for(const struct rule *r, const char *v, size_t len)
{
	double want = r->min_entropy > 0 ? r->min_entropy : SPECIFIC_MIN_ENTROPY;
	if ((r->flags & R_GENERIC) && len >= 32 && want > HEX_MIN_ENTROPY) {
		for (size_t i = 0; i < len; i++)
			if (!isxdigit((unsigned char)v[i]))
				return want;
		return HEX_MIN_ENTROPY;
	}
	return want;
}

/* password-call-argument: "setPassword(", "set_password(", "withPassword(", ".password(", "->password(". */
static bool setter_call(const char *t, size_t at)
{
	if (at == 0)
		return false; /* a bare password("...") is a function of that name, e.g. a hash helper */
	char p = t[at - 1];
	if (p == '.' || p == '>')
		return true;
	size_t b = at;
	if (p == '_')
		b--;
	return (b >= 3 && strncasecmp(t + b - 3, "set", 3) == 0) || (b >= 4 && strncasecmp(t + b - 4, "with", 4) == 0);
}

/* Checks a candidate secret [ss, se) of rule r in t; true when it should be reported. */
static bool accept(const struct rule *r, const char *t, size_t ss, size_t se, const regmatch_t *pm)
{
	const char *v = t + ss;
	size_t vl = se - ss;
	if (r->flags & R_NO_ALLOW)
		return true;
	if (vl < r->min_len || allowlisted(v, vl) ||
	    known_doc_example(t + pm[0].rm_so, (size_t)(pm[0].rm_eo - pm[0].rm_so)))
		return false;
	double h = scan_secrets_entropy(v, vl);
	if (h < min_entropy_for(r, v, vl))
		return false;
	if ((r->flags & R_URL_AUTH) && pm[1].rm_so >= 0 &&
	    default_url_password(t + pm[1].rm_so, (size_t)(pm[1].rm_eo - pm[1].rm_so), v, vl))
		return false;
	if ((r->flags & R_SETTER) && !setter_call(t, (size_t)pm[0].rm_so))
		return false;
	if ((r->flags & R_BASIC_AUTH) && basic_default_password(v, vl, !(r->flags & R_GENERIC)))
		return false;
	if (r->flags & R_GENERIC) {
		if (looks_like_class_name(v, vl) || looks_like_env_name(v, vl) || looks_like_fixture(v, vl) ||
		    non_secret_key_prefix(v, vl) || looks_like_call(v, vl, t + se) || failed_provider_prefix(v, vl))
			return false;
		for (size_t i = 0; i < vl; i++)
			if (isspace((unsigned char)v[i]))
				return false; /* prose, not a credential */
		if (vl > GENERIC_VALUE_MAX || memmem(v, vl, "://", 3))
			return false; /* URLs: url-basic-auth looks at those */
		const regmatch_t *k = &pm[r->key_group];
		if (k->rm_so >= 0 && key_is_metadata(t + k->rm_so, (size_t)(k->rm_eo - k->rm_so)))
			return false;
		if (r->unquoted_group > 0 && pm[r->unquoted_group].rm_so >= 0 &&
		    (!has_digit_and_letter(v, vl) || looks_like_reference(v, vl)))
			return false;
	}
	return true;
}

/* Shift the offsets of a match found at t + off back to offsets in t. */
static void shift(regmatch_t *pm, size_t off)
{
	for (int g = 0; g < MAX_GROUPS; g++) {
		if (pm[g].rm_so >= 0) {
			pm[g].rm_so += (regoff_t)off;
			pm[g].rm_eo += (regoff_t)off;
		}
	}
}

/*
 * Judge one regex match pm of rule ri in t and keep it in m[*n] when it passes. Returns where the next search
 * should start: just after the match start when a boundary failed (a shorter match may start inside), else after
 * the match.
 */
static size_t consider(size_t ri, const char *t, size_t len, const struct line_ctx *ctx, const regmatch_t *pm,
                       struct match *m, size_t *n)
{
	const struct rule *r = &rules[ri];
	size_t ms = (size_t)pm[0].rm_so, me = (size_t)pm[0].rm_eo;
	size_t ss = ms, se = me;
	for (int k = 0; k < 3 && r->groups[k]; k++) {
		int g = r->groups[k];
		if (pm[g].rm_so >= 0) {
			ss = (size_t)pm[g].rm_so;
			se = (size_t)pm[g].rm_eo;
			break;
		}
	}
	if (me == ms)
		return ms + 1;
	if (((r->flags & R_BSTART) && ms > 0 && is_word(t[ms - 1])) ||
	    ((r->flags & R_BEND) && se < len && is_word(t[se])))
		return ms + 1;
	if (!accept(r, t, ss, se, pm))
		return me;
	struct match cand = {ri, ss, se, false, 0, 0, 0};
	if ((r->flags & R_GENERIC) && pm[r->key_group].rm_so >= 0) {
		cand.ks = (size_t)pm[r->key_group].rm_so;
		cand.ke = (size_t)pm[r->key_group].rm_eo;
		/* The whole name: the match starts at a key word, e.g. "secret" of "client_secret". */
		while (cand.ks > 0 && (is_word(t[cand.ks - 1]) || t[cand.ks - 1] == '.' || t[cand.ks - 1] == '-'))
			cand.ks--;
	}
	size_t next = me;
	if (r->flags & R_PRIVKEY) {
		size_t end = pem_same_line_end(t, len, me);
		if (end) {
			cand.me = end;
			next = end;
		} else if (!pem_header_ends_line(t, len, me) || !pem_following_body(ctx, &cand.pem_first)) {
			return me; /* a header alone, e.g. in code that parses keys */
		} else {
			cand.pem_multiline = true;
		}
	}
	if (!overlaps(m, *n, cand.ms, cand.me) && !repeated(t, m, *n, &cand) && *n < MAX_MATCHES_PER_LINE)
		m[(*n)++] = cand;
	return next;
}

/*
 * regexec with as few capture groups as the rule reads (glibc finds submatches by a costly backward pass, so a rule
 * that needs only the whole match asks for one); the generic rules, which mostly do not match where they run, first
 * ask whether there is a match at all (no groups: the DFA alone). Groups not asked for are -1.
 */
static int run_regex(size_t ri, const char *s, regmatch_t *pm, int eflags)
{
	for (int g = 0; g < MAX_GROUPS; g++)
		pm[g].rm_so = pm[g].rm_eo = -1;
	if ((rules[ri].flags & R_GENERIC) && regexec(&compiled[ri], s, 0, NULL, eflags) != 0)
		return REG_NOMATCH;
	return regexec(&compiled[ri], s, nmatch_of[ri], pm, eflags);
}

static bool starts_with(const char *s, size_t n, const char *w)
{
	size_t wl = strlen(w);
	return n >= wl && memcmp(s, w, wl) == 0;
}

static bool key_char(char c)
{
	return is_word(c) || c == '.' || c == '-';
}

/*
 * What the generic rules' regexes say, by hand (they run on most lines that hold a key word, and glibc's regexec
 * with capture groups costs about ten times as much): at lower + pos, the key (the rule's key word, then
 * [A-Za-z0-9_.-]*), ASSIGN, VALUE, with POSIX's longest choices (":=" over ":", "=>" over "="). Fills pm[0] (the
 * match), pm[1] (the key) and the value's group: 6 ("..."), 7 ('...') or 8 (bare), as offsets in the line. The
 * line is lower-cased, which is what REG_ICASE does. A NUL counts as a blank, as in the copy the regexes see.
 */
static bool generic_match(const struct rule *r, const char *lower, size_t len, size_t pos, regmatch_t *pm)
{
	const char *l = lower + pos;
	size_t n = len - pos, k = 0;
	if (r->keywords[0] == 'p') { /* generic-password */
		if (starts_with(l, n, "password") || starts_with(l, n, "passwd") || starts_with(l, n, "passphrase") ||
		    starts_with(l, n, "pwd")) {
			while (k < n && key_char(l[k]))
				k++;
		} else if (starts_with(l, n, "pass")) {
			k = 4;
			if (k < n && (l[k] == '_' || l[k] == '.' || l[k] == '-'))
				while (k < n && key_char(l[k]))
					k++;
		} else {
			return false;
		}
	} else { /* generic-secret */
		static const char *const heads[] = {"secret", "token", "credential"};
		static const char *const before_key[] = {"api",        "access",  "auth",  "private",
		                                         "encryption", "signing", "master"};
		for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]) && !k; i++)
			if (starts_with(l, n, heads[i]))
				k = strlen(heads[i]);
		for (size_t i = 0; i < sizeof(before_key) / sizeof(before_key[0]) && !k; i++) {
			size_t h = strlen(before_key[i]);
			if (!starts_with(l, n, before_key[i]))
				continue;
			if (h < n && (l[h] == '_' || l[h] == '.' || l[h] == '-'))
				h++;
			if (starts_with(l + h, n - h, "key"))
				k = h + 3;
		}
		if (!k)
			return false;
		while (k < n && key_char(l[k]))
			k++;
	}
	size_t i = k;
	if (i < n && (l[i] == '"' || l[i] == '\''))
		i++;
	if (i < n && l[i] == ']')
		i++;
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	if (starts_with(l + i, n - i, ":=") || starts_with(l + i, n - i, "=>"))
		i += 2;
	else if (i < n && (l[i] == '=' || l[i] == ':'))
		i++;
	else if (starts_with(l + i, n - i, "value="))
		i += 6;
	else
		return false;
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	if (i >= n)
		return false;
	int g;
	size_t vs, ve, end;
	if (l[i] == '"' || l[i] == '\'') {
		const char *close = memchr(l + i + 1, l[i], n - i - 1);
		if (!close || close == l + i + 1)
			return false;
		g = l[i] == '"' ? 6 : 7;
		vs = i + 1;
		ve = (size_t)(close - l);
		end = ve + 1;
	} else {
		static const char stop[] = "[] \t\"',;&(){}<>`";
		size_t j = i;
		while (j < n && l[j] != '\0' && !memchr(stop, l[j], sizeof(stop) - 1))
			j++;
		if (j == i)
			return false;
		g = 8;
		vs = i;
		ve = end = j;
	}
	for (int x = 0; x < MAX_GROUPS; x++)
		pm[x].rm_so = pm[x].rm_eo = -1;
	pm[0] = (regmatch_t){(regoff_t)pos, (regoff_t)(pos + end)};
	pm[1] = (regmatch_t){(regoff_t)pos, (regoff_t)(pos + k)};
	pm[g] = (regmatch_t){(regoff_t)(pos + vs), (regoff_t)(pos + ve)};
	return true;
}

/* password-call-argument: '(' after the key word and blanks ("setPassword (" too). */
static bool paren_follows(const char *lower, size_t len, size_t i)
{
	while (i < len && (lower[i] == ' ' || lower[i] == '\t'))
		i++;
	return i < len && lower[i] == '(';
}

static bool is_b64url(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* discord-bot-token, whose only literal is '.': two dots 7 bytes apart with base64url between and before them. */
static bool pre_discord(const char *l, size_t len)
{
	for (const char *p = l; (p = memchr(p, '.', (size_t)(l + len - p))); p++) {
		size_t i = (size_t)(p - l);
		if (i < 24 || i + 8 > len || l[i + 7] != '.')
			continue;
		bool ok = true;
		for (size_t j = i + 1; j < i + 7 && ok; j++)
			ok = is_b64url(l[j]);
		if (ok)
			return true;
	}
	return false;
}

/* url-basic-auth: after some "://", a ':' and then an '@' before the authority ends. */
static bool pre_url_auth(const char *l, size_t len)
{
	for (const char *p = l; (p = memmem(p, (size_t)(l + len - p), "://", 3)); p += 3) {
		bool colon = false;
		for (const char *q = p + 3; q < l + len; q++) {
			if (*q == '/' || *q == ' ' || *q == '\t' || *q == '"' || *q == '\'' || *q == '<' || *q == '>')
				break;
			if (*q == ':')
				colon = true;
			else if (*q == '@' && colon)
				return true;
		}
	}
	return false;
}

/*
 * A cheap test before a generic rule's regex runs at a key word: the rest of a key name ([A-Za-z0-9_.-]), an
 * optional quote and blanks, then '=', ':' or "value=" (what ASSIGN accepts) must follow.
 */
static bool assignment_follows(const char *lower, size_t len, size_t pos)
{
	size_t i = pos;
	while (i < len && (is_word(lower[i]) || lower[i] == '.' || lower[i] == '-'))
		i++;
	if (i < len && (lower[i] == '"' || lower[i] == '\''))
		i++;
	if (i < len && lower[i] == ']')
		i++; /* config["password"] = ... */
	while (i < len && (lower[i] == ' ' || lower[i] == '\t'))
		i++;
	return i < len && (lower[i] == '=' || lower[i] == ':' || (len - i > 6 && memcmp(lower + i, "value=", 6) == 0));
}

/*
 * Find the matches of one rule in t (NUL-terminated, len bytes; lower is t lower-cased), appending to m[*n]. words:
 * which of the rule's keywords occur in the line (keywords_in_line()); a rule anchored at its keywords looks only
 * for those.
 */
static void match_rule(size_t ri, const char *t, const char *lower, size_t len, const struct line_ctx *ctx,
                       unsigned words, struct match *m, size_t *n)
{
	const struct rule *r = &rules[ri];
	regmatch_t pm[MAX_GROUPS];
	int tries = 0;
	if (r->flags & R_AT_KEYWORD) {
		/* Anchored at each keyword occurrence: no regex run over the whole line. */
		const struct kw_set *k = &kwsets[ri];
		for (size_t w = 0; w < k->count; w++) {
			const char *p = lower, *end = lower + len;
			if (!(words & (1u << w)))
				continue; /* not in the line */
			while (tries < MAX_TRIES_PER_RULE &&
			       (p = memmem(p, (size_t)(end - p), k->word[w], k->len[w]))) {
				size_t pos = (size_t)(p - lower);
				p++;
				if ((r->flags & R_SETTER) ? !paren_follows(lower, len, pos + k->len[w])
				                          : !assignment_follows(lower, len, pos))
					continue; /* e.g. "api" of "https://api.example.org": no key = value here */
				tries++;
				if (r->flags & R_HAND) {
					if (!generic_match(r, lower, len, pos, pm))
						continue;
				} else if (run_regex(ri, t + pos, pm, 0) != 0) {
					continue;
				} else {
					shift(pm, pos);
				}
				consider(ri, t, len, ctx, pm, m, n);
			}
		}
		return;
	}
	if (prefilter_of[ri] && !prefilter_of[ri](lower, len))
		return;
	for (size_t off = 0; tries < MAX_TRIES_PER_RULE && off < len && *n < MAX_MATCHES_PER_LINE; tries++) {
		if (run_regex(ri, t + off, pm, off ? REG_NOTBOL : 0) != 0)
			return;
		shift(pm, off);
		off = consider(ri, t, len, ctx, pm, m, n);
	}
}

struct span {
	size_t s, e;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	return x->s < y->s ? -1 : x->s > y->s ? 1 : 0;
}

/*
 * The redacted line: every kept span, and every other occurrence of the same text, replaced by
 * "<prefix>…(N chars)"; control characters become spaces; leading blanks dropped; then a window of at most
 * SCAN_SECRETS_EXCERPT_MAX bytes around the first replacement, cut on UTF-8 boundaries. Returns a malloc'd string.
 */
static bool token_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
	       c == '_' || c == '-' || c == '=';
}

/*
 * The length of the run of [A-Za-z0-9+/_=-] at t (a word start), and whether it looks like a credential no rule
 * matched, such as the secret half of an AWS key pair beside its matched key id: at least 20 characters with upper
 * case, lower case and digits all present. Such a run is hidden in an excerpt too, so an excerpt never shows a secret
 * that only the excerpt's neighbourhood held. (Paths and identifiers rarely mix all three classes over 20 characters
 * without a dot; a commit hash has no upper case.)
 */
static size_t token_run(const char *t, size_t avail, bool *secretish)
{
	size_t n = 0;
	bool up = false, low = false, digit = false;
	while (n < avail && token_char((unsigned char)t[n])) {
		unsigned char c = (unsigned char)t[n++];
		up |= c >= 'A' && c <= 'Z';
		low |= c >= 'a' && c <= 'z';
		digit |= c >= '0' && c <= '9';
	}
	*secretish = n >= 20 && up && low && digit;
	return n;
}

static char *redact(const char *t, size_t len, const struct match *m, size_t n)
{
	size_t cap_spans = 4 * n + 16, ns = 0;
	struct span *sp = malloc(cap_spans * sizeof(*sp));
	char *full = NULL, *out = NULL;
	if (!sp)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *sec = t + m[i].ms;
		size_t sl = m[i].me - m[i].ms;
		for (const char *p = t; sl && p + sl <= t + len;) {
			const char *hit = memmem(p, (size_t)(t + len - p), sec, sl);
			if (!hit)
				break;
			if (ns == cap_spans) {
				size_t nc = cap_spans * 2;
				struct span *x = realloc(sp, nc * sizeof(*sp));
				if (!x)
					goto out;
				sp = x;
				cap_spans = nc;
			}
			sp[ns++] = (struct span){(size_t)(hit - t), (size_t)(hit - t) + sl};
			p = hit + 1;
		}
	}
	qsort(sp, ns, sizeof(*sp), span_cmp);
	/* Merge overlapping spans. */
	size_t w = 0;
	for (size_t i = 0; i < ns; i++) {
		if (w && sp[i].s < sp[w - 1].e) {
			if (sp[i].e > sp[w - 1].e)
				sp[w - 1].e = sp[i].e;
			continue;
		}
		sp[w++] = sp[i];
	}
	ns = w;

	/* Each replacement is at most 4 + 3 + 24 bytes; the rest is copied. */
	size_t cap = len + ns * 40 + 1;
	full = malloc(cap);
	if (!full)
		goto out;
	size_t fl = 0, first_marker = SIZE_MAX, pos = 0;
	while (pos < len && (t[pos] == ' ' || t[pos] == '\t'))
		pos++;
	for (size_t i = 0; i <= ns; i++) {
		size_t upto = i < ns ? sp[i].s : len;
		while (pos < upto) {
			size_t run = 0;
			bool secretish = false;
			if (pos == 0 ||
			    !token_char((unsigned char)t[pos - 1])) /* a word starts: look at all of it once */
				run = token_run(t + pos, upto - pos, &secretish);
			if (secretish) { /* a secret no rule named (the other half of a key pair): hidden all the same
				          */
				fl +=
				    (size_t)snprintf(full + fl, cap - fl, "%.4s\xe2\x80\xa6(%zu chars)", t + pos, run);
				pos += run;
				continue;
			}
			for (size_t k = 0; k < (run ? run : 1); k++) {
				unsigned char c = (unsigned char)t[pos++];
				full[fl++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
			}
		}
		if (i == ns)
			break;
		size_t sl = sp[i].e - sp[i].s, show = sl / 4 < 4 ? sl / 4 : 4, k = 0;
		if (first_marker == SIZE_MAX)
			first_marker = fl;
		for (; k < show; k++) {
			unsigned char c = (unsigned char)t[sp[i].s + k];
			if (c < 0x21 || c > 0x7e)
				break; /* printable ASCII only */
			full[fl++] = (char)c;
		}
		char mark[40];
		int ml = snprintf(mark, sizeof(mark), "\xe2\x80\xa6(%zu chars)", sl);
		memcpy(full + fl, mark, (size_t)ml);
		fl += (size_t)ml;
		pos = sp[i].e > pos ? sp[i].e : pos;
	}
	full[fl] = '\0';

	/* The window. */
	size_t start = 0;
	if (fl > SCAN_SECRETS_EXCERPT_MAX && first_marker != SIZE_MAX && first_marker > 60)
		start = first_marker - 60;
	while (start > 0 && ((unsigned char)full[start] & 0xC0) == 0x80)
		start--;
	size_t avail = fl - start;
	size_t keep = findings_utf8_cut(full + start, avail, SCAN_SECRETS_EXCERPT_MAX);
	struct buf o = {0}; /* at most SCAN_SECRETS_EXCERPT_MAX + 6 bytes */
	if (start > 0)
		buf_puts(&o, "\xe2\x80\xa6");
	buf_append(&o, full + start, keep);
	if (keep < avail)
		buf_puts(&o, "\xe2\x80\xa6");
	out = buf_steal(&o);
out:
	free(sp);
	free(full);
	return out;
}

static void fingerprint_match(char fp[FINDING_FINGERPRINT_LEN + 1], const struct line_ctx *ctx, const char *t,
                              const struct match *m)
{
	const char *rid = rules[m->rule].info.id;
	if (!m->pem_multiline) {
		const char *parts[3] = {rid, ctx->path, t + m->ms};
		size_t lens[3] = {strlen(rid), strlen(ctx->path), m->me - m->ms};
		findings_fingerprint(fp, parts, lens, 3);
		return;
	}
	/* The key material: contiguous body lines after the header, trimmed, up to the END line. */
	crypto_hash_sha256_state st;
	unsigned char h[crypto_hash_sha256_BYTES];
	static const unsigned char zero = 0;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)rid, strlen(rid));
	crypto_hash_sha256_update(&st, &zero, 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)ctx->path, strlen(ctx->path));
	crypto_hash_sha256_update(&st, &zero, 1);
	const struct diff_added *a = ctx->added;
	for (size_t i = m->pem_first; i < a->count && i < m->pem_first + PEM_MAX_BODY_LINES; i++) {
		const struct diff_line *l = &a->lines[i];
		if (i > m->pem_first && l->line != a->lines[i - 1].line + 1)
			break;
		if (memmem(l->text, l->len, "-----END", 8))
			break;
		size_t b, e;
		if (pem_body_line(l->text, l->len, &b, &e))
			crypto_hash_sha256_update(&st, (const unsigned char *)l->text + b, e - b);
	}
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(fp, FINDING_FINGERPRINT_LEN + 1, h, sizeof(h));
}

#define KEY_NAME_SHOWN 48 /* bytes of a key name a reason quotes */

/*
 * Why match i was reported, appended to the rule's title: the rule, and what the value was judged on (its length
 * and entropy, and for the generic rules the key name and the entropy they ask for). Never the value itself; a
 * key name that overlaps any secret on the line is not quoted either.
 */
static void describe_match(char *buf, size_t cap, const char *t, const struct match *m, size_t n, size_t i)
{
	const struct match *x = &m[i];
	const struct rule *r = &rules[x->rule];
	size_t vl = x->me - x->ms;
	if (r->flags & R_PRIVKEY) {
		snprintf(buf, cap, "%s (rule %s: a BEGIN line followed by %s key material)", r->info.title, r->info.id,
		         x->pem_multiline ? "lines of" : "its");
		return;
	}
	double h = scan_secrets_entropy(t + x->ms, vl);
	if (!(r->flags & R_GENERIC)) {
		const char *what = (r->flags & R_URL_AUTH) ? "the password in a URL's user information"
		                                           : "the provider's documented format";
		snprintf(buf, cap, "%s (rule %s: %s, %zu characters, entropy %.2f bits per character)", r->info.title,
		         r->info.id, what, vl, h);
		return;
	}
	char key[KEY_NAME_SHOWN * 2 + 8] = "";
	bool show = x->ke > x->ks;
	for (size_t j = 0; j < n && show; j++)
		if (x->ks < m[j].me && m[j].ms < x->ke)
			show = false;
	if (show) {
		size_t kl = x->ke - x->ks;
		for (size_t j = 0; j < kl && j < KEY_NAME_SHOWN; j++) {
			unsigned char c = (unsigned char)t[x->ks + j];
			key[j] = (c < 0x21 || c > 0x7e || c == '"') ? '?' : (char)c;
			key[j + 1] = '\0';
		}
		if (kl > KEY_NAME_SHOWN)
			memcpy(key + KEY_NAME_SHOWN, "\xe2\x80\xa6", 4); /* "…" and the NUL */
	}
	snprintf(buf, cap,
	         "%s (rule %s: key name \"%s\", value of %zu characters with entropy %.2f bits per character, at least "
	         "%.1f wanted)",
	         r->info.title, r->info.id, show ? key : "(not shown)", vl, h, min_entropy_for(r, t + x->ms, vl));
}

static enum core_status scan_one(const struct line_ctx *ctx, long line_no, const char *text, size_t len,
                                 struct finding_list *out)
{
	char *copy = NULL, stack_lower[1024], *lower = stack_lower;
	enum core_status st = CORE_OK;
	if (len >= sizeof(stack_lower)) {
		lower = malloc(len + 1);
		if (!lower)
			return CORE_ENOMEM;
	}
	for (size_t i = 0; i < len; i++)
		lower[i] = (char)tolower((unsigned char)text[i]);
	lower[len] = '\0';
	if (memchr(text, '\0', len)) {
		/* regexec stops at a NUL: scan a copy in which NULs are blanks, so nothing hides behind one. */
		copy = malloc(len + 1);
		if (!copy) {
			st = CORE_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < len; i++)
			copy[i] = text[i] ? text[i] : ' ';
		copy[len] = '\0';
		text = copy;
	}
	struct match m[MAX_MATCHES_PER_LINE];
	size_t n = 0;
	struct rule_bits present;
	keywords_in_line(text, lower, len, &present);
	for (size_t wi = 0; wi < RULE_WORDS && n < MAX_MATCHES_PER_LINE; wi++) {
		for (uint64_t bits = present.w[wi]; bits && n < MAX_MATCHES_PER_LINE; bits &= bits - 1) {
			size_t ri = wi * 64 + (size_t)__builtin_ctzll(bits); /* in table order */
			match_rule(ri, text, lower, len, ctx, present.words[ri], m, &n);
		}
	}
	if (n == 0)
		goto out;
	char *excerpt = redact(text, len, m, n);
	if (!excerpt) {
		st = CORE_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && st == CORE_OK; i++) {
		const struct rule *r = &rules[m[i].rule];
		char why[512];
		describe_match(why, sizeof(why), text, m, n, i);
		struct finding f =
		    finding_make("secrets", r->info.id, why, r->info.severity, ctx->path, line_no, excerpt);
		fingerprint_match(f.fingerprint, ctx, text, &m[i]);
		st = finding_list_append(out, &f);
	}
	free(excerpt);
out:
	free(copy);
	if (lower != stack_lower)
		free(lower);
	return st;
}

enum core_status scan_secrets_line(const char *path, long line_no, const char *text, struct finding_list *out)
{
	if (!path || !text || !out)
		return CORE_EINVAL;
	enum core_status st = scan_secrets_init();
	if (st != CORE_OK)
		return st;
	struct line_ctx ctx = {path, NULL, 0};
	return scan_one(&ctx, line_no, text, strlen(text), out);
}

enum core_status scan_secrets_added(const char *path, const struct diff_added *added, struct finding_list *out)
{
	if (!path || !added || !out)
		return CORE_EINVAL;
	enum core_status st = scan_secrets_init();
	for (size_t i = 0; i < added->count && st == CORE_OK; i++) {
		struct line_ctx ctx = {path, added, i};
		st = scan_one(&ctx, added->lines[i].line, added->lines[i].text, added->lines[i].len, out);
	}
	return st;
}

enum core_status scan_secrets_diff(const char *path, const char *diff_text, struct finding_list *out)
{
	if (!path || !diff_text || !out)
		return CORE_EINVAL;
	size_t len = strnlen(diff_text, (size_t)DIFF_MAX_BYTES + 1);
	struct diff_added *a = NULL;
	enum core_status st = diff_added_parse(diff_text, len, &a);
	if (st != CORE_OK)
		return st;
	st = scan_secrets_added(path, a, out);
	diff_added_free(a);
	return st;
}

enum core_status scan_secrets_set(const struct diff_added_set *set, struct finding_list *out)
{
	if (!set || !out)
		return CORE_EINVAL;
	enum core_status st = CORE_OK;
	for (size_t i = 0; i < diff_added_set_count(set) && st == CORE_OK; i++) {
		const char *path = diff_added_set_path_at(set, i);
		st = scan_secrets_added(path, diff_added_set_get(set, path), out);
	}
	return st;
}
