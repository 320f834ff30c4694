/*
 * The relay over real loopback TCP sockets: blocking (egress_relay, on a thread of ours) and
 * on a runtime with a callback (egress_runtime_relay), with data both ways, half-closes,
 * exact byte counts, idle timeouts, resets on either side, and cancellation.
 *
 * Each relay gets two connected pairs: (client_app, client_fd) and (upstream_fd,
 * upstream_app). egress gets client_fd and upstream_fd; the test drives the *_app ends.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define MIB (1024u * 1024u)

static pthread_t main_thread;

/* ---- the bytes each direction carries ------------------------------------------------ */

/* Byte `i` of direction `seed`: depends on the position, so loss or reordering shows. */
static uint8_t pattern(uint32_t seed, uint64_t i) {
    uint64_t x = (i + seed) * 0x9E3779B97F4A7C15ull;
    return (uint8_t)(x >> 56);
}

static uint64_t fnv(uint64_t hash, const uint8_t *bytes, size_t len) {
    for (size_t i = 0; i < len; i++) {
        hash = (hash ^ bytes[i]) * 0x100000001b3ull;
    }
    return hash;
}
#define FNV_START 0xcbf29ce484222325ull

/* Two connected pairs for one relay. */
struct ends {
    int client_app, client_fd, upstream_fd, upstream_app;
};

static struct ends new_ends(void) {
    struct ends e;
    tcp_pair(&e.client_app, &e.client_fd);
    tcp_pair(&e.upstream_fd, &e.upstream_app);
    return e;
}

/*
 * Drives both app ends of a relay until both have seen EOF: the client sends `up` bytes then
 * shuts down its write half; the upstream checks the prefix arrives first, then the client's
 * bytes, then EOF. The upstream sends `down - hold_back` bytes at once and the last
 * `hold_back` only after the client's EOF has reached it (so the upstream-to-client direction
 * must keep working after the other one closed), then shuts down its write half. Every byte
 * is checked in place and by checksum.
 */
