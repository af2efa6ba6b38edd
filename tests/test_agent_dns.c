/* test_agent_dns.c -- the DNS answer watch against a real dnsmasq that the
 * test starts on a free loopback port and rewires (hosts file + SIGHUP,
 * or a restart for a new TTL), and against a silent and a closed UDP
 * port. Targets come from YAML through agent_config_load(), so parse() is
 * under test too; runs are driven the way loop.c drives them: the poll
 * hooks around curl_multi_poll(). Every process started is stopped in the
 * group teardown, which cmocka runs also after a failed test. */
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

#define BASE_TTL 30
#define MAX_T    4                  /* targets per run_targets() */

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
static char yaml_path[128];
static pid_t dns_pid;
static unsigned dns_port;
static int dns_ttl;
static int silent_fd = -1;          /* bound, never read: a dead resolver */
static unsigned silent_port;

/* A hostile resolver: the test answers its queries itself, between two
 * turns of the hooks, with replies built to break a parser. */
enum fake_mode {
    FAKE_SHORT,             /* 3 answers announced, none there */
    FAKE_BAD_RDLEN,         /* an A record of 5 bytes */
    FAKE_PAST_END,          /* rdlength beyond the end of the reply */
    FAKE_LOOP,              /* a CNAME whose name points at itself */
    FAKE_MANY,              /* 100 A records, one TTL with the high bit */
    FAKE_ODD_NAME,          /* a CNAME target with unprintable bytes */
};
static int fake_fd = -1;           /* UDP */
static int fake_tcp = -1;           /* listening on the same port */
static int fake_conn = -1;          /* one TCP client at a time */
static unsigned fake_port;
static enum fake_mode fake_mode;

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
static unsigned free_port(void)
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
static int start_dnsmasq(int ttl)
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
static void set_flip(const char *flip)
{
    int before = hosts_reads();

    write_hosts(flip);
    assert_int_equal(kill(dns_pid, SIGHUP), 0);
    for (int i = 0; i < 250 && hosts_reads() <= before; i++)
        usleep(20000);
    assert_true(hosts_reads() > before);
}

static int group_setup(void **state)
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

static int group_teardown(void **state)
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
static int load_cfg(struct agent_config *cfg, char *err, size_t err_len,
                    const char *targets, ...)
    __attribute__((format(printf, 4, 5)));
