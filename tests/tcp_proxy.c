/* tcp_proxy.c -- a TCP proxy for partition tests: listens on 127.0.0.1
 * (or --listen HOST:PORT; port 0 picks a free one), prints "PORT\n" on
 * stdout once it accepts, and forwards every connection to --to HOST:PORT.
 * Not part of the product; IPv4 only, one thread, at most
 * PROXY_MAX_CONNS connections at a time.
 *
 * Several --to (up to PROXY_MAX_UPSTREAMS) make it a round-robin load
 * balancer: each accepted connection goes to the next upstream in turn,
 * so a client that reconnects lands on another one (many collectors
 * behind one address). An upstream whose connect fails is skipped for
 * that connection and the next one tried, as a load balancer's connect
 * retry does; the client is reset only when every upstream failed. The
 * modes below apply to every connection, whichever its upstream.
 *
 * Four modes, switched by signals (the mode a test asks for is in force
 * once the proxy logged "proxy: mode NAME"; wait for that line):
 *   SIGHUP   pass       forward both ways (the start mode, or --mode NAME)
 *   SIGUSR1  blackhole  accept, read and discard, never answer: a
 *                       partition as a client sees it (its request hangs
 *                       until its own timeout). Connections open when the
 *                       mode starts are blackholed too; their upstream
 *                       half is closed.
 *   SIGUSR2  refuse     close every open connection and every new one at
 *                       once, with a reset (SO_LINGER 0): a peer that is
 *                       down or a firewall that rejects.
 *   SIGWINCH oneway     forward what the client sends, discard what the
 *                       upstream answers: requests arrive and are acted
 *                       on, replies are lost (an asymmetric partition; the
 *                       client cannot tell what was done).
 *   SIGTERM, SIGINT     exit 0.
 * Leaving blackhole or oneway resets the connections they swallowed
 * bytes of: their streams lost data, and a healed partition should not
 * make the test wait for the client's request timeout. Entering
 * blackhole turns open connections into blackholed ones, entering oneway
 * turns open passing ones into one-way ones (and resets blackholed ones).
 * Bytes buffered in a direction that stops are discarded.
 *
 * The log (stderr, common/log.h) has one line per event a test may wait
 * for, ending in "proxy: mode NAME", "proxy: accept N" (N: connections
 * accepted so far) or "proxy: upstream failed: REASON". */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include "log.h"
#include "util.h"

#define PROXY_MAX_CONNS 256u
#define PROXY_BUF       (64u << 10)     /* bytes in flight per direction */
#define PROXY_MAX_UPSTREAMS 8u

enum proxy_mode { PROXY_PASS, PROXY_BLACKHOLE, PROXY_REFUSE, PROXY_ONEWAY };

static const char *const proxy_mode_names[] = { "pass", "blackhole",
                                                "refuse", "oneway" };

/* One direction of a connection: bytes read from one side, not yet
 * written to the other. */
struct proxy_pipe {
    char buf[PROXY_BUF];
    size_t len;
    int eof;                    /* the reading side closed its half */
};

struct proxy_conn {
    int cfd;                    /* the client's socket; -1: slot free */
    int ufd;                    /* upstream; -1 while blackholed */
    int connecting;             /* upstream connect() not finished yet */
    int blackholed;
    int oneway;                 /* upstream's bytes are read and dropped */
    size_t to;                  /* index in proxy_to of its upstream */
    size_t tries;               /* upstreams tried for it so far */
    struct proxy_pipe up;       /* client -> upstream */
    struct proxy_pipe down;     /* upstream -> client */
};

static struct proxy_conn proxy_conns[PROXY_MAX_CONNS];
static struct sockaddr_in proxy_to[PROXY_MAX_UPSTREAMS];
static size_t proxy_n_to;
static unsigned long proxy_accepted;

/* Closes @fd so that the peer sees a reset, not an orderly end. */
static void proxy_reset(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };

    if (fd < 0)
        return;
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static void proxy_conn_close(struct proxy_conn *c, int reset)
{
    if (reset) {
        proxy_reset(c->cfd);
        proxy_reset(c->ufd);
    } else {
        if (c->cfd >= 0)
            close(c->cfd);
        if (c->ufd >= 0)
            close(c->ufd);
    }
    c->cfd = c->ufd = -1;
}

/* Starts a non-blocking connect to @c's upstream, or to the next ones
 * while a connect fails at once; -1 when every upstream was tried. */
static int proxy_connect_up(struct proxy_conn *c)
{
    int one = 1;

    for (; c->tries < proxy_n_to; c->tries++) {
        const struct sockaddr_in *to = &proxy_to[c->to];
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        0);

        if (fd < 0)
            return -1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) < 0 &&
            errno != EINPROGRESS) {
            log_msg(LOGL_WARN, "proxy", "upstream failed: %s",
                    strerror(errno));
            close(fd);
            c->to = (c->to + 1) % proxy_n_to;
            continue;
        }
        c->ufd = fd;
        c->connecting = 1;
        return 0;
    }
    return -1;
}

