/* log.h -- the one logging API: leveled lines on stderr with a UTC time.
 * Does not rotate, buffer or ship logs; the container runtime does that. */
#ifndef SEXTANT_LOG_H
#define SEXTANT_LOG_H

/* LOGL_, not LOG_: <syslog.h> already owns LOG_ERR. */
enum log_level { LOGL_ERROR, LOGL_WARN, LOGL_INFO, LOGL_DEBUG };

void log_set_level(enum log_level lvl);
/* Returns 0 and sets *out for "error", "warn", "info", "debug"; else -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
void log_msg(enum log_level lvl, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
