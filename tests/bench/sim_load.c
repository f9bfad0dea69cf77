/*
 * sim_load.c — a small HTTP/1.1 client that drives vtune-sim hard: many
 * concurrent connections (load) or hostile input (fuzz).
 *
 *   sim_load --port P [--key K] --mode load [--connections N] [--requests R]
 *            [--method M] [--path PATH] [--body JSON]
 *   sim_load --port P [--key K] --mode fuzz [--iterations N] [--seed S]
 *
 * load: N threads each open a connection; a barrier makes sure all N are
 * connected at once before any sends; then each sends R requests on its
 * keep-alive connection.  Prints one line of figures (connections, requests,
 * status counts, wall time, throughput, p50/p99/max latency, how long
 * opening the N connections took and the slowest connect) and exits 0 only
 * if every request got a 2xx answer.  With an injected delay on the path
 * this proves the requests are served concurrently, not in turn.  When any
 * request failed, a second line counts the failures by kind (connect or
 * send error with its errno, reset, closed before answering, read timeout,
 * non-2xx) with the longest a failed request's connection had sat idle:
 * the connections opened first wait at the barrier for the slowest
 * connect, and a server closes those idle past its timeout.
 *
 * fuzz: each iteration sends one kind of bad input on a fresh connection:
 * random bytes, a garbage request line or headers, mutated JSON bodies to
 * every endpoint, a body shorter than its Content-Length, a slow client,
 * an oversized header, broken chunked encoding.  Exits 0 only if no answer
 * was a 5xx other than an injected one and the server is still healthy.
 *
 * Plain sockets, not libcurl: the point is to send what libcurl would not.
 * Raw, blocking I/O with SO_RCVTIMEO so that no run can hang.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/util.h"

struct opts {
    unsigned port;
    const char *key;
    const char *mode;
    int connections;
    int requests;
    const char *method;
    const char *path;
    const char *body;
    long iterations;
    uint64_t seed;
};

static struct opts O = {
    .mode = "load",
    .connections = 200,
    .requests = 1,
    .method = "GET",
    .path = "/v1/models",
    .iterations = 500,
    .seed = 1,
};

/* ---- sockets -------------------------------------------------------------- */

static int connect_local(int timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct timeval tv = {.tv_sec = timeout_s};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)O.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Why a request got no HTTP answer (a negative read_response() result is
 * minus one of these).  The load figures count failures by kind, so that a
 * failed run says whether the server refused, reset, closed or stalled. */
enum fail_kind {
    FAIL_CONNECT = 1, /* connect() failed (errno kept) */
    FAIL_SEND,        /* send() failed (errno kept) */
    FAIL_RESET,       /* recv() saw ECONNRESET */
    FAIL_TIMEOUT,     /* recv() timed out (SO_RCVTIMEO) */
    FAIL_RECV,        /* recv() failed otherwise (errno kept) */
    FAIL_EOF,         /* clean close before any byte of an answer */
    FAIL_TRUNCATED,   /* clean close inside the answer */
    FAIL_GARBLED,     /* no HTTP status line */
    FAIL_STATUS,      /* an answer, but not 2xx */
    FAIL_KINDS
};

static const char *const fail_names[FAIL_KINDS] = {
    [FAIL_CONNECT] = "connect failed",
    [FAIL_SEND] = "send failed",
    [FAIL_RESET] = "reset by the server",
    [FAIL_TIMEOUT] = "read timed out",
    [FAIL_RECV] = "read failed",
    [FAIL_EOF] = "closed before answering",
    [FAIL_TRUNCATED] = "closed inside the answer",
    [FAIL_GARBLED] = "no HTTP status line",
    [FAIL_STATUS] = "non-2xx status",
};

/* Reads one HTTP response; returns its status (> 0) or minus a fail_kind
 * (with errno as recv() left it for FAIL_RESET, FAIL_TIMEOUT, FAIL_RECV).
 * *closed is set when the server said Connection: close or closed. */
