/* dns_test.c -- the DNS probe tests' shared fixture (see dns_test.h):
 * dnsmasq, the silent port, the hostile fake resolver, YAML targets and
 * runs driven through the poll hooks. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "probe.h"
#include "probe_dns.h"
#include "util.h"
#include "wire.h"
#include "dns_test.h"

/* Names every test may rely on; "flip" is what tests rewrite. */
static const char base_hosts[] =
    "127.0.3.1 multi.global.test\n"
    "127.0.1.1 multi.global.test\n"
    "127.0.1.1 dual.global.test\n"
    "::1 dual.global.test\n"
    "::1 v6.global.test\n"
    "127.0.1.1 app.global.test\n";

static char dir[64];                /* mkdtemp: hosts, log, yaml */
static char hosts_path[128];
static char log_path[128];
char yaml_path[128];
static pid_t dns_pid;
unsigned dns_port;
static int dns_ttl;
static int silent_fd = -1;          /* bound, never read: a dead resolver */
unsigned silent_port;

static int fake_fd = -1;            /* UDP */
static int fake_tcp = -1;           /* listening on the same port */
static int fake_conn = -1;          /* one TCP client at a time */
unsigned fake_port;
enum fake_mode fake_mode;

/* ---- dnsmasq ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* Sets the hosts file to the base names plus @flip (lines or ""). */
static void write_hosts(const char *flip)
{
    char text[1024];

    snprintf(text, sizeof(text), "%s%s", base_hosts, flip);
    write_file(hosts_path, text);
}

/* How many times dnsmasq has logged reading the hosts file. */
static int hosts_reads(void)
{
    char *buf = NULL, *p, pat[160];
    size_t len;
    int n = 0;

    if (util_read_file(log_path, 1u << 20, &buf, &len) < 0)
        return 0;
    snprintf(pat, sizeof(pat), "read %s", hosts_path);
    for (p = buf; (p = strstr(p, pat)) != NULL; p += strlen(pat))
        n++;
    free(buf);
    return n;
}

/* A port free for both UDP and TCP right now (dnsmasq takes both). */
unsigned free_port(void)
{
    for (int i = 0; i < 20; i++) {
        struct sockaddr_in a = { .sin_family = AF_INET };
        socklen_t al = sizeof(a);
        int u = socket(AF_INET, SOCK_DGRAM, 0), t, ok;
        unsigned port;

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (u < 0 || bind(u, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            getsockname(u, (struct sockaddr *)&a, &al) < 0) {
            if (u >= 0)
                close(u);
            continue;
        }
        port = ntohs(a.sin_port);
        t = socket(AF_INET, SOCK_STREAM, 0);
        ok = t >= 0 && bind(t, (struct sockaddr *)&a, sizeof(a)) == 0;
        if (t >= 0)
            close(t);
        close(u);
        if (ok)
            return port;
    }
    return 0;
}

static void stop_dnsmasq(void)
{
    if (dns_pid <= 0)
        return;
    kill(dns_pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(dns_pid, NULL, WNOHANG) == dns_pid) {
            dns_pid = 0;
            return;
        }
        usleep(20000);
    }
    kill(dns_pid, SIGKILL);
    waitpid(dns_pid, NULL, 0);
    dns_pid = 0;
}

/* The child the test starts: it runs dnsmasq, passes SIGHUP and SIGTERM
 * on, and exits when dnsmasq does. The teardown stops it; this covers a
 * test that dies before (an ASan report exits at once): the kernel sends
 * the supervisor SIGTERM when the test is gone. dnsmasq cannot ask for
 * that itself, since dropping its privileges clears it. */
static void supervise(const char *bin, char *const *argv, int logfd,
                      pid_t parent)
{
    sigset_t set;
    pid_t d;
    int sig, st;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
        prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
        _exit(127);
    d = fork();
    if (d == 0) {
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        if (dup2(logfd, STDERR_FILENO) < 0)
            _exit(127);
        execvp(bin, argv);
        _exit(127);
    }
    if (d < 0)
        _exit(127);
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig != SIGCHLD)
            kill(d, sig);
        else if (waitpid(d, &st, WNOHANG) == d)
            _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
    }
}

/* Starts dnsmasq on @port (a free one if 0) with @ttl; 0 once it has read
 * its hosts file, -1 if it exited (port taken) or never got there. */
