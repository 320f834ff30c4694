/* The ClientHello reader and the hello accessors, on real captured ClientHellos. */

#define _GNU_SOURCE

#include <stdlib.h>
#include <string.h>

#include "check.h"

/* What a captured hello holds (see data/README.md). */
struct expected_hello {
    const char *file;
    size_t len;
    const char *server_name; /* NULL: none */
    const char *alpn[3];     /* NULL-terminated */
    uint16_t versions[5];    /* 0-terminated, as offered, GREASE values left out */
    bool has_ech;
};

static const struct expected_hello hellos[] = {
    {"curl-openssl3.bin", 517, "www.example.com", {"h2", "http/1.1", NULL},
     {0x0304, 0x0303, 0x0302, 0x0301, 0}, false},
    /* Chromium offers 0x4a4a (GREASE, RFC 8701) first: not a version, so not reported. */
    {"chromium.bin", 1965, "www.chromium-test.example", {"h2", "http/1.1", NULL},
     {0x0304, 0x0303, 0, 0, 0}, true},
    {"openssl-no-sni.bin", 297, NULL, {NULL, NULL, NULL},
     {0x0304, 0x0303, 0x0302, 0x0301, 0}, false},
    {"openssl-s_client-tls12-only.bin", 215, "legacy.example.com", {NULL, NULL, NULL},
     /* no supported_versions: the legacy version alone */
     {0x0303, 0, 0, 0, 0}, false},
};

static egress_client_hello_reader *new_reader(size_t max_bytes) {
    egress_client_hello_reader *reader = SENTINEL;
    CHECK_RC(egress_client_hello_reader_new(max_bytes, &reader), EGRESS_OK);
    CHECK(reader != NULL && reader != SENTINEL);
    return reader;
}

/* Feeds `data` whole and returns the hello; error_out must stay untouched. */
static egress_client_hello *feed_whole(const uint8_t *data, size_t len) {
    egress_client_hello_reader *reader = new_reader(0);
    size_t need = SIZE_SENTINEL;
    egress_client_hello *hello = SENTINEL;
    egress_error *error = SENTINEL;
    CHECK_RC(egress_client_hello_reader_feed(reader, data, len, &need, &hello, &error),
             EGRESS_OK);
    CHECK(hello != NULL && hello != SENTINEL);
    CHECK_U64(need, 0);
    CHECK(error == SENTINEL); /* nothing is written to error_out on success */
    egress_client_hello_reader_free(reader);
    return hello;
}

