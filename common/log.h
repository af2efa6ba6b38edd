/* log.h -- the one logging API: leveled lines on stderr with a UTC time.
 * Does not rotate, buffer or ship logs; the container runtime does that. */
#ifndef SEXTANT_LOG_H
#define SEXTANT_LOG_H

#include <stddef.h>

/* LOGL_, not LOG_: <syslog.h> already owns LOG_ERR. */
enum log_level { LOGL_ERROR, LOGL_WARN, LOGL_INFO, LOGL_DEBUG };

void log_set_level(enum log_level lvl);
/* Returns 0 and sets *out for "error", "warn", "info", "debug"; else -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
/* Copies @len bytes of @src to @dst (@cap bytes, NUL-terminated), each
 * control byte, DEL, C1 control, U+2028/U+2029 and byte of invalid UTF-8
 * written as \xNN; stops before a character that does not fit. Returns
 * the bytes written, without the NUL. log_msg() does this to every
 * message. */
size_t log_escape(char *dst, size_t cap, const char *src, size_t len);
/* One line on stderr; the message is escaped as by log_escape(). */
void log_msg(enum log_level lvl, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