static int try_dnsmasq(unsigned port, int ttl)
{
    char a_port[32], a_hosts[160], a_ttl[32], a_pid[160];
    char *const argv[] = {
        "dnsmasq", "--keep-in-foreground", a_port,
        "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
        "--no-hosts", a_hosts, a_ttl, a_pid, "--conf-file=/dev/null",
        "--local=/global.test/", "--cname=www.global.test,app.global.test",
        "--log-facility=-", geteuid() == 0 ? "--user=root" : NULL, NULL,
    };
    const char *bin = access("/usr/sbin/dnsmasq", X_OK) == 0
                          ? "/usr/sbin/dnsmasq" : "dnsmasq";
    pid_t parent = getpid();
    int fd;

    snprintf(a_port, sizeof(a_port), "--port=%u", port);
    snprintf(a_hosts, sizeof(a_hosts), "--addn-hosts=%s", hosts_path);
    snprintf(a_ttl, sizeof(a_ttl), "--local-ttl=%d", ttl);
    snprintf(a_pid, sizeof(a_pid), "--pid-file=%s/dnsmasq.pid", dir);
    fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    dns_pid = fork();
    if (dns_pid == 0)
        supervise(bin, argv, fd, parent);
    close(fd);
    if (dns_pid < 0) {
        dns_pid = 0;
        return -1;
    }
    for (int i = 0; i < 250; i++) {
        if (waitpid(dns_pid, NULL, WNOHANG) == dns_pid) {
            dns_pid = 0;
            return -1;
        }
        if (hosts_reads() >= 1) {
            dns_port = port;
            dns_ttl = ttl;
            return 0;
        }
        usleep(20000);
    }
    stop_dnsmasq();
    return -1;
}

/* (Re)starts dnsmasq with @ttl: on the same port once it has one. */
int start_dnsmasq(int ttl)
{
    stop_dnsmasq();
    for (int i = 0; i < 5; i++) {
        unsigned port = dns_port ? dns_port : free_port();

        if (port && try_dnsmasq(port, ttl) == 0)
            return 0;
    }
    return -1;
}

/* Rewrites the flip lines and has dnsmasq read them (SIGHUP). */
void set_flip(const char *flip)
{
    int before = hosts_reads();

    write_hosts(flip);
    assert_int_equal(kill(dns_pid, SIGHUP), 0);
    for (int i = 0; i < 250 && hosts_reads() <= before; i++)
        usleep(20000);
    assert_true(hosts_reads() > before);
}

int group_setup(void **state)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof(a);

    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sextant-dns-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(hosts_path, sizeof(hosts_path), "%s/hosts", dir);
    snprintf(log_path, sizeof(log_path), "%s/dnsmasq.log", dir);
    snprintf(yaml_path, sizeof(yaml_path), "%s/agent.yaml", dir);
    write_hosts("");
    if (start_dnsmasq(BASE_TTL) < 0) {
        fprintf(stderr, "cannot start dnsmasq (package dnsmasq-base)\n");
        return -1;
    }
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    silent_fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (silent_fd < 0 || bind(silent_fd, (struct sockaddr *)&a, sizeof(a))
        < 0 || getsockname(silent_fd, (struct sockaddr *)&a, &al) < 0)
        return -1;
    silent_port = ntohs(a.sin_port);
    fake_port = free_port();
    a.sin_port = htons((uint16_t)fake_port);
    fake_fd = socket(AF_INET, SOCK_DGRAM, 0);
    fake_tcp = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fake_fd < 0 || fake_tcp < 0 ||
        bind(fake_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        bind(fake_tcp, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(fake_tcp, 4) < 0)
        return -1;
    return 0;
}

int group_teardown(void **state)
{
    static const char *const files[] = { "hosts", "dnsmasq.log",
                                         "agent.yaml", "dnsmasq.pid" };
    char path[160];

    (void)state;
    stop_dnsmasq();
    probe_dns_shutdown();
    if (silent_fd >= 0)
        close(silent_fd);
    if (fake_fd >= 0)
        close(fake_fd);
    if (fake_tcp >= 0)
        close(fake_tcp);
    if (fake_conn >= 0)
        close(fake_conn);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}

/* ---- targets from YAML ---- */

/* Loads "targets:" + @targets (a printf format) into @cfg. */
int load_cfg(struct agent_config *cfg, char *err, size_t err_len,
             const char *targets, ...)
{
    char body[2048], yaml[4096];
    va_list ap;

    va_start(ap, targets);
    vsnprintf(body, sizeof(body), targets, ap);
    va_end(ap);
    snprintf(yaml, sizeof(yaml),
             "cluster: c1\n"
             "region: eu-west-1\n"
             "node: n1\n"
             "collector:\n"
             "  url: http://127.0.0.1:8480\n"
             "  token: tok-0123456789abcdef\n"
             "spool:\n"
             "  path: %s/spool.db\n"
             "targets:\n%s", dir, body);
    write_file(yaml_path, yaml);
    memset(cfg, 0, sizeof(*cfg));
    return agent_config_load(yaml_path, cfg, err, err_len);
}