/* Checks every accessor of `hello` against `want`. */
static void check_hello(const egress_client_hello *hello, const struct expected_hello *want) {
    const char *name = SENTINEL;
    size_t name_len = SIZE_SENTINEL;
    if (want->server_name != NULL) {
        CHECK_RC(egress_client_hello_server_name(hello, &name, &name_len), EGRESS_OK);
        CHECK_STR(name, want->server_name);
        CHECK_U64(name_len, strlen(want->server_name));
        CHECK(name[name_len] == '\0');
    } else {
        CHECK_RC(egress_client_hello_server_name(hello, &name, &name_len), EGRESS_NOT_FOUND);
        CHECK(name == SENTINEL);
        CHECK_U64(name_len, SIZE_SENTINEL);
    }

    size_t want_alpn = 0;
    while (want_alpn < 3 && want->alpn[want_alpn] != NULL) {
        want_alpn++;
    }
    size_t count = SIZE_SENTINEL;
    CHECK_RC(egress_client_hello_alpn_count(hello, &count), EGRESS_OK);
    CHECK_U64(count, want_alpn);
    for (size_t i = 0; i < want_alpn; i++) {
        const uint8_t *protocol = SENTINEL;
        size_t len = SIZE_SENTINEL;
        CHECK_RC(egress_client_hello_alpn(hello, i, &protocol, &len), EGRESS_OK);
        CHECK_U64(len, strlen(want->alpn[i]));
        CHECK(memcmp(protocol, want->alpn[i], len) == 0);
    }
    const uint8_t *protocol = SENTINEL;
    size_t protocol_len = SIZE_SENTINEL;
    CHECK_RC(egress_client_hello_alpn(hello, want_alpn, &protocol, &protocol_len),
             EGRESS_NOT_FOUND);
    CHECK_RC(egress_client_hello_alpn(hello, SIZE_MAX, &protocol, &protocol_len),
             EGRESS_NOT_FOUND);
    CHECK(protocol == SENTINEL);
    CHECK_U64(protocol_len, SIZE_SENTINEL);

    const uint16_t *versions = SENTINEL;
    size_t nversions = SIZE_SENTINEL;
    CHECK_RC(egress_client_hello_versions(hello, &versions, &nversions), EGRESS_OK);
    size_t want_versions = 0;
    while (want_versions < 5 && want->versions[want_versions] != 0) {
        want_versions++;
    }
    CHECK_U64(nversions, want_versions);
    CHECK(versions != NULL && versions != SENTINEL);
    bool tls13 = false;
    for (size_t i = 0; i < nversions; i++) {
        CHECK_U64(versions[i], want->versions[i]);
        tls13 = tls13 || versions[i] == 0x0304;
    }
    CHECK(tls13 == (want->versions[0] != 0x0303));

    bool ech;
    memset(&ech, BYTE_SENTINEL, sizeof ech);
    CHECK_RC(egress_client_hello_has_ech(hello, &ech), EGRESS_OK);
    CHECK(ech == want->has_ech);

    size_t len = SIZE_SENTINEL;
    CHECK_RC(egress_client_hello_len(hello, &len), EGRESS_OK);
    CHECK_U64(len, want->len);
}

/* Feeding one byte at a time: need >= 1 (and never past the end) until the last byte. */
static void feed_byte_by_byte(const uint8_t *data, size_t len, const struct expected_hello *want) {
    egress_client_hello_reader *reader = new_reader(0);
    egress_client_hello *hello = NULL;
    for (size_t i = 0; i < len; i++) {
        size_t need = SIZE_SENTINEL;
        egress_client_hello *out = SENTINEL;
        egress_error *error = NULL;
        CHECK_RC(egress_client_hello_reader_feed(reader, data + i, 1, &need, &out, &error),
                 EGRESS_OK);
        CHECK(error == NULL);
        if (i + 1 < len) {
            CHECK(out == NULL);
            CHECK(need >= 1);
            CHECK(need <= len - i - 1); /* the least still to come: never past the hello */
        } else {
            CHECK(out != NULL && out != SENTINEL);
            CHECK_U64(need, 0);
            hello = out;
        }
    }
    check_hello(hello, want);
    egress_client_hello_free(hello);
    egress_client_hello_reader_free(reader);
}

/* Feeding exactly `need` bytes each time ends exactly at the end of the hello. */
static void feed_as_needed(const uint8_t *data, size_t len, const struct expected_hello *want) {
    egress_client_hello_reader *reader = new_reader(0);
    egress_client_hello *hello = NULL;
    size_t at = 0;
    size_t need = 1;
    for (int round = 0; hello == NULL; round++) {
        CHECK(round < 10000);
        size_t chunk = need;
        CHECK(at + chunk <= len);
        CHECK_RC(egress_client_hello_reader_feed(reader, data + at, chunk, &need, &hello, NULL),
                 EGRESS_OK);
        at += chunk;
        if (hello == NULL) {
            CHECK(need >= 1);
        }
    }
    CHECK_U64(at, len);
    check_hello(hello, want);
    egress_client_hello_free(hello);
    egress_client_hello_reader_free(reader);
}

