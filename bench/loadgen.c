/*
 * loadgen: the load generator of xsock_green's benchmark harness.
 *
 * It is deliberately not the library under test: one single-threaded C
 * process on epoll that every echo server faces with the same settings.
 * run.py builds it on the fly with `cc -O2` and runs it once per
 * measurement; it prints one JSON line of results on stdout.
 *
 * Modes
 *   echo   N stream connections (TCP or unix), closed loop: send S bytes,
 *          read S bytes back, verify them, repeat.
 *   udp    N connected UDP sockets, ping-pong of one S-byte datagram.
 *   churn  N slots, each: connect, one S-byte echo, close, again.
 *   sink   one connection pushes --bytes one way; the server reads and
 *          discards until end of stream, then closes.
 *   source the mirror of sink: one connection sends the 8-byte big-endian
 *          request --bytes, then only reads; the server sends that many
 *          bytes and closes; the generator discards them until end of
 *          stream and checks it got exactly --bytes.  Same JSON as sink.
 *   idle   open N connections in batches (one echo each, so every one is
 *          accepted and served), read the server's VmRSS before and after,
 *          then time one S-byte echo on all N at once; close them all.
 *
 * Timed modes warm up for --warmup-ms, then measure for --duration-ms (or
 * until --requests requests completed).  Server CPU time is read from
 * /proc/<pid> at the edges of the measured window: the main thread's
 * schedstat (nanoseconds) for a single-threaded server, utime+stime (clock
 * ticks, exited threads included) otherwise.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ---- options ---------------------------------------------------------- */

enum { M_ECHO, M_UDP, M_CHURN, M_SINK, M_IDLE, M_SOURCE };

static int mode = M_ECHO;
static const char *host = "127.0.0.1";
static int port = 0;
static const char *unix_path = NULL;
static int nconns = 1;
static size_t size = 1024;
static long warmup_ms = 200;
static long duration_ms = 1000;
static long long max_requests = 0;
static long long total_bytes = 64LL << 20;
static int server_pid = 0;
static int batch = 128;
static long timeout_ms = 120000;
static long settle_ms = 200;

/* ---- time and histogram ---------------------------------------------- */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Log-linear buckets: exact below 128 ns, then 64 sub-buckets per power of
 * two (about 1.6 % resolution), as HdrHistogram does. */
#define SUB 64
#define NBUCKETS (128 + 58 * SUB)
static uint64_t hist[NBUCKETS];
static uint64_t hist_n, hist_max;

static int bucket_of(uint64_t v) {
    if (v < 128) return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - 6;
    int idx = 128 + (shift - 1) * SUB + (int)((v >> shift) - SUB);
    return idx < NBUCKETS ? idx : NBUCKETS - 1;
}

static uint64_t bucket_value(int idx) {
    if (idx < 128) return (uint64_t)idx;
    int shift = (idx - 128) / SUB + 1;
    uint64_t top = (uint64_t)((idx - 128) % SUB + SUB);
    return (top << shift) + ((1ULL << shift) >> 1);
}

static void hist_add(uint64_t v) {
    hist[bucket_of(v)]++;
    hist_n++;
    if (v > hist_max) hist_max = v;
}

static void hist_reset(void) {
    memset(hist, 0, sizeof hist);
    hist_n = hist_max = 0;
}

static double hist_pct_us(double p) {
    if (hist_n == 0) return 0.0;
    uint64_t want = (uint64_t)(p * (double)hist_n + 0.999999);
    if (want < 1) want = 1;
    uint64_t seen = 0;
    for (int i = 0; i < NBUCKETS; i++) {
        seen += hist[i];
        if (seen >= want) {
            uint64_t v = bucket_value(i);
            return (double)(v < hist_max ? v : hist_max) / 1000.0;
        }
    }
    return (double)hist_max / 1000.0;
}

/* ---- the server process, seen from /proc ----------------------------- */

typedef struct {
    double ticks_s;  /* utime + stime of the whole process, exited threads included */
    double tasks_s;  /* run time of the live threads, from their schedstat (ns) */
    long tid_sum;    /* which threads were summed */
    int threads;
} cpu_t;

static int read_file(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0) return -1;
    buf[n] = 0;
    return (int)n;
}

