/*
 * tests/unit/test_scan_secrets.c
 *    The built-in secrets scanner: a true positive and a near-miss negative for every rule, redaction,
 *    fingerprints, added-lines-only, private keys spread over lines, and lines that must not be flagged.
 *
 * The corpus values are fake but have the right shape. They are written as several adjacent string literals so
 * that no complete token appears in this file (push protection and other secret scanners stay quiet); the C
 * compiler joins them.
 */
#include "scan_secrets.h"
#include "testlib.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct corpus_entry {
	const char *rule;
	const char *positive; /* a line the rule must flag */
	const char *secret;   /* exactly what the rule must take as the secret */
	const char *negative; /* a near miss the rule must not flag */
};

static const struct corpus_entry corpus[] = {
    {"aws-access-key-id",
     "aws_access_key_id = "
     "AK"
     "IAVQJXXVB"
     "OTHD0WTFL"
     "",
     "AK"
     "IAVQJXXVB"
     "OTHD0WTFL",
     "aws_access_key_id = AKIAHBMUAPTT0ZN3X0P"},
    {"aws-secret-access-key",
     "aws_secret_access_key = \""
     "Hh"
     "vjwdbT2HwDqzuM14qHO"
     "XHlpaBqCefuv2FSJghB"
     "\"",
     "Hh"
     "vjwdbT2HwDqzuM14qHO"
     "XHlpaBqCefuv2FSJghB",
     "AWS_SECRET_KEY: \"6hRLeos47wGJkcU/0XXkHG5qJwv1MkAuYVbpS0J\""},
    {"gcp-service-account-key",
     "  \"private_key_id\": \""
     "ba"
     "d821df997d529975dcb"
     "6de0703b4ab7ed013e5"
     "\",",
     "ba"
     "d821df997d529975dcb"
     "6de0703b4ab7ed013e5",
     "  \"private_key_id\": \"0181d960e9558c1530a493afbb8b64cb580fac2\","},
    {"gcp-api-key",
     "const key = \""
     "AI"
     "zafz3hlkV797tpnBPJ"
     "AVA1BmzWimLVDP5GJtR"
     "\";",
     "AI"
     "zafz3hlkV797tpnBPJ"
     "AVA1BmzWimLVDP5GJtR",
     "const key = \"AI"
     "zad8oSJ-lNz5r_J-8u-M7AsZ7nrsoTV75Y4s\";"},
    {"gcp-oauth-client-secret",
     "client_secret="
     "GO"
     "CSPX-xVe9RWlBaTF"
     "6E9CPcgYBy9Lmr4Pa"
     "",
     "GO"
     "CSPX-xVe9RWlBaTF"
     "6E9CPcgYBy9Lmr4Pa",
     "client_secret=GOCSPX-WbP3gvY1pIXoQOrgRb5vPG5c6qS"},
    {"azure-storage-account-key",
     "DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey="
     "Yh"
     "zYTFQy6k1qJAH4DxD3EoA1zCC/A4cGofFQrGZ7iHyEp"
     "p2LNY2PG17+Dum2JnkOGORtaUrvPq09OIvEzwj9qY=="
     ";EndpointSuffix=core.windows.net",
     "Yh"
     "zYTFQy6k1qJAH4DxD3EoA1zCC/A4cGofFQrGZ7iHyEp"
     "p2LNY2PG17+Dum2JnkOGORtaUrvPq09OIvEzwj9qY==",
     "DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=UCs19aVmP2GuaEsSuFfGuL8Opk+hjn45p/"
     "ed75CnrQSkZ5B70co8w7rqhY2yP+PTZSjQlojQU3G9dyPqAXen+==;EndpointSuffix=core.windows.net"},
    {"azure-sas-token",
     "https://acct1.blob.core.windows.net/c?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01T00:00:00Z&sig="
     "BT"
     "FEEhV0Fg2Xpvd8aFotOVyg"
     "KysRiIbsED1s3WLJ46fU%3D"
     "",
     "BT"
     "FEEhV0Fg2Xpvd8aFotOVyg"
     "KysRiIbsED1s3WLJ46fU%3D",
     "https://acct1.blob.core.windows.net/c?sv=2022-11-02&ss=b&sp=r&sig=Q3SxrO5qHGyRzjD6f58l"},
    {"azure-ad-client-secret",
     "AZURE_CLIENT_SECRET="
     "kI"
     "D1Q~oApQ~n9r-TLNNUD"
     "s-K-PMkOG0qWP~VAqCt"
     "",
     "kI"
     "D1Q~oApQ~n9r-TLNNUD"
     "s-K-PMkOG0qWP~VAqCt",
     "AZURE_CLIENT_SECRET=ndL7Q~Fbkp4B2LOpdBWamBJ8kvUXGAAjL7"},
    {"gitlab-pat",
     "token: "
     "gl"
     "pat-QRCZljwi"
     "Mkmg4HeBUuvd"
     "",
     "gl"
     "pat-QRCZljwi"
     "Mkmg4HeBUuvd",
     "token: gl"
     "pat-pdr-M0K5IQKWuonaiIF"},
    {"gitlab-runner-token",
     "token: "
     "gl"
     "rt-eClAV_Q5zV"
     "qMll8zRf8W50sr"
     "",
     "gl"
     "rt-eClAV_Q5zV"
     "qMll8zRf8W50sr",
     "token: gl"
     "rt-2qUGS4LifvrDXTdYkuo"},
    {"gitlab-deploy-token",
     "token: "
     "gl"
     "dt-TFzutQR8"
     "AfVNkBNhfBdF"
     "",
     "gl"
     "dt-TFzutQR8"
     "AfVNkBNhfBdF",
     "token: gl"
     "dt-J3U_YPo09rNkW1Zw9-O"},
    {"gitlab-pipeline-trigger-token",
     "token: "
     "gl"
     "ptt-1aeea03bdba261ad59"
     "0acbc5fbb5ecb983b410e6"
     "",
     "gl"
     "ptt-1aeea03bdba261ad59"
     "0acbc5fbb5ecb983b410e6",
     "token: gl"
     "ptt-f58de9b9d56191e28c2"},
    {"gitlab-feed-token",
     "token: "
     "gl"
     "ft-_LOhi3yH"
     "C1oXt-8qy4-3"
     "",
     "gl"
     "ft-_LOhi3yH"
     "C1oXt-8qy4-3",
     "token: gl"
     "ft-bmdOGIstriIp9ljM7r0"},
    {"gitlab-ci-job-token",
     "token: "
     "gl"
     "cbt-4zHBgsDgwOz"
     "6AXL7kbgGmvgoyN"
     "",
     "gl"
     "cbt-4zHBgsDgwOz"
     "6AXL7kbgGmvgoyN",
     "token: gl"
     "cbt-7b3_5saPyxFe-1DS3VB"},
    {"gitlab-runner-registration-token",
     "registration-token: "
     "GR"
     "1348941GQmmVf"
     "UZ4ZF3atnEy2pS"
     "",
     "GR"
     "1348941GQmmVf"
     "UZ4ZF3atnEy2pS",
     "registration-token: GR1348941EH093fJ9FoPTQcwcSUz"},
    {"gitlab-oauth-app-secret",
     "GITLAB_APP_SECRET="
     "gl"
     "oas-48c0b90a16be3388e7f14697f06035"
     "77aa6c55e0d19d3572186e5761b1524bf0"
     "",
     "gl"
     "oas-48c0b90a16be3388e7f14697f06035"
     "77aa6c55e0d19d3572186e5761b1524bf0",
     "GITLAB_APP_SECRET=gloas-b0947c5eba021711473613ef6c2e0ef82b15fc467fe93e81dd58a0c1f9a51bb"},
    {"gitlab-agent-token",
     "agent_token="
     "gl"
     "agent-V3l_sMO927u2At1YvpmM5N"
     "yTFFrCVY0dXO5PcjfZ2b30m8kvm_"
     "",
     "gl"
     "agent-V3l_sMO927u2At1YvpmM5N"
     "yTFFrCVY0dXO5PcjfZ2b30m8kvm_",
     "agent_token=glagent-W8mdAd3Vss1mMN7QoIQH1YUDml66yBGQAd7xbpGuBQR2rBWxo"},
    {"github-pat",
     "GITHUB_TOKEN="
     "gh"
     "p_Icb9RCrB1AnJxzYki"
     "CvbdYy59pnwQddDNjFo"
     "",
     "gh"
     "p_Icb9RCrB1AnJxzYki"
     "CvbdYy59pnwQddDNjFo",
     "GITHUB_TOKEN=gh"
     "p_MI1Mi5siwfueUsTFBljJtYDzvY1hipunSdw"},
    {"github-oauth-token",
     "GITHUB_TOKEN="
     "gh"
     "o_437hcX15Jg40QpQZo"
     "NbhUqoVj92SXoOofYia"
     "",
     "gh"
     "o_437hcX15Jg40QpQZo"
     "NbhUqoVj92SXoOofYia",
     "GITHUB_TOKEN=gh"
     "o_8G7YcFQCRfFMeihlkxzpeNX21i1e0fFKJkC"},
    {"github-user-to-server-token",
     "GITHUB_TOKEN="
     "gh"
     "u_SSYTzz6PGFrFNWoO0"
     "tE2Ev9rMrJ7qCmWvrA1"
     "",
     "gh"
     "u_SSYTzz6PGFrFNWoO0"
     "tE2Ev9rMrJ7qCmWvrA1",
     "GITHUB_TOKEN=gh"
     "u_rcRnDkFmdSrmmEPio9ONdFAKnmyxC1rvlj7"},
    {"github-server-to-server-token",
     "GITHUB_TOKEN="
     "gh"
     "s_YYhWsSWqEXV7cduIJ"
     "LsQ2dbpXG3Ztxd09LQ9"
     "",
     "gh"
     "s_YYhWsSWqEXV7cduIJ"
     "LsQ2dbpXG3Ztxd09LQ9",
     "GITHUB_TOKEN=gh"
     "s_Oc26u6J6MFvgmiq02lBfZbHspSyUIuvaQ0w"},
    {"github-refresh-token",
     "GITHUB_TOKEN="
     "gh"
     "r_t3yqF2JUcu1qkvmWn"
     "fS15YKu41cZsjMnE4sD"
     "",
     "gh"
     "r_t3yqF2JUcu1qkvmWn"
     "fS15YKu41cZsjMnE4sD",
     "GITHUB_TOKEN=gh"
     "r_CtbHhaDaisASC5KLdCYa7lotSbB65sjBcKb"},
    {"github-fine-grained-pat",
     "gh_token = '"
     "gi"
     "thub_pat_BOsQxptIJg86akzTuKku9X_tiCRqqY0GVGij"
     "iBnXPMAiEBHvUg3le37l6cLnShaI7S7NcbM5GD6udrJrIL"
     "'",
     "gi"
     "thub_pat_BOsQxptIJg86akzTuKku9X_tiCRqqY0GVGij"
     "iBnXPMAiEBHvUg3le37l6cLnShaI7S7NcbM5GD6udrJrIL",
     "gh_token = 'github_pat_EICo97z5KareiNimgBfuFw_10StuBbjkr7vSIp0lmaOcecYY8mhtE2hEUJlqtdK8lbxp1vIM4SPzcVT4g'"},
    {"slack-bot-token",
     "SLACK_BOT_TOKEN="
     "xo"
     "xb-1877834582-12831015774"
     "4-UuqaakMZbOzDXrzRQpTA3Vyn"
     "",
     "xo"
     "xb-1877834582-12831015774"
     "4-UuqaakMZbOzDXrzRQpTA3Vyn",
     "SLACK_BOT_TOKEN=xoxb-3184468049-841365729342-RsLi9BhTnwAenhXELIz9YFn"},
    {"slack-user-token",
     "slack.token = \""
     "xo"
     "xp-54415825513-22313412912-192467137"
     "980-nmzDv1cTpLPkObOaLqw2V4iW8thsrgue"
     "\"",
     "xo"
     "xp-54415825513-22313412912-192467137"
     "980-nmzDv1cTpLPkObOaLqw2V4iW8thsrgue",
     "slack.token = \"xoxp-68653271702-384709388485-FiToGwjoADflfbXQB2DNOm6ru2xRHHtF\""},
    {"slack-legacy-token",
     "legacy: "
     "xo"
     "xa-2-PPqP0ZBmkEOnVgUax"
     "ayXvedgEK47zRv67XNhwPH8"
     "",
     "xo"
     "xa-2-PPqP0ZBmkEOnVgUax"
     "ayXvedgEK47zRv67XNhwPH8",
     "legacy: xoxa-2-4NYqkQ84zs0xmGnQVZnb"},
    {"slack-app-token",
     "SLACK_APP_TOKEN="
     "xa"
     "pp-1-AYJWW2TEKHP-7197137714969-1026be55ac964131"
     "b5250f067b74c68bd1ee27518e4bd6e1e465a7829ebc325b"
     "",
     "xa"
     "pp-1-AYJWW2TEKHP-7197137714969-1026be55ac964131"
     "b5250f067b74c68bd1ee27518e4bd6e1e465a7829ebc325b",
     "SLACK_APP_TOKEN=xapp-1-A1SSIDG9CQO-8830298747705-"
     "12a80bf8843075b7d1fb63c0ad3995bd6c96fde1797abd723e1f94f401f0624"},
    {"slack-webhook-url",
     "webhook: https://hooks.slack.com/services/"
     "TA"
     "OX1R3Z24I/B2MPA0FMFXD/c"
     "yFwHZ69wyZIoOZ39iH2cdt3"
     "",
     "TA"
     "OX1R3Z24I/B2MPA0FMFXD/c"
     "yFwHZ69wyZIoOZ39iH2cdt3",
     "webhook: https://hooks.slack.com/services/TH6RU3DI3RJ/BSM4F5VZ06K/xUsW4HWo3tIMfSbxxaryUTw"},
    {"stripe-secret-key",
     "STRIPE_KEY="
     "sk"
     "_live_rDIYjABDw"
     "bVXLLEt9yZo7fwH"
     "",
     "sk"
     "_live_rDIYjABDw"
     "bVXLLEt9yZo7fwH",
     "STRIPE_KEY=sk_test_q6o51pYIoX5Efbbj1GVCclar"},
    {"stripe-restricted-key",
     "STRIPE_RK="
     "rk"
     "_live_4sRZfvAZ7"
     "0ZfjLx5dc7GHcX4"
     "",
     "rk"
     "_live_4sRZfvAZ7"
     "0ZfjLx5dc7GHcX4",
     "STRIPE_RK=rk_test_N4aeasN67OPmA2aIGdBVxEf6"},
    {"npm-token",
     "//registry.npmjs.org/:_authToken="
     "np"
     "m_m3kVSDOQpOcfomfl4"
     "xX6t2E1iDE3C6YKx2tB"
     "",
     "np"
     "m_m3kVSDOQpOcfomfl4"
     "xX6t2E1iDE3C6YKx2tB",
     "//registry.npmjs.org/:_authToken=npm_kMWj2V4kYQI9Ef8LeUEFSb3Jfyg5ME3V0Ai"},
    {"pypi-token",
     "password = "
     "py"
     "pi-AgEIcHlwaS5vcmcImDyn2FfQ6OcOs1ufYvLy"
     "onGeuSyX1IHeEgy14IImYd5fn_KVKDGk7fi0B4I"
     "",
     "py"
     "pi-AgEIcHlwaS5vcmcImDyn2FfQ6OcOs1ufYvLy"
     "onGeuSyX1IHeEgy14IImYd5fn_KVKDGk7fi0B4I",
     "password = pypi-AgEIcHlwaS5vcmcIlL3eZOMR0ODa-V4_FFdnh0QDn7veXmZJ83PCGpi"},
    {"twilio-api-key",
     "TWILIO_API_KEY="
     "SK"
     "4cc84eab845e9c9d"
     "83589a8070fec594"
     "",
     "SK"
     "4cc84eab845e9c9d"
     "83589a8070fec594",
     "TWILIO_API_KEY=SKd17a783a06aac2f80f9701b53eba5c5"},
    {"sendgrid-api-key",
     "SENDGRID_API_KEY="
     "SG"
     ".lqz35bQEWVOsfXHFReW0Bv.ctVMIAxCA"
     "ak9g0wUIW6RwiJ0leIrLWyJQZERTeMTwsG"
     "",
     "SG"
     ".lqz35bQEWVOsfXHFReW0Bv.ctVMIAxCA"
     "ak9g0wUIW6RwiJ0leIrLWyJQZERTeMTwsG",
     "SENDGRID_API_KEY=SG.Z3fsdW0Wo0SozGJon_YTR2.fHHkTNelT5hLRmvH9gkEqTW3LGhur_wutpoSkHOImj"},
    {"mailgun-api-key",
     "MAILGUN_KEY="
     "ke"
     "y-2769100a24a6514"
     "cbb7928ac4d8b505f"
     "",
     "ke"
     "y-2769100a24a6514"
     "cbb7928ac4d8b505f",
     "MAILGUN_KEY=key-f3a5c241f7e19d98e652463b9af6db6"},
    {"shopify-token",
     "SHOPIFY_TOKEN="
     "sh"
     "pat_6f211fed21c5e1"
     "9e1afc0f106d090678"
     "",
     "sh"
     "pat_6f211fed21c5e1"
     "9e1afc0f106d090678",
     "SHOPIFY_TOKEN=shpat_f8de8642499f717c63ed5b47fd113e3"},
    {"square-access-token",
     "SQUARE_TOKEN="
     "sq"
     "0atp-e855leaW"
     "M4C0HWSKcm354G"
     "",
     "sq"
     "0atp-e855leaW"
     "M4C0HWSKcm354G",
     "SQUARE_TOKEN=sq0atp-1Vnqj0TBPIwvl2VAVmdbF"},
    {"square-oauth-secret",
     "SQUARE_SECRET="
     "sq"
     "0csp-cmFuOUPsGlG91Buq5U6"
     "advtn3LfUkKOWlPfppWMsvmM"
     "",
     "sq"
     "0csp-cmFuOUPsGlG91Buq5U6"
     "advtn3LfUkKOWlPfppWMsvmM",
     "SQUARE_SECRET=sq0csp-eeXyUEMqXhlDxXR6x4Wh7qOy_Lm4EGObY4OZ6_NJRX"},
    {"heroku-api-key",
     "HEROKU_API_KEY="
     "ba"
     "9ea90f-fe73-0c74-"
     "d99b-fded353107d4"
     "",
     "ba"
     "9ea90f-fe73-0c74-"
     "d99b-fded353107d4",
     "HEROKU_API_KEY=92fcc1eb-2ed7-542e-3f7128c3555"},
    {"heroku-api-key-v2",
     "HEROKU_API_KEY="
     "HR"
     "KU-FIc5QVBduXDPzyvLyBb5ixXQUUS9"
     "JyxQy-pyKsN_WKNDozsq3gq8iJIfFFHI"
     "",
     "HR"
     "KU-FIc5QVBduXDPzyvLyBb5ixXQUUS9"
     "JyxQy-pyKsN_WKNDozsq3gq8iJIfFFHI",
     "HEROKU_API_KEY=HRKU-ue9tTbXUFrYyfe1dKeKCEBG4ypekt905BfZU0ONfc6RazG7kddFrwn_GUNN"},
    {"digitalocean-token",
     "DO_TOKEN="
     "do"
     "p_v1_0235059e0ae57c6105d97dc37e1dd"
     "df3e73f482bb56f0cab1d643b500803cb98"
     "",
     "do"
     "p_v1_0235059e0ae57c6105d97dc37e1dd"
     "df3e73f482bb56f0cab1d643b500803cb98",
     "DO_TOKEN=dop_v1_dc935deae6d0093459b79b210779895feefb37c986847182905b0e600fe7bc5"},
    {"vault-token",
     "VAULT_TOKEN="
     "hv"
     "s.wLTZ10NLnJqrF"
     "xPD2rj2qj2rQcG0"
     "",
     "hv"
     "s.wLTZ10NLnJqrF"
     "xPD2rj2qj2rQcG0",
     "VAULT_TOKEN=hvs.f6kM2BZ2v9kw53HPgyG15js"},
    {"databricks-token",
     "DATABRICKS_TOKEN="
     "da"
     "pia2ac48cfec6e988"
     "4d7da9412c63c662e"
     "",
     "da"
     "pia2ac48cfec6e988"
     "4d7da9412c63c662e",
     "DATABRICKS_TOKEN=dapi27c8787288993d68ccfa4d1765d9c13"},
    {"discord-bot-token",
     "DISCORD_TOKEN="
     "Mq"
     "k9wG7vbKSOKdrHwzaqsoDe.mL9AC"
     "Q.k-b78tW7regRHxspb2y3l72jWxm"
     "",
     "Mq"
     "k9wG7vbKSOKdrHwzaqsoDe.mL9AC"
     "Q.k-b78tW7regRHxspb2y3l72jWxm",
     "DISCORD_TOKEN=MHo5OdUeePxLwnRJyqpqKnSD.05B7o.KJ9L0BSs45jBUEx-BeAsMAuYP6H"},
    {"telegram-bot-token",
     "TELEGRAM_TOKEN="
     "04"
     "11375933:AA5Xc-fCUsFvz"
     "SHDeiOFcYoRcRT_TtasSrD"
     "",
     "04"
     "11375933:AA5Xc-fCUsFvz"
     "SHDeiOFcYoRcRT_TtasSrD",
     "TELEGRAM_TOKEN=8655973204:AAw1XJnMdIQJY_XWr9D9ioVglI_wXd-hgA"},
    {"anthropic-api-key",
     "ANTHROPIC_API_KEY="
     "sk"
     "-ant-api03-4KXW5g7KB6z8gpS_Bm2BKgWzivldSyWWptI7uLU9EA"
     "ZCNOYNkIcWB5xISXhidAeHVwjSli5wZL7xmjWSww4zHgNM-x9ChAA"
     "",
     "sk"
     "-ant-api03-4KXW5g7KB6z8gpS_Bm2BKgWzivldSyWWptI7uLU9EA"
     "ZCNOYNkIcWB5xISXhidAeHVwjSli5wZL7xmjWSww4zHgNM-x9ChAA",
     "ANTHROPIC_API_KEY=sk-ant-api03-iFD1L0rqoBGZ_va9z2gMEkc5w4h60nn-LXcYzHX"},
    {"openai-api-key",
     "OPENAI_API_KEY="
     "sk"
     "-proj-rhaisCKLBRgwERU-fdK2CF4K3Vx8B"
     "kMy5BkBPuhGtg66VWaRObx2yjjlLeHFsASG"
     "",
     "sk"
     "-proj-rhaisCKLBRgwERU-fdK2CF4K3Vx8B"
     "kMy5BkBPuhGtg66VWaRObx2yjjlLeHFsASG",
     "OPENAI_API_KEY=sk-proj-39MiPeopMmuaaOAOsWXQudI9WHDkoOpBThFgmFn"},
    {"huggingface-token",
     "HF_TOKEN="
     "hf"
     "_fQVOfxUsWrkfGioC"
     "koaDQvjwYHQsHORXpL"
     "",
     "hf"
     "_fQVOfxUsWrkfGioC"
     "koaDQvjwYHQsHORXpL",
     "HF_TOKEN=hf_SXMUoXfHjcJnKwAhkqfCBMjeAoqDiDTuo"},
    {"atlassian-api-token",
     "JIRA_TOKEN="
     "AT"
     "ATT3xFfGF0TlLa8z9qbAepbXXwsZGoX-bXrHNSPv4R2fan6BJAQl9uDTU05y-eFr0lojKUr3pLC8dweEWpUOKQ44UI_yXcy"
     "dsqdoBJ7gmULBQ-7S1zBfb-sqeOXkWErmRLt43YdNQs4zxihaBivERTtDtLqDNdPg7FXPkqfQgpnqduubCRxODOmtRuH_Xb"
     "",
     "AT"
     "ATT3xFfGF0TlLa8z9qbAepbXXwsZGoX-bXrHNSPv4R2fan6BJAQl9uDTU05y-eFr0lojKUr3pLC8dweEWpUOKQ44UI_yXcy"
     "dsqdoBJ7gmULBQ-7S1zBfb-sqeOXkWErmRLt43YdNQs4zxihaBivERTtDtLqDNdPg7FXPkqfQgpnqduubCRxODOmtRuH_Xb",
     "JIRA_TOKEN=ATATT345aL02UoebEhaOgsz10AoEMroFiOCmTN_jS70n4e_Juq8dj0KZyncOCsKZY"},
    {"doppler-token",
     "DOPPLER_TOKEN="
     "dp"
     ".pt.FURCeTgwtqccwR0zPE7"
     "i25kC8Og1EbZ0ZcJXXfy99LW"
     "",
     "dp"
     ".pt.FURCeTgwtqccwR0zPE7"
     "i25kC8Og1EbZ0ZcJXXfy99LW",
     "DOPPLER_TOKEN=dp.pt.JbF7Qs1OMKl1oS6hECJemg8kHaNz2MgFvhAzW76"},
    {"postman-api-key",
     "POSTMAN_API_KEY="
     "PM"
     "AK-b96ceaa4d00e7b382a4d1567-358"
     "f806bb23edd542db04f0bb544c90f16"
     "",
     "PM"
     "AK-b96ceaa4d00e7b382a4d1567-358"
     "f806bb23edd542db04f0bb544c90f16",
     "POSTMAN_API_KEY=PMAK-75da37a9eaec0d21382b0c94-5880e0eb766cea8b1a7c781c921caee1e"},
    {"age-secret-key",
     "# key: "
     "AG"
     "E-SECRET-KEY-10BE9Y1XROTDN66E9091WY0"
     "XGDN1IEL3SSDM39Q5U3Q7KTY8FZDVH6QFWEY"
     "",
     "AG"
     "E-SECRET-KEY-10BE9Y1XROTDN66E9091WY0"
     "XGDN1IEL3SSDM39Q5U3Q7KTY8FZDVH6QFWEY",
     "# key: AGE-SECRET-KEY-1NHRCC4UDYP7POGOWBRD4V28ZDY1QY4K97ZR6E5T9N73YR545860JBLD4H"},
    {"newrelic-user-key",
     "NEW_RELIC_API_KEY="
     "NR"
     "AK-CK2F5QE4MZ8J"
     "FAZIFF0Y71DZCI3"
     "",
     "NR"
     "AK-CK2F5QE4MZ8J"
     "FAZIFF0Y71DZCI3",
     "NEW_RELIC_API_KEY=NRAK-BXH3M13ZD7HYELSPZTJTK2JNDO"},
    {"pulumi-token",
     "PULUMI_ACCESS_TOKEN="
     "pu"
     "l-acf1ce5abeca471c19b"
     "af8be849c2e1d61b2d896"
     "",
     "pu"
     "l-acf1ce5abeca471c19b"
     "af8be849c2e1d61b2d896",
     "PULUMI_ACCESS_TOKEN=pul-a3a8237b9f3f1adbf5a769f2f957d9a6894ce10"},
    {"terraform-cloud-token",
     "token = \""
     "hU"
     "GNkZHV8ozGX9.atlasv1.4RkTXQbNEmb9r7dX1H0LtTz"
     "G5-JBCU54tJ4bE7GvShFeNyA318KymgP4Bcs_KvgJb4C"
     "\"",
     "hU"
     "GNkZHV8ozGX9.atlasv1.4RkTXQbNEmb9r7dX1H0LtTz"
     "G5-JBCU54tJ4bE7GvShFeNyA318KymgP4Bcs_KvgJb4C",
     "token = \"wXHrBFeoHDlR5.atlasv1.aNBQ5jPqgrXmScKaS4HfcjLOY-6kmcSoqUAJ2Q3CFk1N5KgSS5EbgkPjGUGJkHvFPWO\""},
    {"grafana-service-account-token",
     "GRAFANA_TOKEN="
     "gl"
     "sa_ZBLQeSkHWVWJsU6K4mm"
     "km6skCFV2OaWk_3522f61c"
     "",
     "gl"
     "sa_ZBLQeSkHWVWJsU6K4mm"
     "km6skCFV2OaWk_3522f61c",
     "GRAFANA_TOKEN=glsa_dLk3I3kyWy6ECEUZgt0GpiVDhi7x6Ai8_4451253"},
    {"linear-api-key",
     "LINEAR_API_KEY="
     "li"
     "n_api_lblq9K6mp6SM6mcUc"
     "DslLlrpLMOOaPvSgyJ6V0uw"
     "",
     "li"
     "n_api_lblq9K6mp6SM6mcUc"
     "DslLlrpLMOOaPvSgyJ6V0uw",
     "LINEAR_API_KEY=lin_api_E7PLEPet1x0TebdayJh2SXZOg0c4A5g9oylf4nN"},
    {"private-key-rsa",
     "  \"private_key\": \""
     "--"
     "---BEGIN RSA PRIVATE KEY-----\\nMIISQxjIYEsHnmhuc4RfHd5VdVNr8iFT"
     "7ogDT2gnVTto8MEaXP3IlVw5st//Zl5l\\n-----END RSA PRIVATE KEY-----"
     "\\n\",",
     "--"
     "---BEGIN RSA PRIVATE KEY-----\\nMIISQxjIYEsHnmhuc4RfHd5VdVNr8iFT"
     "7ogDT2gnVTto8MEaXP3IlVw5st//Zl5l\\n-----END RSA PRIVATE KEY-----",
     "  \"public_key\": \"-----BEGIN RSA PUBLIC "
     "KEY-----\\nMIIqryMMyCTwJz4H2fmMqxSNkqEjABSxj3ge+Bt//wzExnyI8rRwv3em/vbtSQG7\\n-----END RSA PUBLIC "
     "KEY-----\\n\","},
    {"private-key-ec",
     "  \"private_key\": \""
     "--"
     "---BEGIN EC PRIVATE KEY-----\\nMIIXWw1ZKcdXDHd42M0ug/z/pkVMmjhg"
     "Q9iUm9cdvorV9dJ2PkLQV+DqTQPtBR2a\\n-----END EC PRIVATE KEY-----"
     "\\n\",",
     "--"
     "---BEGIN EC PRIVATE KEY-----\\nMIIXWw1ZKcdXDHd42M0ug/z/pkVMmjhg"
     "Q9iUm9cdvorV9dJ2PkLQV+DqTQPtBR2a\\n-----END EC PRIVATE KEY-----",
     "  \"public_key\": \"-----BEGIN EC "
     "PARAMETERS-----\\nMIIq/8GQF563FAz4/LRymn+p+mHUrrMxf391/pha0DWLYqRqOMeA0ChR0wuBuPO0\\n-----END EC "
     "PARAMETERS-----\\n\","},
    {"private-key-dsa",
     "  \"private_key\": \""
     "--"
     "---BEGIN DSA PRIVATE KEY-----\\nMIIYJuTdx8C9/ZqhdJyvkHYRKmkmA4VK"
     "RwgvgyUF7ZCQZ+bqMZyU4RRpGBLwuqRy\\n-----END DSA PRIVATE KEY-----"
     "\\n\",",
     "--"
     "---BEGIN DSA PRIVATE KEY-----\\nMIIYJuTdx8C9/ZqhdJyvkHYRKmkmA4VK"
     "RwgvgyUF7ZCQZ+bqMZyU4RRpGBLwuqRy\\n-----END DSA PRIVATE KEY-----",
     "  \"public_key\": \"-----BEGIN DSA "
     "PARAMETERS-----\\nMIIiAMpYKv7+smTEoE7AjLKiOAx8+x5P803LpwB4HzEOUTr59z2DpJVobKhAlwE5\\n-----END DSA "
     "PARAMETERS-----\\n\","},
    {"private-key-openssh",
     "  \"private_key\": \""
     "--"
     "---BEGIN OPENSSH PRIVATE KEY-----\\nMIINfMb/Lt2DR8uwVgAi1ga1GqGczYdO"
     "FwHqWAKxkyCKvXI/8TxZQ3PFIF9SQm0h\\n-----END OPENSSH PRIVATE KEY-----"
     "\\n\",",
     "--"
     "---BEGIN OPENSSH PRIVATE KEY-----\\nMIINfMb/Lt2DR8uwVgAi1ga1GqGczYdO"
     "FwHqWAKxkyCKvXI/8TxZQ3PFIF9SQm0h\\n-----END OPENSSH PRIVATE KEY-----",
     "  \"public_key\": \"-----BEGIN SSH2 PUBLIC "
     "KEY-----\\nMIIC94Ulgq3XC3gPRi6Eow4LHOdvQmrOuJj45hLPvXRTQTdc5Oq+R/GGgtpXA86N\\n-----END SSH2 PUBLIC "
     "KEY-----\\n\","},
    {"private-key-pgp",
     "  \"private_key\": \""
     "--"
     "---BEGIN PGP PRIVATE KEY BLOCK-----\\n\\nMIICRrbFnmLPtkhrRTkGemv6LobMA6l"
     "F1jLpNcu3hrL+4mByL6vWKG8j/04uTORJ\\n-----END PGP PRIVATE KEY BLOCK-----"
     "\\n\",",
     "--"
     "---BEGIN PGP PRIVATE KEY BLOCK-----\\n\\nMIICRrbFnmLPtkhrRTkGemv6LobMA6l"
     "F1jLpNcu3hrL+4mByL6vWKG8j/04uTORJ\\n-----END PGP PRIVATE KEY BLOCK-----",
     "  \"public_key\": \"-----BEGIN PGP PUBLIC KEY "
     "BLOCK-----\\n\\nMIIspFlBNwMRGu5jTU6pqcTh346I4qJubLtbURDArJ8hKVFW2XmZcgKz8kehjLg9\\n-----END PGP PUBLIC KEY "
     "BLOCK-----\\n\","},
    {"private-key-pkcs8",
     "  \"private_key\": \""
     "--"
     "---BEGIN PRIVATE KEY-----\\nMIIyXtntwTTQjQWm0/KvTxRwOwv0G0dE"
     "ZflU+JdLTmyxeem/xmPNfnlSRF7Qx0Hg\\n-----END PRIVATE KEY-----"
     "\\n\",",
     "--"
     "---BEGIN PRIVATE KEY-----\\nMIIyXtntwTTQjQWm0/KvTxRwOwv0G0dE"
     "ZflU+JdLTmyxeem/xmPNfnlSRF7Qx0Hg\\n-----END PRIVATE KEY-----",
     "  \"public_key\": \"-----BEGIN PUBLIC "
     "KEY-----\\nMIIf8vXnr6S2FP5UINPf97sr3ZAXqurfCkvYPZgylRnqFH+dpl8iIeEvpx/gQ9Ad\\n-----END PUBLIC KEY-----\\n\","},
    {"private-key-pkcs8-encrypted",
     "  \"private_key\": \""
     "--"
     "---BEGIN ENCRYPTED PRIVATE KEY-----\\nMII9xGZB+RSM0fgWrazhQSVdvOIRNaH4"
     "ffsOb2dPOvLBwEnZX1dtghC5H0nQjs5v\\n-----END ENCRYPTED PRIVATE KEY-----"
     "\\n\",",
     "--"
     "---BEGIN ENCRYPTED PRIVATE KEY-----\\nMII9xGZB+RSM0fgWrazhQSVdvOIRNaH4"
     "ffsOb2dPOvLBwEnZX1dtghC5H0nQjs5v\\n-----END ENCRYPTED PRIVATE KEY-----",
     "  \"public_key\": \"-----BEGIN "
     "CERTIFICATE-----\\nMIIdVuAQTrh87hsk7Lg6s0FAQngVIvl3uwiqM4Hu0QbA2gZ/D5xX7/cP+rZdJS3a\\n-----END "
     "CERTIFICATE-----\\n\","},
    {"jwt",
     "Authorization: Bearer "
     "ey"
     "JhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAiNzU5NTMxMzYiLCAibmFtZSI6ICJB"
     "bm4gTGVlIiwgImlhdCI6IDE3MTYyMzkwMjJ9.J5v_5-Ulvx-chxZOTdSjEvyToCE8b7XGP3fvSHeLMfR"
     "",
     "ey"
     "JhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAiNzU5NTMxMzYiLCAibmFtZSI6ICJB"
     "bm4gTGVlIiwgImlhdCI6IDE3MTYyMzkwMjJ9.J5v_5-Ulvx-chxZOTdSjEvyToCE8b7XGP3fvSHeLMfR",
     "Authorization: Bearer "
     "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9."
     "eyJzdWIiOiAiNzU5NTMxMzYiLCAibmFtZSI6ICJBbm4gTGVlIiwgImlhdCI6IDE3MTYyMzkwMjJ9"},
    {"url-basic-auth",
     "DATABASE_URL=postgres://app:"
     "kz"
     "XWPuJFc3"
     "dNhO9kw3"
     "@db.internal:5432/app",
     "kz"
     "XWPuJFc3"
     "dNhO9kw3",
     "DATABASE_URL=postgres://app@db.internal:5432/app"},
    {"dockerhub-pat",
     "registry_auth = \""
     "dc"
     "kr_pat_vRztCtmTX9"
     "Q04QehyslkdwOTVpe"
     "\"",
     "dc"
     "kr_pat_vRztCtmTX9"
     "Q04QehyslkdwOTVpe",
     "registry_auth = \"dckr_pat_kjQ9XrPgrSiA\""},
    {"alibaba-access-key-id",
     "value: "
     "LT"
     "AIWjX2fgQbl"
     "XsEht5cWqoB"
     "",
     "LT"
     "AIWjX2fgQbl"
     "XsEht5cWqoB",
     "value: LTAIrHgt2jvB"},
    {"newrelic-license-key",
     "license = "
     "6b"
     "ce24c320faa492bdb06"
     "ae3084d3ebe7d96NRAL"
     "",
     "6b"
     "ce24c320faa492bdb06"
     "ae3084d3ebe7d96NRAL",
     "license = 43eeeef7685a90fdaf10da0d5e5efdNRAL"},
    {"newrelic-insert-key",
     "x = \""
     "NR"
     "II-RDnzpYk7QSAgGp"
     "vDct8VUeieimlAOzzV"
     "\"",
     "NR"
     "II-RDnzpYk7QSAgGp"
     "vDct8VUeieimlAOzzV",
     "x = \"NRII-FXkrSZ5QMvk7kUd3xASp\""},
    {"datadog-api-key",
     "app.dd.api.key="
     "e0"
     "f385d3f7181ea2c"
     "d7fc9c5c2d37a52"
     "",
     "e0"
     "f385d3f7181ea2c"
     "d7fc9c5c2d37a52",
     "app.dd.api.key=b7ef05dbc191437561914fa6"},
    {"datadog-app-key",
     "DD_APPLICATION_KEY: "
     "2d"
     "ccfdb503142d9679fd1"
     "58cd75340e0099c72ce"
     "",
     "2d"
     "ccfdb503142d9679fd1"
     "58cd75340e0099c72ce",
     "DD_APPLICATION_KEY: 8c4a851db418c4d5cc092d93d3420e16"},
    {"dynatrace-token",
     "token: "
     "dt"
     "0c01.TO2Z4G2S94ABL5237RCDFGG6.U86PZP37ZRXAQYMK3"
     "JSLURSK948SZLVQNRZQWAD2KP6S2L8RLJ2UG6GS28BH53EG"
     "",
     "dt"
     "0c01.TO2Z4G2S94ABL5237RCDFGG6.U86PZP37ZRXAQYMK3"
     "JSLURSK948SZLVQNRZQWAD2KP6S2L8RLJ2UG6GS28BH53EG",
     "token: dt0c01.9VHVILBT7FET4GFAUQ6ST9H2.76VN3D8L3ZUOXXUOLGGT"},
    {"grafana-cloud-token",
     "GRAFANA="
     "gl"
     "c_ndZEtKlIG6BIBp2VFyRr4hBZq1oMIuMw"
     "j9ouaOJeRizrzG3SL6ucJWx9UXoDMxVM=="
     "",
     "gl"
     "c_ndZEtKlIG6BIBp2VFyRr4hBZq1oMIuMw"
     "j9ouaOJeRizrzG3SL6ucJWx9UXoDMxVM==",
     "GRAFANA=glc_IHkOBWxEfqeiT9aa"},
    {"sentry-user-token",
     "auth = '"
     "sn"
     "tryu_9509d922d5a8ec613f740f9a72b93"
     "1225228e58327f84f38e16b1dba4fa20e12"
     "'",
     "sn"
     "tryu_9509d922d5a8ec613f740f9a72b93"
     "1225228e58327f84f38e16b1dba4fa20e12",
     "auth = 'sntryu_a567c1539eba6c7580df36e082d434c4ec2cc8f6'"},
    {"sentry-org-token",
     "SENTRY_AUTH_TOKEN="
     "sn"
     "trys_eyJJCwnXGZduqDBMMnKcgVMQYpjbhBCckwo7mxW"
     "faELrtdaugNbYX1IGUoNh1XvHSo42vnL0bsh3VDFcP3G"
     "",
     "sn"
     "trys_eyJJCwnXGZduqDBMMnKcgVMQYpjbhBCckwo7mxW"
     "faELrtdaugNbYX1IGUoNh1XvHSo42vnL0bsh3VDFcP3G",
     "SENTRY_AUTH_TOKEN=sntrys_Q4SOM6yDS2CgzAuA3JYd"},
    {"stripe-webhook-secret",
     "endpoint = \""
     "wh"
     "sec_cRf1aiTpsUDor2"
     "8aW8EpQ3TDNpUhnL7V"
     "\"",
     "wh"
     "sec_cRf1aiTpsUDor2"
     "8aW8EpQ3TDNpUhnL7V",
     "endpoint = \"whsec_V6vdnOmHJ2tb\""},
    {"mailchimp-api-key",
     "mc = "
     "09"
     "0c5dc67e4cec039cc"
     "aed2602ef2db1-us14"
     "",
     "09"
     "0c5dc67e4cec039cc"
     "aed2602ef2db1-us14",
     "mc = 04cde5cb23aa191c4e48ef58ad89307b-eu14"},
    {"mapbox-secret-token",
     "mapbox: "
     "sk"
     ".eyJ1Ijoiapx6JIlHzW5VeL7khWYuAX"
     "ptVz0Uc8.APF73G00DOFZFkmvJyiy1l"
     "",
     "sk"
     ".eyJ1Ijoiapx6JIlHzW5VeL7khWYuAX"
     "ptVz0Uc8.APF73G00DOFZFkmvJyiy1l",
     "mapbox: pk.eyJ1IjoiEGUJUbvb2mhXPexlDDNw3KFQW8h1dL.54A1RbOxpbxAv0qkvjN20k"},
    {"planetscale-token",
     "pw = '"
     "ps"
     "cale_pw_RG9xBooy5q48GrZOH"
     "k2BLAUoAwVMa4iIgGJHfl1SutT"
     "'",
     "ps"
     "cale_pw_RG9xBooy5q48GrZOH"
     "k2BLAUoAwVMa4iIgGJHfl1SutT",
     "pw = 'pscale_pw_NzfM2ZVSlTCo'"},
    {"rubygems-api-key",
     "GEM_HOST_API_KEY="
     "ru"
     "bygems_3db624c650478c72ab51"
     "1592c975588809a349802d0952e6"
     "",
     "ru"
     "bygems_3db624c650478c72ab51"
     "1592c975588809a349802d0952e6",
     "GEM_HOST_API_KEY=rubygems_2884fb62c6f9776eb722"},
    {"clojars-token",
     "deploy = \""
     "CL"
     "OJARS_x5i17mkhyn1tjq4qnpne8isxj6b"
     "i3xa1y8544r654cz5k45mx5jx4u84ghs0"
     "\"",
     "CL"
     "OJARS_x5i17mkhyn1tjq4qnpne8isxj6b"
     "i3xa1y8544r654cz5k45mx5jx4u84ghs0",
     "deploy = \"CLOJARS_d848gs01cr0o7rsm3dbfbc10umd0q1\""},
    {"buildkite-token",
     "bk: "
     "bk"
     "ua_58f9e95a788ae99d41"
     "b6d29955ce89d3b397a543"
     "",
     "bk"
     "ua_58f9e95a788ae99d41"
     "b6d29955ce89d3b397a543",
     "bk: bkua_340b2327298a31c441a2"},
    {"supabase-token",
     "access = "
     "sb"
     "p_e350f6e395c0fc13514"
     "e6198c1f4b7883886e6ef"
     "",
     "sb"
     "p_e350f6e395c0fc13514"
     "e6198c1f4b7883886e6ef",
     "access = sbp_acfd6332d26c4fc6f657ab17d27288"},
    {"shippo-api-token",
     "shippo = '"
     "sh"
     "ippo_live_9dfde5175878106"
     "38bcb838118a87776091e43e8"
     "'",
     "sh"
     "ippo_live_9dfde5175878106"
     "38bcb838118a87776091e43e8",
     "shippo = 'shippo_test_d1e5b651c5b6295af34dbd3f216ebe87cbe5c89b'"},
    {"groq-api-key",
     "llm = \""
     "gs"
     "k_pGDVcwav9GcJc3esuFrRiYAlh"
     "pIFpS4zNLAf9nmgPBZZzui9QtwC"
     "\"",
     "gs"
     "k_pGDVcwav9GcJc3esuFrRiYAlh"
     "pIFpS4zNLAf9nmgPBZZzui9QtwC",
     "llm = \"gsk_3SsMyPTlGUr23rjqIDnHbuBmPU8jSv\""},
    {"replicate-api-token",
     "r = "
     "r8"
     "_QviRqUcDh1zkTh7xYM"
     "dqQwQYFAtlRWC9oSMYr"
     "",
     "r8"
     "_QviRqUcDh1zkTh7xYM"
     "dqQwQYFAtlRWC9oSMYr",
     "r = r8_9UW3Bl3zlQ35St5ASvpM"},
    {"perplexity-api-key",
     "p = '"
     "pp"
     "lx-CjumNnXozLnAq8MOfgMzPn"
     "jHquwaXP2Pp3Tig6senJzAXZ1e"
     "'",
     "pp"
     "lx-CjumNnXozLnAq8MOfgMzPn"
     "jHquwaXP2Pp3Tig6senJzAXZ1e",
     "p = 'pplx-5KiW4digLs8FddYl2BJ7'"},
    {"password-call-argument",
     "        ds.setPassword(\""
     "i0"
     "FFI!KXlK"
     "X835U0qE"
     "\");",
     "i0"
     "FFI!KXlK"
     "X835U0qE",
     "        digest = hash_password(\"v8PQMdQvNMM8IVgN\");"},
    {"http-authorization-header",
     "curl -H \"Authorization: Bearer "
     "Rq"
     "9xLm2Kz8vQ2mL"
     "p9RtW4yZ3aB7c"
     "\" https://api.internal/v1",
     "Rq"
     "9xLm2Kz8vQ2mL"
     "p9RtW4yZ3aB7c",
     "curl -H \"Authorization: Bearer $API_TOKEN\" https://api.internal/v1"},
    {"netrc-password",
     "machine gitlab.internal login ci password "
     "Vq"
     "8mL2pXz"
     "9Rt4wKs",
     "Vq"
     "8mL2pXz"
     "9Rt4wKs",
     "machine gitlab.internal login ci password ${NETRC_PASSWORD}"},
    {"docker-config-auth",
     "      \"auth\": \""
     "cm"
     "9ib3Q6S3o4dlE"
     "ybUxwOVJ0N1dx"
     "\"",
     "cm"
     "9ib3Q6S3o4dlE"
     "ybUxwOVJ0N1dx",
     "      \"auth\": \"YWRtaW46YWRtaW4=\""},
    {"generic-password",
     "db_password = \""
     "ip"
     "7IqHAw"
     "qvMm0x"
     "\"",
     "ip"
     "7IqHAw"
     "qvMm0x",
     "db_password = \"wHrCMs3\""},
    {"generic-secret",
     "client_secret: "
     "to"
     "adV4XpvqWsIrtg"
     "G08VV3MHY0Osb47"
     "",
     "to"
     "adV4XpvqWsIrtg"
     "G08VV3MHY0Osb47",
     "client_secret: settings.oauth.client_secret_value"},
};