static void pump(const struct ends *e, const uint8_t *prefix, size_t prefix_len, uint64_t up,
                 uint64_t down, uint64_t hold_back, int timeout_ms) {
    set_nonblocking(e->client_app);
    set_nonblocking(e->upstream_app);
    uint64_t c_sent = 0, u_sent = 0, c_recv = 0, u_recv = 0;
    uint64_t sent_up_hash = FNV_START, recv_up_hash = FNV_START;
    uint64_t sent_down_hash = FNV_START, recv_down_hash = FNV_START;
    bool c_shut = false, u_shut = false, c_eof = false, u_eof = false;
    static uint8_t buf[65536];
    int64_t deadline = now_ms() + timeout_ms;
    while (!(c_eof && u_eof)) {
        if (now_ms() > deadline) {
            char detail[256];
            snprintf(detail, sizeof detail,
                     "client sent %llu/%llu, received %llu/%llu; upstream sent %llu/%llu, "
                     "received %llu/%llu",
                     (unsigned long long)c_sent, (unsigned long long)up,
                     (unsigned long long)c_recv, (unsigned long long)down,
                     (unsigned long long)u_sent, (unsigned long long)down,
                     (unsigned long long)u_recv, (unsigned long long)(prefix_len + up));
            check_failed(__FILE__, __LINE__, "the relay moved every byte in time", detail);
        }
        if (c_sent == up && !c_shut) {
            CHECK(shutdown(e->client_app, SHUT_WR) == 0);
            c_shut = true;
        }
        uint64_t down_now = u_eof ? down : down - hold_back;
        if (u_sent == down && !u_shut) {
            CHECK(shutdown(e->upstream_app, SHUT_WR) == 0);
            u_shut = true;
        }
        short c_events = (short)((c_eof ? 0 : POLLIN) | (c_sent < up ? POLLOUT : 0));
        short u_events = (short)((u_eof ? 0 : POLLIN) | (u_sent < down_now ? POLLOUT : 0));
        struct pollfd fds[2] = {{c_events ? e->client_app : -1, c_events, 0},
                                {u_events ? e->upstream_app : -1, u_events, 0}};
        int n = poll(fds, 2, 100);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        CHECK(n >= 0);

        if (fds[0].revents & POLLOUT) {
            size_t chunk = (size_t)(up - c_sent < sizeof buf ? up - c_sent : sizeof buf);
            for (size_t i = 0; i < chunk; i++) {
                buf[i] = pattern(1, c_sent + i);
            }
            ssize_t w = send(e->client_app, buf, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) {
                sent_up_hash = fnv(sent_up_hash, buf, (size_t)w);
                c_sent += (uint64_t)w;
            } else {
                CHECK(w < 0 && (errno == EAGAIN || errno == EINTR));
            }
        }
        if (fds[1].revents & POLLOUT) {
            size_t chunk =
                (size_t)(down_now - u_sent < sizeof buf ? down_now - u_sent : sizeof buf);
            for (size_t i = 0; i < chunk; i++) {
                buf[i] = pattern(2, u_sent + i);
            }
            ssize_t w = send(e->upstream_app, buf, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) {
                sent_down_hash = fnv(sent_down_hash, buf, (size_t)w);
                u_sent += (uint64_t)w;
            } else {
                CHECK(w < 0 && (errno == EAGAIN || errno == EINTR));
            }
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(e->client_app, buf, sizeof buf, MSG_DONTWAIT);
            if (r > 0) {
                for (ssize_t i = 0; i < r; i++) {
                    if (buf[i] != pattern(2, c_recv + (uint64_t)i)) {
                        check_failed(__FILE__, __LINE__, "client byte matches what upstream sent",
                                     NULL);
                    }
                }
                recv_down_hash = fnv(recv_down_hash, buf, (size_t)r);
                c_recv += (uint64_t)r;
                CHECK(c_recv <= down);
            } else if (r == 0) {
                c_eof = true;
                CHECK_U64(c_recv, down); /* EOF only after every byte */
            } else {
                CHECK(errno == EAGAIN || errno == EINTR);
            }
        }
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(e->upstream_app, buf, sizeof buf, MSG_DONTWAIT);
            if (r > 0) {
                for (ssize_t i = 0; i < r; i++) {
                    uint64_t at = u_recv + (uint64_t)i;
                    uint8_t want = at < prefix_len ? prefix[at] : pattern(1, at - prefix_len);
                    if (buf[i] != want) {
                        check_failed(__FILE__, __LINE__,
                                     at < prefix_len ? "the prefix reaches the upstream first"
                                                     : "upstream byte matches what client sent",
                                     NULL);
                    }
                }
                size_t skip = 0;
                if (u_recv < prefix_len) {
                    skip = (size_t)(prefix_len - u_recv) < (size_t)r ? (size_t)(prefix_len - u_recv)
                                                                     : (size_t)r;
                }
                recv_up_hash = fnv(recv_up_hash, buf + skip, (size_t)r - skip);
                u_recv += (uint64_t)r;
                CHECK(u_recv <= prefix_len + up);
            } else if (r == 0) {
                u_eof = true;
                CHECK_U64(u_recv, prefix_len + up);
            } else {
                CHECK(errno == EAGAIN || errno == EINTR);
            }
        }
    }
    CHECK(sent_up_hash == recv_up_hash);
    CHECK(sent_down_hash == recv_down_hash);
    CHECK_U64(u_sent, down);
}

/* Both app ends see their connection closed by egress (it owns and closes the fds). */
static void check_closed(const struct ends *e) {
    CHECK(peer_closed(e->client_app, 5000, 64 * MIB));
    CHECK(peer_closed(e->upstream_app, 5000, 64 * MIB));
    close(e->client_app);
    close(e->upstream_app);
}

/* ---- the blocking relay on a thread of ours ------------------------------------------ */

struct relay_call {
    int client_fd, upstream_fd;
    const uint8_t *prefix;
    size_t prefix_len;
    const egress_relay_options *options;
    egress_result rc;
    egress_traffic traffic;
    egress_error *error;
    bool sigpipe_blocked_after;
    bool sigpipe_pending_after;
    int64_t took_ms;
    atomic_bool done;
    pthread_t thread;
};

static void *relay_main(void *arg) {
    struct relay_call *c = arg;
    int64_t start = now_ms();
    c->rc = egress_relay(c->client_fd, c->upstream_fd, c->prefix, c->prefix_len, c->options,
                         &c->traffic, &c->error);
    c->took_ms = now_ms() - start;
    /* The thread ends as it began: SIGPIPE not blocked, none left pending. */
    sigset_t mask, pending;
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    sigpending(&pending);
    c->sigpipe_blocked_after = sigismember(&mask, SIGPIPE) == 1;
    c->sigpipe_pending_after = sigismember(&pending, SIGPIPE) == 1;
    atomic_store(&c->done, true);
    return NULL;
}