static void proxy_accept(int lfd, enum proxy_mode mode)
{
    struct proxy_conn *c = NULL;
    int fd, one = 1;

    fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    proxy_accepted++;
    log_msg(LOGL_INFO, "proxy", "accept %lu", proxy_accepted);
    if (mode == PROXY_REFUSE) {
        proxy_reset(fd);
        return;
    }
    for (size_t i = 0; i < PROXY_MAX_CONNS && !c; i++)
        if (proxy_conns[i].cfd < 0)
            c = &proxy_conns[i];
    if (!c) {                   /* full: as if the host refused */
        log_msg(LOGL_WARN, "proxy", "too many connections");
        proxy_reset(fd);
        return;
    }
    memset(c, 0, sizeof(*c));
    c->cfd = fd;
    c->ufd = -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (mode == PROXY_BLACKHOLE) {
        c->blackholed = 1;
        return;
    }
    c->oneway = mode == PROXY_ONEWAY;
    c->to = (proxy_accepted - 1) % proxy_n_to;      /* round-robin */
    if (proxy_connect_up(c) < 0)
        proxy_conn_close(c, 1);
}

static void proxy_set_mode(enum proxy_mode *mode, enum proxy_mode to)
{
    for (size_t i = 0; i < PROXY_MAX_CONNS; i++) {
        struct proxy_conn *c = &proxy_conns[i];

        if (c->cfd < 0)
            continue;
        if (to == PROXY_REFUSE ||
            (c->blackholed && to != PROXY_BLACKHOLE) ||
            (c->oneway && to == PROXY_PASS)) {
            proxy_conn_close(c, 1);
        } else if (to == PROXY_BLACKHOLE && !c->blackholed) {
            proxy_reset(c->ufd);
            c->ufd = -1;
            c->blackholed = 1;
            c->oneway = 0;
            c->up.len = c->down.len = 0;
        } else if (to == PROXY_ONEWAY && !c->oneway) {
            c->oneway = 1;
            c->down.len = 0;
        }
    }
    *mode = to;
    log_msg(LOGL_INFO, "proxy", "mode %s", proxy_mode_names[to]);
}

/* Reads from @from into @p if there is room; 0, or -1 on a hard error. */
static int proxy_fill(int from, struct proxy_pipe *p)
{
    ssize_t n;

    if (p->eof || p->len == sizeof(p->buf))
        return 0;
    n = read(from, p->buf + p->len, sizeof(p->buf) - p->len);
    if (n > 0)
        p->len += (size_t)n;
    else if (n == 0)
        p->eof = 1;
    else if (errno != EAGAIN && errno != EINTR)
        return -1;
    return 0;
}

/* Writes what @p holds to @to, and passes an end on once it is empty. */
static int proxy_drain(int to, struct proxy_pipe *p)
{
    ssize_t n;

    if (p->len > 0) {
        n = write(to, p->buf, p->len);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        memmove(p->buf, p->buf + n, p->len - (size_t)n);
        p->len -= (size_t)n;
    }
    if (p->len == 0 && p->eof == 1) {
        shutdown(to, SHUT_WR);
        p->eof = 2;             /* passed on */
    }
    return 0;
}

/* Serves one connection after poll(); @rc and @ru are the revents of the
 * client and upstream sockets. */
static void proxy_serve(struct proxy_conn *c, short rc, short ru)
{
    char sink[4096];

    if (c->blackholed) {
        ssize_t n = (rc & (POLLIN | POLLHUP | POLLERR))
                        ? read(c->cfd, sink, sizeof(sink)) : 1;
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            proxy_conn_close(c, 0);
        return;
    }
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof(err);

        if (!(ru & (POLLOUT | POLLERR | POLLHUP)))
            return;
        getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            log_msg(LOGL_WARN, "proxy", "upstream failed: %s", strerror(err));
            close(c->ufd);
            c->ufd = -1;
            c->connecting = 0;
            c->tries++;             /* the next upstream, if any is left */
            c->to = (c->to + 1) % proxy_n_to;
            if (proxy_connect_up(c) < 0)
                proxy_conn_close(c, 1);
            return;
        }
        c->connecting = 0;
    }
    if (((rc & (POLLIN | POLLHUP)) && proxy_fill(c->cfd, &c->up) < 0) ||
        ((ru & (POLLIN | POLLHUP)) && proxy_fill(c->ufd, &c->down) < 0) ||
        (rc & POLLERR) || (ru & POLLERR)) {
        proxy_conn_close(c, 1);
        return;
    }
    if (c->oneway) {
        c->down.len = 0;                /* the reply is lost */
        if (c->down.eof) {              /* upstream is done; the client */
            proxy_reset(c->ufd);        /* waits on, as in a blackhole */
            c->ufd = -1;
            c->blackholed = 1;
            return;
        }
    }
    if (proxy_drain(c->ufd, &c->up) < 0 || proxy_drain(c->cfd, &c->down) < 0) {
        proxy_conn_close(c, 1);
        return;
    }
    if (c->up.eof == 2 && c->down.eof == 2)
        proxy_conn_close(c, 0);
}

