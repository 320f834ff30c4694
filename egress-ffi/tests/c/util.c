/* The helpers declared in check.h. */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "check.h"

/* ---- checks ---------------------------------------------------------------------------- */

static atomic_ulong checks_passed;
const char *volatile current_section = "start";
char sentinel_object;

void check_passed(void) {
    atomic_fetch_add(&checks_passed, 1);
}

unsigned long checks_passed_count(void) {
    return atomic_load(&checks_passed);
}

void check_failed(const char *file, int line, const char *what, const char *detail) {
    fprintf(stderr, "%s:%d: CHECK failed in [%s]: %s%s%s\n", file, line, current_section, what,
            detail ? "\n    " : "", detail ? detail : "");
    fprintf(stderr, "(%lu checks passed before this one)\n", checks_passed_count());
    fflush(stderr);
    /* _exit: a failed run stops here, without leak reports about what it left behind. */
    _exit(1);
}

void check_rc_at(const char *file, int line, const char *what, uint32_t got, uint32_t expected) {
    if (got == expected) {
        check_passed();
        return;
    }
    char detail[512];
    snprintf(detail, sizeof detail, "returned %u (%s), expected %u (%s)", got,
             egress_result_message(got), expected, egress_result_message(expected));
    check_failed(file, line, what, detail);
}

void check_str_at(const char *file, int line, const char *what, const char *got,
                  const char *expected) {
    if (got != NULL && expected != NULL && strcmp(got, expected) == 0) {
        check_passed();
        return;
    }
    char detail[1024];
    snprintf(detail, sizeof detail, "got \"%s\", expected \"%s\"", got ? got : "(NULL)",
             expected ? expected : "(NULL)");
    check_failed(file, line, what, detail);
}

void check_u64_at(const char *file, int line, const char *what, uint64_t got, uint64_t expected) {
    if (got == expected) {
        check_passed();
        return;
    }
    char detail[256];
    snprintf(detail, sizeof detail, "got %llu, expected %llu", (unsigned long long)got,
             (unsigned long long)expected);
    check_failed(file, line, what, detail);
}

void check_error_at(const char *file, int line, egress_error *error, egress_result code) {
    CHECK_AT(file, line, error != NULL && error != SENTINEL);
    const char *message = egress_error_message(error);
    CHECK_AT(file, line, message != NULL && message[0] != '\0');
    egress_result got = (egress_result)0xdead;
    check_rc_at(file, line, "egress_error_code(error, &got)", egress_error_code(error, &got),
                EGRESS_OK);
    check_rc_at(file, line, "egress_error_code(error) == the call's result", got, code);
    bool relay = code >= EGRESS_RELAY_CLIENT_FAILED && code <= EGRESS_RELAY_CANCELLED;
    egress_traffic traffic;
    memset(&traffic, BYTE_SENTINEL, sizeof traffic);
    egress_result traffic_rc = egress_error_traffic(error, &traffic);
    if (relay) {
        check_rc_at(file, line, "egress_error_traffic(relay error)", traffic_rc, EGRESS_OK);
    } else {
        check_rc_at(file, line, "egress_error_traffic(non-relay error)", traffic_rc,
                    EGRESS_NOT_FOUND);
        CHECK_AT(file, line, untouched(&traffic, sizeof traffic));
    }
    egress_error_free(error);
}

void section(const char *name) {
    current_section = name;
}

bool untouched(const void *p, size_t len) {
    const unsigned char *bytes = p;
    for (size_t i = 0; i < len; i++) {
        if (bytes[i] != BYTE_SENTINEL) {
            return false;
        }
    }
    return true;
}

/* ---- time ------------------------------------------------------------------------------ */

int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Milliseconds left until `deadline`, at least 0. */
static int left_ms(int64_t deadline) {
    int64_t left = deadline - now_ms();
    return left > 0 ? (int)left : 0;
}

/* ---- loopback TCP ---------------------------------------------------------------------- */

static struct sockaddr_in loopback(uint16_t port) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

int tcp_listen(uint16_t *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in addr = loopback(0);
    CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    CHECK(listen(fd, 64) == 0);
    socklen_t len = sizeof addr;
    CHECK(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

int tcp_connect(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in addr = loopback(port);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int tcp_accept(int listener, int ms) {
    struct pollfd p = {listener, POLLIN, 0};
    int n;
    do {
        n = poll(&p, 1, ms);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
        return -1;
    }
    return accept4(listener, NULL, NULL, SOCK_CLOEXEC);
}

void tcp_pair(int *a, int *b) {
    uint16_t port;
    int listener = tcp_listen(&port);
    *a = tcp_connect(port);
    CHECK(*a >= 0);
    *b = tcp_accept(listener, 5000);
    CHECK(*b >= 0);
    close(listener);
}

void set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    CHECK(flags >= 0);
    CHECK(fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
}

void reset_close(int fd) {
    struct linger linger = {1, 0};
    CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger) == 0);
    close(fd);
}

size_t read_exact(int fd, void *buf, size_t len, int ms) {
    int64_t deadline = now_ms() + ms;
    size_t got = 0;
    while (got < len) {
        struct pollfd p = {fd, POLLIN, 0};
        int n = poll(&p, 1, left_ms(deadline));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        ssize_t r = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);
        if (r > 0) {
            got += (size_t)r;
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
            break;
        }
    }
    return got;
}

bool write_all(int fd, const void *buf, size_t len, int ms) {
    int64_t deadline = now_ms() + ms;
    size_t done = 0;
    while (done < len) {
        struct pollfd p = {fd, POLLOUT, 0};
        int n = poll(&p, 1, left_ms(deadline));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        ssize_t w = send(fd, (const char *)buf + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            done += (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            return false;
        }
    }
    return true;
}

bool peer_closed(int fd, int ms, size_t max_drain) {
    int64_t deadline = now_ms() + ms;
    size_t drained = 0;
    char buf[65536];
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int n = poll(&p, 1, left_ms(deadline));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r == 0) {
            return true;
        }
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            return errno == ECONNRESET || errno == EPIPE;
        }
        drained += (size_t)r;
        if (drained > max_drain) {
            return false;
        }
    }
}

size_t read_http_head(int fd, char *buf, size_t len, int ms) {
    int64_t deadline = now_ms() + ms;
    size_t got = 0;
    buf[0] = '\0';
    while (got + 1 < len && strstr(buf, "\r\n\r\n") == NULL) {
        struct pollfd p = {fd, POLLIN, 0};
        int n = poll(&p, 1, left_ms(deadline));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        /* One byte at a time: nothing after the head is consumed. */
        ssize_t r = recv(fd, buf + got, 1, MSG_DONTWAIT);
        if (r == 1) {
            got++;
            buf[got] = '\0';
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
            break;
        }
    }
    return got;
}

/* ---- data files ------------------------------------------------------------------------ */

const char *data_dir = ".";

uint8_t *read_data(const char *name, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", data_dir, name);
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
    }
    CHECK(file != NULL);
    uint8_t *data = NULL;
    size_t size = 0;
    size_t cap = 0;
    for (;;) {
        if (size == cap) {
            cap = cap ? cap * 2 : 4096;
            data = realloc(data, cap);
            CHECK(data != NULL);
        }
        size_t n = fread(data + size, 1, cap - size, file);
        if (n == 0) {
            break;
        }
        size += n;
    }
    CHECK(ferror(file) == 0);
    fclose(file);
    CHECK(size > 0);
    *len = size;
    return data;
}
