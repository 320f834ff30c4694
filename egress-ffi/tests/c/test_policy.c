/* The policy engine: building from TOML, checking targets and resolved addresses. */

#define _GNU_SOURCE

#include <pthread.h>
#include <string.h>

#include "check.h"

static egress_policy *policy_from(const char *toml) {
    egress_policy *policy = SENTINEL;
    egress_error *error = SENTINEL;
    CHECK_RC(egress_policy_new(toml, toml ? strlen(toml) : 0, &policy, &error), EGRESS_OK);
    CHECK(policy != NULL && policy != SENTINEL);
    CHECK(error == SENTINEL);
    return policy;
}

static const char *reason_names[] = {"allowed", "denied_name", "denied_port", "denied_ip",
                                     "invalid_host"};

static void check_decision(const egress_decision *d, bool allowed, egress_reason reason,
                           const char *what, int line) {
    CHECK_AT(__FILE__, line, d->allowed == allowed);
    check_u64_at(__FILE__, line, what, d->reason, reason);
    CHECK_AT(__FILE__, line, reason <= EGRESS_REASON_INVALID_HOST);
    check_str_at(__FILE__, line, what, d->reason_name, reason_names[reason]);
}

/* egress_policy_check(policy, host, port) must decide (allowed, reason). */
static void expect(const egress_policy *policy, const char *host, uint16_t port, bool allowed,
                   egress_reason reason, int line) {
    egress_decision d;
    memset(&d, BYTE_SENTINEL, sizeof d);
    egress_error *error = SENTINEL;
    check_rc_at(__FILE__, line, host,
                egress_policy_check(policy, host, strlen(host), port, &d, &error), EGRESS_OK);
    CHECK_AT(__FILE__, line, error == SENTINEL);
    check_decision(&d, allowed, reason, host, line);
}

/* egress_policy_check_resolved(policy, host, port, ip) must decide (allowed, reason). */
static void expect_resolved(const egress_policy *policy, const char *host, uint16_t port,
                            const char *ip, bool allowed, egress_reason reason, int line) {
    egress_decision d;
    memset(&d, BYTE_SENTINEL, sizeof d);
    egress_error *error = SENTINEL;
    check_rc_at(__FILE__, line, ip,
                egress_policy_check_resolved(policy, host, strlen(host), port, ip, strlen(ip), &d,
                                             &error),
                EGRESS_OK);
    CHECK_AT(__FILE__, line, error == SENTINEL);
    check_decision(&d, allowed, reason, ip, line);
}

#define EXPECT(policy, host, port, allowed, reason)                                           \
    expect((policy), (host), (port), (allowed), (reason), __LINE__)
#define EXPECT_RESOLVED(policy, host, port, ip, allowed, reason)                              \
    expect_resolved((policy), (host), (port), (ip), (allowed), (reason), __LINE__)

/* egress_policy_new(toml) fails with EGRESS_CONFIG_INVALID naming `line_text`. */
static void expect_invalid(const char *toml, const char *line_text, int line) {
    egress_policy *policy = SENTINEL;
    egress_error *error = NULL;
    check_rc_at(__FILE__, line, toml, egress_policy_new(toml, strlen(toml), &policy, &error),
                EGRESS_CONFIG_INVALID);
    CHECK_AT(__FILE__, line, policy == SENTINEL);
    CHECK_AT(__FILE__, line, error != NULL);
    const char *message = egress_error_message(error);
    if (strstr(message, line_text) == NULL) {
        check_failed(__FILE__, line, "the error names the line", message);
    }
    check_passed();
    check_error_at(__FILE__, line, error, EGRESS_CONFIG_INVALID);
}

struct checker {
    const egress_policy *policy;
    int allowed;
};

static void *check_many(void *arg) {
    struct checker *c = arg;
    for (int i = 0; i < 2000; i++) {
        egress_decision d;
        static const char host[] = "api.example.com";
        if (egress_policy_check(c->policy, host, sizeof host - 1, 443, &d, NULL) == EGRESS_OK &&
            d.allowed && d.reason == EGRESS_REASON_ALLOWED) {
            c->allowed++;
        }
    }
    return NULL;
}