/* A feed that fails with `code`: outputs untouched, an error object, then FINISHED. */
static void check_feed_fails(egress_client_hello_reader *reader, const uint8_t *data, size_t len,
                             egress_result code) {
    size_t need = SIZE_SENTINEL;
    egress_client_hello *hello = SENTINEL;
    egress_error *error = NULL;
    CHECK_RC(egress_client_hello_reader_feed(reader, data, len, &need, &hello, &error), code);
    CHECK_U64(need, SIZE_SENTINEL);
    CHECK(hello == SENTINEL);
    CHECK_ERROR(error, code);
    /* The reader is finished. */
    error = NULL;
    CHECK_RC(egress_client_hello_reader_feed(reader, data, len, &need, &hello, &error),
             EGRESS_HELLO_FINISHED);
    CHECK_U64(need, SIZE_SENTINEL);
    CHECK(hello == SENTINEL);
    CHECK_ERROR(error, EGRESS_HELLO_FINISHED);
}

static void test_null_parameters(const uint8_t *data, size_t len) {
    egress_client_hello_reader *reader = new_reader(0);
    size_t need = SIZE_SENTINEL;
    egress_client_hello *hello = SENTINEL;
    egress_error *error = NULL;

    CHECK_RC(egress_client_hello_reader_feed(NULL, data, len, &need, &hello, &error),
             EGRESS_NULL_PARAMETER);
    CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
    error = NULL;
    CHECK_RC(egress_client_hello_reader_feed(reader, NULL, len, &need, &hello, &error),
             EGRESS_NULL_PARAMETER);
    CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
    error = NULL;
    CHECK_RC(egress_client_hello_reader_feed(reader, data, len, NULL, &hello, &error),
             EGRESS_NULL_PARAMETER);
    CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
    error = NULL;
    CHECK_RC(egress_client_hello_reader_feed(reader, data, len, &need, NULL, &error),
             EGRESS_NULL_PARAMETER);
    CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
    /* Failing with a NULL error_out only returns the code. */
    CHECK_RC(egress_client_hello_reader_feed(NULL, data, len, &need, &hello, NULL),
             EGRESS_NULL_PARAMETER);
    CHECK_U64(need, SIZE_SENTINEL);
    CHECK(hello == SENTINEL);

    /* A length of 0 needs no pointer: nothing fed, more needed. */
    error = NULL;
    CHECK_RC(egress_client_hello_reader_feed(reader, NULL, 0, &need, &hello, &error), EGRESS_OK);
    CHECK(hello == NULL);
    CHECK(need >= 1);

    /* The NULL-parameter failures did not finish the reader: it still reads the hello. */
    hello = SENTINEL;
    CHECK_RC(egress_client_hello_reader_feed(reader, data, len, &need, &hello, &error), EGRESS_OK);
    CHECK(hello != NULL && hello != SENTINEL);
    CHECK(error == NULL);

    /* Every accessor with NULL, its outputs untouched. */
    const char *name = SENTINEL;
    size_t n = SIZE_SENTINEL;
    const uint8_t *protocol = SENTINEL;
    const uint16_t *versions = SENTINEL;
    bool ech;
    memset(&ech, BYTE_SENTINEL, sizeof ech);
    CHECK_RC(egress_client_hello_server_name(NULL, &name, &n), EGRESS_NULL_PARAMETER);
    CHECK_RC(egress_client_hello_server_name(hello, NULL, &n), EGRESS_NULL_PARAMETER);
    CHECK_RC(egress_client_hello_server_name(hello, &name, NULL), EGRESS_NULL_PARAMETER);
    CHECK_RC(egress_client_hello_alpn_count(NULL, &n), EGRESS_NULL_PARAMETER);
    CHECK_RC(egress_client_hello_alpn_count(hello, NULL), EGRESS_NULL_PARAMETER);
    CHECK_RC(egress_client_hello_alpn(NULL, 0, &protocol, &n), EGRESS_NULL_PARAMETER);
    CHECK_RC(egress_client_hello_alpn(hello, 0, NULL, &n), EGRESS_NULL_PARAMETER);
    CHECK_RC(egress_client_hello_alpn(hello, 0, &protocol, NULL), EGRESS_NULL_PARAMETER);
    CHECK_RC(egress_client_hello_versions(NULL, &versions, &n), EGRESS_NULL_PARAMETER);
    CHECK_RC(egress_client_hello_versions(hello, NULL, &n), EGRESS_NULL_PARAMETER);
    CHECK_RC(egress_client_hello_versions(hello, &versions, NULL), EGRESS_NULL_PARAMETER);
    CHECK_RC(egress_client_hello_has_ech(NULL, &ech), EGRESS_NULL_PARAMETER);
    CHECK_RC(egress_client_hello_has_ech(hello, NULL), EGRESS_NULL_PARAMETER);
    CHECK_RC(egress_client_hello_len(NULL, &n), EGRESS_NULL_PARAMETER);
    CHECK_RC(egress_client_hello_len(hello, NULL), EGRESS_NULL_PARAMETER);
    CHECK(name == SENTINEL);
    CHECK_U64(n, SIZE_SENTINEL);
    CHECK(protocol == SENTINEL);
    CHECK(versions == SENTINEL);
    CHECK(untouched(&ech, sizeof ech));

    egress_client_hello_free(hello);
    egress_client_hello_reader_free(reader);
}

