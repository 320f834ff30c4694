/*
 * The embedded proxy: config errors, a bind that fails, an [[sni]] listener routing a
 * captured ClientHello to an upstream of ours on loopback, connections handed over with
 * egress_proxy_serve_fd to an [[sni]] and an [[http]] block (CONNECT), stopping and freeing.
 * Names resolve through [resolver.hosts] only; the nameserver is 127.0.0.1:9 (discard), so
 * nothing leaves the machine.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

/* egress_proxy_new(config) fails with `code`; the message holds `needle`. */
static void expect_new_fails(const char *config, egress_result code, const char *needle,
                             int line) {
    egress_proxy *proxy = SENTINEL;
    egress_error *error = NULL;
    check_rc_at(__FILE__, line, config,
                egress_proxy_new(config, strlen(config), &proxy, &error), code);
    CHECK_AT(__FILE__, line, proxy == SENTINEL);
    CHECK_AT(__FILE__, line, error != NULL);
    if (strstr(egress_error_message(error), needle) == NULL) {
        check_failed(__FILE__, line, needle, egress_error_message(error));
    }
    check_error_at(__FILE__, line, error, code);
}

/* The server name of a captured hello, as the proxy will see it. */
static char *server_name_of(const uint8_t *data, size_t len) {
    egress_client_hello_reader *reader = NULL;
    CHECK_RC(egress_client_hello_reader_new(0, &reader), EGRESS_OK);
    size_t need;
    egress_client_hello *hello = NULL;
    CHECK_RC(egress_client_hello_reader_feed(reader, data, len, &need, &hello, NULL), EGRESS_OK);
    CHECK(hello != NULL);
    const char *name;
    size_t name_len;
    CHECK_RC(egress_client_hello_server_name(hello, &name, &name_len), EGRESS_OK);
    char *copy = strdup(name);
    CHECK(copy != NULL);
    egress_client_hello_free(hello);
    egress_client_hello_reader_free(reader);
    return copy;
}

/* The upstream of ours accepts the proxy's connection and gets `hello` then `extra`. */
static int expect_upstream_gets(int upstream_listener, const uint8_t *hello, size_t hello_len,
                                const char *extra) {
    int up = tcp_accept(upstream_listener, 10000);
    CHECK(up >= 0);
    size_t total = hello_len + strlen(extra);
    uint8_t *got = malloc(total);
    CHECK(got != NULL);
    CHECK_U64(read_exact(up, got, total, 10000), total);
    CHECK(memcmp(got, hello, hello_len) == 0);
    CHECK(memcmp(got + hello_len, extra, strlen(extra)) == 0);
    free(got);
    return up;
}

/* Bytes both ways between `client` and `up`, then a close from each side. */
static void exchange_and_close(int client, int up) {
    char buf[32];
    CHECK(write_all(up, "from upstream", 13, 5000));
    CHECK_U64(read_exact(client, buf, 13, 10000), 13);
    CHECK(memcmp(buf, "from upstream", 13) == 0);
    CHECK(write_all(client, "from client", 11, 5000));
    CHECK_U64(read_exact(up, buf, 11, 10000), 11);
    CHECK(memcmp(buf, "from client", 11) == 0);
    CHECK(shutdown(client, SHUT_WR) == 0);
    CHECK(peer_closed(up, 10000, 0));
    close(up);
    CHECK(peer_closed(client, 10000, 0));
    close(client);
}

/* A CONNECT through the [[http]] block over `client`: 200, then the tunnel works. */
static int http_connect(int client, int upstream_listener, uint16_t upstream_port) {
    char request[256];
    int n = snprintf(request, sizeof request,
                     "CONNECT upstream.test:%u HTTP/1.1\r\nHost: upstream.test:%u\r\n\r\n",
                     upstream_port, upstream_port);
    CHECK(write_all(client, request, (size_t)n, 5000));
    int up = tcp_accept(upstream_listener, 10000);
    CHECK(up >= 0);
    char response[1024];
    CHECK(read_http_head(client, response, sizeof response, 10000) > 0);
    if (strncmp(response, "HTTP/1.1 200", 12) != 0) {
        check_failed(__FILE__, __LINE__, "CONNECT answered HTTP/1.1 200", response);
    }
    check_passed();
    return up;
}

