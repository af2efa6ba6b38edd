/* util.c -- clocks, randomness, host:port parsing, bounded file reads, the
 * FNV-1a hash and safe relative paths. */
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t util_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int util_random_u64(uint64_t *out)
{
    uint64_t v;
    ssize_t n = getrandom(&v, sizeof(v), 0);

    if (n != (ssize_t)sizeof(v))
        return n < 0 ? -errno : -EIO;
    *out = v;
    return 0;
}

int util_parse_hostport(const char *s, char *host, size_t host_len,
                        uint16_t *port)
{
    const char *colon, *h = s;
    size_t hl;
    char *end;
    long p;

    if (s[0] == '[') {                  /* [v6]:port */
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -EINVAL;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return -EINVAL;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= host_len || !isdigit((unsigned char)colon[1]))
        return -EINVAL;
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno || *end || p < 0 || p > 65535)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}

int util_read_file(const char *path, size_t cap, char **out, size_t *out_len)
{
    char *buf = NULL;
    size_t len = 0;
    struct stat sb;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &sb) < 0) {
        rc = -errno;
        goto out;
    }
    if ((uint64_t)sb.st_size > cap) {
        rc = -EFBIG;
        goto out;
    }
    buf = malloc(cap + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    for (;;) {                          /* size may change under us: cap it */
        ssize_t n = read(fd, buf + len, cap + 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > cap) {
            rc = -EFBIG;
            goto out;
        }
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}

uint64_t util_fnv1a64(uint64_t h, const void *p, size_t len)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

int util_safe_relpath(const char *p, size_t max)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"
                             "TUVWXYZ0123456789._-/";
    size_t n = strlen(p);

    return n > 0 && n <= max && strspn(p, ok) == n && p[0] != '.' &&
           p[0] != '/' && p[n - 1] != '/' && !strstr(p, "/.") &&
           !strstr(p, "//");
}

void util_rtrim(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}

int util_sockaddr(const char *hostport, struct sockaddr_storage *ss)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    char host[INET6_ADDRSTRLEN];
    uint16_t port;

    if (util_parse_hostport(hostport, host, sizeof(host), &port) < 0)
        return -EINVAL;
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        return 0;
    }
    return -EINVAL;
}

size_t util_put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

size_t util_utf8_char(const unsigned char *s, size_t n, uint32_t *cp_out)
{
    size_t k, j;
    uint32_t cp, min;

    if (n == 0)
        return 0;
    if (s[0] < 0x80) {
        if (cp_out)
            *cp_out = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        k = 1;                          /* k continuation bytes follow */
    else if ((s[0] & 0xf0) == 0xe0)
        k = 2;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        k = 3;
    else
        return 0;
    cp = s[0] & (0x3fu >> k);
    min = k == 1 ? 0x80 : k == 2 ? 0x800 : 0x10000;
    if (n - 1 < k)
        return 0;
    for (j = 1; j <= k; j++) {
        if ((s[j] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[j] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    if (cp_out)
        *cp_out = cp;
    return k + 1;
}