static long status_field(const char *name) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", server_pid);
    if (read_file(path, buf, sizeof buf) < 0) return -1;
    char *p = strstr(buf, name);
    if (!p) return -1;
    return strtol(p + strlen(name), NULL, 10);
}

#define MAX_SUMMED 64

static cpu_t server_cpu(void) {
    cpu_t c = {0, -1, 0, 0};
    if (server_pid <= 0) return c;
    char path[320], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", server_pid);
    if (read_file(path, buf, sizeof buf) > 0) {
        char *p = strrchr(buf, ')');
        unsigned long ut = 0, st = 0;
        /* after the name: state ppid pgrp session tty tpgid flags minflt
         * cminflt majflt cmajflt utime stime */
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                        &st) == 2)
            c.ticks_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }
    c.threads = (int)status_field("Threads:");
    if (c.threads < 1 || c.threads > MAX_SUMMED) return c;
    snprintf(path, sizeof path, "/proc/%d/task", server_pid);
    DIR *d = opendir(path);
    if (!d) return c;
    struct dirent *e;
    double sum = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", server_pid, e->d_name);
        if (read_file(path, buf, sizeof buf) <= 0) continue;
        sum += strtod(buf, NULL) / 1e9;
        c.tid_sum += atol(e->d_name);
    }
    closedir(d);
    c.tasks_s = sum;
    return c;
}

/* Nanosecond run times when the same threads lived through the window;
 * clock ticks (10 ms) otherwise, which also count threads that exited. */
static double cpu_delta(cpu_t a, cpu_t b) {
    double ticks = b.ticks_s - a.ticks_s;
    double tick = 1.0 / (double)sysconf(_SC_CLK_TCK);
    if (a.tasks_s >= 0 && b.tasks_s >= 0 && a.tid_sum == b.tid_sum && a.threads == b.threads) {
        double tasks = b.tasks_s - a.tasks_s;
        /* A thread born and gone inside the window is only in the ticks. */
        if (ticks - tasks < 3 * tick) return tasks;
    }
    return ticks;
}

/* ---- output ------------------------------------------------------------ */

static char out[8192];
static size_t out_len;

static void put(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + out_len, sizeof out - out_len, fmt, ap);
    va_end(ap);
    if (n > 0) out_len += (size_t)n;
    if (out_len >= sizeof out) out_len = sizeof out - 1;
}

static const char *mode_name(void) {
    static const char *names[] = {"echo", "udp", "churn", "sink", "idle", "source"};
    return names[mode];
}

static void print_common(void) {
    put("{\"generator\": \"c\", \"mode\": \"%s\", \"transport\": \"%s\", \"conns\": %d, "
        "\"size\": %zu",
        mode_name(), mode == M_UDP ? "udp" : unix_path ? "unix" : "tcp", nconns, size);
}

static void print_latency(void) {
    put(", \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, "
        "\"max_us\": %.1f",
        hist_pct_us(0.50), hist_pct_us(0.90), hist_pct_us(0.99), hist_pct_us(0.999),
        (double)hist_max / 1000.0);
}

static void finish(void) {
    put("}\n");
    fwrite(out, 1, out_len, stdout);
    fflush(stdout);
}

static void die(const char *what) {
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- payload ------------------------------------------------------------ */

/* Every request carries its sequence number in its first bytes (up to 8);
 * the rest is a fixed pattern.  Echoed bytes are checked against both. */
static unsigned char *pat;
static size_t hl; /* header length: min(8, size) */
static unsigned char rbuf[1 << 18];

typedef struct {
    int fd;
    int state;
    size_t sent, rcvd;
    uint64_t t0;
    uint64_t seq;
    unsigned char hdr[8];
    uint32_t ev;
    int warm; /* has completed a request */
} conn_t;

enum { C_CONNECTING, C_ACTIVE, C_WAITING, C_DEAD, C_DONE };

static conn_t *conns;
static int ep;
static long long errors;
static long long lost;
static int n_alive; /* connections not dead */
static int n_busy;  /* connections connecting or waiting for a reply */
static int n_cold;  /* live connections that have not completed a request yet */

static int busy(int s) { return s == C_CONNECTING || s == C_ACTIVE; }

static void set_state(conn_t *c, int s) {
    n_busy += busy(s) - busy(c->state);
    c->state = s;
}

static void set_hdr(conn_t *c) {
    uint64_t s = c->seq;
    for (size_t i = 0; i < hl; i++) c->hdr[i] = (unsigned char)(s >> (8 * i));
}

static int verify(const conn_t *c, size_t off, const unsigned char *p, size_t n) {
    while (n && off < hl) {
        if (*p != c->hdr[off]) return -1;
        p++, off++, n--;
    }
    return n && memcmp(p, pat + off, n) ? -1 : 0;
}

static void ep_set(conn_t *c, uint32_t ev) {
    if (c->ev == ev) return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(ep, c->ev ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) < 0) die("epoll_ctl");
    c->ev = ev;
}

