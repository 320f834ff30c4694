/*
 * Shared pieces of the C API test: the CHECK macros, loopback socket helpers, data files.
 * Every helper is bounded in time (poll with timeouts) and only ever uses 127.0.0.1.
 */

#ifndef EGRESS_TEST_CHECK_H
#define EGRESS_TEST_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "egress.h"

/* ---- checks ---------------------------------------------------------------------------- */

/* Fails the run: prints file:line and what failed, then exits with status 1. */
void check_failed(const char *file, int line, const char *what, const char *detail);
/* Counts a passed check. Thread-safe. */
void check_passed(void);
unsigned long checks_passed_count(void);

#define CHECK_AT(file, line, expr)                                                            \
    do {                                                                                      \
        if (expr) {                                                                           \
            check_passed();                                                                   \
        } else {                                                                              \
            check_failed((file), (line), #expr, NULL);                                        \
        }                                                                                     \
    } while (0)

#define CHECK(expr) CHECK_AT(__FILE__, __LINE__, expr)

/* `call` must return `expected` (egress_result codes); prints both codes on failure. */
#define CHECK_RC(call, expected)                                                              \
    check_rc_at(__FILE__, __LINE__, #call, (uint32_t)(call), (uint32_t)(expected))
void check_rc_at(const char *file, int line, const char *what, uint32_t got, uint32_t expected);

/* Two NUL-terminated strings must be equal; prints both on failure. */
#define CHECK_STR(got, expected)                                                              \
    check_str_at(__FILE__, __LINE__, #got " == " #expected, (got), (expected))
void check_str_at(const char *file, int line, const char *what, const char *got,
                  const char *expected);

/* Two unsigned numbers must be equal; prints both on failure. */
#define CHECK_U64(got, expected)                                                              \
    check_u64_at(__FILE__, __LINE__, #got " == " #expected, (uint64_t)(got), (uint64_t)(expected))
void check_u64_at(const char *file, int line, const char *what, uint64_t got, uint64_t expected);

/*
 * `error` must be the object a call failing with `code` stored: not NULL, the same code,
 * a non-empty message, and (unless it is a relay's) no traffic. The error is freed.
 */
#define CHECK_ERROR(error, code) check_error_at(__FILE__, __LINE__, (error), (code))
void check_error_at(const char *file, int line, egress_error *error, egress_result code);

/* What a test section is doing, for the watchdog's message. */
extern const char *volatile current_section;
void section(const char *name);

/* A pointer value no call makes: pre-fill pointer outputs with it. */
extern char sentinel_object;
#define SENTINEL ((void *)&sentinel_object)
#define SIZE_SENTINEL ((size_t)0x5a5a5a5a)
/* The byte memset over struct and bool outputs. */
#define BYTE_SENTINEL 0xa5
/* Whether every byte of `p` is BYTE_SENTINEL. */
bool untouched(const void *p, size_t len);

/* ---- time ------------------------------------------------------------------------------ */

int64_t now_ms(void);
void sleep_ms(int ms);

/* ---- loopback TCP ---------------------------------------------------------------------- */

/* A listening socket on 127.0.0.1 with a free port, written to *port. */
int tcp_listen(uint16_t *port);
/* A blocking connection to 127.0.0.1:port; -1 with errno on failure. */
int tcp_connect(uint16_t port);
/* Accepts on `listener` within `ms` milliseconds; -1 on timeout. */
int tcp_accept(int listener, int ms);
/* A connected pair of TCP sockets on loopback: a (the connecting end) and b (accepted). */
void tcp_pair(int *a, int *b);
void set_nonblocking(int fd);
/* Closes with SO_LINGER 0, so that the peer gets a RST. */
void reset_close(int fd);
/* Reads exactly `len` bytes within `ms`; returns how many arrived (fewer on EOF/timeout). */
size_t read_exact(int fd, void *buf, size_t len, int ms);
/* Writes everything within `ms` (MSG_NOSIGNAL); returns whether it did. */
bool write_all(int fd, const void *buf, size_t len, int ms);
/*
 * Whether the peer of `fd` closed (EOF or reset) within `ms`: data still arriving is read
 * and dropped (at most `max_drain` bytes).
 */
bool peer_closed(int fd, int ms, size_t max_drain);
/* Reads until "\r\n\r\n" (at most len-1 bytes, NUL-terminated) within `ms`. */
size_t read_http_head(int fd, char *buf, size_t len, int ms);

/* ---- data files ------------------------------------------------------------------------ */

extern const char *data_dir;
/* The whole file `name` in data_dir (malloc'd; free it); the run fails if it is missing. */
uint8_t *read_data(const char *name, size_t *len);

/* ---- sections (one per file) ----------------------------------------------------------- */

void test_basics(void);
void test_client_hello(void);
void test_http(void);
void test_policy(void);
void test_relay(void);
/* Last: it checks the cancelled callback's byte counts. */
void test_relay_cancel(void);
void test_proxy(void);

#endif /* EGRESS_TEST_CHECK_H */
