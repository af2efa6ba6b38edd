/* util.h -- small helpers shared by agent and collector: clocks, random
 * numbers, host:port parsing and socket addresses, varints, bounded file
 * reads, UTF-8, the FNV-1a hash, safe relative paths. */
#ifndef SEXTANT_UTIL_H
#define SEXTANT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

int64_t util_now_ms(void);           /* wall clock, Unix ms UTC */
int64_t util_mono_us(void);          /* monotonic clock, microseconds */
int util_random_u64(uint64_t *out);  /* getrandom(); 0 or -errno */

/* Splits "host:port" or "[v6]:port". Writes host (NUL-terminated, at most
 * host_len - 1 bytes) and port only on success; -EINVAL otherwise. */
int util_parse_hostport(const char *s, char *host, size_t host_len,
                        uint16_t *port);

/* Fills @ss from "IP:PORT" or "[IPv6]:PORT" (no host names: nothing to
 * resolve at start); -EINVAL otherwise. Port 0 asks for a free port. */
int util_sockaddr(const char *hostport, struct sockaddr_storage *ss);

/* Writes @v as a protobuf varint at @p (room for 10 bytes); returns the
 * bytes written. */
size_t util_put_varint(uint8_t *p, uint64_t v);

/* Reads at most @cap bytes of @path into a NUL-terminated buffer; the
 * caller frees. -EFBIG if the file is larger than @cap. */
int util_read_file(const char *path, size_t cap, char **out, size_t *out_len);

/* The length (1 to 4) of the strict UTF-8 (RFC 3629: no overlong forms,
 * no surrogates, nothing past U+10FFFF) character @s starts with, looking
 * at @n bytes at most; 0 if it is not one (or @n is 0). Writes its code
 * point to @cp unless @cp is NULL. The one decoder of the project: the
 * wire validator, JSON writer, API, log escaping and promtext use it. */
size_t util_utf8_char(const unsigned char *s, size_t n, uint32_t *cp);

/* FNV-1a 64 of @len bytes at @p, continuing from @h (start with
 * UTIL_FNV1A64_INIT): the dashboard's ETags and build id (tools/embed.c,
 * collector/web.c). Not for anything an attacker must not collide. */
#define UTIL_FNV1A64_INIT 1469598103934665603ull
uint64_t util_fnv1a64(uint64_t h, const void *p, size_t len);

/* 1 if @p is a relative path safe to look up under a folder: at most @max
 * bytes of [A-Za-z0-9._/-], no empty segment, none starting with '.' (so
 * no "..", no hidden files). The dashboard's asset names (tools/embed.c
 * takes only these; collector/web.c serves only these). */
int util_safe_relpath(const char *p, size_t max);

/* Trims trailing whitespace (a token file's newline) in place. */
void util_rtrim(char *s);

#endif