#define CORPUS_N (sizeof(corpus) / sizeof(corpus[0]))

static const struct corpus_entry *corpus_for(const char *rule)
{
	for (size_t i = 0; i < CORPUS_N; i++)
		if (strcmp(corpus[i].rule, rule) == 0)
			return &corpus[i];
	return NULL;
}

static size_t count_rule(const struct finding_list *l, const char *rule)
{
	size_t n = 0;
	for (size_t i = 0; i < l->count; i++)
		n += strcmp(l->items[i].rule_id, rule) == 0;
	return n;
}

static const struct finding *find_rule(const struct finding_list *l, const char *rule)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->items[i].rule_id, rule) == 0)
			return &l->items[i];
	return NULL;
}

/* The fingerprint the scanner must give: hex sha256(rule NUL path NUL secret), computed here independently. */
static void expected_fp(char out[65], const char *rule, const char *path, const char *secret)
{
	size_t rl = strlen(rule), pl = strlen(path), sl = strlen(secret);
	unsigned char *buf = malloc(rl + pl + sl + 2), h[32];
	memcpy(buf, rule, rl);
	buf[rl] = 0;
	memcpy(buf + rl + 1, path, pl);
	buf[rl + 1 + pl] = 0;
	memcpy(buf + rl + pl + 2, secret, sl);
	crypto_hash_sha256(h, buf, rl + pl + sl + 2);
	sodium_bin2hex(out, 65, h, 32);
	free(buf);
}

