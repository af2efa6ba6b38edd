/* log.c -- leveled log lines on stderr, one write per line so lines from
 * several threads never interleave. Every byte of the formatted message
 * that could break or disguise a line (control bytes, DEL, C1 controls,
 * U+2028/U+2029, invalid UTF-8) is written as \xNN, so a value an agent
 * or client sent can never start a forged line of its own. */
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Set on reload by the loop thread, read by every thread that logs. */
static _Atomic int log_level = LOGL_INFO;

static const char *const log_names[] = { "error", "warn", "info", "debug" };

void log_set_level(enum log_level lvl)
{
    atomic_store_explicit(&log_level, (int)lvl, memory_order_relaxed);
}

int log_parse_level(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
        if (strcmp(s, log_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* Length of the valid UTF-8 sequence at @s (at most @n bytes) that is
 * safe to print as is, or 0: C1 controls (U+0080..U+009F) and the
 * Unicode line and paragraph separators end lines in some viewers. */
static size_t log_utf8_ok(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len = s[0] < 0x80 ? 0 : util_utf8_char(s, n, &cp);

    /* A two-byte form below U+00A0 is a C1 control. */
    if (len == 0 || cp <= 0x9f || cp == 0x2028 || cp == 0x2029)
        return 0;
    return len;
}

size_t log_escape(char *dst, size_t cap, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0, o = 0, ok;

    if (cap == 0)
        return 0;
    while (i < len) {
        if (s[i] >= 0x20 && s[i] < 0x7f) {
            if (o + 1 >= cap)
                break;
            dst[o++] = (char)s[i++];
            continue;
        }
        ok = s[i] >= 0x80 ? log_utf8_ok(s + i, len - i) : 0;
        if (ok) {
            if (o + ok >= cap)
                break;              /* never half a character */
            memcpy(dst + o, s + i, ok);
            o += ok;
            i += ok;
            continue;
        }
        if (o + 4 >= cap)
            break;
        dst[o++] = '\\';
        dst[o++] = 'x';
        dst[o++] = hex[s[i] >> 4];
        dst[o++] = hex[s[i] & 0xf];
        i++;
    }
    dst[o] = '\0';
    return o;
}

void log_msg(enum log_level lvl, const char *mod, const char *fmt, ...)
{
    char line[1024], msg[1024];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    int n, m;

    if ((int)lvl > atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = snprintf(line, sizeof(line),
                 "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s %s: ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
                 log_names[lvl], mod);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    va_start(ap, fmt);
    m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    if ((size_t)m >= sizeof(msg))       /* truncated by vsnprintf */
        m = sizeof(msg) - 1;
    /* Room for the newline stays; a message cut short loses its tail. */
    n += (int)log_escape(line + n, sizeof(line) - (size_t)n - 1, msg,
                         (size_t)m);
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;                         /* nowhere left to report it */
}
