/*
 * The C API test of egress (egress-ffi/include/egress.h), written from the header and
 * egress-ffi/README.md: every exported function, every result code that can be provoked,
 * NULL for every pointer parameter, short buffers, `_free(NULL)`, outputs untouched on
 * failure, error objects, and relays and the proxy over real loopback sockets.
 *
 * Usage: test_egress DATA_DIR   (DATA_DIR holds the captured ClientHellos, *.bin)
 *
 * Exits 0 after printing how many checks passed, or 1 at the first failed check, naming
 * its file, line and expression. SIGPIPE is deliberately left at its default (terminate):
 * egress promises that a peer that goes away is an error, not a signal.
 */

#define _GNU_SOURCE

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

/* Tells which section hung; async-signal-safe. */
static void watchdog(int signal) {
    (void)signal;
    static const char prefix[] = "\nwatchdog: the test ran out of time in section [";
    const char *name = current_section;
    ssize_t ignored = write(2, prefix, sizeof prefix - 1);
    ignored = write(2, name, strlen(name));
    ignored = write(2, "]\n", 2);
    (void)ignored;
    _exit(2);
}

/* egress_version, egress_result_message, the error functions on NULL, every _free(NULL). */
void test_basics(void) {
    section("version");
    const char *version = egress_version();
    CHECK(version != NULL);
    CHECK(version[0] >= '0' && version[0] <= '9');
    CHECK(strchr(version, '.') != NULL);
    CHECK(egress_version() == version); /* static */
    const char *expected_version = getenv("EGRESS_EXPECTED_VERSION");
    if (expected_version != NULL) {
        CHECK_STR(version, expected_version);
    }

    section("result messages");
    static const uint32_t codes[] = {
        EGRESS_OK,
        EGRESS_NULL_PARAMETER,
        EGRESS_INVALID_PARAMETER,
        EGRESS_BUFFER_TOO_SMALL,
        EGRESS_PANIC,
        EGRESS_NOT_FOUND,
        EGRESS_IO,
        EGRESS_HELLO_NOT_CLIENT_HELLO,
        EGRESS_HELLO_MALFORMED,
        EGRESS_HELLO_TOO_LARGE,
        EGRESS_HELLO_INVALID_SERVER_NAME,
        EGRESS_HELLO_FINISHED,
        EGRESS_HTTP_BAD_REQUEST,
        EGRESS_HTTP_URI_TOO_LONG,
        EGRESS_HTTP_HEADERS_TOO_LARGE,
        EGRESS_HTTP_VERSION_NOT_SUPPORTED,
        EGRESS_CONFIG_INVALID,
        EGRESS_RELAY_CLIENT_FAILED,
        EGRESS_RELAY_UPSTREAM_FAILED,
        EGRESS_RELAY_IDLE_TIMEOUT,
        EGRESS_RELAY_CANCELLED,
        EGRESS_START_FAILED,
        EGRESS_STOPPED,
    };
    size_t ncodes = sizeof codes / sizeof codes[0];
    /* The numbers are part of the ABI: they never change meaning. */
    CHECK_U64(EGRESS_OK, 0);
    CHECK_U64(EGRESS_NULL_PARAMETER, 1);
    CHECK_U64(EGRESS_IO, 6);
    CHECK_U64(EGRESS_HELLO_NOT_CLIENT_HELLO, 100);
    CHECK_U64(EGRESS_HELLO_FINISHED, 104);
    CHECK_U64(EGRESS_HTTP_BAD_REQUEST, 200);
    CHECK_U64(EGRESS_HTTP_VERSION_NOT_SUPPORTED, 203);
    CHECK_U64(EGRESS_CONFIG_INVALID, 300);
    CHECK_U64(EGRESS_RELAY_CLIENT_FAILED, 400);
    CHECK_U64(EGRESS_RELAY_CANCELLED, 403);
    CHECK_U64(EGRESS_START_FAILED, 500);
    CHECK_U64(EGRESS_STOPPED, 501);
    const char *unknown = egress_result_message(999);
    CHECK(unknown != NULL);
    CHECK_STR(unknown, "unknown result code");
    for (size_t i = 0; i < ncodes; i++) {
        const char *message = egress_result_message(codes[i]);
        CHECK(message != NULL && message[0] != '\0');
        CHECK(strcmp(message, unknown) != 0);
        for (size_t j = 0; j < i; j++) {
            CHECK(strcmp(message, egress_result_message(codes[j])) != 0);
        }
    }
    static const uint32_t unknowns[] = {7, 99, 105, 199, 204, 301, 404, 502, 1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof unknowns / sizeof unknowns[0]; i++) {
        CHECK_STR(egress_result_message(unknowns[i]), "unknown result code");
    }

    section("error functions on NULL");
    CHECK_STR(egress_error_message(NULL), "");
    egress_result code = (egress_result)0x5a5a;
    CHECK_RC(egress_error_code(NULL, &code), EGRESS_NULL_PARAMETER);
    CHECK_U64(code, 0x5a5a);
    egress_traffic traffic;
    memset(&traffic, BYTE_SENTINEL, sizeof traffic);
    CHECK_RC(egress_error_traffic(NULL, &traffic), EGRESS_NULL_PARAMETER);
    CHECK(untouched(&traffic, sizeof traffic));

    /* A real error object, for NULL outputs. */
    egress_error *error = NULL;
    CHECK_RC(egress_client_hello_reader_new(0, NULL), EGRESS_NULL_PARAMETER);
    CHECK_RC(egress_runtime_new(1, NULL, &error), EGRESS_NULL_PARAMETER);
    CHECK(error != NULL);
    CHECK_RC(egress_error_code(error, NULL), EGRESS_NULL_PARAMETER);
    CHECK_RC(egress_error_traffic(error, NULL), EGRESS_NULL_PARAMETER);
    CHECK(strstr(egress_error_message(error), "runtime_out") != NULL);
    CHECK(egress_error_message(error) == egress_error_message(error)); /* lives with it */
    CHECK_ERROR(error, EGRESS_NULL_PARAMETER);

    section("_free(NULL)");
    egress_error_free(NULL);
    egress_client_hello_reader_free(NULL);
    egress_client_hello_free(NULL);
    egress_http_request_head_free(NULL);
    egress_policy_free(NULL);
    egress_proxy_free(NULL);
    egress_runtime_free(NULL);
    check_passed();
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
        return 2;
    }
    data_dir = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* The last-resort watchdog: every wait below is bounded far below this. */
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = watchdog;
    sigemptyset(&action.sa_mask);
    CHECK(sigaction(SIGALRM, &action, NULL) == 0);
    const char *timeout = getenv("EGRESS_TEST_TIMEOUT");
    alarm(timeout != NULL ? (unsigned)atoi(timeout) : 120);

    /* SIGPIPE keeps its default action, and is not blocked: a stray one kills the test. */
    struct sigaction pipe_action;
    CHECK(sigaction(SIGPIPE, NULL, &pipe_action) == 0);
    CHECK(pipe_action.sa_handler == SIG_DFL);
    sigset_t mask;
    CHECK(pthread_sigmask(SIG_BLOCK, NULL, &mask) == 0);
    CHECK(!sigismember(&mask, SIGPIPE));

    test_basics();
    test_client_hello();
    test_http();
    test_policy();
    test_relay();
    test_proxy();
    test_relay_cancel();

    /* Nothing egress did left SIGPIPE blocked, handled or pending on this thread. */
    section("end");
    CHECK(sigaction(SIGPIPE, NULL, &pipe_action) == 0);
    CHECK(pipe_action.sa_handler == SIG_DFL);
    CHECK(pthread_sigmask(SIG_BLOCK, NULL, &mask) == 0);
    CHECK(!sigismember(&mask, SIGPIPE));
    sigset_t pending;
    CHECK(sigpending(&pending) == 0);
    CHECK(!sigismember(&pending, SIGPIPE));

    alarm(0);
    printf("egress C API test: all %lu checks passed\n", checks_passed_count());
    return 0;
}