static void test_rules_compile(void)
{
	CHECK_INT(scan_secrets_init(), CORE_OK);
	CHECK(scan_secrets_rule_count() >= 30);
	CHECK(scan_secrets_rule(scan_secrets_rule_count()) == NULL);
	/* Rule ids are unique and every rule has a title and a severity. */
	for (size_t i = 0; i < scan_secrets_rule_count(); i++) {
		const struct scan_secrets_rule_info *r = scan_secrets_rule(i);
		REQUIRE(r);
		CHECK(r->title && *r->title);
		CHECK(r->severity >= SEV_LOW && r->severity <= SEV_CRITICAL);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(scan_secrets_rule(j)->id, r->id) != 0);
	}
}

static void test_corpus_covers_every_rule(void)
{
	for (size_t i = 0; i < scan_secrets_rule_count(); i++) {
		const char *id = scan_secrets_rule(i)->id;
		bool have = corpus_for(id) != NULL;
		CHECK(have);
		if (!have)
			fprintf(stderr, "  rule %s has no corpus pair\n", id);
	}
	/* And the corpus names no rule that does not exist. */
	for (size_t i = 0; i < CORPUS_N; i++) {
		bool known = false;
		for (size_t j = 0; j < scan_secrets_rule_count(); j++)
			known = known || strcmp(scan_secrets_rule(j)->id, corpus[i].rule) == 0;
		CHECK(known);
		if (!known)
			fprintf(stderr, "  corpus names unknown rule %s\n", corpus[i].rule);
	}
}

