/* hold_conns.c -- opens N TCP connections to HOST:PORT and holds them
 * idle, sending nothing, for the connection-limit test. Each comes from
 * its own source address in 127.9.0.0/16, 32 per address, so that the
 * collector's per-IP cap does not refuse them first. Prints "held C of N"
 * (C: connects that completed within DEADLINE_S) and then holds them
 * until it is killed. Raises its own open-files limit. Exits 2
 * on bad usage or when it cannot have N descriptors. Not part of the
 * product. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

#define HOLD_PER_ADDR 32

/* Opens one nonblocking connect from 127.9.(i / HOLD_PER_ADDR) / 256...;
 * returns the socket or -1. */
static int hold_open(const struct sockaddr_in *dst, int i)
{
    struct sockaddr_in src = { .sin_family = AF_INET };
    int fd, a = i / HOLD_PER_ADDR;

    src.sin_addr.s_addr = htonl((127u << 24) | (9u << 16) |
                                (uint32_t)((a / 250) << 8) |
                                (uint32_t)(a % 250 + 1));
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (const struct sockaddr *)&src, sizeof(src)) != 0 ||
        (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) != 0 &&
         errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    struct sockaddr_in dst = { .sin_family = AF_INET };
    struct pollfd *p;
    struct rlimit rl;
    int n, done = 0, ok = 0, left;
    int64_t deadline;

    if (argc != 5 || inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1 ||
        (n = atoi(argv[3])) <= 0 || atoi(argv[4]) <= 0) {
        fprintf(stderr, "usage: hold_conns HOST PORT N DEADLINE_S\n");
        return 2;
    }
    dst.sin_port = htons((uint16_t)atoi(argv[2]));
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 16) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    p = calloc((size_t)n, sizeof(*p));
    if (!p)
        return 2;
    for (int i = 0; i < n; i++) {
        p[i].fd = hold_open(&dst, i);
        if (p[i].fd < 0) {
            fprintf(stderr, "hold_conns: connection %d: %s\n", i,
                    strerror(errno));
            return 2;
        }
        p[i].events = POLLOUT;
    }
    /* A connect is done when its socket turns writable (or fails). */
    deadline = util_mono_us() + (int64_t)atoi(argv[4]) * 1000000;
    while (done < n && (left = (int)((deadline - util_mono_us()) / 1000)) > 0) {
        if (poll(p, (nfds_t)n, left) <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            int err = 0;
            socklen_t len = sizeof(err);

            if (p[i].fd < 0 || !p[i].revents)
                continue;
            getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
            ok += err == 0;
            done++;
            p[i].fd = -p[i].fd - 1;     /* poll skips it from now on */
        }
    }
    printf("held %d of %d\n", ok, n);
    fflush(stdout);
    for (;;)
        pause();
}