static void kill_conn(conn_t *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->ev = 0;
    if (c->state != C_DEAD) {
        n_alive--;
        n_cold -= !c->warm;
    }
    set_state(c, C_DEAD);
    errors++;
}

/* Send what is left of the current request.  Returns -1 on failure. */
static int pump_send(conn_t *c) {
    while (c->sent < size) {
        ssize_t n;
        if (c->sent < hl) {
            struct iovec iov[2] = {{c->hdr + c->sent, hl - c->sent}, {pat + hl, size - hl}};
            struct msghdr m = {.msg_iov = iov, .msg_iovlen = size > hl ? 2 : 1};
            n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        } else {
            n = send(c->fd, pat + c->sent, size - c->sent, MSG_NOSIGNAL);
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                ep_set(c, EPOLLIN | EPOLLOUT);
                return 0;
            }
            return -1;
        }
        c->sent += (size_t)n;
        if (mode == M_UDP) break;
    }
    ep_set(c, EPOLLIN);
    return 0;
}

static void start_request(conn_t *c) {
    c->seq++;
    set_hdr(c);
    c->sent = c->rcvd = 0;
    c->t0 = now_ns();
    set_state(c, C_ACTIVE);
    if (pump_send(c) < 0) kill_conn(c);
}

/* ---- connecting ---------------------------------------------------------- */

static struct sockaddr_storage addr;
static socklen_t addr_len;
static unsigned src_next;

static void make_addr(void) {
    memset(&addr, 0, sizeof addr);
    if (unix_path) {
        struct sockaddr_un *u = (struct sockaddr_un *)&addr;
        u->sun_family = AF_UNIX;
        if (strlen(unix_path) >= sizeof u->sun_path) {
            fprintf(stderr, "loadgen: unix path too long\n");
            exit(2);
        }
        strcpy(u->sun_path, unix_path);
        addr_len = sizeof *u;
        return;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)&addr;
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &in4->sin_addr) != 1) {
        fprintf(stderr, "loadgen: bad IPv4 address %s\n", host);
        exit(2);
    }
    addr_len = sizeof *in4;
}

/* Start a non-blocking connect.  Returns the fd, or -1 (errno set). */
static int open_conn(int type) {
    int fd = socket(unix_path ? AF_UNIX : AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (!unix_path && type == SOCK_STREAM) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (mode == M_CHURN && strcmp(host, "127.0.0.1") == 0) {
            /* Many short connections: spread them over 127.0.0.2-251 so the
             * client's TIME_WAIT sockets never exhaust the ephemeral ports. */
            struct sockaddr_in src = {.sin_family = AF_INET};
            src.sin_addr.s_addr = htonl(0x7f000002u + (src_next++ % 250u));
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
                close(fd);
                return -1;
            }
        }
    }
    for (;;) {
        if (connect(fd, (struct sockaddr *)&addr, addr_len) == 0 || errno == EINPROGRESS)
            return fd;
        if (errno == EINTR) continue;
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
}

static int connect_done(conn_t *c) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

/* A unix listener with a full backlog answers EAGAIN: retry briefly. */
static int open_conn_retry(int type, uint64_t deadline) {
    for (;;) {
        int fd = open_conn(type);
        if (fd >= 0 || errno != EAGAIN || now_ns() > deadline) return fd;
        usleep(500);
    }
}

/* ---- the stream/udp event loop ------------------------------------------ */

static long long done_total;   /* requests completed since start */
static int counting;           /* inside the measured window */
static long long done_window;  /* requests completed inside the window */

static void on_reply_complete(conn_t *c) {
    uint64_t t = now_ns();
    done_total++;
    if (!c->warm) {
        c->warm = 1;
        n_cold--;
    }
    if (counting) {
        done_window++;
        hist_add(t - c->t0);
    }
}