static void relay_start(struct relay_call *c, const struct ends *e, const uint8_t *prefix,
                        size_t prefix_len, const egress_relay_options *options) {
    c->client_fd = e->client_fd;
    c->upstream_fd = e->upstream_fd;
    c->prefix = prefix;
    c->prefix_len = prefix_len;
    c->options = options;
    c->rc = (egress_result)0x5a5a;
    memset(&c->traffic, BYTE_SENTINEL, sizeof c->traffic);
    c->error = SENTINEL;
    atomic_store(&c->done, false);
    CHECK(pthread_create(&c->thread, NULL, relay_main, c) == 0);
}

static void relay_join(struct relay_call *c, int ms) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    CHECK(pthread_timedjoin_np(c->thread, NULL, &deadline) == 0);
    CHECK(!c->sigpipe_blocked_after);
    CHECK(!c->sigpipe_pending_after);
}

/* ---- the runtime relay's callback ------------------------------------------------------ */

struct completion {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int calls;
    egress_result result;
    egress_traffic traffic;
    bool had_error;
    egress_result code_rc, code;
    egress_result traffic_rc;
    egress_traffic error_traffic;
    char message[512];
    pthread_t thread;
};

static void completion_init(struct completion *c) {
    memset(c, 0, sizeof *c);
    CHECK(pthread_mutex_init(&c->mutex, NULL) == 0);
    pthread_condattr_t attr;
    CHECK(pthread_condattr_init(&attr) == 0);
    CHECK(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0);
    CHECK(pthread_cond_init(&c->cond, &attr) == 0);
    pthread_condattr_destroy(&attr);
}

static void completion_destroy(struct completion *c) {
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mutex);
}

/* The egress_relay_callback: records everything, reads the error while it is valid. */
static void on_relay_done(void *userdata, egress_result result, egress_traffic traffic,
                          const egress_error *error) {
    struct completion *c = userdata;
    pthread_mutex_lock(&c->mutex);
    c->calls++;
    c->result = result;
    c->traffic = traffic;
    c->thread = pthread_self();
    c->had_error = error != NULL;
    if (error != NULL) {
        snprintf(c->message, sizeof c->message, "%s", egress_error_message(error));
        c->code_rc = egress_error_code(error, &c->code);
        c->traffic_rc = egress_error_traffic(error, &c->error_traffic);
    }
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mutex);
}

