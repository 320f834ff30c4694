/*
 * sni_router: a small SNI router in C on libegress.
 *
 * It accepts TLS connections on 127.0.0.1, reads each ClientHello with an
 * egress_client_hello_reader, decides its server name with an egress_policy, resolves the
 * name with getaddrinfo, checks each address with egress_policy_check_resolved (that check
 * is what stops DNS rebinding), connects, and hands both sockets to egress_runtime_relay
 * with the bytes already read as the prefix. A denied connection is closed.
 *
 *   sni_router [-l PORT] [-p UPSTREAM_PORT] [-c POLICY_FILE] [-r HOST]
 *   sni_router --self-check
 *
 *   -l  listen on 127.0.0.1:PORT (default 8443; 0 picks a free port)
 *   -p  the upstream port (default 443)
 *   -c  a policy file: egress's [policy] TOML (default: the built-in policy below)
 *   -r  resolve HOST instead of the server name (for a demo on loopback: -r 127.0.0.1)
 *
 * Hellos are read one at a time (with a 5 s timeout) on the main thread, to stay short; the
 * relays run on egress's threads. SIGINT or SIGTERM stops it: freeing the runtime cancels
 * the relays still running.
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "egress.h"

static const char builtin_policy[] =
    "# The names the router may reach (a port list may follow each: \"*.example.com:443\").\n"
    "allow = [\"*.example.com\", \"*.example.org\"]\n"
    "# Loopback is denied by default; the demo dials it (-r 127.0.0.1).\n"
    "allow_cidrs = [\"127.0.0.0/8\"]\n";

struct options {
    unsigned listen_port;
    unsigned upstream_port;
    const char *policy_file;
    const char *resolve; /* NULL: resolve the server name itself */
};

static volatile sig_atomic_t stopping;

static void on_signal(int signal) {
    (void)signal;
    stopping = 1;
}

/* Prints why an egress call failed, and frees its error. */
static void report(const char *what, egress_result result, egress_error *error) {
    fprintf(stderr, "%s: %s\n", what,
            error != NULL ? egress_error_message(error) : egress_result_message(result));
    egress_error_free(error);
}

/* Called by egress, on one of its threads, when a relay ends. */
static void relay_done(void *userdata, egress_result result, egress_traffic traffic,
                       const egress_error *error) {
    char *name = userdata;
    fprintf(stderr, "%s: %s, %llu bytes up, %llu bytes down\n", name,
            result == EGRESS_OK ? "closed" : egress_error_message(error),
            (unsigned long long)traffic.client_to_upstream,
            (unsigned long long)traffic.upstream_to_client);
    free(name);
}

/* Reads the ClientHello into buf; *len is every byte read. NULL when there is none. */
static egress_client_hello *read_hello(int fd, uint8_t *buf, size_t cap, size_t *len) {
    egress_client_hello_reader *reader;
    egress_result result = egress_client_hello_reader_new(cap, &reader);
    if (result != EGRESS_OK) {
        report("ClientHello reader", result, NULL);
        return NULL;
    }
    egress_client_hello *hello = NULL;
    *len = 0;
    while (hello == NULL) {
        /* The reader refuses a hello larger than cap, so there is room while it needs more. */
        ssize_t n = recv(fd, buf + *len, cap - *len, 0);
        if (n <= 0) {
            fprintf(stderr, "the client sent no complete ClientHello\n");
            break;
        }
        size_t need;
        egress_error *error = NULL;
        result = egress_client_hello_reader_feed(reader, buf + *len, (size_t)n, &need, &hello,
                                                 &error);
        *len += (size_t)n;
        if (result != EGRESS_OK) {
            report("ClientHello", result, error); /* not TLS, or not routable */
            break;
        }
    }
    egress_client_hello_reader_free(reader);
    return hello;
}