/* Handle one readiness event of a connection in echo or udp mode. */
static void on_event(conn_t *c, uint32_t ev, int keep_going) {
    if (c->state == C_CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        if (connect_done(c) < 0) {
            kill_conn(c);
            return;
        }
        if (keep_going)
            start_request(c);
        else {
            set_state(c, C_WAITING);
            ep_set(c, EPOLLIN);
        }
        return;
    }
    if (c->state == C_DEAD || c->fd < 0) return;
    if ((ev & EPOLLOUT) && c->state == C_ACTIVE && c->sent < size) {
        if (pump_send(c) < 0) {
            kill_conn(c);
            return;
        }
    }
    if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) return;
    ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        kill_conn(c);
        return;
    }
    if (n == 0) {
        kill_conn(c);
        return;
    }
    if (c->state != C_ACTIVE) {
        kill_conn(c); /* bytes nobody asked for */
        return;
    }
    if (mode == M_UDP) {
        if ((size_t)n != size || verify(c, 0, rbuf, hl) < 0) {
            lost++; /* a stale reply to a request we gave up on */
            return;
        }
        if (verify(c, 0, rbuf, (size_t)n) < 0) {
            kill_conn(c);
            return;
        }
        c->rcvd = size;
    } else {
        if (c->rcvd + (size_t)n > c->sent || verify(c, c->rcvd, rbuf, (size_t)n) < 0) {
            kill_conn(c);
            return;
        }
        c->rcvd += (size_t)n;
        if (c->rcvd < size) return;
    }
    on_reply_complete(c);
    if (keep_going)
        start_request(c);
    else
        set_state(c, C_WAITING);
}

static int alive(void) { return n_alive; }

static int run_loop(int (*stop)(uint64_t now), uint64_t wake_at, int keep_going) {
    struct epoll_event evs[512];
    uint64_t hard = now_ns() + (uint64_t)timeout_ms * 1000000ULL;
    for (;;) {
        uint64_t t = now_ns();
        if (stop(t)) return 0;
        if (t > hard) return -1;
        if (alive() == 0) return -1;
        int wait_ms = 50;
        if (wake_at && wake_at > t) {
            uint64_t left = (wake_at - t + 999999) / 1000000;
            if (left < (uint64_t)wait_ms) wait_ms = (int)left;
        } else if (wake_at) {
            wait_ms = 0;
        }
        int k = epoll_wait(ep, evs, 512, wait_ms);
        if (k < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < k; i++) on_event(evs[i].data.ptr, evs[i].events, keep_going);
        if (mode == M_UDP) {
            /* A datagram lost on the way: give up after 100 ms, send anew. */
            uint64_t now = now_ns();
            for (int i = 0; i < nconns; i++) {
                conn_t *c = &conns[i];
                if (c->state == C_ACTIVE && now - c->t0 > 100000000ULL) {
                    lost++;
                    if (keep_going)
                        start_request(c);
                    else
                        set_state(c, C_WAITING);
                }
            }
        }
    }
}

static uint64_t phase_end;
static int stop_at_time(uint64_t t) { return t >= phase_end; }
/* Warm-up ends when its time is up and every connection was served once:
 * with 1,000 connections the server may still be accepting at first. */
static int stop_warm(uint64_t t) { return t >= phase_end && n_cold == 0; }
static int stop_idle(uint64_t t) {
    (void)t;
    return n_busy == 0;
}
static int stop_at_count(uint64_t t) {
    (void)t;
    return done_window >= max_requests;
}

static int new_loop(void) {
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    return ep;
}

static void open_all(int type, int first, int count) {
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ULL;
    for (int i = first; i < first + count; i++) {
        conn_t *c = &conns[i];
        memset(c, 0, sizeof *c);
        c->state = C_DEAD;
        c->fd = open_conn_retry(type, deadline);
        if (c->fd < 0) {
            errors++;
            continue;
        }
        n_alive++;
        n_cold++;
        set_state(c, C_CONNECTING);
        ep_set(c, EPOLLOUT);
    }
}

/* Open every connection, a batch at a time, each echoing once while the
 * others wait: so all are accepted and served before the load starts.  A
 * server busy with 999 connections may otherwise take seconds to accept the
 * 1000th (trio accepts one per scheduler pass), and a burst of SYNs can
 * overflow the listen queue, where a dropped SYN costs a 1 s retransmit. */