static void test_corpus_positives(void)
{
	const char *path = "config/app.env";
	for (size_t i = 0; i < scan_secrets_rule_count(); i++) {
		const struct scan_secrets_rule_info *r = scan_secrets_rule(i);
		const struct corpus_entry *c = corpus_for(r->id);
		if (!c)
			continue; /* reported by test_corpus_covers_every_rule */
		struct finding_list *l = finding_list_new();
		REQUIRE(l);
		CHECK(strstr(c->positive, c->secret) != NULL);
		CHECK_INT(scan_secrets_line(path, 42, c->positive, l), CORE_OK);
		const struct finding *f = find_rule(l, r->id);
		CHECK(f != NULL);
		CHECK_INT(count_rule(l, r->id), 1);
		if (!f) {
			fprintf(stderr, "  rule %s missed its positive: %s\n", r->id, c->positive);
			for (size_t k = 0; k < l->count; k++)
				fprintf(stderr, "    got %s\n", l->items[k].rule_id);
			finding_list_free(l);
			continue;
		}
		CHECK_STR(f->scan_type, "secrets");
		CHECK_STR(f->path, path);
		CHECK_INT(f->line, 42);
		CHECK_INT(f->severity, r->severity);
		/* The title is the rule's, then why it matched: "<title> (rule <id>: ...)". */
		char why[160];
		snprintf(why, sizeof(why), "%s (rule %s: ", r->title, r->id);
		CHECK(strncmp(f->title, why, strlen(why)) == 0);
		if (strncmp(f->title, why, strlen(why)) != 0)
			fprintf(stderr, "  rule %s title: %s\n", r->id, f->title);
		/* Neither the excerpt nor the reason holds the secret, of this finding or of any other on the line. */
		for (size_t k = 0; k < l->count; k++) {
			bool leak =
			    strstr(l->items[k].excerpt, c->secret) != NULL || strstr(l->items[k].title, c->secret);
			CHECK(!leak);
			if (leak)
				fprintf(stderr, "  rule %s leaks in excerpt: %s\n", r->id, l->items[k].excerpt);
		}
		CHECK(strstr(f->excerpt, "\xe2\x80\xa6(") != NULL);
		/* The fingerprint is sha256(rule, path, secret): the rule took exactly the secret. */
		char want[65];
		expected_fp(want, r->id, path, c->secret);
		CHECK_STR(f->fingerprint, want);
		if (strcmp(f->fingerprint, want) != 0)
			fprintf(stderr, "  rule %s took another secret than %s\n", r->id, c->secret);
		finding_list_free(l);
	}
}