static void expect_serve_fails(const egress_proxy *proxy, uint32_t kind, size_t index,
                               egress_result code, int line) {
    int a, b;
    tcp_pair(&a, &b);
    egress_error *error = NULL;
    check_rc_at(__FILE__, line, "egress_proxy_serve_fd",
                egress_proxy_serve_fd(proxy, kind, index, b, &error), code);
    check_error_at(__FILE__, line, error, code);
    /* The descriptor was egress's: it is closed. */
    CHECK_AT(__FILE__, line, peer_closed(a, 5000, 0));
    close(a);
}

void test_proxy(void) {
    section("proxy: invalid configs");
    expect_new_fails("[[sni]]\nlisten = [\"127.0.0.1:0\"]\nupstrem_port = 443\n",
                     EGRESS_CONFIG_INVALID, "line 3", __LINE__);
    expect_new_fails("[server]\nshutdown_timeout = \"2\"\n[[http]]\nlisten = []\n",
                     EGRESS_CONFIG_INVALID, "line 2", __LINE__);
    expect_new_fails("", EGRESS_CONFIG_INVALID, "listener", __LINE__);
    expect_new_fails("[[sni]]\nlisten = [\"\xff\"]\n", EGRESS_INVALID_PARAMETER, "UTF-8",
                     __LINE__);
    {
        egress_proxy *proxy = SENTINEL;
        egress_error *error = NULL;
        CHECK_RC(egress_proxy_new(NULL, 10, &proxy, &error), EGRESS_NULL_PARAMETER);
        CHECK(proxy == SENTINEL);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        static const char config[] = "[[http]]\nlisten = []\n";
        error = NULL;
        CHECK_RC(egress_proxy_new(config, sizeof config - 1, NULL, &error),
                 EGRESS_NULL_PARAMETER);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
    }

    section("proxy: EGRESS_START_FAILED for an address in use");
    {
        uint16_t taken;
        int holder = tcp_listen(&taken);
        char config[512];
        snprintf(config, sizeof config,
                 "[resolver]\nnameservers = [\"127.0.0.1:9\"]\n"
                 "[[sni]]\nlisten = [\"127.0.0.1:%u\"]\n",
                 taken);
        char address[32];
        snprintf(address, sizeof address, "127.0.0.1:%u", taken);
        expect_new_fails(config, EGRESS_START_FAILED, address, __LINE__);
        close(holder);
    }

    section("proxy: start");
    uint16_t upstream_port;
    int upstream_listener = tcp_listen(&upstream_port);
    size_t curl_len, chromium_len;
    uint8_t *curl = read_data("curl-openssl3.bin", &curl_len);
    uint8_t *chromium = read_data("chromium.bin", &chromium_len);
    char *curl_name = server_name_of(curl, curl_len);
    char *chromium_name = server_name_of(chromium, chromium_len);
    char config[2048];
    int config_len = snprintf(config, sizeof config,
                              "[server]\n"
                              "shutdown_timeout = \"2s\"\n"
                              "[resolver]\n"
                              "nameservers = [\"127.0.0.1:9\"]\n"
                              "[resolver.hosts]\n"
                              "\"upstream.test\" = [\"127.0.0.1\"]\n"
                              "\"%s\" = [\"127.0.0.1\"]\n"
                              "\"%s\" = [\"127.0.0.1\"]\n"
                              "[policy]\n"
                              "allow_cidrs = [\"127.0.0.0/8\"]\n"
                              "[[sni]]\n"
                              "listen = [\"127.0.0.1:0\"]\n"
                              "upstream_port = %u\n"
                              "[[http]]\n"
                              "listen = []\n"
                              "connect_ports = [%u]\n",
                              curl_name, chromium_name, upstream_port, upstream_port);
    CHECK(config_len > 0 && (size_t)config_len < sizeof config);
    egress_proxy *proxy = SENTINEL;
    egress_error *error = SENTINEL;
    CHECK_RC(egress_proxy_new(config, (size_t)config_len, &proxy, &error), EGRESS_OK);
    CHECK(proxy != NULL && proxy != SENTINEL);
    CHECK(error == SENTINEL);

    section("proxy: egress_proxy_local_addr");
    char addr[64];
    size_t written = SIZE_SENTINEL;
    memset(addr, 'Z', sizeof addr);
    CHECK_RC(egress_proxy_local_addr(proxy, 0, addr, 48, &written), EGRESS_OK);
    CHECK(written < 48);
    CHECK(addr[written] == '\0');
    CHECK_U64(strlen(addr), written);
    CHECK(strncmp(addr, "127.0.0.1:", 10) == 0);
    long listen_port = strtol(addr + 10, NULL, 10);
    CHECK(listen_port > 0 && listen_port < 65536);
    {
        char small[64];
        size_t small_written = SIZE_SENTINEL;
        memset(small, 'Z', sizeof small);
        /* Room for the text but not its NUL is too small. */
        CHECK_RC(egress_proxy_local_addr(proxy, 0, small, written, &small_written),
                 EGRESS_BUFFER_TOO_SMALL);
        CHECK_RC(egress_proxy_local_addr(proxy, 0, small, 4, &small_written),
                 EGRESS_BUFFER_TOO_SMALL);
        CHECK_RC(egress_proxy_local_addr(proxy, 0, NULL, 0, &small_written),
                 EGRESS_BUFFER_TOO_SMALL);
        CHECK_U64(small_written, SIZE_SENTINEL);
        for (size_t i = 0; i < sizeof small; i++) {
            CHECK(small[i] == 'Z');
        }
        /* Exactly enough. */
        CHECK_RC(egress_proxy_local_addr(proxy, 0, small, written + 1, &small_written),
                 EGRESS_OK);
        CHECK_U64(small_written, written);
        CHECK_STR(small, addr);
        CHECK(small[written + 1] == 'Z');
        /* Past the last address: the [[http]] block listens nowhere. */
        small_written = SIZE_SENTINEL;
        CHECK_RC(egress_proxy_local_addr(proxy, 1, small, sizeof small, &small_written),
                 EGRESS_NOT_FOUND);
        CHECK_RC(egress_proxy_local_addr(proxy, SIZE_MAX, small, sizeof small, &small_written),
                 EGRESS_NOT_FOUND);
        CHECK_U64(small_written, SIZE_SENTINEL);
        CHECK_RC(egress_proxy_local_addr(NULL, 0, small, sizeof small, &small_written),
                 EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_proxy_local_addr(proxy, 0, NULL, 48, &small_written),
                 EGRESS_NULL_PARAMETER);
        CHECK_RC(egress_proxy_local_addr(proxy, 0, small, sizeof small, NULL),
                 EGRESS_NULL_PARAMETER);
        CHECK_U64(small_written, SIZE_SENTINEL);
    }

    section("proxy: the [[sni]] listener routes a captured ClientHello");
    {
        int client = tcp_connect((uint16_t)listen_port);
        CHECK(client >= 0);
        CHECK(write_all(client, curl, curl_len, 5000));
        CHECK(write_all(client, "after the hello", 15, 5000));
        int up = expect_upstream_gets(upstream_listener, curl, curl_len, "after the hello");
        exchange_and_close(client, up);
    }

    section("proxy: egress_proxy_serve_fd to the [[sni]] block");
    {
        int client, handed;
        tcp_pair(&client, &handed);
        error = SENTINEL;
        CHECK_RC(egress_proxy_serve_fd(proxy, EGRESS_LISTENER_SNI, 0, handed, &error), EGRESS_OK);
        CHECK(error == SENTINEL);
        /* Larger than one segment: it arrives in pieces. */
        CHECK(write_all(client, chromium, 1000, 5000));
        sleep_ms(20);
        CHECK(write_all(client, chromium + 1000, chromium_len - 1000, 5000));
        int up = expect_upstream_gets(upstream_listener, chromium, chromium_len, "");
        exchange_and_close(client, up);
    }

    section("proxy: egress_proxy_serve_fd to the [[http]] block, CONNECT");
    {
        int client, handed;
        tcp_pair(&client, &handed);
        error = SENTINEL;
        CHECK_RC(egress_proxy_serve_fd(proxy, EGRESS_LISTENER_HTTP, 0, handed, &error),
                 EGRESS_OK);
        CHECK(error == SENTINEL);
        int up = http_connect(client, upstream_listener, upstream_port);
        exchange_and_close(client, up);
    }

    section("proxy: egress_proxy_serve_fd errors");
    expect_serve_fails(proxy, EGRESS_LISTENER_HTTP, 1, EGRESS_NOT_FOUND, __LINE__);
    expect_serve_fails(proxy, EGRESS_LISTENER_SNI, 1, EGRESS_NOT_FOUND, __LINE__);
    expect_serve_fails(proxy, 7, 0, EGRESS_INVALID_PARAMETER, __LINE__);
    expect_serve_fails(NULL, EGRESS_LISTENER_HTTP, 0, EGRESS_NULL_PARAMETER, __LINE__);
    error = NULL;
    CHECK_RC(egress_proxy_serve_fd(proxy, EGRESS_LISTENER_HTTP, 0, -1, &error),
             EGRESS_INVALID_PARAMETER);
    CHECK_ERROR(error, EGRESS_INVALID_PARAMETER);
    {
        int p[2];
        CHECK(pipe(p) == 0);
        error = NULL;
        CHECK_RC(egress_proxy_serve_fd(proxy, EGRESS_LISTENER_HTTP, 0, p[0], &error), EGRESS_IO);
        CHECK_ERROR(error, EGRESS_IO);
        struct pollfd w = {p[1], POLLOUT, 0};
        CHECK(poll(&w, 1, 1000) == 1 && (w.revents & POLLERR)); /* read end closed */
        close(p[1]);
    }

    section("proxy: egress_proxy_stop, twice, then EGRESS_STOPPED");
    {
        int64_t start = now_ms();
        CHECK_RC(egress_proxy_stop(proxy), EGRESS_OK);
        /* Nothing open: it need not wait for shutdown_timeout (bounds are hang guards, far
         * above the expected time, so a loaded machine cannot fail them). */
        CHECK(now_ms() - start < 10000);
        start = now_ms();
        CHECK_RC(egress_proxy_stop(proxy), EGRESS_OK);
        CHECK(now_ms() - start < 10000); /* already stopped: returns at once */
        CHECK_RC(egress_proxy_stop(NULL), EGRESS_NULL_PARAMETER);
        /* Its listening socket is closed. */
        errno = 0;
        int refused = tcp_connect((uint16_t)listen_port);
        CHECK(refused < 0 && errno == ECONNREFUSED);
        expect_serve_fails(proxy, EGRESS_LISTENER_HTTP, 0, EGRESS_STOPPED, __LINE__);
        expect_serve_fails(proxy, EGRESS_LISTENER_SNI, 0, EGRESS_STOPPED, __LINE__);
        egress_proxy_free(proxy);
    }

    section("proxy: egress_proxy_free without stop closes a tunnel after shutdown_timeout");
    {
        int n = snprintf(config, sizeof config,
                         "[server]\nshutdown_timeout = \"300ms\"\n"
                         "[resolver]\nnameservers = [\"127.0.0.1:9\"]\n"
                         "[resolver.hosts]\n\"upstream.test\" = [\"127.0.0.1\"]\n"
                         "[policy]\nallow_cidrs = [\"127.0.0.0/8\"]\n"
                         "[[http]]\nlisten = []\nconnect_ports = [%u]\n",
                         upstream_port);
        CHECK(n > 0 && (size_t)n < sizeof config);
        proxy = NULL;
        CHECK_RC(egress_proxy_new(config, (size_t)n, &proxy, NULL), EGRESS_OK);
        CHECK(proxy != NULL);
        written = SIZE_SENTINEL;
        CHECK_RC(egress_proxy_local_addr(proxy, 0, addr, sizeof addr, &written), EGRESS_NOT_FOUND);
        int client, handed;
        tcp_pair(&client, &handed);
        CHECK_RC(egress_proxy_serve_fd(proxy, EGRESS_LISTENER_HTTP, 0, handed, NULL), EGRESS_OK);
        int up = http_connect(client, upstream_listener, upstream_port);
        CHECK(write_all(client, "x", 1, 1000));
        char x;
        CHECK_U64(read_exact(up, &x, 1, 5000), 1);
        int64_t start = now_ms();
        egress_proxy_free(proxy);
        int64_t took = now_ms() - start;
        CHECK(took >= 250);   /* it waited for the open tunnel... */
        CHECK(took < 10000);  /* ...up to shutdown_timeout, then closed it (a hang guard) */
        CHECK(peer_closed(client, 5000, 0));
        CHECK(peer_closed(up, 5000, 0));
        close(client);
        close(up);
    }

    close(upstream_listener);
    free(curl_name);
    free(chromium_name);
    free(curl);
    free(chromium);
}