static void open_served(int type) {
    for (int first = 0; first < nconns; first += batch) {
        int count = nconns - first < batch ? nconns - first : batch;
        open_all(type, first, count);
        run_loop(stop_idle, 0, 0); /* keep_going=0: connected ones wait */
        for (int i = first; i < first + count; i++)
            if (conns[i].state == C_WAITING) start_request(&conns[i]);
        run_loop(stop_idle, 0, 0);
    }
}

static int run_echo(void) {
    int type = mode == M_UDP ? SOCK_DGRAM : SOCK_STREAM;
    new_loop();
    uint64_t t_open = now_ns();
    open_served(type);
    if (alive() == 0) {
        print_common();
        put(", \"requests\": 0, \"errors\": %lld, \"error\": \"no connection\"", errors);
        finish();
        return 1;
    }
    uint64_t t_conn = now_ns();
    for (int i = 0; i < nconns; i++)
        if (conns[i].state == C_WAITING) start_request(&conns[i]);
    phase_end = now_ns() + (uint64_t)warmup_ms * 1000000ULL;
    int rc = run_loop(stop_warm, phase_end, 1);
    uint64_t t_warm = now_ns();
    long long err0 = errors, lost0 = lost;
    hist_reset();
    counting = 1;
    uint64_t t0 = now_ns();
    cpu_t c0 = server_cpu();
    if (rc == 0) {
        if (max_requests > 0) {
            rc = run_loop(stop_at_count, 0, 1);
        } else {
            phase_end = t0 + (uint64_t)duration_ms * 1000000ULL;
            rc = run_loop(stop_at_time, phase_end, 1);
        }
    }
    uint64_t t1 = now_ns();
    cpu_t c1 = server_cpu();
    counting = 0;
    double el = (double)(t1 - t0) / 1e9;
    double cpu = cpu_delta(c0, c1);
    print_common();
    put(", \"requests\": %lld, \"elapsed_s\": %.6f, \"rps\": %.1f, \"mb_s\": %.3f", done_window, el,
        (double)done_window / el, (double)done_window * (double)size / el / 1e6);
    print_latency();
    put(", \"errors\": %lld, \"warmup_errors\": %lld, \"lost\": %lld, \"timed_out\": %s",
        errors - err0, err0, lost - lost0, rc < 0 ? "true" : "false");
    put(", \"requests_total\": %lld, \"connect_s\": %.3f, \"warmup_s\": %.3f", done_total,
        (double)(t_conn - t_open) / 1e9, (double)(t_warm - t_conn) / 1e9);
    put(", \"server_cpu_s\": %.6f, \"server_cpu_us_per_req\": %.3f, \"server_threads\": %d", cpu,
        done_window ? cpu * 1e6 / (double)done_window : 0.0, c1.threads);
    finish();
    return 0;
}

/* ---- churn ----------------------------------------------------------------- */

static int run_churn(void) {
    new_loop();
    uint64_t t_start = now_ns();
    uint64_t t_warm = t_start + (uint64_t)warmup_ms * 1000000ULL;
    uint64_t t_end = t_warm + (uint64_t)duration_ms * 1000000ULL;
    uint64_t hard = t_start + (uint64_t)timeout_ms * 1000000ULL;
    cpu_t c0 = {0, -1, 0, 0};
    uint64_t w0 = 0;
    long long err0 = 0;
    for (int i = 0; i < nconns; i++) {
        conns[i].fd = -1;
        conns[i].state = C_DONE;
    }
    struct epoll_event evs[512];
    for (;;) {
        uint64_t t = now_ns();
        if (!counting && t >= t_warm) {
            counting = 1;
            hist_reset();
            err0 = errors;
            w0 = t;
            c0 = server_cpu();
        }
        if (t >= t_end || t > hard) break;
        for (int i = 0; i < nconns; i++) {
            conn_t *c = &conns[i];
            if (c->state != C_DONE && c->state != C_DEAD) continue;
            memset(c, 0, sizeof *c);
            c->t0 = now_ns();
            c->fd = open_conn(SOCK_STREAM);
            if (c->fd < 0) {
                c->state = C_DEAD;
                errors++;
                if (errors - err0 > 1000) goto out;
                continue;
            }
            c->state = C_CONNECTING;
            c->seq = done_total;
            ep_set(c, EPOLLOUT);
        }
        uint64_t left = t < t_warm ? t_warm - t : t_end - t;
        int k = epoll_wait(ep, evs, 512, (int)(left / 1000000 + 1));
        for (int j = 0; j < k; j++) {
            conn_t *c = evs[j].data.ptr;
            uint32_t ev = evs[j].events;
            if (c->state == C_CONNECTING) {
                if (connect_done(c) < 0) {
                    kill_conn(c);
                    continue;
                }
                uint64_t t0 = c->t0;
                start_request(c);
                c->t0 = t0; /* latency counts from the connect */
                continue;
            }
            if (c->state != C_ACTIVE) continue;
            if ((ev & EPOLLOUT) && c->sent < size && pump_send(c) < 0) {
                kill_conn(c);
                continue;
            }
            if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
            ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n <= 0 || c->rcvd + (size_t)n > c->sent ||
                verify(c, c->rcvd, rbuf, (size_t)n) < 0) {
                kill_conn(c);
                continue;
            }
            c->rcvd += (size_t)n;
            if (c->rcvd < size) continue;
            on_reply_complete(c);
            close(c->fd);
            c->fd = -1;
            c->ev = 0;
            c->state = C_DONE;
        }
    }