static void test_corpus_negatives(void)
{
	for (size_t i = 0; i < scan_secrets_rule_count(); i++) {
		const struct scan_secrets_rule_info *r = scan_secrets_rule(i);
		const struct corpus_entry *c = corpus_for(r->id);
		if (!c)
			continue;
		struct finding_list *l = finding_list_new();
		REQUIRE(l);
		CHECK_INT(scan_secrets_line("x.txt", 1, c->negative, l), CORE_OK);
		size_t n = count_rule(l, r->id);
		CHECK_INT(n, 0);
		if (n)
			fprintf(stderr, "  rule %s flags its near miss: %s\n", r->id, c->negative);
		finding_list_free(l);
	}
}

static void test_clean_lines(void)
{
	/* Ordinary code and placeholders: no finding at all. */
	static const char *const clean[] = {
	    "password = get_password()",
	    "token = request.headers[\"Authorization\"]",
	    "PASSWORD_FIELD = \"password\"",
	    "api_key: ${API_KEY}",
	    "secret: \"{{ .Values.secret }}\"",
	    "aws_secret_access_key = os.environ[\"AWS_SECRET_ACCESS_KEY\"]",
	    "if (line.startsWith(\"-----BEGIN RSA PRIVATE KEY-----\")) {",
	    "const tokenizer_path = \"models/tok.json\";",
	    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
	    "token = \"ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
	    "password: <your-password>",
	    "token = \"aaaaaaaaaaaaaaaaaaaaaaaa\"",
	    "sha = \"3f786850e387550fdab836ed7e6dc881de23001b\"",
	    "uuid = \"123e4567-e89b-12d3-a456-426614174000\"",
	    "secret_name = \"prod-db-credentials-2024\"",
	    "token_url: \"https://oauth2.googleapis.com/token\"",
	    "password = \"${DB_PASSWORD}\"",
	    "DB_PASSWORD=changeme",
	    "password: process.env.DB_PASSWORD2",
	    "url = \"postgres://app:${DB_PASS}@db:5432/app\"",
	    "passwordless = true",
	    "token: str",
	    "api_key = config.api_key",
	    "  \"password\": \"Enter your password here\",",
	    "client_secret = \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
	    "",
	};
	for (size_t i = 0; i < sizeof(clean) / sizeof(clean[0]); i++) {
		struct finding_list *l = finding_list_new();
		REQUIRE(l);
		CHECK_INT(scan_secrets_line("src/a.py", 1, clean[i], l), CORE_OK);
		CHECK_INT(l->count, 0);
		if (l->count)
			fprintf(stderr, "  false positive %s on: %s\n", l->items[0].rule_id, clean[i]);
		finding_list_free(l);
	}
}