/* Whether the policy lets `name` be reached on `port`, before resolving it. */
static bool name_allowed(const egress_policy *policy, const char *name, unsigned port) {
    egress_decision decision;
    egress_error *error = NULL;
    egress_result result =
        egress_policy_check(policy, name, strlen(name), (uint16_t)port, &decision, &error);
    if (result != EGRESS_OK) {
        report(name, result, error);
        return false;
    }
    if (!decision.allowed) {
        fprintf(stderr, "%s: denied (%s)\n", name, decision.reason_name);
    }
    return decision.allowed;
}

/* Connects to the first address of `name` that the policy allows; -1 when none. */
static int dial(const egress_policy *policy, const char *name, const char *resolve,
                unsigned port) {
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo *addrs;
    int gai = getaddrinfo(resolve != NULL ? resolve : name, service, &hints, &addrs);
    if (gai != 0) {
        fprintf(stderr, "%s: cannot resolve: %s\n", name, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = addrs; a != NULL && fd < 0; a = a->ai_next) {
        char ip[INET6_ADDRSTRLEN];
        const void *raw = a->ai_family == AF_INET6
                              ? (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr
                              : (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr;
        if (inet_ntop(a->ai_family, raw, ip, sizeof ip) == NULL) {
            continue;
        }
        egress_decision decision;
        egress_error *error = NULL;
        egress_result result = egress_policy_check_resolved(
            policy, name, strlen(name), (uint16_t)port, ip, strlen(ip), &decision, &error);
        if (result != EGRESS_OK) {
            report(name, result, error);
            continue;
        }
        if (!decision.allowed) {
            fprintf(stderr, "%s: address %s denied (%s)\n", name, ip, decision.reason_name);
            continue;
        }
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            fprintf(stderr, "%s: connecting to %s: %s\n", name, ip, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(addrs);
    return fd;
}

/* Routes one accepted client: hello, decision, dial, relay; or closes it. */
static void route(int client, const egress_policy *policy, const egress_runtime *runtime,
                  const struct options *o) {
    struct timeval timeout = {5, 0};
    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    uint8_t buf[16384];
    size_t len = 0;
    egress_client_hello *hello = read_hello(client, buf, sizeof buf, &len);
    char *name = NULL;
    const char *sni;
    size_t sni_len;
    if (hello != NULL && egress_client_hello_server_name(hello, &sni, &sni_len) == EGRESS_OK) {
        name = strdup(sni); /* the hello's text lives only as long as the hello */
    } else if (hello != NULL) {
        fprintf(stderr, "a ClientHello without a server name: closing\n");
    }
    egress_client_hello_free(hello);

    int upstream = -1;
    if (name != NULL && name_allowed(policy, name, o->upstream_port)) {
        upstream = dial(policy, name, o->resolve, o->upstream_port);
    }
    if (upstream < 0) {
        free(name);
        close(client);
        return;
    }
    fprintf(stderr, "%s: relaying\n", name);
    /* egress owns both descriptors from here; `name` is the callback's to free. */
    egress_error *error = NULL;
    egress_result result = egress_runtime_relay(runtime, client, upstream, buf, len, NULL,
                                                relay_done, name, &error);
    if (result != EGRESS_OK) {
        report(name, result, error); /* the relay did not start: no callback */
        free(name);
    }
}

/* The whole text of `path` (malloc'd), or NULL. */
static char *read_file(const char *path, size_t *len) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        return NULL;
    }
    char *text = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len == cap) {
            cap = cap ? 2 * cap : 4096;
            char *bigger = realloc(text, cap);
            if (bigger == NULL) {
                break;
            }
            text = bigger;
        }
        size_t n = fread(text + *len, 1, cap - *len, file);
        if (n == 0) {
            break;
        }
        *len += n;
    }
    bool failed = ferror(file) || *len == cap;
    fclose(file);
    if (failed) {
        free(text);
        return NULL;
    }
    return text;
}

/* Checks that the library and the built-in policy decide as the comments above say. */
static int self_check(const egress_policy *policy) {
    static const struct {
        const char *name, *ip;
        bool allowed;
    } cases[] = {
        {"www.example.com", "127.0.0.1", true},  /* allowed name, re-opened range */
        {"www.example.com", "10.0.0.1", false},  /* a private range stays denied */
        {"www.example.net", "127.0.0.1", false}, /* a name not in the allow list */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        egress_decision d;
        egress_error *error = NULL;
        egress_result result = egress_policy_check_resolved(
            policy, cases[i].name, strlen(cases[i].name), 443, cases[i].ip, strlen(cases[i].ip),
            &d, &error);
        if (result != EGRESS_OK || d.allowed != cases[i].allowed) {
            fprintf(stderr, "self-check failed for %s at %s\n", cases[i].name, cases[i].ip);
            egress_error_free(error);
            return 1;
        }
    }
    egress_runtime *runtime;
    egress_error *error = NULL;
    egress_result result = egress_runtime_new(1, &runtime, &error);
    if (result != EGRESS_OK) {
        report("runtime", result, error);
        return 1;
    }
    egress_runtime_free(runtime);
    printf("self-check ok (egress %s)\n", egress_version());
    return 0;
}

static int usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s [-l PORT] [-p UPSTREAM_PORT] [-c POLICY_FILE] [-r HOST]\n"
            "       %s --self-check\n",
            argv0, argv0);
    return 2;
}