/* Waits up to `ms` for the callback; returns how many times it has been called. */
static int completion_wait(struct completion *c, int ms) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mutex);
    while (c->calls == 0) {
        if (pthread_cond_timedwait(&c->cond, &c->mutex, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    int calls = c->calls;
    pthread_mutex_unlock(&c->mutex);
    return calls;
}

static int completion_calls(struct completion *c) {
    pthread_mutex_lock(&c->mutex);
    int calls = c->calls;
    pthread_mutex_unlock(&c->mutex);
    return calls;
}

/* The callback came once, from an egress thread, with `result` and a matching error. */
static void check_completion(struct completion *c, egress_result result, int line) {
    check_u64_at(__FILE__, line, "callback calls", (uint64_t)completion_wait(c, 10000), 1);
    check_rc_at(__FILE__, line, "callback result", c->result, result);
    if (result == EGRESS_OK) {
        CHECK_AT(__FILE__, line, !c->had_error);
    } else {
        CHECK_AT(__FILE__, line, c->had_error);
        CHECK_AT(__FILE__, line, c->message[0] != '\0');
        check_rc_at(__FILE__, line, "egress_error_code in callback", c->code_rc, EGRESS_OK);
        check_rc_at(__FILE__, line, "error code in callback", c->code, result);
        check_rc_at(__FILE__, line, "egress_error_traffic in callback", c->traffic_rc,
                    EGRESS_OK);
        check_u64_at(__FILE__, line, "error traffic up", c->error_traffic.client_to_upstream,
                     c->traffic.client_to_upstream);
        check_u64_at(__FILE__, line, "error traffic down", c->error_traffic.upstream_to_client,
                     c->traffic.upstream_to_client);
    }
}

static egress_runtime *new_runtime(size_t threads) {
    egress_runtime *runtime = SENTINEL;
    egress_error *error = SENTINEL;
    CHECK_RC(egress_runtime_new(threads, &runtime, &error), EGRESS_OK);
    CHECK(runtime != NULL && runtime != SENTINEL);
    CHECK(error == SENTINEL);
    return runtime;
}

static void start_async(egress_runtime *runtime, const struct ends *e, const uint8_t *prefix,
                        size_t prefix_len, const egress_relay_options *options,
                        struct completion *c) {
    egress_error *error = SENTINEL;
    CHECK_RC(egress_runtime_relay(runtime, e->client_fd, e->upstream_fd, prefix, prefix_len,
                                  options, on_relay_done, c, &error),
             EGRESS_OK);
    CHECK(error == SENTINEL);
}

/* ---- argument errors --------------------------------------------------------------------- */

/* Whether the read end of the pipe whose write end is `wfd` has been closed. */
static bool pipe_reader_closed(int wfd) {
    struct pollfd p = {wfd, POLLOUT, 0};
    return poll(&p, 1, 1000) == 1 && (p.revents & POLLERR);
}

static void test_argument_errors(void) {
    egress_traffic traffic;
    egress_error *error;
    memset(&traffic, BYTE_SENTINEL, sizeof traffic);
    static const uint8_t prefix[] = "hello";

    section("relay: negative descriptors are EGRESS_INVALID_PARAMETER");
    error = NULL;
    CHECK_RC(egress_relay(-1, -1, NULL, 0, NULL, &traffic, &error), EGRESS_INVALID_PARAMETER);
    CHECK(untouched(&traffic, sizeof traffic));
    CHECK_ERROR(error, EGRESS_INVALID_PARAMETER);
    {
        /* The valid descriptor is still egress's, and closed. */
        int a, b;
        tcp_pair(&a, &b);
        error = NULL;
        CHECK_RC(egress_relay(-1, b, NULL, 0, NULL, &traffic, &error), EGRESS_INVALID_PARAMETER);
        CHECK_ERROR(error, EGRESS_INVALID_PARAMETER);
        CHECK(peer_closed(a, 5000, 0));
        close(a);
        tcp_pair(&a, &b);
        CHECK_RC(egress_relay(b, -7, NULL, 0, NULL, &traffic, NULL), EGRESS_INVALID_PARAMETER);
        CHECK(peer_closed(a, 5000, 0));
        close(a);
    }

    section("relay: descriptors that are not TCP sockets are EGRESS_IO");
    {
        int a, b, p[2];
        tcp_pair(&a, &b);
        CHECK(pipe(p) == 0);
        error = NULL;
        CHECK_RC(egress_relay(p[0], b, NULL, 0, NULL, &traffic, &error), EGRESS_IO);
        CHECK(untouched(&traffic, sizeof traffic));
        CHECK_ERROR(error, EGRESS_IO);
        CHECK(pipe_reader_closed(p[1]));
        CHECK(peer_closed(a, 5000, 0));
        close(p[1]);
        close(a);

        tcp_pair(&a, &b);
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        CHECK(devnull >= 0);
        error = NULL;
        CHECK_RC(egress_relay(b, devnull, NULL, 0, NULL, &traffic, &error), EGRESS_IO);
        CHECK_ERROR(error, EGRESS_IO);
        CHECK(peer_closed(a, 5000, 0));
        close(a);

        /* A TCP socket that is not connected, and a UDP socket. */
        tcp_pair(&a, &b);
        int unconnected = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(unconnected >= 0);
        error = NULL;
        CHECK_RC(egress_relay(b, unconnected, NULL, 0, NULL, &traffic, &error), EGRESS_IO);
        CHECK_ERROR(error, EGRESS_IO);
        CHECK(peer_closed(a, 5000, 0));
        close(a);
        tcp_pair(&a, &b);
        int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        CHECK(udp >= 0);
        error = NULL;
        CHECK_RC(egress_relay(udp, b, NULL, 0, NULL, &traffic, &error), EGRESS_IO);
        CHECK_ERROR(error, EGRESS_IO);
        CHECK(peer_closed(a, 5000, 0));
        close(a);
        CHECK(untouched(&traffic, sizeof traffic));
    }

    section("relay: NULL parameters (the descriptors are closed all the same)");
    {
        struct ends e = new_ends();
        error = NULL;
        CHECK_RC(egress_relay(e.client_fd, e.upstream_fd, NULL, 5, NULL, &traffic, &error),
                 EGRESS_NULL_PARAMETER);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        check_closed(&e);
        e = new_ends();
        error = NULL;
        CHECK_RC(egress_relay(e.client_fd, e.upstream_fd, prefix, 5, NULL, NULL, &error),
                 EGRESS_NULL_PARAMETER);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        check_closed(&e);
        CHECK(untouched(&traffic, sizeof traffic));
    }

    section("runtime relay: argument errors never call back");
    {
        struct completion c;
        completion_init(&c);
        egress_runtime_free(new_runtime(0)); /* 0: one thread per CPU */
        egress_runtime *runtime = new_runtime(1);

        struct ends e = new_ends();
        error = NULL;
        CHECK_RC(egress_runtime_relay(NULL, e.client_fd, e.upstream_fd, prefix, 5, NULL,
                                      on_relay_done, &c, &error),
                 EGRESS_NULL_PARAMETER);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        check_closed(&e);

        e = new_ends();
        error = NULL;
        CHECK_RC(egress_runtime_relay(runtime, e.client_fd, e.upstream_fd, NULL, 3, NULL,
                                      on_relay_done, &c, &error),
                 EGRESS_NULL_PARAMETER);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        check_closed(&e);

        e = new_ends();
        error = NULL;
        CHECK_RC(egress_runtime_relay(runtime, e.client_fd, e.upstream_fd, prefix, 5, NULL, NULL,
                                      &c, &error),
                 EGRESS_NULL_PARAMETER);
        CHECK_ERROR(error, EGRESS_NULL_PARAMETER);
        check_closed(&e);

        int a, b, p[2];
        tcp_pair(&a, &b);
        CHECK(pipe(p) == 0);
        error = NULL;
        CHECK_RC(egress_runtime_relay(runtime, b, p[0], NULL, 0, NULL, on_relay_done, &c, &error),
                 EGRESS_IO);
        CHECK_ERROR(error, EGRESS_IO);
        CHECK(pipe_reader_closed(p[1]));
        CHECK(peer_closed(a, 5000, 0));
        close(p[1]);
        close(a);

        tcp_pair(&a, &b);
        error = NULL;
        CHECK_RC(egress_runtime_relay(runtime, -5, b, NULL, 0, NULL, on_relay_done, &c, &error),
                 EGRESS_INVALID_PARAMETER);
        CHECK_ERROR(error, EGRESS_INVALID_PARAMETER);
        CHECK(peer_closed(a, 5000, 0));
        close(a);

        tcp_pair(&a, &b);
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        CHECK(devnull >= 0);
        CHECK_RC(egress_runtime_relay(runtime, b, devnull, NULL, 0, NULL, on_relay_done, &c,
                                      NULL),
                 EGRESS_IO);
        CHECK(peer_closed(a, 5000, 0));
        close(a);

        sleep_ms(100);
        CHECK(completion_calls(&c) == 0);
        egress_runtime_free(runtime);
        CHECK(completion_calls(&c) == 0);
        completion_destroy(&c);
    }
}

/* ---- transfers ------------------------------------------------------------------------- */

static void test_blocking_transfers(const uint8_t *hello, size_t hello_len) {
    section("relay (blocking): prefix first, 8 MiB each way, half-closes, exact counts");
    {
        struct ends e = new_ends();
        struct relay_call call;
        relay_start(&call, &e, hello, hello_len, NULL);
        pump(&e, hello, hello_len, 8 * MIB, 8 * MIB, 1 * MIB, 60000);
        relay_join(&call, 10000);
        CHECK_RC(call.rc, EGRESS_OK);
        CHECK(call.error == SENTINEL); /* untouched on success */
        CHECK_U64(call.traffic.client_to_upstream, hello_len + 8 * MIB);
        CHECK_U64(call.traffic.upstream_to_client, 8 * MIB);
        check_closed(&e);
    }

    section("relay (blocking): userspace copy, no prefix, unequal sizes");
    {
        egress_relay_options options = {10000, false};
        struct ends e = new_ends();
        struct relay_call call;
        relay_start(&call, &e, NULL, 0, &options);
        pump(&e, NULL, 0, 1 * MIB, 3 * MIB, 0, 30000);
        relay_join(&call, 10000);
        CHECK_RC(call.rc, EGRESS_OK);
        CHECK_U64(call.traffic.client_to_upstream, 1 * MIB);
        CHECK_U64(call.traffic.upstream_to_client, 3 * MIB);
        check_closed(&e);
    }

    section("relay (blocking): nothing either way");
    {
        struct ends e = new_ends();
        struct relay_call call;
        relay_start(&call, &e, NULL, 0, NULL);
        CHECK(shutdown(e.client_app, SHUT_WR) == 0);
        CHECK(shutdown(e.upstream_app, SHUT_WR) == 0);
        relay_join(&call, 10000);
        CHECK_RC(call.rc, EGRESS_OK);
        CHECK_U64(call.traffic.client_to_upstream, 0);
        CHECK_U64(call.traffic.upstream_to_client, 0);
        check_closed(&e);
    }
}

static void test_pipe_budget(void) {
    section("egress_relay_set_pipe_budget: bad sizes, a tiny budget, back to the defaults");
    egress_error *error = SENTINEL;
    CHECK_RC(egress_relay_set_pipe_budget(1, 0, &error), EGRESS_INVALID_PARAMETER);
    CHECK_ERROR(error, EGRESS_INVALID_PARAMETER);
    error = SENTINEL;
    CHECK_RC(egress_relay_set_pipe_budget(0, 4095, &error), EGRESS_INVALID_PARAMETER);
    CHECK_ERROR(error, EGRESS_INVALID_PARAMETER);
    CHECK_RC(egress_relay_set_pipe_budget(0, (1 << 20) + 1, NULL), EGRESS_INVALID_PARAMETER);

    /* One tunnel's worth of one-page pipes: a relay still moves every byte through them. */
    error = SENTINEL;
    CHECK_RC(egress_relay_set_pipe_budget(2, 4096, &error), EGRESS_OK);
    CHECK(error == SENTINEL);
    struct ends e = new_ends();
    struct relay_call call;
    relay_start(&call, &e, NULL, 0, NULL);
    pump(&e, NULL, 0, 1 * MIB, 1 * MIB, 0, 30000);
    relay_join(&call, 10000);
    CHECK_RC(call.rc, EGRESS_OK);
    CHECK_U64(call.traffic.client_to_upstream, 1 * MIB);
    CHECK_U64(call.traffic.upstream_to_client, 1 * MIB);
    check_closed(&e);
    CHECK_RC(egress_relay_set_pipe_budget(0, 0, NULL), EGRESS_OK);
}

static void test_runtime_transfers(const uint8_t *hello, size_t hello_len) {
    section("runtime relay: data both ways, callback from another thread");
    egress_runtime *runtime = new_runtime(2);
    {
        struct completion c;
        completion_init(&c);
        struct ends e = new_ends();
        start_async(runtime, &e, hello, hello_len, NULL, &c);
        pump(&e, hello, hello_len, 4 * MIB, 4 * MIB, 256 * 1024, 60000);
        check_completion(&c, EGRESS_OK, __LINE__);
        CHECK(!pthread_equal(c.thread, main_thread));
        CHECK_U64(c.traffic.client_to_upstream, hello_len + 4 * MIB);
        CHECK_U64(c.traffic.upstream_to_client, 4 * MIB);
        check_closed(&e);
        sleep_ms(50);
        CHECK(completion_calls(&c) == 1); /* exactly once */
        completion_destroy(&c);
    }

    section("runtime relay: three relays at once, the prefix copied");
    {
        struct completion c[3];
        struct ends e[3];
        egress_relay_options copy = {0, false};
        for (int i = 0; i < 3; i++) {
            completion_init(&c[i]);
            e[i] = new_ends();
            /* The prefix is copied: this buffer is gone before the relay writes it. */
            uint8_t prefix[16];
            memset(prefix, 'a' + i, sizeof prefix);
            start_async(runtime, &e[i], prefix, sizeof prefix, i == 1 ? &copy : NULL, &c[i]);
            memset(prefix, 'X', sizeof prefix);
        }
        for (int i = 2; i >= 0; i--) {
            uint8_t want[16];
            memset(want, 'a' + i, sizeof want);
            pump(&e[i], want, sizeof want, 300 * 1000 + (uint64_t)i, 200 * 1000, 1000, 30000);
        }
        for (int i = 0; i < 3; i++) {
            check_completion(&c[i], EGRESS_OK, __LINE__);
            CHECK_U64(c[i].traffic.client_to_upstream, 16 + 300 * 1000 + (uint64_t)i);
            CHECK_U64(c[i].traffic.upstream_to_client, 200 * 1000);
            check_closed(&e[i]);
            completion_destroy(&c[i]);
        }
    }
    egress_runtime_free(runtime);
}

/* ---- failures ------------------------------------------------------------------------ */

static void test_idle_timeouts(void) {
    static const uint8_t abc[] = {'a', 'b', 'c'};
    section("relay (blocking): EGRESS_RELAY_IDLE_TIMEOUT");
    {
        egress_relay_options options = {300, true};
        struct ends e = new_ends();
        struct relay_call call;
        relay_start(&call, &e, abc, 3, &options);
        uint8_t got[3];
        CHECK_U64(read_exact(e.upstream_app, got, 3, 5000), 3);
        CHECK(memcmp(got, abc, 3) == 0);
        relay_join(&call, 10000);
        CHECK_RC(call.rc, EGRESS_RELAY_IDLE_TIMEOUT);
        CHECK(call.took_ms >= 250);
        CHECK(untouched(&call.traffic, sizeof call.traffic)); /* outputs only on success */
        egress_traffic traffic;
        CHECK_RC(egress_error_traffic(call.error, &traffic), EGRESS_OK);
        CHECK_U64(traffic.client_to_upstream, 3);
        CHECK_U64(traffic.upstream_to_client, 0);
        CHECK_ERROR(call.error, EGRESS_RELAY_IDLE_TIMEOUT);
        check_closed(&e);
    }

    section("runtime relay: traffic keeps a tunnel alive, then EGRESS_RELAY_IDLE_TIMEOUT");
    {
        egress_runtime *runtime = new_runtime(1);
        struct completion c;
        completion_init(&c);
        egress_relay_options options = {400, true};
        struct ends e = new_ends();
        int64_t start = now_ms();
        start_async(runtime, &e, abc, 3, &options, &c);
        uint8_t got[3];
        CHECK_U64(read_exact(e.upstream_app, got, 3, 5000), 3);
        /* A byte each way every 100 ms for 1 s: never idle for 400 ms. */
        for (int i = 0; i < 10; i++) {
            sleep_ms(100);
            uint8_t byte = (uint8_t)i;
            CHECK(write_all(e.client_app, &byte, 1, 1000));
            CHECK_U64(read_exact(e.upstream_app, &byte, 1, 1000), 1);
            CHECK(write_all(e.upstream_app, &byte, 1, 1000));
            CHECK_U64(read_exact(e.client_app, &byte, 1, 1000), 1);
            CHECK(byte == (uint8_t)i);
        }
        CHECK(completion_calls(&c) == 0);
        check_completion(&c, EGRESS_RELAY_IDLE_TIMEOUT, __LINE__);
        CHECK(now_ms() - start >= 1000 + 350);
        CHECK(!pthread_equal(c.thread, main_thread));
        CHECK_U64(c.traffic.client_to_upstream, 3 + 10);
        CHECK_U64(c.traffic.upstream_to_client, 10);
        check_closed(&e);
        egress_runtime_free(runtime);
        completion_destroy(&c);
    }
}

/*
 * One side resets (SO_LINGER 0) in the middle of a transfer while the other keeps sending.
 * The relay's write to the vanished peer (splice raises SIGPIPE there) must become
 * EGRESS_RELAY_CLIENT_FAILED or _UPSTREAM_FAILED, never a signal: SIGPIPE is not ignored
 * in this process.
 */
static void reset_case(bool blocking, bool reset_client, bool splice) {
    static const uint8_t ping[] = {'P', 'I', 'N', 'G'};
    egress_relay_options options = {0, splice};
    struct ends e = new_ends();
    struct relay_call call;
    struct completion c;
    egress_runtime *runtime = NULL;
    if (blocking) {
        relay_start(&call, &e, ping, sizeof ping, &options);
    } else {
        completion_init(&c);
        runtime = new_runtime(1);
        start_async(runtime, &e, ping, sizeof ping, &options, &c);
    }
    uint8_t got[4];
    CHECK_U64(read_exact(e.upstream_app, got, 4, 5000), 4);
    CHECK(memcmp(got, ping, 4) == 0);

    int sender = reset_client ? e.upstream_app : e.client_app;
    int receiver = reset_client ? e.client_app : e.upstream_app;
    set_nonblocking(sender);
    set_nonblocking(receiver);
    static uint8_t buf[65536];
    memset(buf, 'z', sizeof buf);
    uint64_t received = 0;
    int64_t deadline = now_ms() + 10000;
    while (received < 256 * 1024) {
        CHECK(now_ms() < deadline);
        (void)send(sender, buf, sizeof buf, MSG_NOSIGNAL | MSG_DONTWAIT);
        struct pollfd p = {receiver, POLLIN, 0};
        if (poll(&p, 1, 10) == 1) {
            ssize_t r = recv(receiver, buf, sizeof buf, MSG_DONTWAIT);
            CHECK(r > 0 || (r < 0 && errno == EAGAIN));
            if (r > 0) {
                received += (uint64_t)r;
            }
        }
    }
    /* Fill what is in flight, then vanish with a RST. */
    for (int i = 0; i < 64; i++) {
        (void)send(sender, buf, sizeof buf, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    reset_close(receiver);
    /* Keep sending until the relay gives up (the sends fail once egress closed the fd). */
    deadline = now_ms() + 10000;
    for (;;) {
        bool done = blocking ? atomic_load(&call.done) : completion_calls(&c) > 0;
        if (done) {
            break;
        }
        CHECK(now_ms() < deadline);
        (void)send(sender, buf, sizeof buf, MSG_NOSIGNAL | MSG_DONTWAIT);
        sleep_ms(1);
    }
    egress_result want = reset_client ? EGRESS_RELAY_CLIENT_FAILED : EGRESS_RELAY_UPSTREAM_FAILED;
    egress_traffic traffic;
    if (blocking) {
        relay_join(&call, 10000);
        CHECK_RC(call.rc, want);
        CHECK(untouched(&call.traffic, sizeof call.traffic));
        CHECK_RC(egress_error_traffic(call.error, &traffic), EGRESS_OK);
        CHECK_ERROR(call.error, want);
    } else {
        check_completion(&c, want, __LINE__);
        CHECK(!pthread_equal(c.thread, main_thread));
        traffic = c.traffic;
    }
    if (reset_client) {
        CHECK_U64(traffic.client_to_upstream, 4);
        CHECK(traffic.upstream_to_client >= received);
    } else {
        CHECK(traffic.client_to_upstream >= 4 + received);
        CHECK_U64(traffic.upstream_to_client, 0);
    }
    CHECK(peer_closed(sender, 5000, 256 * MIB));
    close(sender);
    if (!blocking) {
        egress_runtime_free(runtime);
        CHECK(completion_calls(&c) == 1);
        completion_destroy(&c);
    }
}

static void test_resets(void) {
    section("relay (blocking, splice): client reset is EGRESS_RELAY_CLIENT_FAILED");
    reset_case(true, true, true);
    section("relay (blocking, copy): upstream reset is EGRESS_RELAY_UPSTREAM_FAILED");
    reset_case(true, false, false);
    section("relay (blocking, splice): upstream reset is EGRESS_RELAY_UPSTREAM_FAILED");
    reset_case(true, false, true);
    section("runtime relay (splice): upstream reset is EGRESS_RELAY_UPSTREAM_FAILED");
    reset_case(false, false, true);
    section("runtime relay (splice): client reset is EGRESS_RELAY_CLIENT_FAILED");
    reset_case(false, true, true);
    section("runtime relay (copy): client reset is EGRESS_RELAY_CLIENT_FAILED");
    reset_case(false, true, false);
}

void test_relay_cancel(void) {
    section("runtime relay: egress_runtime_free cancels, EGRESS_RELAY_CANCELLED");
    egress_runtime *runtime = new_runtime(1);
    struct completion c;
    completion_init(&c);
    struct ends e = new_ends();
    static const uint8_t prefix[] = {'1', '2', '3', '4', '5'};
    start_async(runtime, &e, prefix, sizeof prefix, NULL, &c);
    uint8_t got[5];
    CHECK_U64(read_exact(e.upstream_app, got, 5, 5000), 5);
    CHECK(write_all(e.upstream_app, "xyz", 3, 1000));
    CHECK_U64(read_exact(e.client_app, got, 3, 5000), 3);
    CHECK(memcmp(got, "xyz", 3) == 0);
    sleep_ms(50);
    CHECK(completion_calls(&c) == 0);

    int64_t start = now_ms();
    egress_runtime_free(runtime);
    CHECK(now_ms() - start < 10000);
    /* Freeing called the callback before it returned. */
    CHECK_U64(completion_calls(&c), 1);
    CHECK_RC(c.result, EGRESS_RELAY_CANCELLED);
    CHECK(c.had_error);
    CHECK(c.message[0] != '\0');
    CHECK_RC(c.code_rc, EGRESS_OK);
    CHECK_RC(c.code, EGRESS_RELAY_CANCELLED);
    check_closed(&e);
    /* The header: a relay cut off by egress_runtime_free is not counted: zero traffic in the
     * callback, and its error carries none (egress_error_traffic says NOT_FOUND). */
    CHECK_RC(c.traffic_rc, EGRESS_NOT_FOUND);
    CHECK_U64(c.traffic.client_to_upstream, 0);
    CHECK_U64(c.traffic.upstream_to_client, 0);
    completion_destroy(&c);
}

void test_relay(void) {
    main_thread = pthread_self();
    size_t hello_len;
    uint8_t *hello = read_data("curl-openssl3.bin", &hello_len);

    test_argument_errors();
    test_blocking_transfers(hello, hello_len);
    test_pipe_budget();
    test_runtime_transfers(hello, hello_len);
    test_idle_timeouts();
    test_resets();

    free(hello);
}