/* Build "@@ -0,0 +start,n @@" style diffs: n added lines after (start - 1) context lines. */
static char *diff_with_line_at(long at, const char *text)
{
	size_t cap = (size_t)at * 4 + strlen(text) + 64;
	char *d = malloc(cap);
	size_t n = (size_t)snprintf(d, cap, "@@ -1,%ld +1,%ld @@\n", at - 1, at);
	for (long i = 1; i < at; i++)
		n += (size_t)snprintf(d + n, cap - n, " c\n");
	snprintf(d + n, cap - n, "+%s\n", text);
	return d;
}

static void test_added_lines_only(void)
{
	const struct corpus_entry *c = corpus_for("github-pat");
	REQUIRE(c);
	char d[512];
	snprintf(d, sizeof(d), "@@ -1,3 +1,2 @@\n keep\n-%s\n-%s\n+fixed = 1\n", c->positive,
	         corpus_for("gitlab-pat")->positive);
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	CHECK_INT(scan_secrets_diff("a.env", d, l), CORE_OK);
	CHECK_INT(l->count, 0);
	/* The same secret in a context line is not new either. */
	snprintf(d, sizeof(d), "@@ -1,2 +1,3 @@\n %s\n+x = 1\n y\n", c->positive);
	CHECK_INT(scan_secrets_diff("a.env", d, l), CORE_OK);
	CHECK_INT(l->count, 0);
	/* Added: reported, at its new line number. */
	snprintf(d, sizeof(d), "@@ -1,2 +1,3 @@\n a\n+%s\n b\n", c->positive);
	CHECK_INT(scan_secrets_diff("a.env", d, l), CORE_OK);
	REQUIRE(l->count == 1);
	CHECK_INT(l->items[0].line, 2);
	CHECK_INT(scan_secrets_diff("a.env", "@@ -1 +1 @@\n?\n", l), CORE_EINVAL);
	finding_list_free(l);
}

static void test_fingerprint_stable(void)
{
	const struct corpus_entry *c = corpus_for("slack-bot-token");
	REQUIRE(c);
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	char *d1 = diff_with_line_at(3, c->positive), *d2 = diff_with_line_at(40, c->positive);
	CHECK_INT(scan_secrets_diff("ops/slack.env", d1, l), CORE_OK);
	CHECK_INT(scan_secrets_diff("ops/slack.env", d2, l), CORE_OK);
	CHECK_INT(scan_secrets_diff("ops/other.env", d2, l), CORE_OK);
	REQUIRE(l->count == 3);
	CHECK_INT(l->items[0].line, 3);
	CHECK_INT(l->items[1].line, 40);
	CHECK_STR(l->items[0].fingerprint, l->items[1].fingerprint);
	CHECK(strcmp(l->items[1].fingerprint, l->items[2].fingerprint) != 0);
	/* Another line around the same secret: the same fingerprint. */
	char other[512];
	snprintf(other, sizeof(other), "    slack: \"%s\"  # moved", c->secret);
	CHECK_INT(scan_secrets_line("ops/slack.env", 9, other, l), CORE_OK);
	REQUIRE(l->count == 4);
	CHECK_STR(l->items[3].fingerprint, l->items[0].fingerprint);
	/* The fingerprint does not contain the secret in any form. */
	CHECK(strstr(l->items[0].fingerprint, c->secret) == NULL);
	free(d1);
	free(d2);
	finding_list_free(l);
}

static void test_several_secrets_on_a_line(void)
{
	const struct corpus_entry *a = corpus_for("github-pat"), *b = corpus_for("stripe-secret-key");
	REQUIRE(a && b);
	char line[512];
	/* The first secret also appears twice: every occurrence is redacted. */
	snprintf(line, sizeof(line), "A=%s B=%s again=%s", a->secret, b->secret, a->secret);
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	CHECK_INT(scan_secrets_line("x", 1, line, l), CORE_OK);
	CHECK_INT(count_rule(l, "github-pat"), 1);
	CHECK_INT(count_rule(l, "stripe-secret-key"), 1);
	for (size_t i = 0; i < l->count; i++) {
		CHECK(strstr(l->items[i].excerpt, a->secret) == NULL);
		CHECK(strstr(l->items[i].excerpt, b->secret) == NULL);
		CHECK(strncmp(l->items[i].excerpt, "A=", 2) == 0);
	}
	finding_list_free(l);
}

/* The secret half of a key pair that no rule names (AWS's credentials.csv: the key id matches, the secret access key
 * beside it does not) is hidden in the excerpt all the same (found by a reviewer); a path or a hash stays readable. */
static void test_unmatched_neighbour_secret_hidden(void)
{
	static const char *const lines[] = {
	    "bob,,AKIAIOSFODNN7EXAMPLQ,wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8sK3vT9a",
	    "AKIAIOSFODNN7EXAMPLQ wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8sK3vT9a  # src/main/config.py "
	    "9fceb02d0ae598e95dc970b74767f19372d61af8",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct finding_list *l = finding_list_new();
		REQUIRE(l);
		CHECK_INT(scan_secrets_line("creds.csv", 1, lines[i], l), CORE_OK);
		CHECK(l->count >= 1);
		for (size_t k = 0; k < l->count; k++) {
			CHECK(strstr(l->items[k].excerpt, "FEMI/K7MDENG") == NULL);
			CHECK(strstr(l->items[k].excerpt, "wJal\xe2\x80\xa6(40 chars)") != NULL);
			if (i == 1)
				CHECK(strstr(l->items[k].excerpt,
				             "src/main/config.py 9fceb02d0ae598e95dc970b74767f19372d61af8"));
			if (testlib_failures)
				fprintf(stderr, "  excerpt: %s\n", l->items[k].excerpt);
		}
		finding_list_free(l);
	}
}

static void test_excerpt_window(void)
{
	const struct corpus_entry *c = corpus_for("npm-token");
	REQUIRE(c);
	/* A minified line: the excerpt is cut around the secret and stays within the limit. */
	size_t pad = 5000;
	char *line = malloc(2 * pad + 200);
	REQUIRE(line);
	memset(line, 'q', pad);
	line[pad] = ' ';
	size_t n = pad + 1 + (size_t)snprintf(line + pad + 1, 200, "%s ", c->secret);
	memset(line + n, 'z', pad);
	line[n + pad] = '\0';
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	CHECK_INT(scan_secrets_line("m.js", 1, line, l), CORE_OK);
	REQUIRE(l->count == 1);
	const char *e = l->items[0].excerpt;
	CHECK(strlen(e) <= SCAN_SECRETS_EXCERPT_MAX + 6);
	CHECK(strstr(e, c->secret) == NULL);
	CHECK(strstr(e, "np") != NULL); /* shows the first characters */
	CHECK(strncmp(e, "\xe2\x80\xa6", 3) == 0);
	CHECK(strcmp(e + strlen(e) - 3, "\xe2\x80\xa6") == 0);
	free(line);
	finding_list_free(l);
}

