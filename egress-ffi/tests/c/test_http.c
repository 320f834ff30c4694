/* The HTTP/1.x request-head parser and the head accessors. */

#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

struct expected_head {
    const char *method;
    const char *host;
    uint16_t port;
    const char *path;
    egress_http_target_form form;
    bool is_connect;
    size_t len; /* head length; the input may hold more */
};

/* Parses `text` completely; error_out stays untouched on success. */
static egress_http_request_head *parse(const char *text, size_t len,
                                       const egress_http_limits *limits) {
    egress_http_request_head *head = SENTINEL;
    egress_error *error = SENTINEL;
    CHECK_RC(egress_http_request_head_parse((const uint8_t *)text, len, limits, &head, &error),
             EGRESS_OK);
    CHECK(head != NULL && head != SENTINEL);
    CHECK(error == SENTINEL);
    return head;
}

static void check_text(egress_result (*get)(const egress_http_request_head *, const char **,
                                            size_t *),
                       const egress_http_request_head *head, const char *want, int line) {
    const char *text = SENTINEL;
    size_t len = SIZE_SENTINEL;
    check_rc_at(__FILE__, line, "text accessor", get(head, &text, &len), EGRESS_OK);
    check_str_at(__FILE__, line, "text accessor value", text, want);
    check_u64_at(__FILE__, line, "text accessor length", len, strlen(want));
}

static void check_head(const egress_http_request_head *head, const struct expected_head *want,
                       int line) {
    check_text(egress_http_request_head_method, head, want->method, line);
    check_text(egress_http_request_head_host, head, want->host, line);
    check_text(egress_http_request_head_path, head, want->path, line);
    uint16_t port = 0x5a5a;
    check_rc_at(__FILE__, line, "port", egress_http_request_head_port(head, &port), EGRESS_OK);
    check_u64_at(__FILE__, line, "port value", port, want->port);
    egress_http_target_form form = (egress_http_target_form)0x5a5a;
    check_rc_at(__FILE__, line, "form", egress_http_request_head_form(head, &form), EGRESS_OK);
    check_u64_at(__FILE__, line, "form value", form, want->form);
    bool connect;
    memset(&connect, BYTE_SENTINEL, sizeof connect);
    check_rc_at(__FILE__, line, "is_connect", egress_http_request_head_is_connect(head, &connect),
                EGRESS_OK);
    CHECK_AT(__FILE__, line, connect == want->is_connect);
    size_t len = SIZE_SENTINEL;
    check_rc_at(__FILE__, line, "len", egress_http_request_head_len(head, &len), EGRESS_OK);
    check_u64_at(__FILE__, line, "len value", len, want->len);
}

#define CHECK_PARSES(text, limits, ...)                                                       \
    do {                                                                                      \
        static const char input_[] = text;                                                    \
        const struct expected_head want_ = __VA_ARGS__;                                       \
        egress_http_request_head *head_ = parse(input_, sizeof input_ - 1, (limits));         \
        check_head(head_, &want_, __LINE__);                                                  \
        egress_http_request_head_free(head_);                                                 \
    } while (0)

/* Parsing `text` fails with `code`: head_out untouched, an error object with that code. */
static void check_fails(const char *text, size_t len, const egress_http_limits *limits,
                        egress_result code, int line) {
    egress_http_request_head *head = SENTINEL;
    egress_error *error = NULL;
    check_rc_at(__FILE__, line, text,
                egress_http_request_head_parse((const uint8_t *)text, len, limits, &head, &error),
                code);
    CHECK_AT(__FILE__, line, head == SENTINEL);
    check_error_at(__FILE__, line, error, code);
    /* The same without error_out: the code alone. */
    check_rc_at(__FILE__, line, text,
                egress_http_request_head_parse((const uint8_t *)text, len, limits, &head, NULL),
                code);
    CHECK_AT(__FILE__, line, head == SENTINEL);
}

#define CHECK_FAILS(text, limits, code)                                                       \
    do {                                                                                      \
        static const char input_[] = text;                                                    \
        check_fails(input_, sizeof input_ - 1, (limits), (code), __LINE__);                   \
    } while (0)

/* `text` is a head that has not ended: OK with *head_out NULL. */
static void check_needs_more(const char *text, size_t len, const egress_http_limits *limits,
                             int line) {
    egress_http_request_head *head = SENTINEL;
    egress_error *error = SENTINEL;
    check_rc_at(__FILE__, line, text,
                egress_http_request_head_parse((const uint8_t *)text, len, limits, &head, &error),
                EGRESS_OK);
    CHECK_AT(__FILE__, line, head == NULL);
    CHECK_AT(__FILE__, line, error == SENTINEL);
}