static int read_response(int fd, struct buf *body, bool *closed)
{
    struct buf in;
    buf_init(&in);
    int status = -FAIL_RECV;
    *closed = false;
    size_t header_end = 0;
    long content_length = -1;
    for (;;) {
        if (header_end == 0) {
            char *e = in.data ? strstr(in.data, "\r\n\r\n") : NULL;
            if (e) {
                header_end = (size_t)(e - in.data) + 4;
                if (sscanf(in.data, "HTTP/1.%*d %d", &status) != 1 || status <= 0) {
                    status = -FAIL_GARBLED;
                    goto out;
                }
                for (char *h = in.data; h && h < e; h = strstr(h, "\r\n")) {
                    h += (h[0] == '\r') ? 2 : 0;
                    if (strncasecmp(h, "Content-Length:", 15) == 0)
                        content_length = strtol(h + 15, NULL, 10);
                    if (strncasecmp(h, "Connection: close", 17) == 0)
                        *closed = true;
                }
            }
        }
        if (header_end && content_length >= 0 && in.len >= header_end + (size_t)content_length)
            break;
        char tmp[16384];
        ssize_t r = recv(fd, tmp, sizeof tmp, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *closed = true;
            if (errno == ECONNRESET)
                status = -FAIL_RESET;
            else if (errno == EAGAIN || errno == EWOULDBLOCK)
                status = -FAIL_TIMEOUT;
            else
                status = -FAIL_RECV;
            goto out;
        }
        if (r == 0) {
            *closed = true;
            if (!header_end)
                status = in.len ? -FAIL_TRUNCATED : -FAIL_EOF;
            else if (content_length >= 0)
                status = -FAIL_TRUNCATED;
            break;
        }
        buf_append(&in, tmp, (size_t)r);
    }
    if (body && header_end) {
        buf_reset(body);
        buf_append(body, in.data + header_end, in.len - header_end);
    }
out:;
    int saved = errno;
    buf_free(&in);
    errno = saved;
    return status;
}