static short proxy_events(const struct proxy_pipe *in,
                          const struct proxy_pipe *out)
{
    short ev = 0;

    if (!in->eof && in->len < sizeof(in->buf))
        ev |= POLLIN;
    if (out->len > 0)
        ev |= POLLOUT;
    return ev;
}

static enum proxy_mode proxy_signal_mode(uint32_t signo)
{
    switch (signo) {
    case SIGUSR1:  return PROXY_BLACKHOLE;
    case SIGUSR2:  return PROXY_REFUSE;
    case SIGWINCH: return PROXY_ONEWAY;
    default:       return PROXY_PASS;      /* SIGHUP */
    }
}

static int proxy_parse(const char *s, struct sockaddr_in *out)
{
    char host[64];
    uint16_t port;

    if (util_parse_hostport(s, host, sizeof(host), &port) < 0)
        return -1;
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons(port);
    return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *listen_at = "127.0.0.1:0";
    struct pollfd pfd[2 + 2 * PROXY_MAX_CONNS];
    size_t idx[PROXY_MAX_CONNS];
    enum proxy_mode mode = PROXY_PASS;
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    sigset_t sigs;
    int lfd, sfd, one = 1, bad = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen_at = argv[++i];
        } else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) {
            if (proxy_n_to == PROXY_MAX_UPSTREAMS ||
                proxy_parse(argv[++i], &proxy_to[proxy_n_to]) < 0)
                bad = 1;
            else
                proxy_n_to++;
        } else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
            const char *m = argv[++i];

            if (strcmp(m, "pass") == 0)
                mode = PROXY_PASS;
            else if (strcmp(m, "blackhole") == 0)
                mode = PROXY_BLACKHOLE;
            else if (strcmp(m, "refuse") == 0)
                mode = PROXY_REFUSE;
            else if (strcmp(m, "oneway") == 0)
                mode = PROXY_ONEWAY;
            else
                bad = 1;
        } else {
            bad = 1;
        }
    }
    if (bad || proxy_n_to == 0 || proxy_parse(listen_at, &sin) < 0) {
        fprintf(stderr, "usage: tcp_proxy --to IP:PORT [--to IP:PORT ...] "
                        "[--listen IP:PORT] "
                        "[--mode pass|blackhole|refuse|oneway]\n"
                        "  SIGHUP: pass, SIGUSR1: blackhole, SIGUSR2: "
                        "refuse, SIGWINCH: oneway\n");
        return 2;
    }
    for (size_t i = 0; i < PROXY_MAX_CONNS; i++)
        proxy_conns[i].cfd = proxy_conns[i].ufd = -1;
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGUSR2);
    sigaddset(&sigs, SIGWINCH);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (sfd < 0 || lfd < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        listen(lfd, 128) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sin, &slen) < 0) {
        fprintf(stderr, "tcp_proxy: cannot listen on %s: %s\n", listen_at,
                strerror(errno));
        return 1;
    }
    printf("%u\n", ntohs(sin.sin_port));
    fflush(stdout);
    log_msg(LOGL_INFO, "proxy", "mode %s", proxy_mode_names[mode]);
    for (;;) {
        size_t n = 2;

        pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
        pfd[1] = (struct pollfd){ .fd = lfd, .events = POLLIN };
        for (size_t i = 0; i < PROXY_MAX_CONNS; i++) {
            struct proxy_conn *c = &proxy_conns[i];

            if (c->cfd < 0)
                continue;
            idx[i] = n;
            if (c->blackholed) {
                pfd[n++] = (struct pollfd){ .fd = c->cfd, .events = POLLIN };
                pfd[n++] = (struct pollfd){ .fd = -1 };
                continue;
            }
            pfd[n++] = (struct pollfd){
                .fd = c->cfd,
                .events = c->connecting ? 0 : proxy_events(&c->up, &c->down) };
            pfd[n++] = (struct pollfd){
                .fd = c->ufd,
                .events = c->connecting ? POLLOUT
                                        : proxy_events(&c->down, &c->up) };
        }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("tcp_proxy: poll");
            return 1;
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;

            if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                    break;
                proxy_set_mode(&mode, proxy_signal_mode(si.ssi_signo));
            }
            continue;           /* the fds polled may be closed now */
        }
        for (size_t i = 0; i < PROXY_MAX_CONNS; i++) {
            struct proxy_conn *c = &proxy_conns[i];

            if (c->cfd >= 0 && (pfd[idx[i]].revents | pfd[idx[i] + 1].revents))
                proxy_serve(c, pfd[idx[i]].revents, pfd[idx[i] + 1].revents);
        }
        if (pfd[1].revents & POLLIN)
            proxy_accept(lfd, mode);
    }
    for (size_t i = 0; i < PROXY_MAX_CONNS; i++)
        if (proxy_conns[i].cfd >= 0)
            proxy_conn_close(&proxy_conns[i], 0);
    close(lfd);
    close(sfd);
    return 0;
}