static void test_excerpt_format(void)
{
	const struct corpus_entry *c = corpus_for("github-pat");
	REQUIRE(c);
	char line[256];
	snprintf(line, sizeof(line), "\t  token = \"%s\"", c->secret);
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	CHECK_INT(scan_secrets_line("x", 1, line, l), CORE_OK);
	REQUIRE(l->count == 1);
	char want[128];
	snprintf(want, sizeof(want), "token = \"%.4s\xe2\x80\xa6(%zu chars)\"", c->secret, strlen(c->secret));
	CHECK_STR(l->items[0].excerpt, want);
	finding_list_free(l);
}

/* Scan a diff of deploy/id_rsa into l: before (the hunk header and context), an added RSA private key of the body
 * lines b1 and b2, then after. */
static enum core_status scan_key_diff(struct finding_list *l, const char *before, const char *b1, const char *b2,
                                      const char *after)
{
	char d[1024];
	snprintf(d, sizeof(d),
	         "%s+-----BEGIN RSA PRIV"
	         "ATE KEY-----\n+%s+%s+-----END RSA PRIV"
	         "ATE KEY-----\n%s",
	         before, b1, b2, after);
	return scan_secrets_diff("deploy/id_rsa", d, l);
}

static void test_private_key_multiline(void)
{
	static const char body1[] = "MIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi0y7B0kPxH6g4dBbXlyVJmTb+x\n";
	static const char body2[] = "Q2ZkV1c4eGpnZk1rT0Vqb0p3a0xOb1hPb2dWc0ZqZ2NxS0pXdE5yY1JmU3lQ\n";
	/* Header, two body lines, END: one finding at the header's line. */
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	CHECK_INT(scan_key_diff(l, "@@ -0,0 +1,5 @@\n", body1, body2, "+\n"), CORE_OK);
	REQUIRE(l->count == 1);
	CHECK_STR(l->items[0].rule_id, "private-key-rsa");
	CHECK_INT(l->items[0].line, 1);
	CHECK_INT(l->items[0].severity, SEV_CRITICAL);
	char fp1[65];
	memcpy(fp1, l->items[0].fingerprint, 65);
	/* Another key body: another fingerprint; the same body moved down: the same. */
	CHECK_INT(scan_key_diff(l, "@@ -0,0 +1,5 @@\n", body2, body1, "+\n"), CORE_OK);
	CHECK_INT(scan_key_diff(l, "@@ -1,2 +1,6 @@\n a\n b\n", body1, body2, ""), CORE_OK);
	REQUIRE(l->count == 3);
	CHECK(strcmp(l->items[1].fingerprint, fp1) != 0);
	CHECK_INT(l->items[2].line, 3);
	CHECK_STR(l->items[2].fingerprint, fp1);
	for (size_t i = 0; i < l->count; i++)
		CHECK(strstr(l->items[i].excerpt, "MIIEowIBAAKCAQEA") == NULL);
	/* A header whose body is not added (only the BEGIN line changes), or only in code: nothing. */
	char d2[1024];
	snprintf(d2, sizeof(d2),
	         "@@ -1,2 +1,2 @@\n------BEGIN RSA PUBLIC KEY-----\n+-----BEGIN RSA PRIV"
	         "ATE KEY-----\n %s",
	         body1);
	size_t before = l->count;
	CHECK_INT(scan_secrets_diff("k.pem", d2, l), CORE_OK);
	CHECK_INT(l->count, before);
	finding_list_free(l);
}

static void test_nul_and_long_lines(void)
{
	const struct corpus_entry *c = corpus_for("gitlab-pat");
	REQUIRE(c);
	/* A NUL before the secret does not hide it. */
	char d[256];
	static const char head[] = "@@ -0,0 +1 @@\n+a";
	size_t hl = sizeof(head) - 1, sl = strlen(c->secret);
	memcpy(d, head, hl);
	d[hl] = '\0';
	memcpy(d + hl + 1, "b ", 2);
	memcpy(d + hl + 3, c->secret, sl);
	d[hl + 3 + sl] = '\n';
	size_t len = hl + 4 + sl;
	struct diff_added *a = NULL;
	REQUIRE(diff_added_parse(d, len, &a) == CORE_OK);
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	CHECK_INT(scan_secrets_added("bin.txt", a, l), CORE_OK);
	CHECK_INT(count_rule(l, "gitlab-pat"), 1);
	diff_added_free(a);
	finding_list_free(l);
}

static void test_entropy(void)
{
	CHECK(scan_secrets_entropy("", 0) == 0);
	CHECK(scan_secrets_entropy("aaaa", 4) == 0);
	CHECK(scan_secrets_entropy("abab", 4) > 0.999 && scan_secrets_entropy("abab", 4) < 1.001);
	CHECK(scan_secrets_entropy("abcd", 4) > 1.999 && scan_secrets_entropy("abcd", 4) < 2.001);
}

static void test_bad_arguments(void)
{
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	CHECK_INT(scan_secrets_line(NULL, 1, "x", l), CORE_EINVAL);
	CHECK_INT(scan_secrets_line("p", 1, NULL, l), CORE_EINVAL);
	CHECK_INT(scan_secrets_line("p", 1, "x", NULL), CORE_EINVAL);
	CHECK_INT(scan_secrets_diff("p", NULL, l), CORE_EINVAL);
	CHECK_INT(scan_secrets_added("p", NULL, l), CORE_EINVAL);
	CHECK_INT(scan_secrets_set(NULL, l), CORE_EINVAL);
	finding_list_free(l);
}

static void test_set(void)
{
	struct diff_added_set *s = diff_added_set_new();
	REQUIRE(s);
	const struct corpus_entry *a = corpus_for("npm-token"), *b = corpus_for("vault-token");
	char *d1 = diff_with_line_at(2, a->positive), *d2 = diff_with_line_at(5, b->positive);
	CHECK_INT(diff_added_set_add(s, "b/.npmrc", d1, strlen(d1), false), CORE_OK);
	CHECK_INT(diff_added_set_add(s, "a/vault.env", d2, strlen(d2), false), CORE_OK);
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	CHECK_INT(scan_secrets_set(s, l), CORE_OK);
	REQUIRE(l->count == 2);
	CHECK_STR(l->items[0].path, "a/vault.env");
	CHECK_INT(l->items[0].line, 5);
	CHECK_STR(l->items[1].rule_id, "npm-token");
	free(d1);
	free(d2);
	finding_list_free(l);
	diff_added_set_free(s);
}

/* How many findings (any rule) one line gives; the findings are dropped. */
static size_t flags(const char *line)
{
	struct finding_list *l = finding_list_new();
	if (!l)
		return 999;
	size_t n = scan_secrets_line("src/app.cfg", 1, line, l) == CORE_OK ? l->count : 999;
	finding_list_free(l);
	return n;
}

/* Each near-miss heuristic on its own: near misses it drops, and close true positives it must keep. */
#define NEAR(line)                                                                                                     \
	do {                                                                                                           \
		size_t n_ = flags(line);                                                                               \
		if (n_ != 0)                                                                                           \
			fprintf(stderr, "  flagged near miss: %s\n", line);                                            \
		CHECK(n_ == 0);                                                                                        \
	} while (0)
#define KEEP(line)                                                                                                     \
	do {                                                                                                           \
		size_t n_ = flags(line);                                                                               \
		if (n_ != 1)                                                                                           \
			fprintf(stderr, "  %zu findings, want 1: %s\n", n_, line);                                     \
		CHECK(n_ == 1);                                                                                        \
	} while (0)

static void test_heuristic_class_names(void)
{
	NEAR("token_class = \"AbstractTokenResolver\"");
	NEAR("  credentials: \"Argon2PasswordHasher\"");
	NEAR("secret_backend = \"VaultSecretBackend\"");
	NEAR("token = \"django.contrib.auth.hashers.PBKDF2PasswordHasher\"");
	NEAR("ENV TOKEN=OAuth2TokenAuthenticator");
	KEEP("password = \"CorrectHorseBatteryStaple9\""); /* a passphrase: its last word is no type word */
	KEEP("secret = \"Kq8ZtRw2LmNvXp4YsHjB\"");
}

static void test_heuristic_env_names(void)
{
	NEAR("secret_key = \"DJANGO_SECRET_KEY\"");
	NEAR("  token: GITHUB_TOKEN");
	NEAR("  config.password = 'DB_PASSWORD'");
	KEEP("secret_key = \"Q7Z_K9XW2_MP4TRV8_LN3Q\""); /* upper case and '_', but mostly digits: random */
}

static void test_heuristic_fixtures(void)
{
	NEAR("db_password = \"test_password_123\"");
	NEAR("client_secret = \"fake_client_secret_42\"");
	NEAR("  auth_token: \"mock-token-123\"");
	NEAR("password = \"testpass123\"");
	NEAR("api_key = \"sample_api_key_1\"");
	NEAR("api_key = 'ApiKeyForDemoOnly2024'");
	KEEP("password = \"Contest7Rq9xLm2\""); /* "test" inside a word is not the word test */
}

static void test_heuristic_identifier_keys(void)
{
	NEAR("  api_key_id: \"8fc87587-a19d-43c2-bff4-dfdbb153d941\"");
	NEAR("const credentialId = '285c429f-fad5-4007-8165-40ab72aee311';");
	NEAR("  token_sha256: \"f3282aa622654908b4fde61a96c2a5983ff6468e246c53713456c3cfe7548726\"");
	NEAR("  var passwordValidatorClass = \"StaticCredentials\";");
	KEEP("vault_secret_id = \"d2b0c5e4-7f1a-4c3e-9b8d-6a5f4e3d2c1b\""); /* Vault's SecretID is a credential */
	KEEP("api_key: \"5c1f7a3e-9d2b-4e8f-a6c4-3b7d9e1f2a5c\"");
}

static void test_heuristic_doc_examples(void)
{
	NEAR("token = \"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0"
	     "IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c\"");
	NEAR("AZURITE=DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtl"
	     "CDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/");
	NEAR("aws_access_key_id = AKIAIOSFODNN7EXAMPLE");
	KEEP(corpus_for("jwt")->positive);
	KEEP(corpus_for("azure-storage-account-key")->positive);
}

static void test_heuristic_stripe_test_and_publishable_keys(void)
{
	NEAR("stripe_secret_key = \"sk_test_RVwhx3kdOj9tNvfqTDZOsF3x\"");
	NEAR("STRIPE_TEST_SECRET=rk_test_VI1s1Kvo3G15OKPGWSstBA5y");
	NEAR("api_key: \"pk_live_51HbQ2kLm8Rt4Vx7Yz9Wq3Ns\"");
	KEEP(corpus_for("stripe-secret-key")->positive);
}