static void format_request(struct buf *b, const char *method, const char *path, const char *body,
                           size_t body_len)
{
    buf_reset(b);
    buf_printf(b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n", method, path, O.port);
    if (O.key)
        buf_printf(b, "Authorization: Bearer %s\r\n", O.key);
    if (body)
        buf_printf(b, "Content-Type: application/json\r\nContent-Length: %zu\r\n", body_len);
    buf_puts(b, "\r\n");
    if (body)
        buf_append(b, body, body_len);
}

/* ---- load ------------------------------------------------------------------- */

struct load_thread {
    pthread_t tid;
    int fd;
    int ok;
    int status_other;
    uint64_t *lat_ms;
    int n_lat;
    int fails[FAIL_KINDS];
    int fail_errno[FAIL_KINDS]; /* the last errno seen for that kind */
    uint64_t fail_idle_max_ms;  /* longest a failed request's connection sat idle */
    uint64_t ok_idle_max_ms;    /* the same for answered requests */
    uint64_t connect_max_ms;    /* the slowest connect(): a lost SYN costs 1 s or more */
};

static pthread_barrier_t barrier;

static void note_fail(struct load_thread *t, int kind, int err, uint64_t idle_ms)
{
    t->fails[kind]++;
    if (err)
        t->fail_errno[kind] = err;
    if (idle_ms > t->fail_idle_max_ms)
        t->fail_idle_max_ms = idle_ms;
}

static void *load_main(void *arg)
{
    struct load_thread *t = arg;
    struct buf req, body;
    buf_init(&req);
    buf_init(&body);
    uint64_t c0 = now_monotonic_ms();
    t->fd = connect_local(120);
    t->connect_max_ms = now_monotonic_ms() - c0;
    /* idle: since the connection opened or last answered; the server may
     * close a connection idle longer than its --client-timeout. */
    uint64_t last_active = now_monotonic_ms();
    pthread_barrier_wait(&barrier); /* all connections open at once */
    for (int i = 0; i < O.requests; i++) {
        if (t->fd < 0) {
            note_fail(t, FAIL_CONNECT, -t->fd, 0);
            t->fd = connect_local(120);
            last_active = now_monotonic_ms();
            continue;
        }
        format_request(&req, O.method, O.path, O.body, O.body ? strlen(O.body) : 0);
        uint64_t t0 = now_monotonic_ms();
        uint64_t idle = t0 - last_active;
        bool closed = false;
        int st, err = 0;
        if (send_all(t->fd, req.data, req.len) < 0) {
            st = -FAIL_SEND;
            err = errno;
            closed = true;
        } else {
            st = read_response(t->fd, &body, &closed);
            err = st < 0 ? errno : 0;
        }
        last_active = now_monotonic_ms();
        t->lat_ms[t->n_lat++] = last_active - t0;
        if (st >= 200 && st < 300) {
            t->ok++;
            if (idle > t->ok_idle_max_ms)
                t->ok_idle_max_ms = idle;
        } else if (st > 0) {
            t->status_other = st;
            note_fail(t, FAIL_STATUS, 0, idle);
        } else {
            int kind = -st < FAIL_KINDS ? -st : FAIL_RECV;
            note_fail(t, kind, (kind == FAIL_EOF || kind == FAIL_TRUNCATED) ? 0 : err, idle);
        }
        if (closed || st <= 0) {
            close(t->fd);
            t->fd = connect_local(120);
            last_active = now_monotonic_ms();
        }
    }
    if (t->fd >= 0)
        close(t->fd);
    buf_free(&req);
    buf_free(&body);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int run_load(void)
{
    int n = O.connections;
    struct load_thread *th = xcalloc((size_t)n, sizeof *th);
    pthread_barrier_init(&barrier, NULL, (unsigned)n + 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    uint64_t setup0 = now_monotonic_ms();
    for (int i = 0; i < n; i++) {
        th[i].lat_ms = xcalloc((size_t)O.requests, sizeof(uint64_t));
        if (pthread_create(&th[i].tid, &attr, load_main, &th[i]) != 0) {
            fprintf(stderr, "sim_load: cannot start thread %d\n", i);
            exit(1);
        }
    }
    pthread_barrier_wait(&barrier);
    uint64_t t0 = now_monotonic_ms();
    for (int i = 0; i < n; i++)
        pthread_join(th[i].tid, NULL);
    uint64_t wall = now_monotonic_ms() - t0;
    int ok = 0, fail = 0, other = 0;
    int fails[FAIL_KINDS] = {0}, fail_errno[FAIL_KINDS] = {0};
    uint64_t fail_idle = 0, ok_idle = 0, connect_max = 0;
    size_t total = (size_t)n * (size_t)O.requests, k = 0;
    uint64_t *all = xcalloc(total, sizeof *all);
    for (int i = 0; i < n; i++) {
        ok += th[i].ok;
        if (th[i].status_other)
            other = th[i].status_other;
        for (int f = 1; f < FAIL_KINDS; f++) {
            fails[f] += th[i].fails[f];
            fail += th[i].fails[f];
            if (th[i].fail_errno[f])
                fail_errno[f] = th[i].fail_errno[f];
        }
        if (th[i].fail_idle_max_ms > fail_idle)
            fail_idle = th[i].fail_idle_max_ms;
        if (th[i].ok_idle_max_ms > ok_idle)
            ok_idle = th[i].ok_idle_max_ms;
        if (th[i].connect_max_ms > connect_max)
            connect_max = th[i].connect_max_ms;
        for (int j = 0; j < th[i].n_lat; j++)
            all[k++] = th[i].lat_ms[j];
        free(th[i].lat_ms);
    }
    qsort(all, k, sizeof *all, cmp_u64);
    double secs = wall > 0 ? (double)wall / 1000.0 : 0.001;
    char last[32] = "";
    if (other)
        snprintf(last, sizeof last, " (last status %d)", other);
    printf("sim_load: %d connections, %zu requests %s %s: %d ok, %d failed%s; wall %.3f s, "
           "%.0f req/s, latency p50 %llu ms p99 %llu ms max %llu ms; connecting took %.3f s "
           "(slowest connect %llu ms)\n",
           n, total, O.method, O.path, ok, fail, last, secs, (double)ok / secs,
           (unsigned long long)(k ? all[k / 2] : 0),
           (unsigned long long)(k ? all[(k * 99) / 100 < k ? (k * 99) / 100 : k - 1] : 0),
           (unsigned long long)(k ? all[k - 1] : 0), (double)(t0 - setup0) / 1000.0,
           (unsigned long long)connect_max);
    if (fail > 0) {
        printf("sim_load: failures by kind:");
        for (int f = 1; f < FAIL_KINDS; f++) {
            if (!fails[f])
                continue;
            printf(" %s %d", fail_names[f], fails[f]);
            if (fail_errno[f])
                printf(" (%s)", strerror(fail_errno[f]));
            printf(";");
        }
        printf(" longest idle before a failed request %llu ms, before an answered one %llu ms\n",
               (unsigned long long)fail_idle, (unsigned long long)ok_idle);
    }
    free(all);
    free(th);
    pthread_barrier_destroy(&barrier);
    pthread_attr_destroy(&attr);
    return fail == 0 && ok == (int)total ? 0 : 1;
}

/* ---- fuzz -------------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = (rng_state += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static size_t rndn(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

static const char *const fuzz_paths[][2] = {
    {"POST", "/v1/chat/completions"},
    {"POST", "/v1/completions"},
    {"POST", "/v1/fine_tuning/jobs"},
    {"GET", "/v1/fine_tuning/jobs?limit=abc&after=%00&metadata[x]=%ff"},
    {"GET", "/v1/fine_tuning/jobs/ftjob-nope/events?limit=-1"},
    {"POST", "/v1/fine_tuning/jobs/ftjob-nope/cancel"},
    {"GET", "/v1/files?limit=0&order=sideways"},
    {"POST", "/v1/files"},
    {"DELETE", "/v1/files/file-nope"},
    {"GET", "/v1/models/ft:vtune-base:x:y:z"},
    {"POST", "/v1/_sim/models/ft:nope/swap"},
};

static const char *const templates[] = {
    "{\"model\":\"vtune-base\",\"messages\":[{\"role\":\"user\",\"content\":\"What is 2 plus "
    "2?\"}],\"temperature\":0,\"logprobs\":true,\"top_logprobs\":5,\"max_tokens\":8,"
    "\"stop\":[\".\"],\"seed\":3}",
    "{\"model\":\"vtune-base\",\"prompt\":\"The answer is\",\"echo\":true,\"logprobs\":5,"
    "\"max_tokens\":4,\"temperature\":1.5}",
    "{\"model\":\"vtune-base\",\"training_file\":\"file-x\",\"suffix\":\"s\",\"metadata\":{\"a\":"
    "\"b\"},\"hyperparameters\":{\"n_epochs\":2},\"method\":{\"type\":\"supervised\","
    "\"supervised\":{\"hyperparameters\":{\"n_epochs\":\"auto\"}}}}",
    "{\"to\":\"base\"}",
};

/* Returns a mutated copy of a template (owned) in b. */
static void mutate(struct buf *b)
{
    const char *t = templates[rndn(VT_ARRAY_LEN(templates))];
    buf_reset(b);
    buf_puts(b, t);
    int edits = 1 + (int)rndn(6);
    static const char *const inserts[] = {"null",        "[]",         "{}",
                                          "\"",          "\\u0000",    "1e999",
                                          "-1",          "\xff\xfe",   "99999999999999999999",
                                          ",",           ":",          "true",
                                          "\"\\ud800\"", "[[[[[[[[[[", "}}}}"};
    for (int e = 0; e < edits && b->len > 0; e++) {
        size_t pos = rndn(b->len);
        switch (rndn(4)) {
        case 0: /* flip a byte */
            b->data[pos] = (char)(rnd() & 0xff);
            if (b->data[pos] == 0)
                b->data[pos] = 'x';
            break;
        case 1: /* delete a span */ {
            size_t n = 1 + rndn(8);
            if (pos + n > b->len)
                n = b->len - pos;
            memmove(b->data + pos, b->data + pos + n, b->len - pos - n + 1);
            b->len -= n;
            break;
        }
        default: { /* insert a token */
            const char *ins = inserts[rndn(VT_ARRAY_LEN(inserts))];
            size_t n = strlen(ins);
            struct buf nb;
            buf_init(&nb);
            buf_append(&nb, b->data, pos);
            buf_append(&nb, ins, n);
            buf_append(&nb, b->data + pos, b->len - pos);
            buf_free(b);
            *b = nb;
            break;
        }
        }
    }
}

struct fuzz_stats {
    long sent, answered, closed, status5xx, errors;
    long by_kind[8];
};

static void fuzz_one(struct fuzz_stats *fs)
{
    int fd = connect_local(10);
    if (fd < 0) {
        fs->errors++;
        fprintf(stderr, "sim_load: connect failed: %s\n", strerror(-fd));
        return;
    }
    struct buf req, body;
    buf_init(&req);
    buf_init(&body);
    int kind = (int)rndn(8);
    fs->by_kind[kind]++;
    bool expect_answer = true;
    switch (kind) {
    case 0: { /* random bytes */
        size_t n = 1 + rndn(4096);
        for (size_t i = 0; i < n; i++) {
            char c = (char)(rnd() & 0xff);
            buf_append(&req, &c, 1);
        }
        expect_answer = false;
        break;
    }
    case 1: /* garbage request line / headers */
        buf_printf(&req, "%s /v1/models HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n",
                   rndn(2) ? "G\x01T" : "GET", rndn(2) ? "Bad Header No Colon" : "X: \x7f\x80");
        expect_answer = false;
        break;
    case 2:
    case 3: { /* mutated JSON to an endpoint */
        size_t p = rndn(VT_ARRAY_LEN(fuzz_paths));
        struct buf js;
        buf_init(&js);
        mutate(&js);
        format_request(&req, fuzz_paths[p][0], fuzz_paths[p][1], js.data, js.len);
        buf_free(&js);
        break;
    }
    case 4: /* body shorter than Content-Length, then close */
        buf_printf(&req,
                   "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n%s%s%sContent-Length: "
                   "5000\r\n\r\n{\"model\":",
                   O.key ? "Authorization: Bearer " : "", O.key ? O.key : "", O.key ? "\r\n" : "");
        expect_answer = false;
        break;
    case 5: /* oversized header */ {
        buf_puts(&req, "GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: ");
        for (int i = 0; i < 20000; i++)
            buf_append(&req, "a", 1);
        buf_puts(&req, "\r\n\r\n");
        break;
    }
    case 6: /* broken chunked encoding */
        buf_printf(&req,
                   "POST /v1/completions HTTP/1.1\r\nHost: x\r\n%s%s%sTransfer-Encoding: "
                   "chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
                   O.key ? "Authorization: Bearer " : "", O.key ? O.key : "", O.key ? "\r\n" : "");
        break;
    default: { /* slow client: a valid request a few bytes at a time */
        format_request(&req, "GET", "/v1/models", NULL, 0);
        for (size_t i = 0; i < req.len; i += 7) {
            size_t n = req.len - i < 7 ? req.len - i : 7;
            if (send_all(fd, req.data + i, n) < 0)
                break;
            usleep(2000);
        }
        buf_reset(&req);
        break;
    }
    }
    fs->sent++;
    if (req.len > 0 && send_all(fd, req.data, req.len) < 0) {
        fs->closed++; /* the server closed on us mid-send: acceptable */
        goto out;
    }
    if (kind == 4 || kind == 0) {
        shutdown(fd, SHUT_WR);
    }
    bool closed;
    int st = read_response(fd, &body, &closed);
    if (st > 0) {
        fs->answered++;
        if (st >= 500 && !strstr(body.data ? body.data : "", "Injected fault")) {
            fs->status5xx++;
            fprintf(stderr, "sim_load: fuzz kind %d got %d: %.200s\n", kind, st,
                    body.data ? body.data : "");
        }
    } else {
        fs->closed++;
        (void)expect_answer;
    }
out:
    close(fd);
    buf_free(&req);
    buf_free(&body);
}

static int health_ok(void)
{
    int fd = connect_local(10);
    if (fd < 0)
        return 0;
    struct buf req, body;
    buf_init(&req);
    buf_init(&body);
    format_request(&req, "GET", "/v1/_sim/health", NULL, 0);
    bool closed;
    int st = send_all(fd, req.data, req.len) < 0 ? -1 : read_response(fd, &body, &closed);
    close(fd);
    int ok = st == 200 && body.data && strstr(body.data, "\"ok\"") != NULL;
    buf_free(&req);
    buf_free(&body);
    return ok;
}

static int run_fuzz(void)
{
    struct fuzz_stats fs = {0};
    rng_state = O.seed;
    uint64_t t0 = now_monotonic_ms();
    for (long i = 0; i < O.iterations; i++)
        fuzz_one(&fs);
    int healthy = health_ok();
    printf("sim_load: fuzz %ld inputs (seed %llu) in %.1f s: %ld answered, %ld closed without "
           "answer, %ld unexpected 5xx, %ld connect errors; server %s\n",
           fs.sent, (unsigned long long)O.seed, (double)(now_monotonic_ms() - t0) / 1000.0,
           fs.answered, fs.closed, fs.status5xx, fs.errors, healthy ? "healthy" : "NOT healthy");
    return healthy && fs.status5xx == 0 && fs.errors == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"port", required_argument, NULL, 'p'},
        {"key", required_argument, NULL, 'k'},
        {"mode", required_argument, NULL, 'm'},
        {"connections", required_argument, NULL, 'c'},
        {"requests", required_argument, NULL, 'r'},
        {"method", required_argument, NULL, 'X'},
        {"path", required_argument, NULL, 'P'},
        {"body", required_argument, NULL, 'b'},
        {"iterations", required_argument, NULL, 'i'},
        {"seed", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'p':
            O.port = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'k':
            O.key = optarg;
            break;
        case 'm':
            O.mode = optarg;
            break;
        case 'c':
            O.connections = atoi(optarg);
            break;
        case 'r':
            O.requests = atoi(optarg);
            break;
        case 'X':
            O.method = optarg;
            break;
        case 'P':
            O.path = optarg;
            break;
        case 'b':
            O.body = optarg;
            break;
        case 'i':
            O.iterations = atol(optarg);
            break;
        case 's':
            O.seed = strtoull(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr, "usage: sim_load --port P [--key K] [--mode load|fuzz] ...\n");
            return 2;
        }
    }
    if (O.port == 0 || O.port > 65535 || O.connections < 1 || O.connections > 5000 ||
        O.requests < 1 || O.iterations < 1) {
        fprintf(stderr, "sim_load: --port 1..65535, --connections 1..5000, --requests >= 1 "
                        "and --iterations >= 1 are required\n");
        return 2;
    }
    if (strcmp(O.mode, "load") == 0)
        return run_load();
    if (strcmp(O.mode, "fuzz") == 0)
        return run_fuzz();
    fprintf(stderr, "sim_load: --mode must be load or fuzz\n");
    return 2;
}