out:;
    uint64_t t1 = now_ns();
    cpu_t c1 = server_cpu();
    for (int i = 0; i < nconns; i++)
        if (conns[i].fd >= 0) close(conns[i].fd);
    double el = w0 ? (double)(t1 - w0) / 1e9 : 0.0;
    double cpu = cpu_delta(c0, c1);
    print_common();
    put(", \"requests\": %lld, \"elapsed_s\": %.6f, \"rps\": %.1f, \"conn_s\": %.1f", done_window,
        el, el > 0 ? (double)done_window / el : 0.0, el > 0 ? (double)done_window / el : 0.0);
    print_latency();
    put(", \"errors\": %lld, \"warmup_errors\": %lld", errors - err0, err0);
    put(", \"server_cpu_s\": %.6f, \"server_cpu_us_per_req\": %.3f, \"server_threads\": %d", cpu,
        done_window ? cpu * 1e6 / (double)done_window : 0.0, c1.threads);
    finish();
    return 0;
}

/* ---- sink: bulk one way ----------------------------------------------------- */

/* The result of a bulk mode: bytes moved, the rate and the server's CPU per MB. */
static void put_bulk(long long bytes, uint64_t ns, double cpu, const char *why) {
    double el = (double)ns / 1e9;
    print_common();
    put(", \"bytes\": %lld, \"elapsed_s\": %.6f, \"mb_s\": %.3f, \"requests\": 1", bytes, el,
        (double)bytes / el / 1e6);
    put(", \"errors\": %d, \"server_cpu_s\": %.6f, \"server_cpu_us_per_mb\": %.3f", why ? 1 : 0,
        cpu, bytes ? cpu * 1e6 / ((double)bytes / 1e6) : 0.0);
    if (why) put(", \"error\": \"%s\"", why);
}

/* The one stream connection of the bulk modes, connected (or the run dies). */
static void connect_bulk(conn_t *c, uint64_t deadline) {
    c->fd = open_conn_retry(SOCK_STREAM, deadline);
    if (c->fd < 0) die("connect");
    ep_set(c, EPOLLOUT);
    struct epoll_event ev;
    while (epoll_wait(ep, &ev, 1, 1000) <= 0)
        if (now_ns() > deadline) die("connect timeout");
    if (connect_done(c) < 0) die("connect");
}