static void test_heuristic_url_default_passwords(void)
{
	NEAR("DATABASE_URL=postgres://user:password@localhost:5432/app");
	NEAR("broker_url = \"amqp://guest:guest@rabbitmq:5672/\"");
	NEAR("dsn: postgres://app:password123@localhost/app_test");
	NEAR("redis_url = redis://:password@localhost:6379/0");
	NEAR("DATABASE_URL=postgresql://postgres:postgres@localhost/test");
	KEEP("DATABASE_URL=postgres://app:Kz8vQ2mLp9Rt@db.internal:5432/app");
	KEEP("DATABASE_URL=postgres://postgres:Passw0rdKz8vQ2@db.internal/app");
}

static void test_heuristic_pem_header_in_code(void)
{
	static const char body[] = "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi"
	                           "3mKxRZbHEc2xGiEzXQW+ab8G0ytD5";
	char code[512], key[512];
	snprintf(code, sizeof(code),
	         "@@ -0,0 +1,3 @@\n+    if pem.startswith(\"-----BEGIN RSA PRIVATE KEY-----\"):\n"
	         "+%s\n+        return True\n",
	         body);
	snprintf(key, sizeof(key),
	         "@@ -0,0 +1,3 @@\n+-----BEGIN RSA PRIVATE KEY-----\n+%s\n+-----END RSA PRIVATE KEY-----\n", body);
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	CHECK_INT(scan_secrets_diff("keys.py", code, l), CORE_OK);
	CHECK_INT(l->count, 0);
	CHECK_INT(scan_secrets_diff("id_rsa", key, l), CORE_OK);
	CHECK_INT(count_rule(l, "private-key-rsa"), 1);
	finding_list_free(l);
}

static void test_heuristic_references(void)
{
	NEAR("db_password=config.db_password");
	NEAR("password = settings.getDbPassword");
	KEEP("db_password=qtt0_BiCzIpdS.Zlbf"); /* a dot in a random value does not make it a reference */
}

static void test_heuristic_placeholders(void)
{
	NEAR("token = \"replace-with-a-long-random-string\"");
	NEAR("db_password = \"not-a-real-secret\"");
	NEAR("API_KEY=your-api-key-here");
	NEAR("client_secret: PUT_YOUR_KEY_HERE");
	KEEP("client_secret: Rq9xLm2Kz8vQ2mLp9RtW4y");
}

static void test_heuristic_password_setters(void)
{
	KEEP("        user.setPassword(\"3y@5fG*r6*!BnZ!f3VatHq\");");
	KEEP("client.set_password('Vq8#mL2pXz9!Rt4w')");
	KEEP("        options.WithPassword(\"eqHoug=2by#VS4fHgA\");");
	KEEP("    $mailer->setPassword('1R*1v-+sKl==_TCz2W');");
	NEAR("digest = hash_password(\"Vq8#mL2pXz9!Rt4w\")");
	NEAR("ok = user.check_password(\"correct horse battery staple\")");
	NEAR("user.setPassword(request.form[\"password\"]);");
}

static void test_heuristic_hex_entropy(void)
{
	/* A random 32-hex value can have less than 3.5 bits per character; the generic rules take hex at 3.0. */
	KEEP("        var secretKey = \"fb87ae2ee8313b2b7478d2c1867a82ee\";");
	NEAR("        var secretKey = \"aaaabbbbaaaabbbbaaaabbbbaaaabbbb\";");
}

static void test_key_names_anywhere(void)
{
	/* Dotted and XML appSettings key names reach the context rules and the generic ones. */
	KEEP("app.dd.api.key=e0f385d3f7181ea2cd7fc9c5c2d37a52");
	KEEP("    <add key=\"DD_API_KEY\" value=\"e0f385d3f7181ea2cd7fc9c5c2d37a52\" />");
	KEEP("    <add key=\"smtp.password\" value=\"V%qmuUA^8wiMwi4.\" />");
	KEEP("app.oauth.api.key = Rq9xLm2Kz8vQ2mLp9RtW4y");
	KEEP("  config.encryption_key = '314adc3d206d79782e245fbd93a1a486'");
	KEEP("admin_pass = \"0VxNjAe#=9i0mY=t_lu\"");
	NEAR("passthrough = \"enabled\"");
}

static void test_every_rule_has_a_source(void)
{
	for (size_t i = 0; i < scan_secrets_rule_count(); i++) {
		const struct scan_secrets_rule_info *r = scan_secrets_rule(i);
		bool ok = r->source && strncmp(r->source, "https://", 8) == 0 && strlen(r->source) > 12;
		if (!ok)
			fprintf(stderr, "  rule %s has no source\n", r->id);
		CHECK(ok);
	}
}

static const struct finding *first_finding(struct finding_list *l, const char *line)
{
	CHECK_INT(scan_secrets_line("conf/app.yaml", 3, line, l), CORE_OK);
	return l->count ? &l->items[0] : NULL;
}

static void test_finding_says_why(void)
{
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	/* Generic rule: the key name, the value's length and entropy, and the entropy the rule wants. */
	const struct finding *f = first_finding(l, "  app.oauth.client_secret: \""
	                                           "Rq9x"
	                                           "Lm2Kz8vQ2m"
	                                           "Lp9RtW4y\"");
	REQUIRE(f);
	CHECK_STR(f->title, "Hard-coded secret or token (rule generic-secret: key name \"app.oauth.client_secret\", "
	                    "value of 22 characters with entropy 4.00 bits per character, at least 3.5 wanted)");
	CHECK(strstr(f->title, "Rq9x") == NULL);
	finding_list_free(l);
	l = finding_list_new();
	REQUIRE(l);
	/* A long hex value: the lower threshold is said. */
	f = first_finding(l, "secretKey = \"fb87ae2ee8313b2b"
	                     "7478d2c1867a82ee\"");
	REQUIRE(f);
	CHECK(strstr(f->title, "key name \"secretKey\"") && strstr(f->title, "at least 3.0 wanted"));
	finding_list_free(l);
	l = finding_list_new();
	REQUIRE(l);
	/* Provider format: the rule and the shape, no key name needed. */
	f = first_finding(l, corpus_for("dockerhub-pat")->positive);
	REQUIRE(f);
	CHECK(strstr(f->title, "Docker Hub access token (rule dockerhub-pat: the provider's documented format, 36 "
	                       "characters, entropy ") == f->title);
	finding_list_free(l);
	l = finding_list_new();
	REQUIRE(l);
	/* A key name that overlaps another secret on the line is not quoted. */
	f = first_finding(l, "gl"
	                     "pat-QRCZljwi"
	                     "Mkmg4HeBUuvd_token = \"Rq9xLm2Kz8vQ2mLp9RtW4y\"");
	REQUIRE(l->count == 2);
	for (size_t i = 0; i < l->count; i++) {
		CHECK(strstr(l->items[i].title, "QRCZ") == NULL);
		if (strcmp(l->items[i].rule_id, "generic-secret") == 0)
			CHECK(strstr(l->items[i].title, "key name \"(not shown)\"") != NULL);
	}
	finding_list_free(l);
}

static void test_heuristic_code_values(void)
{
	NEAR("\tchar *secret_sha = crypto_sha256_hex(ctx->webhook_secret, strlen(ctx->webhook_secret));");
	NEAR("\tconst char *token = build_token_for(user);");
	NEAR(" * password-call-argument: \"setPassword(\", \"set_password(\"");
	KEEP("\tconst char *token = \"Rq9xLm2Kz8vQ2mLp9RtW4y\";");
}

static void test_heuristic_failed_provider_prefix(void)
{
	/* A provider prefix on a value its rule rejects (too short, wrong alphabet): a test value, not a token. */
	NEAR("TOKEN = \"glpat-discoveryToken0001\"");
	NEAR("api_key = \"ghp_shortAndWrong42\"");
	KEEP(corpus_for("gitlab-pat")->positive);
}

static void test_heuristic_value_names_itself(void)
{
	NEAR("c.post(\"/api/session\", {\"username\": \"dave\", \"password\": \"dave-password\"})");
	NEAR("  api_secret: \"MyApiSecret2024\"");
	KEEP("  api_secret: \"Xq3Ws9Vt2Lr8Kp5Zm1\"");
}

static void test_heuristic_basic_auth_defaults(void)
{
	/* RFC 7617's example (Aladdin:open sesame), admin:admin and user:password are no leaked credentials. */
	NEAR("  Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
	NEAR("      \"auth\": \"YWRtaW46YWRtaW4=\"");
	NEAR("  \"Authorization\": \"Basic dXNlcjpwYXNzd29yZA==\"");
	NEAR("      \"auth\": \"bm90LWJhc2U2NC1hdC1hbGw=\""); /* decodes to text without ':' */
	KEEP("  Authorization: Basic ZGVwbG95OlZxOG1MMnBYejlSdDR3S3M=");
	KEEP("        req.headers['Authorization'] = 'Bearer Rq9xLm2Kz8vQ2mLp9RtW4yZ3aB7c'");
}

static void test_heuristic_printf_placeholders(void)
{
	NEAR("password = \"%s\"");
	NEAR("dsn = \"postgres://app:%s@db/app\"");
	KEEP("    <add key=\"smtp.password\" value=\"w=%SHlZQWk5BRr0\" />"); /* "%S" followed by a letter */
	KEEP("password = \"Xq3%sWs9Vt2Lr8Kp\"");
}

int main(void)
{
	RUN(test_rules_compile);
	RUN(test_heuristic_class_names);
	RUN(test_heuristic_env_names);
	RUN(test_heuristic_fixtures);
	RUN(test_heuristic_identifier_keys);
	RUN(test_heuristic_doc_examples);
	RUN(test_heuristic_stripe_test_and_publishable_keys);
	RUN(test_heuristic_url_default_passwords);
	RUN(test_heuristic_pem_header_in_code);
	RUN(test_heuristic_references);
	RUN(test_heuristic_placeholders);
	RUN(test_heuristic_password_setters);
	RUN(test_heuristic_hex_entropy);
	RUN(test_key_names_anywhere);
	RUN(test_heuristic_code_values);
	RUN(test_heuristic_failed_provider_prefix);
	RUN(test_heuristic_value_names_itself);
	RUN(test_heuristic_basic_auth_defaults);
	RUN(test_heuristic_printf_placeholders);
	RUN(test_every_rule_has_a_source);
	RUN(test_finding_says_why);
	RUN(test_corpus_covers_every_rule);
	RUN(test_corpus_positives);
	RUN(test_corpus_negatives);
	RUN(test_clean_lines);
	RUN(test_added_lines_only);
	RUN(test_fingerprint_stable);
	RUN(test_several_secrets_on_a_line);
	RUN(test_unmatched_neighbour_secret_hidden);
	RUN(test_excerpt_window);
	RUN(test_excerpt_format);
	RUN(test_private_key_multiline);
	RUN(test_nul_and_long_lines);
	RUN(test_entropy);
	RUN(test_bad_arguments);
	RUN(test_set);
	return testlib_done();
}