int main(int argc, char **argv) {
    struct options o = {8443, 443, NULL, NULL};
    bool check = argc == 2 && strcmp(argv[1], "--self-check") == 0;
    int opt;
    while (!check && (opt = getopt(argc, argv, "l:p:c:r:")) != -1) {
        char *end = NULL;
        unsigned long port = optarg != NULL ? strtoul(optarg, &end, 10) : 0;
        bool is_port = end != NULL && end != optarg && *end == '\0' && port <= 65535;
        if (opt == 'l' && is_port) {
            o.listen_port = (unsigned)port;
        } else if (opt == 'p' && is_port && port > 0) {
            o.upstream_port = (unsigned)port;
        } else if (opt == 'c') {
            o.policy_file = optarg;
        } else if (opt == 'r') {
            o.resolve = optarg;
        } else {
            return usage(argv[0]);
        }
    }
    if (!check && optind != argc) {
        return usage(argv[0]);
    }

    /* The policy: from the file, or built in. Its errors name their line. */
    size_t len = sizeof builtin_policy - 1;
    char *text = NULL;
    if (o.policy_file != NULL && (text = read_file(o.policy_file, &len)) == NULL) {
        fprintf(stderr, "%s: %s\n", o.policy_file, strerror(errno ? errno : EIO));
        return 1;
    }
    egress_policy *policy;
    egress_error *error = NULL;
    egress_result result =
        egress_policy_new(text != NULL ? text : builtin_policy, len, &policy, &error);
    free(text);
    if (result != EGRESS_OK) {
        report(o.policy_file != NULL ? o.policy_file : "built-in policy", result, error);
        return 1;
    }
    if (check) {
        int status = self_check(policy);
        egress_policy_free(policy);
        return status;
    }

    egress_runtime *runtime;
    result = egress_runtime_new(0, &runtime, &error);
    if (result != EGRESS_OK) {
        report("runtime", result, error);
        egress_policy_free(policy);
        return 1;
    }

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)o.listen_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t addr_len = sizeof addr;
    int one = 1;
    if (listener < 0 ||
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 128) != 0 ||
        getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0) {
        perror("listening on 127.0.0.1");
        egress_runtime_free(runtime);
        egress_policy_free(policy);
        return 1;
    }
    printf("listening on 127.0.0.1:%u, routing to port %u\n", ntohs(addr.sin_port),
           o.upstream_port);
    fflush(stdout);

    /* No SA_RESTART: a signal interrupts accept, and the loop ends. */
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);

    while (!stopping) {
        int client = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (client < 0) {
            if (errno != EINTR) {
                perror("accept");
                sleep(1); /* out of descriptors, say: do not spin */
            }
            continue;
        }
        route(client, policy, runtime, &o);
    }

    close(listener);
    egress_runtime_free(runtime); /* cancels the relays still running */
    egress_policy_free(policy);
    return 0;
}