void test_client_hello(void) {
    section("client hello: whole, byte by byte, as needed");
    for (size_t i = 0; i < sizeof hellos / sizeof hellos[0]; i++) {
        size_t len;
        uint8_t *data = read_data(hellos[i].file, &len);
        CHECK_U64(len, hellos[i].len);
        egress_client_hello *hello = feed_whole(data, len);
        check_hello(hello, &hellos[i]);
        egress_client_hello_free(hello);
        feed_byte_by_byte(data, len, &hellos[i]);
        feed_as_needed(data, len, &hellos[i]);
        free(data);
    }

    size_t len;
    uint8_t *curl = read_data("curl-openssl3.bin", &len);

    section("client hello: bytes after the hello are not consumed");
    {
        static const char extra[] = "\x17\x03\x03\x00\x05hello";
        size_t total = len + sizeof extra - 1;
        uint8_t *more = malloc(total);
        CHECK(more != NULL);
        memcpy(more, curl, len);
        memcpy(more + len, extra, sizeof extra - 1);
        egress_client_hello *hello = feed_whole(more, total);
        size_t hello_len = 0;
        CHECK_RC(egress_client_hello_len(hello, &hello_len), EGRESS_OK);
        CHECK_U64(hello_len, len);
        egress_client_hello_free(hello);
        free(more);
    }

    section("client hello: a hello outlives its reader, and readers are independent");
    {
        egress_client_hello_reader *a = new_reader(0);
        egress_client_hello_reader *b = new_reader(0);
        size_t need;
        egress_client_hello *ha = NULL;
        egress_client_hello *hb = NULL;
        CHECK_RC(egress_client_hello_reader_feed(a, curl, 100, &need, &ha, NULL), EGRESS_OK);
        CHECK(ha == NULL);
        CHECK_RC(egress_client_hello_reader_feed(b, curl, len, &need, &hb, NULL), EGRESS_OK);
        CHECK(hb != NULL);
        CHECK_RC(egress_client_hello_reader_feed(a, curl + 100, len - 100, &need, &ha, NULL),
                 EGRESS_OK);
        CHECK(ha != NULL);
        egress_client_hello_reader_free(a);
        egress_client_hello_reader_free(b);
        check_hello(ha, &hellos[0]);
        check_hello(hb, &hellos[0]);
        egress_client_hello_free(ha);
        egress_client_hello_free(hb);
    }

    section("client hello: after done, EGRESS_HELLO_FINISHED");
    {
        egress_client_hello_reader *reader = new_reader(0);
        size_t need;
        egress_client_hello *hello = NULL;
        CHECK_RC(egress_client_hello_reader_feed(reader, curl, len, &need, &hello, NULL),
                 EGRESS_OK);
        CHECK(hello != NULL);
        egress_client_hello_free(hello);
        need = SIZE_SENTINEL;
        hello = SENTINEL;
        egress_error *error = NULL;
        CHECK_RC(egress_client_hello_reader_feed(reader, curl, len, &need, &hello, &error),
                 EGRESS_HELLO_FINISHED);
        CHECK_U64(need, SIZE_SENTINEL);
        CHECK(hello == SENTINEL);
        CHECK_ERROR(error, EGRESS_HELLO_FINISHED);
        egress_client_hello_reader_free(reader);
    }

    section("client hello: plain HTTP is EGRESS_HELLO_NOT_CLIENT_HELLO");
    {
        static const char http[] = "GET / HTTP/1.1\r\n";
        egress_client_hello_reader *reader = new_reader(0);
        check_feed_fails(reader, (const uint8_t *)http, sizeof http - 1,
                         EGRESS_HELLO_NOT_CLIENT_HELLO);
        egress_client_hello_reader_free(reader);
        /* An alert record, and a handshake that is not a ClientHello (ServerHello, 2). */
        static const uint8_t alert[] = {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28};
        reader = new_reader(0);
        check_feed_fails(reader, alert, sizeof alert, EGRESS_HELLO_NOT_CLIENT_HELLO);
        egress_client_hello_reader_free(reader);
        static const uint8_t server_hello[] = {0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00};
        reader = new_reader(0);
        check_feed_fails(reader, server_hello, sizeof server_hello,
                         EGRESS_HELLO_NOT_CLIENT_HELLO);
        egress_client_hello_reader_free(reader);
    }

    section("client hello: EGRESS_HELLO_MALFORMED");
    {
        /* An empty handshake record, and a record version 2.0. */
        static const uint8_t empty_record[] = {0x16, 0x03, 0x01, 0x00, 0x00};
        egress_client_hello_reader *reader = new_reader(0);
        check_feed_fails(reader, empty_record, sizeof empty_record, EGRESS_HELLO_MALFORMED);
        egress_client_hello_reader_free(reader);
        static const uint8_t bad_version[] = {0x16, 0x02, 0x00};
        reader = new_reader(0);
        check_feed_fails(reader, bad_version, sizeof bad_version, EGRESS_HELLO_MALFORMED);
        egress_client_hello_reader_free(reader);
        /* A complete record whose ClientHello body is truncated inside. */
        static const uint8_t truncated[] = {0x16, 0x03, 0x01, 0x00, 0x06, 0x01,
                                            0x00, 0x00, 0x02, 0x03, 0x03};
        reader = new_reader(0);
        check_feed_fails(reader, truncated, sizeof truncated, EGRESS_HELLO_MALFORMED);
        egress_client_hello_reader_free(reader);
    }

    section("client hello: EGRESS_HELLO_TOO_LARGE");
    {
        egress_client_hello_reader *reader = new_reader(256);
        check_feed_fails(reader, curl, len, EGRESS_HELLO_TOO_LARGE);
        egress_client_hello_reader_free(reader);
        size_t clen;
        uint8_t *chromium = read_data("chromium.bin", &clen);
        reader = new_reader(1024);
        check_feed_fails(reader, chromium, clen, EGRESS_HELLO_TOO_LARGE);
        egress_client_hello_reader_free(reader);
        /* Exactly its size is enough. */
        reader = new_reader(clen);
        size_t need;
        egress_client_hello *hello = NULL;
        CHECK_RC(egress_client_hello_reader_feed(reader, chromium, clen, &need, &hello, NULL),
                 EGRESS_OK);
        CHECK(hello != NULL);
        egress_client_hello_free(hello);
        egress_client_hello_reader_free(reader);
        free(chromium);
    }

    section("client hello: EGRESS_HELLO_INVALID_SERVER_NAME");
    {
        uint8_t *bad = malloc(len);
        CHECK(bad != NULL);
        memcpy(bad, curl, len);
        uint8_t *at = memmem(bad, len, "www.example.com", 15);
        CHECK(at != NULL);
        at[3] = '_'; /* www_example.com */
        egress_client_hello_reader *reader = new_reader(0);
        check_feed_fails(reader, bad, len, EGRESS_HELLO_INVALID_SERVER_NAME);
        egress_client_hello_reader_free(reader);
        free(bad);
    }

    section("client hello: NULL parameters");
    test_null_parameters(curl, len);

    free(curl);
}