static int run_sink(void) {
    size_t chunk = 1 << 18;
    unsigned char *buf = malloc(chunk);
    if (!buf) die("malloc");
    for (size_t i = 0; i < chunk; i++) buf[i] = (unsigned char)(i * 31 + 7);
    new_loop();
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ULL;
    conn_t c = {0};
    connect_bulk(&c, deadline);
    int fd = c.fd;
    struct epoll_event ev;
    cpu_t c0 = server_cpu();
    uint64_t t0 = now_ns();
    long long sent = 0;
    int eof = 0;
    const char *why = NULL;
    while (!eof) {
        if (now_ns() > deadline) {
            why = "timeout";
            break;
        }
        if (sent < total_bytes) {
            size_t want = (size_t)(total_bytes - sent) < chunk ? (size_t)(total_bytes - sent) : chunk;
            ssize_t n = send(fd, buf, want, MSG_NOSIGNAL);
            if (n > 0) {
                sent += n;
                if (sent == total_bytes) {
                    shutdown(fd, SHUT_WR);
                    ep_set(&c, EPOLLIN);
                }
                continue;
            }
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                why = "send failed";
                break;
            }
        }
        if (epoll_wait(ep, &ev, 1, 1000) < 0 && errno != EINTR) die("epoll_wait");
        if (sent == total_bytes) {
            ssize_t n = recv(fd, rbuf, sizeof rbuf, 0);
            if (n == 0)
                eof = 1;
            else if (n > 0) {
                why = "unexpected data";
                break;
            } else if (errno != EAGAIN && errno != EINTR) {
                why = "recv failed";
                break;
            }
        }
    }
    uint64_t t1 = now_ns();
    cpu_t c1 = server_cpu();
    close(fd);
    put_bulk(sent, t1 - t0, cpu_delta(c0, c1), why);
    finish();
    return 0;
}

/* ---- source: bulk one way, server to generator ----------------------------- */

static int run_source(void) {
    new_loop();
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ULL;
    conn_t c = {0};
    connect_bulk(&c, deadline);
    int fd = c.fd;
    struct epoll_event ev;
    unsigned char req[8];
    for (int i = 0; i < 8; i++) req[i] = (unsigned char)((uint64_t)total_bytes >> (56 - 8 * i));
    cpu_t c0 = server_cpu();
    uint64_t t0 = now_ns();
    long long got = 0;
    size_t off = 0;
    int eof = 0;
    const char *why = NULL;
    while (off < sizeof req) { /* the request: a fresh socket takes 8 bytes at once */
        ssize_t n = send(fd, req + off, sizeof req - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            why = "send failed";
            break;
        } else if (now_ns() > deadline) {
            why = "timeout";
            break;
        } else if (epoll_wait(ep, &ev, 1, 1000) < 0 && errno != EINTR) {
            die("epoll_wait");
        }
    }
    if (!why) ep_set(&c, EPOLLIN);
    while (!why && !eof) {
        ssize_t n = recv(fd, rbuf, sizeof rbuf, 0);
        if (n > 0) {
            got += n;
        } else if (n == 0) {
            eof = 1;
        } else if (errno != EAGAIN && errno != EINTR) {
            why = "recv failed";
        } else if (now_ns() > deadline) {
            why = "timeout";
        } else if (epoll_wait(ep, &ev, 1, 1000) < 0 && errno != EINTR) {
            die("epoll_wait");
        }
    }
    uint64_t t1 = now_ns();
    cpu_t c1 = server_cpu();
    close(fd);
    static char mismatch[96];
    if (!why && got != total_bytes) {
        snprintf(mismatch, sizeof mismatch, "received %lld bytes, expected %lld", got,
                 total_bytes);
        why = mismatch;
    }
    put_bulk(got, t1 - t0, cpu_delta(c0, c1), why);
    put(", \"bytes_expected\": %lld", total_bytes);
    finish();
    return 0;
}

/* ---- idle: many connections, memory and one echo on all --------------------- */


static int run_idle(void) {
    new_loop();
    long rss0 = status_field("VmRSS:");
    uint64_t t0 = now_ns();
    open_served(SOCK_STREAM);
    uint64_t t1 = now_ns();
    int ok = alive();
    usleep((useconds_t)settle_ms * 1000); /* let the server settle before reading its memory */
    long rss1 = status_field("VmRSS:");
    hist_reset();
    counting = 1;
    cpu_t c0 = server_cpu();
    uint64_t t2 = now_ns();
    for (int i = 0; i < nconns; i++)
        if (conns[i].state == C_WAITING) start_request(&conns[i]);
    int rc = run_loop(stop_idle, 0, 0);
    uint64_t t3 = now_ns();
    cpu_t c1 = server_cpu();
    long rss2 = status_field("VmRSS:");
    double cpu = cpu_delta(c0, c1);
    /* Close every connection before reporting: the harness reads the
     * server's memory once they are all gone (kib_per_conn_after_close). */
    int closed = 0;
    for (int i = 0; i < nconns; i++) {
        if (conns[i].fd >= 0) {
            close(conns[i].fd);
            conns[i].fd = -1;
            closed++;
        }
    }
    print_common();
    put(", \"requests\": %lld, \"opened\": %d, \"open_s\": %.6f, \"echo_all_ms\": %.3f", done_window,
        ok, (double)(t1 - t0) / 1e9, (double)(t3 - t2) / 1e6);
    put(", \"rss_before_kb\": %ld, \"rss_after_kb\": %ld, \"rss_after_echo_kb\": %ld", rss0, rss1,
        rss2);
    put(", \"kib_per_conn\": %.3f, \"closed\": %d", ok ? (double)(rss1 - rss0) / ok : 0.0,
        closed);
    print_latency();
    put(", \"errors\": %lld, \"timed_out\": %s, \"server_cpu_s\": %.6f, "
        "\"server_cpu_us_per_req\": %.3f, \"server_threads\": %d",
        errors, rc < 0 ? "true" : "false", cpu, done_window ? cpu * 1e6 / (double)done_window : 0.0,
        c1.threads);
    finish();
    return 0;
}