static int load_cfg(struct agent_config *cfg, char *err, size_t err_len,
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
static void load_one(struct agent_config *cfg, const char *query,
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

struct outcome {
    struct probe_result res[MAX_T];
    size_t left;
    size_t calls;
};

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
static void run_targets(const struct agent_target *ts, size_t n,
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
static void run_one(const struct agent_target *t, void **state,
                    struct probe_result *res)
{
    struct outcome o;

    run_targets(t, 1, state, &o, 32);
    *res = o.res[0];
}

static void assert_state(void *state, const char *want)
{
    char text[512];

    probe_dns_state_text(state, text, sizeof(text));
    assert_string_equal(text, want);
}

/* ---- answers ---- */

static void test_a_answers_are_sorted_with_their_ttl(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    load_one(&cfg, "multi.global.test", "");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_string_equal(r.error, "");
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n_extra, 0);         /* the first run: baseline */
    assert_true(r.t.dns_us > 0);
    assert_int_equal(r.t.total_us, r.t.dns_us);
    /* Numeric order, whatever order dnsmasq (which rotates) sent. */
    assert_state(st, "A 127.0.1.1 ttl 30, A 127.0.3.1 ttl 30");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

static void test_aaaa_answers_and_nodata(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    load_one(&cfg, "v6.global.test", "    record: AAAA\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_state(st, "AAAA ::1 ttl 30");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);

    /* The default record is A, which v6 has not: a failure, no baseline. */
    st = NULL;
    load_one(&cfg, "v6.global.test", "");
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "no A records (NODATA)");
    assert_state(st, "");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

static void test_any_merges_a_and_aaaa(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    load_one(&cfg, "dual.global.test", "    record: any\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_state(st, "A 127.0.1.1 ttl 30, AAAA ::1 ttl 30");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);

    /* An IPv4-only name: the AAAA half is NODATA, which is fine. */
    st = NULL;
    load_one(&cfg, "multi.global.test", "    record: ANY\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_state(st, "A 127.0.1.1 ttl 30, A 127.0.3.1 ttl 30");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

static void test_cname_chain_is_part_of_the_answer(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    load_one(&cfg, "www.global.test", "");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_state(st, "A 127.0.1.1 ttl 30, CNAME app.global.test ttl 30");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);

    st = NULL;
    load_one(&cfg, "www.global.test.", "    record: CNAME\n"
                                       "    expect: App.Global.Test.\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_state(st, "CNAME app.global.test ttl 30");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);

    /* A name with addresses but no CNAME. */
    st = NULL;
    load_one(&cfg, "app.global.test", "    record: CNAME\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "no CNAME records (NODATA)");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

/* ---- failures ---- */

static void test_nxdomain_and_refused_are_failures(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    load_one(&cfg, "missing.global.test", "");
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "NXDOMAIN");  /* an answer, no timeout */
    assert_true(r.t.total_us > 0);
    assert_int_equal(r.n_extra, 0);
    assert_state(st, "");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);

    /* dnsmasq has no upstream for names outside global.test. */
    st = NULL;
    load_one(&cfg, "elsewhere.example", "");
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "REFUSED");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);

    /* With ANY the error names the half that failed first. */
    st = NULL;
    load_one(&cfg, "missing.global.test", "    record: ANY\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "A: NXDOMAIN");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

static void test_silent_resolver_times_out_within_the_timeout(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    char err[512];
    void *st = NULL;

    (void)state;
    assert_int_equal(load_cfg(&cfg, err, sizeof(err),
                              "  - name: dead\n"
                              "    type: dns\n"
                              "    query: app.global.test\n"
                              "    resolver: 127.0.0.1:%u\n"
                              "    timeout: 300ms\n", silent_port),
                     0);
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "timeout after 300 ms");
    assert_true(r.t.total_us >= 299000);
    /* The error says the probe's own 300 ms timer ended it; this bound,
     * 10x that, only catches a probe that waits on regardless (a second
     * try, a library's 5 s default). A loaded machine may be late. */
    assert_true(r.t.total_us < 10 * 300000);
    assert_int_equal(r.t.dns_us, r.t.total_us);
    assert_state(st, "");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

static void test_closed_port_fails_fast_as_refused(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    char err[512];
    void *st = NULL;
    unsigned port = free_port();            /* nobody listens there */

    (void)state;
    assert_true(port > 0);
    assert_int_equal(load_cfg(&cfg, err, sizeof(err),
                              "  - name: closed\n"
                              "    type: dns\n"
                              "    query: app.global.test\n"
                              "    resolver: 127.0.0.1:%u\n"
                              "    timeout: 3s\n", port), 0);
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    /* ICMP, not the timeout: that would read "timeout after 3000 ms". */
    assert_string_equal(r.error, "connection refused");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

/* ---- answer changes ---- */

/* Asserts @ev is a DnsChange of target "flip" from A @old to A @new with
 * TTL @ttl, and that it survives the wire as the collector decodes it. */
static void assert_change(Sextant__V1__Event *ev, const char *old,
                          const char *new, unsigned ttl)
{
    Sextant__V1__Batch b = SEXTANT__V1__BATCH__INIT;
    Sextant__V1__Batch *got = NULL;
    Sextant__V1__DnsChange *d;
    char cl[] = "c1", rg[] = "eu-west-1", nd[] = "n1", ver[] = "test";
    char err[WIRE_ERR_LEN];
    uint8_t *z = NULL;
    size_t zlen = 0;

    assert_int_equal(ev->kind_case, SEXTANT__V1__EVENT__KIND_DNS);
    assert_int_equal(ev->unix_ms, 0);       /* the loop stamps it */
    for (int pass = 0; pass < 2; pass++) {
        d = pass == 0 ? ev->dns : got->events[0]->dns;
        assert_string_equal(d->name, "flip.global.test");
        assert_string_equal(d->target, "flip");
        assert_int_equal(d->n_old_answers, 1);
        assert_int_equal(d->n_new_answers, 1);
        assert_string_equal(d->old_answers[0]->type, "A");
        assert_string_equal(d->old_answers[0]->value, old);
        assert_int_equal(d->old_answers[0]->ttl, ttl);
        assert_string_equal(d->new_answers[0]->type, "A");
        assert_string_equal(d->new_answers[0]->value, new);
        assert_int_equal(d->new_answers[0]->ttl, ttl);
        if (pass == 1)
            break;
        b.cluster = cl;
        b.region = rg;
        b.node = nd;
        b.agent_version = ver;
        b.epoch = 42;
        b.first_seq = 1;
        b.n_events = 1;
        b.events = &ev;
        ev->seq = 1;
        ev->unix_ms = util_now_ms();
        assert_int_equal(wire_batch_encode(&b, &z, &zlen), 0);
        if (wire_batch_decode(z, zlen, WIRE_MAX_RAW, &got, err,
                              sizeof(err)) != 0)
            fail_msg("collector would refuse the change: %s", err);
    }
    wire_batch_free(got);
    free(z);
}

static void test_change_is_reported_after_the_baseline(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    set_flip("127.0.1.1 flip.global.test\n");
    load_one(&cfg, "flip.global.test", "");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 0);         /* baseline, not a change */
    run_one(&cfg.targets[0], &st, &r);
    assert_int_equal(r.n_extra, 0);         /* same answer */

    set_flip("127.0.2.1 flip.global.test\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 1);
    assert_change(r.extra[0], "127.0.1.1", "127.0.2.1", BASE_TTL);
    probe_result_clear(&r);
    assert_state(st, "A 127.0.2.1 ttl 30");

    run_one(&cfg.targets[0], &st, &r);      /* the new answer is the base */
    assert_int_equal(r.n_extra, 0);
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

static void test_failure_is_not_a_change_and_keeps_the_baseline(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    set_flip("127.0.1.1 flip.global.test\n");
    load_one(&cfg, "flip.global.test", "");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);

    set_flip("");                           /* NXDOMAIN */
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "NXDOMAIN");
    assert_int_equal(r.n_extra, 0);
    assert_state(st, "A 127.0.1.1 ttl 30");

    set_flip("127.0.1.1 flip.global.test\n");   /* back as it was */
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 0);

    set_flip("");
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    set_flip("127.0.2.1 flip.global.test\n");   /* back, elsewhere */
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 1);
    assert_change(r.extra[0], "127.0.1.1", "127.0.2.1", BASE_TTL);
    probe_result_clear(&r);
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

static void test_ttl_or_order_alone_is_not_a_change(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    set_flip("127.0.1.1 flip.global.test\n127.0.3.1 flip.global.test\n");
    load_one(&cfg, "flip.global.test", "");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_state(st, "A 127.0.1.1 ttl 30, A 127.0.3.1 ttl 30");

    set_flip("127.0.3.1 flip.global.test\n127.0.1.1 flip.global.test\n");
    for (int i = 0; i < 3; i++) {           /* dnsmasq rotates, too */
        run_one(&cfg.targets[0], &st, &r);
        assert_true(r.ok);
        assert_int_equal(r.n_extra, 0);
    }

    assert_int_equal(start_dnsmasq(7), 0);  /* same answers, new TTL */
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 0);
    assert_state(st, "A 127.0.1.1 ttl 7, A 127.0.3.1 ttl 7");
    assert_int_equal(start_dnsmasq(BASE_TTL), 0);
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

static void test_expect_decides_the_verdict(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    set_flip("127.0.1.1 flip.global.test\n");
    load_one(&cfg, "flip.global.test", "    expect: [127.0.2.1, 127.0.3.1]\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "answer not expected: A 127.0.1.1");
    /* Not ok, but an answer: it is the baseline the failover shows in. */
    assert_state(st, "A 127.0.1.1 ttl 30");

    set_flip("127.0.2.1 flip.global.test\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_string_equal(r.error, "");
    assert_int_equal(r.n_extra, 1);
    probe_result_clear(&r);
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);

    st = NULL;
    load_one(&cfg, "flip.global.test", "    expect: 127.0.2.1\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

/* ---- the loop's side ---- */

static void test_parallel_runs_finish_without_room_for_fds(void **state)
{
    struct agent_config cfg;
    struct outcome o;
    char err[512];
    void *st[MAX_T] = { NULL };
    int rc;

    (void)state;
    rc = load_cfg(&cfg, err, sizeof(err),
                  "  - {name: a, type: dns, query: app.global.test,"
                  " resolver: '127.0.0.1:%1$u'}\n"
                  "  - {name: b, type: dns, query: v6.global.test,"
                  " record: AAAA, resolver: '127.0.0.1:%1$u'}\n"
                  "  - {name: c, type: dns, query: no.global.test,"
                  " resolver: '127.0.0.1:%1$u'}\n"
                  "  - {name: d, type: dns, query: app.global.test,"
                  " resolver: '127.0.0.1:%2$u', timeout: 200ms}\n",
                  dns_port, silent_port);
    assert_int_equal(rc, 0);
    /* No room for our fds in the "loop": hooks still finish every run. */
    run_targets(cfg.targets, 4, st, &o, 0);
    assert_true(o.res[0].ok);
    assert_true(o.res[1].ok);
    assert_string_equal(o.res[2].error, "NXDOMAIN");
    assert_string_equal(o.res[3].error, "timeout after 200 ms");
    for (size_t i = 0; i < MAX_T; i++)
        probe_dns_ops.state_free(st[i]);
    agent_config_free(&cfg);
}

static void fail_on_done(struct probe_run *run, struct probe_result *res,
                         void *arg)
{
    (void)run;
    (void)res;
    (void)arg;
    fail_msg("a cancelled run was delivered");
}

/* Cancelled runs whose queries c-ares still holds: their answers, time-
 * outs and the channels' destruction must not touch them (ASan). */
static void test_cancel_during_a_pending_query_is_safe(void **state)
{
    struct agent_config cfg;
    struct probe_run *run[3];
    struct probe_result r;
    CURLM *multi = curl_multi_init();
    char err[512];
    void *st[3] = { NULL };
    int64_t end;
    int rc;

    (void)state;
    rc = load_cfg(&cfg, err, sizeof(err),
                  "  - {name: a, type: dns, query: dual.global.test,"
                  " record: ANY, resolver: '127.0.0.1:%1$u'}\n"
                  "  - {name: b, type: dns, query: app.global.test,"
                  " record: ANY, resolver: '127.0.0.1:%2$u', timeout: 150ms}\n"
                  "  - {name: c, type: dns, query: app.global.test,"
                  " resolver: '127.0.0.1:%2$u', timeout: 2s}\n",
                  dns_port, silent_port);
    assert_int_equal(rc, 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(probe_dns_ops.start(&cfg.targets[i], &st[i], multi,
                                             &run[i]), 0);
        run[i]->slot = i;
    }
    usleep(50000);          /* dnsmasq's answers wait in the socket */
    for (size_t i = 0; i < 3; i++)
        probe_dns_ops.cancel(run[i], multi);
    /* Past c-ares's own timeout for b (50 + 100 ms): every callback of
     * a and b comes in with nobody to deliver to. */
    end = util_mono_us() + 400000;
    while (util_mono_us() < end) {
        struct curl_waitfd fds[32];
        size_t n = probe_dns_ops.poll_fds(fds, 32);

        assert_int_equal(curl_multi_poll(multi, fds, (unsigned)n, 20, NULL),
                         CURLM_OK);
        probe_dns_ops.poll_process(fds, n, fail_on_done, NULL);
    }
    /* c's query is still in c-ares: shutting down calls it back. */
    probe_dns_shutdown();
    for (size_t i = 0; i < 3; i++)
        assert_state(st[i], "");            /* nothing was recorded */
    curl_multi_cleanup(multi);

    /* And the module works after that. */
    run_one(&cfg.targets[0], &st[0], &r);
    assert_true(r.ok);
    for (size_t i = 0; i < 3; i++)
        probe_dns_ops.state_free(st[i]);
    agent_config_free(&cfg);
}

/* ---- a hostile resolver ---- */

/* One run against the fake resolver in @mode, with extra keys @more. */
static void run_fake(enum fake_mode mode, const char *more, void **st,
                     struct probe_result *r)
{
    struct agent_config cfg;
    char err[512];

    fake_mode = mode;
    assert_int_equal(load_cfg(&cfg, err, sizeof(err),
                              "  - name: fake\n"
                              "    type: dns\n"
                              "    query: app.global.test\n"
                              "    resolver: 127.0.0.1:%u\n"
                              "    timeout: 2s\n%s", fake_port, more), 0);
    run_one(&cfg.targets[0], st, r);
    agent_config_free(&cfg);
}

static void assert_printable(const char *s)
{
    for (; *s; s++)
        assert_true(*s >= 0x20 && *s < 0x7f);
}

static void test_malformed_replies_are_failures(void **state)
{
    static const enum fake_mode modes[] = {
        FAKE_SHORT, FAKE_BAD_RDLEN, FAKE_PAST_END, FAKE_LOOP,
    };
    struct probe_result r;
    void *st = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        run_fake(modes[i], "", &st, &r);
        assert_false(r.ok);
        assert_string_equal(r.error, "malformed reply");
        assert_state(st, "");
    }
    probe_dns_ops.state_free(st);
}

static void test_answer_sets_are_capped_and_printable(void **state)
{
    struct probe_result r;
    char text[4096];
    void *st = NULL;

    (void)state;
    run_fake(FAKE_MANY, "", &st, &r);      /* over TCP: 1.6 KB */
    assert_true(r.ok);
    /* The lowest 64 of 100 addresses, whatever order they came in; the
     * TTL with the high bit set counts as 0 (RFC 2181). */
    assert_int_equal(probe_dns_state_text(st, text, sizeof(text)),
                     PROBE_DNS_MAX_ANSWERS);
    assert_non_null(strstr(text, "A 127.0.5.1 ttl 0, A 127.0.5.2 ttl 30,"));
    assert_non_null(strstr(text, ", A 127.0.5.64 ttl 30"));
    assert_null(strstr(text, "127.0.5.65"));
    /* A short buffer ends in "...". */
    probe_dns_state_text(st, text, 40);
    assert_int_equal(strlen(text), 39);
    assert_string_equal(text + 36, "...");
    probe_dns_ops.state_free(st);

    st = NULL;
    run_fake(FAKE_ODD_NAME, "    expect: 127.0.9.9\n", &st, &r);
    assert_false(r.ok);
    assert_printable(r.error);
    assert_non_null(strstr(r.error, "answer not expected: A 127.0.5.1, "
                                    "CNAME a"));
    probe_dns_state_text(st, text, sizeof(text));
    assert_printable(text);
    /* c-ares escapes what is not printable, and the '.' inside a label. */
    assert_string_equal(text, "A 127.0.5.1 ttl 30, "
                              "CNAME a\\001 \\.\\127.test ttl 30");
    probe_dns_ops.state_free(st);
}

/* ---- configuration ---- */

/* Asserts the targets YAML fails with "PATH:" + @want. */
static void expect_config_error(const char *targets, const char *want)
{
    struct agent_config cfg;
    char err[512], full[512];

    assert_int_equal(load_cfg(&cfg, err, sizeof(err), "%s", targets),
                     -EINVAL);
    snprintf(full, sizeof(full), "%s:%s", yaml_path, want);
    assert_string_equal(err, full);
    assert_null(cfg.targets);
}

static void test_config_errors_name_the_key(void **state)
{
    (void)state;
    expect_config_error("  - name: d\n"
                        "    type: dns\n",
                        "10: targets[0].query: required key is missing");
    expect_config_error("  - name: d\n"
                        "    type: dns\n"
                        "    query: bad_name!.example\n",
                        "12: targets[0].query: \"bad_name!.example\" is not "
                        "a DNS name");
    expect_config_error("  - name: d\n"
                        "    type: dns\n"
                        "    query: a.example\n"
                        "    record: MX\n",
                        "13: targets[0].record: expected A, AAAA, CNAME or "
                        "ANY (A and AAAA), got \"MX\"");
    expect_config_error("  - name: d\n"
                        "    type: dns\n"
                        "    query: a.example\n"
                        "    resolver: dns.example:53\n",
                        "13: targets[0].resolver: expected an IP address "
                        "and port, as 127.0.0.1:53 or [::1]:53, got "
                        "\"dns.example:53\"");
    expect_config_error("  - name: d\n"
                        "    type: dns\n"
                        "    query: a.example\n"
                        "    resolver: 127.0.0.1:0\n",
                        "13: targets[0].resolver: expected an IP address "
                        "and port, as 127.0.0.1:53 or [::1]:53, got "
                        "\"127.0.0.1:0\"");
    expect_config_error("  - name: d\n"
                        "    type: dns\n"
                        "    query: a.example\n"
                        "    resolver: '[127.0.0.1]:53'\n",
                        "13: targets[0].resolver: expected an IP address "
                        "and port, as 127.0.0.1:53 or [::1]:53, got "
                        "\"[127.0.0.1]:53\"");
    expect_config_error("  - name: d\n"
                        "    type: dns\n"
                        "    query: a.example\n"
                        "    expect: [127.0.0.1, 'not an answer']\n",
                        "13: targets[0].expect: item 1: \"not an answer\" is "
                        "neither an IP address nor a DNS name");
    expect_config_error("  - name: d\n"
                        "    type: dns\n"
                        "    query: a.example\n"
                        "    expect: []\n",
                        "13: targets[0].expect: empty list");
    expect_config_error("  - name: d\n"
                        "    type: dns\n"
                        "    query: a.example\n"
                        "    url: http://a.example/\n",
                        "13: targets[0].url: unknown key");
}

static void test_config_accepts_every_resolver_form(void **state)
{
    static const char *const forms[] = {
        "127.0.0.1:5353", "'[::1]:53'", "127.0.0.1", "::1",
    };
    struct agent_config cfg;
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        if (load_cfg(&cfg, err, sizeof(err),
                     "  - name: d\n"
                     "    type: dns\n"
                     "    query: a.example\n"
                     "    resolver: %s\n", forms[i]) != 0)
            fail_msg("%s: %s", forms[i], err);
        assert_non_null(cfg.targets[0].opts);
        assert_null(cfg.targets[0].url);
        agent_config_free(&cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_answers_are_sorted_with_their_ttl),
        cmocka_unit_test(test_aaaa_answers_and_nodata),
        cmocka_unit_test(test_any_merges_a_and_aaaa),
        cmocka_unit_test(test_cname_chain_is_part_of_the_answer),
        cmocka_unit_test(test_nxdomain_and_refused_are_failures),
        cmocka_unit_test(test_silent_resolver_times_out_within_the_timeout),
        cmocka_unit_test(test_closed_port_fails_fast_as_refused),
        cmocka_unit_test(test_change_is_reported_after_the_baseline),
        cmocka_unit_test(test_failure_is_not_a_change_and_keeps_the_baseline),
        cmocka_unit_test(test_ttl_or_order_alone_is_not_a_change),
        cmocka_unit_test(test_expect_decides_the_verdict),
        cmocka_unit_test(test_parallel_runs_finish_without_room_for_fds),
        cmocka_unit_test(test_cancel_during_a_pending_query_is_safe),
        cmocka_unit_test(test_malformed_replies_are_failures),
        cmocka_unit_test(test_answer_sets_are_capped_and_printable),
        cmocka_unit_test(test_config_errors_name_the_key),
        cmocka_unit_test(test_config_accepts_every_resolver_form),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
