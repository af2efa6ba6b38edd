/* slow_client.c -- a slowloris client for the request deadline test: opens
 * a TCP connection and sends one ingest request a byte at a time, one
 * byte every INTERVAL_MS (the headers, or with --slow-body only the body),
 * until the server closes the connection or GIVE_UP_S seconds pass.
 * Prints "closed after N ms" and exits 0 when the server closed it (EOF,
 * reset or a failed write), "still open after N s" and exits 1 when it did
 * not, 2 on bad usage or when it cannot connect. Not part of the product. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

/* Waits up to @ms for the server to end the connection: 1 if it did. */
static int slow_closed(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char buf[512];
    ssize_t n;

    if (poll(&p, 1, ms) <= 0)
        return 0;
    n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ||
           (p.revents & (POLLHUP | POLLERR));
}

int main(int argc, char **argv)
{
    static const char body[] = "0123456789abcdef0123456789abcdef";
    struct sockaddr_in sin = { .sin_family = AF_INET };
    char req[512];
    size_t fast_len = 0, len;
    int64_t start, give_up_us;
    int fd, interval_ms, slow_body;

    if (argc < 5) {
        fprintf(stderr, "usage: slow_client HOST PORT INTERVAL_MS GIVE_UP_S "
                        "[--slow-body]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    interval_ms = atoi(argv[3]);
    give_up_us = (int64_t)atoi(argv[4]) * 1000000;
    slow_body = argc > 5 && strcmp(argv[5], "--slow-body") == 0;
    sin.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1 || interval_ms <= 0)
        return 2;
    snprintf(req, sizeof(req),
             "POST /v1/ingest HTTP/1.1\r\nHost: %s\r\n"
             "Content-Type: application/x-protobuf\r\n"
             "Content-Encoding: deflate\r\n"
             "Authorization: Bearer %s\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             argv[1], getenv("SLOW_TOKEN") ? getenv("SLOW_TOKEN") : "none",
             strlen(body), body);
    len = strlen(req);
    if (slow_body)
        fast_len = len - strlen(body);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        perror("slow_client: connect");
        return 2;
    }
    start = util_mono_us();
    if (fast_len && send(fd, req, fast_len, MSG_NOSIGNAL) < 0)
        goto closed;
    for (size_t i = fast_len; util_mono_us() - start < give_up_us; i++) {
        if (i < len && send(fd, req + i, 1, MSG_NOSIGNAL) < 0)
            goto closed;
        if (slow_closed(fd, interval_ms))
            goto closed;
    }
    printf("still open after %d s\n", atoi(argv[4]));
    close(fd);
    return 1;
closed:
    printf("closed after %lld ms\n",
           (long long)((util_mono_us() - start) / 1000));
    close(fd);
    return 0;
}