void test_http(void) {
    section("http: CONNECT");
    CHECK_PARSES("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", NULL,
                 {"CONNECT", "example.com", 443, "", EGRESS_HTTP_AUTHORITY_FORM, true, 59});
    /* Tunnel bytes after the head are not part of it. */
    CHECK_PARSES("CONNECT Example.COM:8443 HTTP/1.1\r\n\r\n\x16\x03\x01", NULL,
                 {"CONNECT", "example.com", 8443, "", EGRESS_HTTP_AUTHORITY_FORM, true, 37});
    CHECK_PARSES("CONNECT [2001:db8::1]:443 HTTP/1.1\r\n\r\n", NULL,
                 {"CONNECT", "2001:db8::1", 443, "", EGRESS_HTTP_AUTHORITY_FORM, true, 38});
    CHECK_PARSES("CONNECT 192.0.2.7:22 HTTP/1.0\r\n\r\n", NULL,
                 {"CONNECT", "192.0.2.7", 22, "", EGRESS_HTTP_AUTHORITY_FORM, true, 33});

    section("http: absolute form");
    CHECK_PARSES("GET http://example.com:8080/x HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", NULL,
                 {"GET", "example.com", 8080, "/x", EGRESS_HTTP_ABSOLUTE_FORM, false, 66});
    CHECK_PARSES("GET http://Example.com/a?b=c HTTP/1.1\r\nHost: other\r\n\r\n", NULL,
                 {"GET", "example.com", 80, "/a?b=c", EGRESS_HTTP_ABSOLUTE_FORM, false, 54});
    CHECK_PARSES("HEAD http://example.com HTTP/1.0\r\n\r\n", NULL,
                 {"HEAD", "example.com", 80, "/", EGRESS_HTTP_ABSOLUTE_FORM, false, 36});

    section("http: origin form with Host");
    CHECK_PARSES("POST /submit?q=1 HTTP/1.1\r\nHost: api.example.org\r\nContent-Length: 3\r\n\r\nabc",
                 NULL,
                 {"POST", "api.example.org", 80, "/submit?q=1", EGRESS_HTTP_ORIGIN_FORM, false, 71});
    CHECK_PARSES("GET / HTTP/1.1\r\nHost: example.net:81\r\nAccept: */*\r\n\r\n", NULL,
                 {"GET", "example.net", 81, "/", EGRESS_HTTP_ORIGIN_FORM, false, 53});
    CHECK_PARSES("OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n", NULL,
                 {"OPTIONS", "example.com", 80, "*", EGRESS_HTTP_ASTERISK_FORM, false, 41});

    section("http: limits of 0 take the defaults");
    {
        egress_http_limits zero = {0, 0, 0};
        CHECK_PARSES("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", &zero,
                     {"GET", "a.example", 80, "/", EGRESS_HTTP_ORIGIN_FORM, false, 35});
    }

    section("http: a partial head needs more");
    {
        static const char full[] = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
        size_t len = sizeof full - 1;
        for (size_t cut = 0; cut < len; cut++) {
            check_needs_more(cut == 0 ? NULL : full, cut, NULL, __LINE__);
        }
        egress_http_request_head *head = parse(full, len, NULL);
        size_t head_len = 0;
        CHECK_RC(egress_http_request_head_len(head, &head_len), EGRESS_OK);
        CHECK_U64(head_len, len);
        egress_http_request_head_free(head);
    }

    section("http: bad heads are EGRESS_HTTP_BAD_REQUEST");
    CHECK_FAILS("GET / HTTP/1.1\r\n\r\n", NULL, EGRESS_HTTP_BAD_REQUEST); /* no Host */
    CHECK_FAILS("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", NULL, EGRESS_HTTP_BAD_REQUEST);
    CHECK_FAILS("GET /a b HTTP/1.1\r\nHost: x.example\r\n\r\n", NULL, EGRESS_HTTP_BAD_REQUEST);
    CHECK_FAILS("GET / HTTP/1.1\nHost: x.example\n\n", NULL, EGRESS_HTTP_BAD_REQUEST);
    CHECK_FAILS("CONNECT example.com HTTP/1.1\r\n\r\n", NULL, EGRESS_HTTP_BAD_REQUEST);
    CHECK_FAILS("CONNECT /x HTTP/1.1\r\nHost: example.com\r\n\r\n", NULL, EGRESS_HTTP_BAD_REQUEST);
    CHECK_FAILS("GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", NULL,
                EGRESS_HTTP_BAD_REQUEST);
    CHECK_FAILS("GET http://bad_host!/ HTTP/1.1\r\n\r\n", NULL, EGRESS_HTTP_BAD_REQUEST);
    CHECK_FAILS("GET / HTTP/1.1\r\nHost: x.example\r\n folded\r\n\r\n", NULL,
                EGRESS_HTTP_BAD_REQUEST);
    CHECK_FAILS("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n", NULL, EGRESS_HTTP_BAD_REQUEST);
    /* A version token that is not HTTP/x.y at all is malformed, not "unsupported". */
    CHECK_FAILS("GET / HTTP/2\r\nHost: x.example\r\n\r\n", NULL, EGRESS_HTTP_BAD_REQUEST);
    CHECK_FAILS("GET / FOO/1.1\r\nHost: x.example\r\n\r\n", NULL, EGRESS_HTTP_BAD_REQUEST);

    section("http: EGRESS_HTTP_URI_TOO_LONG");
    {
        egress_http_limits small = {64, 4096, 10};
        char line[512];
        int n = snprintf(line, sizeof line, "GET http://example.com/%0200d HTTP/1.1\r\n\r\n", 7);
        CHECK(n > 0 && (size_t)n < sizeof line);
        check_fails(line, (size_t)n, &small, EGRESS_HTTP_URI_TOO_LONG, __LINE__);
        /* Also before the line has ended. */
        check_fails(line, 100, &small, EGRESS_HTTP_URI_TOO_LONG, __LINE__);
        /* The same line is fine with the default limits. */
        egress_http_request_head *head = parse(line, (size_t)n, NULL);
        egress_http_request_head_free(head);
    }

    section("http: EGRESS_HTTP_HEADERS_TOO_LARGE");
    {
        egress_http_limits three = {0, 0, 3};
        static const char many[] = "GET / HTTP/1.1\r\nHost: x.example\r\nA: 1\r\nB: 2\r\nC: 3\r\n"
                                   "D: 4\r\n\r\n";
        check_fails(many, sizeof many - 1, &three, EGRESS_HTTP_HEADERS_TOO_LARGE, __LINE__);
        egress_http_limits five = {0, 0, 5};
        egress_http_request_head *head = parse(many, sizeof many - 1, &five);
        egress_http_request_head_free(head);
        /* Too many bytes: a complete head, and one that has not ended yet. */
        egress_http_limits bytes = {64, 80, 0};
        static const char big[] = "GET / HTTP/1.1\r\nHost: x.example\r\nX-Padding: "
                                  "0123456789012345678901234567890123456789\r\n\r\n";
        check_fails(big, sizeof big - 1, &bytes, EGRESS_HTTP_HEADERS_TOO_LARGE, __LINE__);
        check_fails(big, sizeof big - 5, &bytes, EGRESS_HTTP_HEADERS_TOO_LARGE, __LINE__);
    }

    section("http: EGRESS_HTTP_VERSION_NOT_SUPPORTED");
    CHECK_FAILS("GET / HTTP/2.0\r\nHost: x.example\r\n\r\n", NULL,
                EGRESS_HTTP_VERSION_NOT_SUPPORTED);
    CHECK_FAILS("CONNECT example.com:443 HTTP/3.0\r\n\r\n", NULL,
                EGRESS_HTTP_VERSION_NOT_SUPPORTED);
    CHECK_FAILS("GET / HTTP/1.2\r\nHost: x.example\r\n\r\n", NULL,
                EGRESS_HTTP_VERSION_NOT_SUPPORTED);

    section("http: NULL parameters");
    {
        static const char text[] = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
        size_t len = sizeof text - 1;
        egress_http_request_head *head = SENTINEL;
        egress_error *error = NULL;
        CHECK_RC(egress_http_request_head_parse(NULL, len, NULL, &head, &error),
                 EGRESS_NULL_PARAMETER);
        CHECK(head == SENTINEL);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        error = NULL;
        CHECK_RC(egress_http_request_head_parse((const uint8_t *)text, len, NULL, NULL, &error),
                 EGRESS_NULL_PARAMETER);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_parse((const uint8_t *)text, len, NULL, NULL, NULL),
                 EGRESS_NULL_PARAMETER);

        head = parse(text, len, NULL);
        const char *s = SENTINEL;
        size_t n = SIZE_SENTINEL;
        uint16_t port = 0x5a5a;
        egress_http_target_form form = (egress_http_target_form)0x5a5a;
        bool connect;
        memset(&connect, BYTE_SENTINEL, sizeof connect);
        CHECK_RC(egress_http_request_head_method(NULL, &s, &n), EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_method(head, NULL, &n), EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_method(head, &s, NULL), EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_host(NULL, &s, &n), EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_host(head, NULL, &n), EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_host(head, &s, NULL), EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_path(NULL, &s, &n), EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_path(head, NULL, &n), EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_path(head, &s, NULL), EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_port(NULL, &port), EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_port(head, NULL), EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_form(NULL, &form), EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_form(head, NULL), EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_is_connect(NULL, &connect), EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_is_connect(head, NULL), EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_len(NULL, &n), EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_http_request_head_len(head, NULL), EGRESS_NULL_PARAMETER);
        CHECK(s == SENTINEL);
        CHECK_U64(n, SIZE_SENTINEL);
        CHECK_U64(port, 0x5a5a);
        CHECK_U64(form, 0x5a5a);
        CHECK(untouched(&connect, sizeof connect));
        egress_http_request_head_free(head);
    }
}