void test_policy(void) {
    section("policy: the default policy (empty text)");
    {
        egress_policy *policy = SENTINEL;
        /* A length of 0 needs no pointer. */
        CHECK_RC(egress_policy_new(NULL, 0, &policy, NULL), EGRESS_OK);
        CHECK(policy != NULL && policy != SENTINEL);
        EXPECT(policy, "example.com", 443, true, EGRESS_REASON_ALLOWED);
        EXPECT(policy, "anything.example.net", 8080, true, EGRESS_REASON_ALLOWED);
        /* Special-purpose addresses are denied by default; public ones are not. */
        EXPECT_RESOLVED(policy, "example.com", 443, "127.0.0.1", false, EGRESS_REASON_DENIED_IP);
        EXPECT_RESOLVED(policy, "example.com", 443, "::1", false, EGRESS_REASON_DENIED_IP);
        EXPECT_RESOLVED(policy, "example.com", 443, "10.1.2.3", false, EGRESS_REASON_DENIED_IP);
        EXPECT_RESOLVED(policy, "example.com", 443, "169.254.169.254", false,
                        EGRESS_REASON_DENIED_IP);
        EXPECT_RESOLVED(policy, "example.com", 443, "93.184.215.14", true, EGRESS_REASON_ALLOWED);
        /* An IP literal target is checked as an address. */
        EXPECT(policy, "127.0.0.1", 443, false, EGRESS_REASON_DENIED_IP);
        EXPECT(policy, "93.184.215.14", 443, true, EGRESS_REASON_ALLOWED);
        egress_policy_free(policy);
    }

    section("policy: [policy] with allow/deny wildcards and ports");
    {
        egress_policy *policy = policy_from("[policy]\n"
                                            "allow = [\"*.example.com:443\", \".example.org\"]\n"
                                            "deny = [\"bad.example.com\"]\n");
        EXPECT(policy, "api.example.com", 443, true, EGRESS_REASON_ALLOWED);
        EXPECT(policy, "a.b.example.com", 443, true, EGRESS_REASON_ALLOWED);
        EXPECT(policy, "api.example.com", 80, false, EGRESS_REASON_DENIED_PORT);
        EXPECT(policy, "example.com", 443, false, EGRESS_REASON_DENIED_NAME); /* below only */
        EXPECT(policy, "bad.example.com", 443, false, EGRESS_REASON_DENIED_NAME); /* deny wins */
        EXPECT(policy, "example.org", 80, true, EGRESS_REASON_ALLOWED); /* it and below */
        EXPECT(policy, "www.example.org", 8443, true, EGRESS_REASON_ALLOWED);
        EXPECT(policy, "example.net", 443, false, EGRESS_REASON_DENIED_NAME);
        EXPECT(policy, "notexample.com", 443, false, EGRESS_REASON_DENIED_NAME);
        /* The name decides first; then the address. */
        EXPECT_RESOLVED(policy, "example.net", 443, "93.184.215.14", false,
                        EGRESS_REASON_DENIED_NAME);
        EXPECT_RESOLVED(policy, "api.example.com", 443, "93.184.215.14", true,
                        EGRESS_REASON_ALLOWED);
        EXPECT_RESOLVED(policy, "api.example.com", 443, "127.0.0.1", false,
                        EGRESS_REASON_DENIED_IP);

        /* Thread-safe: one policy checked from several threads at once. */
        pthread_t threads[4];
        struct checker checkers[4];
        for (int i = 0; i < 4; i++) {
            checkers[i].policy = policy;
            checkers[i].allowed = 0;
            CHECK(pthread_create(&threads[i], NULL, check_many, &checkers[i]) == 0);
        }
        for (int i = 0; i < 4; i++) {
            CHECK(pthread_join(threads[i], NULL) == 0);
            CHECK(checkers[i].allowed == 2000);
        }
        egress_policy_free(policy);
    }

    section("policy: top-level keys and allow_cidrs");
    {
        egress_policy *policy = policy_from("allow = [\"*.example.com:443\"]\n"
                                            "allow_cidrs = [\"127.0.0.0/8\"]\n");
        EXPECT(policy, "api.example.com", 443, true, EGRESS_REASON_ALLOWED);
        EXPECT(policy, "api.example.com", 444, false, EGRESS_REASON_DENIED_PORT);
        EXPECT_RESOLVED(policy, "api.example.com", 443, "127.0.0.1", true,
                        EGRESS_REASON_ALLOWED);
        EXPECT_RESOLVED(policy, "api.example.com", 443, "127.5.6.7", true,
                        EGRESS_REASON_ALLOWED);
        EXPECT_RESOLVED(policy, "api.example.com", 443, "10.0.0.1", false,
                        EGRESS_REASON_DENIED_IP);
        EXPECT_RESOLVED(policy, "api.example.com", 443, "::1", false, EGRESS_REASON_DENIED_IP);
        egress_policy_free(policy);

        policy = policy_from("[policy]\nallow_cidrs = [\"127.0.0.0/8\"]\n");
        EXPECT_RESOLVED(policy, "localhost.example", 8080, "127.0.0.1", true,
                        EGRESS_REASON_ALLOWED);
        egress_policy_free(policy);
    }

    section("policy: report mode");
    {
        egress_policy *policy = policy_from("[policy]\n"
                                            "allow = [\"*.example.com:443\"]\n"
                                            "mode = \"report\"\n");
        EXPECT(policy, "api.example.com", 443, true, EGRESS_REASON_ALLOWED);
        EXPECT(policy, "example.net", 443, true, EGRESS_REASON_DENIED_NAME);
        EXPECT(policy, "api.example.com", 80, true, EGRESS_REASON_DENIED_PORT);
        EXPECT(policy, "not a host", 443, true, EGRESS_REASON_INVALID_HOST);
        EXPECT_RESOLVED(policy, "api.example.com", 443, "127.0.0.1", true,
                        EGRESS_REASON_DENIED_IP);
        egress_policy_free(policy);
        policy = policy_from("mode = \"enforce\"\n");
        EXPECT_RESOLVED(policy, "api.example.com", 443, "127.0.0.1", false,
                        EGRESS_REASON_DENIED_IP);
        egress_policy_free(policy);
    }

    section("policy: invalid hosts");
    {
        egress_policy *policy = policy_from("");
        EXPECT(policy, "bad_host.example", 443, false, EGRESS_REASON_INVALID_HOST);
        EXPECT(policy, "exa mple.com", 443, false, EGRESS_REASON_INVALID_HOST);
        EXPECT(policy, "[::1]", 443, false, EGRESS_REASON_INVALID_HOST);
        EXPECT_RESOLVED(policy, "bad_host.example", 443, "93.184.215.14", false,
                        EGRESS_REASON_INVALID_HOST);
        /* An empty host: a length of 0 needs no pointer. */
        egress_decision d;
        memset(&d, BYTE_SENTINEL, sizeof d);
        CHECK_RC(egress_policy_check(policy, NULL, 0, 443, &d, NULL), EGRESS_OK);
        check_decision(&d, false, EGRESS_REASON_INVALID_HOST, "empty host", __LINE__);
        egress_policy_free(policy);
    }

    section("policy: EGRESS_CONFIG_INVALID names the line");
    expect_invalid("[policy]\nallow_cidrs = [\"not-a-cidr\"]\n", "line 2", __LINE__);
    expect_invalid("allow = [\"ok.example.com\"]\nmode = \"loud\"\n", "line 2", __LINE__);
    expect_invalid("[policy]\nallw = [\"example.com\"]\n", "line 2", __LINE__);
    expect_invalid("[policy]\nallow = [\"example.com\",\n", "line", __LINE__);
    expect_invalid("# a comment\n\nallow = [\"*.com\"]\n", "line 3", __LINE__);
    expect_invalid("allow = [\"example.com:99999\"]\n", "line 1", __LINE__);

    section("policy: EGRESS_INVALID_PARAMETER");
    {
        egress_policy *out = SENTINEL;
        egress_error *error = NULL;
        /* Text that is not UTF-8. */
        CHECK_RC(egress_policy_new("allow = [\"\xff\"]", 13, &out, &error),
                 EGRESS_INVALID_PARAMETER);
        CHECK(out == SENTINEL);
        CHECK_ERROR(error, EGRESS_INVALID_PARAMETER);

        egress_policy *policy = policy_from("allow_cidrs = [\"127.0.0.0/8\"]\n");
        egress_decision d;
        memset(&d, BYTE_SENTINEL, sizeof d);
        static const char host[] = "api.example.com";
        static const char *bad_ips[] = {"not-an-ip", "127.0.0.1:80", "[::1]", "256.1.1.1",
                                        "example.com", " 127.0.0.1"};
        for (size_t i = 0; i < sizeof bad_ips / sizeof bad_ips[0]; i++) {
            error = NULL;
            CHECK_RC(egress_policy_check_resolved(policy, host, sizeof host - 1, 443, bad_ips[i],
                                                  strlen(bad_ips[i]), &d, &error),
                     EGRESS_INVALID_PARAMETER);
            CHECK(untouched(&d, sizeof d));
            CHECK_ERROR(error, EGRESS_INVALID_PARAMETER);
        }
        /* An empty IP (length 0, no pointer) is not an address either. */
        error = NULL;
        CHECK_RC(egress_policy_check_resolved(policy, host, sizeof host - 1, 443, NULL, 0, &d,
                                              &error),
                 EGRESS_INVALID_PARAMETER);
        CHECK_ERROR(error, EGRESS_INVALID_PARAMETER);
        /* A host that is not UTF-8. */
        error = NULL;
        CHECK_RC(egress_policy_check(policy, "a\xff", 2, 443, &d, &error),
                 EGRESS_INVALID_PARAMETER);
        CHECK_ERROR(error, EGRESS_INVALID_PARAMETER);
        CHECK(untouched(&d, sizeof d));

        section("policy: NULL parameters");
        error = NULL;
        CHECK_RC(egress_policy_new(NULL, 5, &out, &error), EGRESS_NULL_PARAMETER);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        error = NULL;
        CHECK_RC(egress_policy_new("", 0, NULL, &error), EGRESS_NULL_PARAMETER);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        CHECK(out == SENTINEL);
        error = NULL;
        CHECK_RC(egress_policy_check(NULL, host, sizeof host - 1, 443, &d, &error),
                 EGRESS_NULL_PARAMETER);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        error = NULL;
        CHECK_RC(egress_policy_check(policy, NULL, 4, 443, &d, &error), EGRESS_NULL_PARAMETER);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        error = NULL;
        CHECK_RC(egress_policy_check(policy, host, sizeof host - 1, 443, NULL, &error),
                 EGRESS_NULL_PARAMETER);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        error = NULL;
        CHECK_RC(egress_policy_check_resolved(NULL, host, sizeof host - 1, 443, "127.0.0.1", 9,
                                              &d, &error),
                 EGRESS_NULL_PARAMETER);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        error = NULL;
        CHECK_RC(egress_policy_check_resolved(policy, NULL, 4, 443, "127.0.0.1", 9, &d, &error),
                 EGRESS_NULL_PARAMETER);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        error = NULL;
        CHECK_RC(egress_policy_check_resolved(policy, host, sizeof host - 1, 443, NULL, 9, &d,
                                              &error),
                 EGRESS_NULL_PARAMETER);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        error = NULL;
        CHECK_RC(egress_policy_check_resolved(policy, host, sizeof host - 1, 443, "127.0.0.1", 9,
                                              NULL, &error),
                 EGRESS_NULL_PARAMETER);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_policy_check(NULL, host, sizeof host - 1, 443, &d, NULL),
                 EGRESS_NULL_PARAMETER);
        CHECK(untouched(&d, sizeof d));
        egress_policy_free(policy);
    }
}