/* ---- main ------------------------------------------------------------------ */

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --mode echo|udp|churn|sink|source|idle\n"
            "  (--port P [--host A] | --unix PATH)\n"
            "  [--conns N] [--size S] [--warmup-ms W] [--duration-ms D] [--requests R]\n"
            "  [--bytes B] [--server-pid PID] [--batch K] [--timeout-ms T] [--settle-ms M]\n");
    exit(2);
}

int main(int argc, char **argv) {
    static struct option opts[] = {
        {"mode", required_argument, 0, 'm'},     {"host", required_argument, 0, 'h'},
        {"port", required_argument, 0, 'p'},     {"unix", required_argument, 0, 'u'},
        {"conns", required_argument, 0, 'c'},    {"size", required_argument, 0, 's'},
        {"warmup-ms", required_argument, 0, 'w'}, {"duration-ms", required_argument, 0, 'd'},
        {"requests", required_argument, 0, 'r'}, {"bytes", required_argument, 0, 'b'},
        {"server-pid", required_argument, 0, 'P'}, {"batch", required_argument, 0, 'B'},
        {"timeout-ms", required_argument, 0, 't'}, {"settle-ms", required_argument, 0, 'S'},
        {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'm':
            if (!strcmp(optarg, "echo")) mode = M_ECHO;
            else if (!strcmp(optarg, "udp")) mode = M_UDP;
            else if (!strcmp(optarg, "churn")) mode = M_CHURN;
            else if (!strcmp(optarg, "sink")) mode = M_SINK;
            else if (!strcmp(optarg, "idle")) mode = M_IDLE;
            else if (!strcmp(optarg, "source")) mode = M_SOURCE;
            else usage();
            break;
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'u': unix_path = optarg; break;
        case 'c': nconns = atoi(optarg); break;
        case 's': size = (size_t)atol(optarg); break;
        case 'w': warmup_ms = atol(optarg); break;
        case 'd': duration_ms = atol(optarg); break;
        case 'r': max_requests = atoll(optarg); break;
        case 'b': total_bytes = atoll(optarg); break;
        case 'P': server_pid = atoi(optarg); break;
        case 'B': batch = atoi(optarg); break;
        case 't': timeout_ms = atol(optarg); break;
        case 'S': settle_ms = atol(optarg); break;
        default: usage();
        }
    }
    if ((!port && !unix_path) || nconns < 1 || size < 1 || batch < 1) usage();
    if (mode == M_UDP && size < 8) {
        fprintf(stderr, "loadgen: udp needs --size >= 8\n");
        return 2;
    }
    if (mode == M_UDP && unix_path) {
        fprintf(stderr, "loadgen: udp is over IPv4 only\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    make_addr();
    hl = size < 8 ? size : 8;
    pat = malloc(size);
    conns = calloc((size_t)nconns, sizeof *conns);
    if (!pat || !conns) die("malloc");
    for (size_t i = 0; i < size; i++) pat[i] = (unsigned char)(i * 31 + 7);
    for (int i = 0; i < nconns; i++) {
        conns[i].fd = -1;
        conns[i].state = C_DEAD;
    }
    switch (mode) {
    case M_ECHO:
    case M_UDP: return run_echo();
    case M_CHURN: return run_churn();
    case M_SINK: return run_sink();
    case M_SOURCE: return run_source();
    default: return run_idle();
    }
}