/* One dns target on dnsmasq, named after the first label of @query, with
 * extra keys @more. */
void load_one(struct agent_config *cfg, const char *query,
              const char *more)
{
    char err[512] = "";
    int rc = load_cfg(cfg, err, sizeof(err),
                      "  - name: %.*s\n"
                      "    type: dns\n"
                      "    query: %s\n"
                      "    resolver: 127.0.0.1:%u\n"
                      "    timeout: 2s\n"
                      "%s",
                      (int)strcspn(query, "."), query, query, dns_port, more);

    if (rc != 0)
        fail_msg("config: %s", err);
    assert_int_equal(cfg->n_targets, 1);
    assert_int_equal(cfg->targets[0].type, PROBE_DNS);
}

/* ---- driving runs the way loop.c does ---- */

static void on_done(struct probe_run *run, struct probe_result *res,
                    void *arg)
{
    struct outcome *o = arg;

    assert_ptr_equal(run->ops, &probe_dns_ops);
    assert_true(run->slot < MAX_T);
    o->res[run->slot] = *res;       /* takes the extra events */
    res->extra = NULL;
    res->n_extra = 0;
    /* The answers stay with @res, which the probe clears after us; the
     * tests read answer sets through probe_dns_state_text(). */
    o->res[run->slot].answers = NULL;
    o->res[run->slot].n_answers = 0;
    o->left--;
    o->calls++;
}

/* Turns the hooks until @o->left is 0 or @ms passed; @max_fds is the
 * room the "loop" has for our fds. */
/* Appends a record named by a pointer to the question's name. */
static void fake_rr(unsigned char *r, size_t *len, unsigned type,
                    uint32_t ttl, const unsigned char *rd, unsigned rdlen)
{
    unsigned char h[12] = { 0xc0, 0x0c, type >> 8, type & 0xff, 0, 1,
                            ttl >> 24, (ttl >> 16) & 0xff, (ttl >> 8) & 0xff,
                            ttl & 0xff, rdlen >> 8, rdlen & 0xff };

    memcpy(r + *len, h, sizeof(h));
    *len += sizeof(h);
    memcpy(r + *len, rd, rdlen);
    *len += rdlen;
}

/* Builds in @r the reply to query @q (@n bytes) as fake_mode says;
 * returns its length, 0 if @q is no query. *qlen: header and question. */
static size_t fake_reply(const unsigned char *q, size_t n, unsigned char *r,
                         size_t *qlen)
{
    static const unsigned char odd[] = { 5, 'a', 1, ' ', '.', 0x7f, 4, 't',
                                         'e', 's', 't', 0 };
    static const unsigned char five[] = { 127, 0, 5, 1, 1 };
    unsigned char a[4] = { 127, 0, 5, 1 };
    size_t qend = 12, len;
    unsigned an = 0;

    if (n < 17)
        return 0;
    while (qend < n && q[qend])
        qend += q[qend] + 1u;
    qend += 5;                      /* root label, type, class */
    if (qend > n)
        return 0;
    memcpy(r, q, qend);
    r[2] = 0x81;                    /* a response, recursion desired */
    r[3] = 0x80;                    /* recursion available, NOERROR */
    memset(r + 8, 0, 4);
    len = *qlen = qend;
    switch (fake_mode) {
    case FAKE_SHORT:
        an = 3;
        break;
    case FAKE_BAD_RDLEN:
        fake_rr(r, &len, ns_t_a, 30, five, sizeof(five));
        an = 1;
        break;
    case FAKE_PAST_END:
        fake_rr(r, &len, ns_t_a, 30, a, 4);
        r[len - 6] = 1;             /* rdlength 260 */
        an = 1;
        break;
    case FAKE_LOOP: {
        unsigned char self[2] = { 0xc0, 0 };

        self[1] = (unsigned char)(len + 12);   /* its own rdata */
        fake_rr(r, &len, ns_t_cname, 30, self, 2);
        an = 1;
        break;
    }
    case FAKE_MANY:
        for (unsigned i = 0; i < 100; i++) {
            a[3] = (unsigned char)(100 - i);
            fake_rr(r, &len, ns_t_a, i == 99 ? 0x80000000u : 30, a, 4);
        }
        an = 100;
        break;
    case FAKE_ODD_NAME:
        fake_rr(r, &len, ns_t_cname, 30, odd, sizeof(odd));
        fake_rr(r, &len, ns_t_a, 30, a, 4);
        an = 2;
        break;
    }
    r[6] = (unsigned char)(an >> 8);
    r[7] = (unsigned char)an;
    return len;
}

/* Answers what waits: a UDP query (a reply over 512 bytes is cut to the
 * question with TC set, as servers do, so c-ares asks again over TCP), a
 * TCP connection, a TCP query (2-byte length first). */
static void fake_serve(void)
{
    static unsigned char tq[514];   /* the TCP query so far */
    static size_t tq_len;
    unsigned char q[512], r[4096];
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    size_t len, qlen;
    ssize_t n;

    n = recvfrom(fake_fd, q, sizeof(q), MSG_DONTWAIT,
                 (struct sockaddr *)&from, &fl);
    if (n > 0 && (len = fake_reply(q, (size_t)n, r, &qlen)) > 0) {
        if (len > 512) {
            len = qlen;
            r[2] |= 0x02;           /* TC */
            memset(r + 6, 0, 2);    /* no answers */
        }
        sendto(fake_fd, r, len, 0, (struct sockaddr *)&from, fl);
    }
    if (fake_conn < 0) {
        fake_conn = accept4(fake_tcp, NULL, NULL, SOCK_NONBLOCK);
        tq_len = 0;
    }
    if (fake_conn < 0)
        return;
    n = recv(fake_conn, tq + tq_len, sizeof(tq) - tq_len, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
        close(fake_conn);
        fake_conn = -1;
        return;
    }
    if (n > 0)
        tq_len += (size_t)n;
    if (tq_len < 2 || tq_len < 2u + (tq[0] << 8 | tq[1]))
        return;
    len = fake_reply(tq + 2, tq_len - 2, r + 2, &qlen);
    r[0] = (unsigned char)(len >> 8);
    r[1] = (unsigned char)len;
    assert_int_equal(send(fake_conn, r, len + 2, MSG_NOSIGNAL),
                     (ssize_t)len + 2);
    close(fake_conn);
    fake_conn = -1;
}

static void turn_until(CURLM *multi, struct outcome *o, long ms,
                       size_t max_fds)
{
    int64_t end = util_mono_us() + ms * 1000;

    while (o->left > 0 && util_mono_us() < end) {
        struct curl_waitfd fds[35];     /* 32 and the fake's three */
        size_t n = probe_dns_ops.poll_fds(fds, max_fds);
        long w = probe_dns_ops.poll_timeout_ms();

        assert_true(n <= max_fds);
        if (w < 0 || w > 100)
            w = 100;
        /* The fake's fds go after ours: poll_process() gets only ours. */
        fds[n] = (struct curl_waitfd){ fake_fd, CURL_WAIT_POLLIN, 0 };
        fds[n + 1] = (struct curl_waitfd){ fake_tcp, CURL_WAIT_POLLIN, 0 };
        fds[n + 2] = (struct curl_waitfd){ fake_conn, CURL_WAIT_POLLIN, 0 };
        assert_int_equal(curl_multi_poll(multi, fds,
                                         (unsigned)n + (fake_conn >= 0 ? 3
                                                                       : 2),
                                         (int)w, NULL), CURLM_OK);
        fake_serve();
        probe_dns_ops.poll_process(fds, n, on_done, o);
    }
}

/* Runs each of @n targets once, all at the same time, with their state
 * slots @states; results in @o. */
void run_targets(const struct agent_target *ts, size_t n,
                 void **states, struct outcome *o, size_t max_fds)
{
    CURLM *multi = curl_multi_init();

    assert_non_null(multi);
    memset(o, 0, sizeof(*o));
    o->left = n;
    for (size_t i = 0; i < n; i++) {
        struct probe_run *run = NULL;

        assert_int_equal(probe_dns_ops.start(&ts[i], &states[i], multi,
                                             &run), 0);
        assert_non_null(run);
        run->slot = i;
        assert_true(run->start_unix_ms > 0);
    }
    turn_until(multi, o, 10000, max_fds);
    assert_int_equal(o->left, 0);
    assert_int_equal(o->calls, n);
    curl_multi_cleanup(multi);
}

/* One run of @t with @state; the result (with its extras) goes to @res. */
void run_one(const struct agent_target *t, void **state,
             struct probe_result *res)
{
    struct outcome o;

    run_targets(t, 1, state, &o, 32);
    *res = o.res[0];
}

void assert_state(void *state, const char *want)
{
    char text[512];

    probe_dns_state_text(state, text, sizeof(text));
    assert_string_equal(text, want);
}
