/* wire.c -- packs, deflates, inflates (capped), unpacks and validates the
 * messages of sextant.proto. Does not log, retry or touch the network: it
 * returns a negative errno and a one-line reason, and the caller decides. */
#define ZLIB_CONST                      /* next_in is const: no casts */

#include "wire.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util.h"

#define BATCH_EVENTS_FIELD  7u
#define BATCH_EVENTS_KEY    0x3au       /* field 7, length-delimited */
#define WIRE_SCAN_IDS       32u         /* our field ids are all below */
#define WIRE_MAX_REPEATED   64u         /* >= WIRE_MAX_ANSWERS, _LABELS */
#define WIRE_MAX_UNKNOWN    64u         /* unknown fields per message */
#define INFLATE_FIRST_BUF   (64u << 10)
#define UNIX_MS_MIN         946684800000LL  /* 2000-01-01 */
#define UNIX_MS_MAX         4102444800000LL /* 2100-01-01 */

static void say(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* ---- zlib ---- */

int wire_deflate(const uint8_t *in, size_t len, uint8_t **out,
                 size_t *out_len)
{
    z_stream zs;
    uint8_t *buf = NULL;
    uLong bound;
    int rc = 0;

    /* Nothing bigger could be inflated by a collector, and the cap keeps
     * zlib's 32-bit counters (uInt) from wrapping. */
    if (len > WIRE_MAX_RAW)
        return -EMSGSIZE;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit(&zs, Z_DEFAULT_COMPRESSION) != Z_OK)
        return -ENOMEM;
    bound = deflateBound(&zs, (uLong)len);
    buf = malloc(bound);
    if (buf == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    zs.next_in = in;
    zs.avail_in = (uInt)len;
    zs.next_out = buf;
    zs.avail_out = (uInt)bound;
    /* deflateBound() promises room for everything in one Z_FINISH. */
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
        rc = -EIO;
        goto out;
    }
    *out = buf;
    *out_len = zs.total_out;
    buf = NULL;                         /* now the caller's */
out:
    deflateEnd(&zs);
    free(buf);
    return rc;
}

int wire_inflate(const uint8_t *in, size_t len, size_t cap, uint8_t **out,
                 size_t *out_len)
{
    z_stream zs;
    uint8_t *buf = NULL, *nbuf;
    size_t size, used = 0, avail;
    /* One byte past the cap: filling it proves the output is over. */
    size_t limit = cap < SIZE_MAX ? cap + 1 : cap;
    int rc = 0, zrc;

    if (len == 0)
        return -EBADMSG;
    if (len > UINT_MAX)                 /* avail_in is a uInt */
        return -EMSGSIZE;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit(&zs) != Z_OK)
        return -ENOMEM;

    /* Guess 4x the input (64 KiB at least) and double from there, never
     * past cap + 1: a bomb costs the cap, an honest batch a realloc or two. */
    size = len <= INFLATE_FIRST_BUF / 4 ? INFLATE_FIRST_BUF
         : len <= SIZE_MAX / 4         ? len * 4 : SIZE_MAX;
    if (size > limit)
        size = limit;
    buf = malloc(size);
    if (buf == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    zs.next_in = in;
    zs.avail_in = (uInt)len;
    for (;;) {
        if (used == size) {
            size = size > limit / 2 ? limit : size * 2;
            nbuf = realloc(buf, size);
            if (nbuf == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            buf = nbuf;
        }
        avail = size - used < UINT_MAX ? size - used : UINT_MAX;
        zs.next_out = buf + used;
        zs.avail_out = (uInt)avail;
        zrc = inflate(&zs, Z_NO_FLUSH);
        used += avail - zs.avail_out;
        if (used > cap) {
            rc = -EMSGSIZE;
            goto out;
        }
        if (zrc == Z_STREAM_END)
            break;
        if (zrc == Z_OK || (zrc == Z_BUF_ERROR && zs.avail_out == 0))
            continue;                   /* more room needed, or progress */
        /* Z_BUF_ERROR with room left: the input ran out mid-stream. */
        rc = zrc == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
        goto out;
    }
    if (zs.avail_in != 0) {             /* bytes after the stream's end */
        rc = -EBADMSG;
        goto out;
    }
    *out = buf;
    *out_len = used;
    buf = NULL;                         /* now the caller's */
out:
    inflateEnd(&zs);
    free(buf);
    return rc;
}

/* ---- raw protobuf scan ---- */

/* One field of a message as it sits on the wire. */
struct pb_field {
    uint32_t id;
    unsigned wire_type;
    const uint8_t *data;    /* payload if length-delimited, else NULL */
    size_t len;
};

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    unsigned shift;

    for (shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;

        x |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* Reads the field at *p and moves past it; -1 if it is malformed. */
static int next_field(const uint8_t **p, const uint8_t *end,
                      struct pb_field *f)
{
    uint64_t key, n = 0;

    if (read_varint(p, end, &key) < 0 || key >> 3 == 0 ||
        key >> 3 > UINT32_MAX)
        return -1;
    f->id = (uint32_t)(key >> 3);
    f->wire_type = (unsigned)(key & 7);
    f->data = NULL;
    f->len = 0;
    switch (f->wire_type) {
    case 0:
        return read_varint(p, end, &n);
    case 1:
        n = 8;
        break;
    case 2:
        if (read_varint(p, end, &n) < 0)
            return -1;
        break;
    case 5:
        n = 4;
        break;
    default:                            /* groups: protobuf-c refuses too */
        return -1;
    }
    if (n > (size_t)(end - *p))
        return -1;
    if (f->wire_type == 2) {
        f->data = *p;
        f->len = (size_t)n;
    }
    *p += n;
    return 0;
}

/* Checks what unpack would hide or make expensive. protobuf-c hands strings
 * back as C strings, so "a\0b" would arrive silently as "a"; and it would
 * allocate every repeated element and every unknown field before we could
 * count them: an empty DnsAnswer is 2 bytes on the wire and some 70 in
 * memory, so 64 MiB of them would cost gigabytes. Hence every repeated
 * field is counted against its cap (events: WIRE_MAX_EVENTS, any other:
 * WIRE_MAX_REPEATED) and unknown fields against WIRE_MAX_UNKNOWN, per
 * message. sextant.proto has no recursive message, so the schema bounds
 * the depth. @n_events is non-NULL only for the Batch itself. */
static int scan_msg(const ProtobufCMessageDescriptor *d, const uint8_t *p,
                    size_t len, size_t *n_events, char *err, size_t err_len)
{
    const uint8_t *end = p + len;
    const ProtobufCFieldDescriptor *fd;
    unsigned seen[WIRE_SCAN_IDS] = { 0 };   /* repeated fields, by id */
    unsigned unknown = 0;
    struct pb_field f;
    int rc;

    while (p < end) {
        if (next_field(&p, end, &f) < 0) {
            say(err, err_len, "protobuf: cannot unpack");
            return -EBADMSG;
        }
        fd = protobuf_c_message_descriptor_get_field(d, f.id);
        if (fd == NULL && ++unknown > WIRE_MAX_UNKNOWN) {
            say(err, err_len, "%s: over %u unknown fields", d->name,
                WIRE_MAX_UNKNOWN);
            return -EMSGSIZE;
        }
        if (fd != NULL && fd->label == PROTOBUF_C_LABEL_REPEATED &&
            !(n_events != NULL && f.id == BATCH_EVENTS_FIELD) &&
            (f.id >= WIRE_SCAN_IDS || ++seen[f.id] > WIRE_MAX_REPEATED)) {
            say(err, err_len, "%s.%s: over %u entries", d->name, fd->name,
                WIRE_MAX_REPEATED);
            return -EMSGSIZE;
        }
        if (n_events != NULL && f.id == BATCH_EVENTS_FIELD) {
            *n_events += 1;
            if (*n_events > WIRE_MAX_EVENTS) {
                say(err, err_len, "events: over %u", WIRE_MAX_EVENTS);
                return -EMSGSIZE;
            }
        }
        if (fd == NULL || f.wire_type != 2)
            continue;                   /* unpack judges wire types */
        if (fd->type == PROTOBUF_C_TYPE_STRING &&
            f.len > 0 && memchr(f.data, 0, f.len) != NULL) {
            say(err, err_len, "%s.%s: NUL byte in string", d->name,
                fd->name);
            return -EINVAL;
        }
        if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
            rc = scan_msg(fd->descriptor, f.data, f.len, NULL, err,
                          err_len);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* ---- validation ---- */

struct vctx {
    char *err;
    size_t err_len;
    char at[32];            /* "events[12]." inside an event, else "" */
};

static int fail(struct vctx *v, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct vctx *v, int rc, const char *fmt, ...)
{
    char msg[WIRE_ERR_LEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    say(v->err, v->err_len, "%s%s", v->at, msg);
    return rc;
}

/* The collector emits every string as JSON: strict UTF-8 only. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0, k;

    while (i < n) {
        k = util_utf8_char(s + i, n - i, NULL);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

int wire_name_check(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, k;

    while (i < n) {
        k = util_utf8_char(p + i, n - i, NULL);
        if (k == 0)
            return -EILSEQ;
        /* C0, DEL and C1 (U+0080..U+009F, 0xc2 0x80..0x9f): a name goes
         * into log lines and terminals, where these forge or hide text. */
        if ((k == 1 && (p[i] < 0x20 || p[i] == 0x7f)) ||
            (k == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0))
            return -EINVAL;
        i += k;
    }
    return 0;
}

/* A NULL string is the empty string, as protobuf-c packs it. Free text
 * (an error, a reason) may hold any character; an identifier that the
 * agent chose (cluster, target, a name) only printable ones. */
static int check_any(struct vctx *v, const char *name, const char *s,
                     size_t max, bool required, bool ident)
{
    size_t n;

    if (s == NULL)
        s = "";
    n = strnlen(s, max + 1);
    if (n > max)
        return fail(v, -EMSGSIZE, "%s: over %zu bytes", name, max);
    if (required && n == 0)
        return fail(v, -EINVAL, "%s: empty", name);
    if (!utf8_valid((const unsigned char *)s, n))
        return fail(v, -EINVAL, "%s: not valid UTF-8", name);
    if (ident && wire_name_check(s, n) < 0)
        return fail(v, -EINVAL, "%s: holds a control character", name);
    return 0;
}

static int check_str(struct vctx *v, const char *name, const char *s,
                     size_t max, bool required)
{
    return check_any(v, name, s, max, required, false);
}

static int check_name(struct vctx *v, const char *name, const char *s,
                      bool required)
{
    return check_any(v, name, s, WIRE_MAX_STR, required, true);
}

/* Known to this build; 0 (UNSPECIFIED) only where it means something. */
static bool enum_ok(const ProtobufCEnumDescriptor *d, int value,
                    bool zero_ok)
{
    if (value == 0 && !zero_ok)
        return false;
    return protobuf_c_enum_descriptor_get_value(d, value) != NULL;
}

static int check_answers(struct vctx *v, const char *set, size_t n,
                         Sextant__V1__DnsAnswer *const *a);

static int check_probe(struct vctx *v, const Sextant__V1__ProbeResult *p)
{
    int rc;

    if (p == NULL)
        return fail(v, -EINVAL, "probe: missing");
    rc = check_name(v, "probe.target", p->target, true);
    if (rc == 0 &&
        !enum_ok(&sextant__v1__probe_type__descriptor, p->type, false))
        rc = fail(v, -EINVAL, "probe.type: %d is not a known ProbeType",
                  (int)p->type);
    if (rc == 0)
        rc = check_str(v, "probe.error", p->error, WIRE_MAX_TEXT, false);
    if (rc == 0)
        rc = check_str(v, "probe.served_by", p->served_by, WIRE_MAX_STR,
                       false);
    if (rc == 0)
        rc = check_answers(v, "answers", p->n_answers, p->answers);
    return rc;
}

static int check_state(struct vctx *v, const Sextant__V1__StateChange *s)
{
    int rc;

    if (s == NULL)
        return fail(v, -EINVAL, "state: missing");
    rc = check_name(v, "state.target", s->target, true);
    if (rc == 0 && !enum_ok(&sextant__v1__health__descriptor, s->from, true))
        rc = fail(v, -EINVAL, "state.from: %d is not a known Health",
                  (int)s->from);
    if (rc == 0 && !enum_ok(&sextant__v1__health__descriptor, s->to, true))
        rc = fail(v, -EINVAL, "state.to: %d is not a known Health",
                  (int)s->to);
    if (rc == 0)
        rc = check_str(v, "state.reason", s->reason, WIRE_MAX_TEXT, false);
    return rc;
}

static int check_answers(struct vctx *v, const char *set, size_t n,
                         Sextant__V1__DnsAnswer *const *a)
{
    char name[48];
    size_t i;
    int rc;

    if (n > WIRE_MAX_ANSWERS)
        return fail(v, -EMSGSIZE, "dns.%s: %zu answers, over %u", set, n,
                    WIRE_MAX_ANSWERS);
    for (i = 0; i < n; i++) {
        if (a[i] == NULL)
            return fail(v, -EINVAL, "dns.%s[%zu]: missing", set, i);
        if (a[i]->type == NULL || (strcmp(a[i]->type, "A") != 0 &&
                                   strcmp(a[i]->type, "AAAA") != 0 &&
                                   strcmp(a[i]->type, "CNAME") != 0))
            return fail(v, -EINVAL, "dns.%s[%zu].type: not A, AAAA or CNAME",
                        set, i);
        snprintf(name, sizeof(name), "dns.%s[%zu].value", set, i);
        rc = check_str(v, name, a[i]->value, WIRE_MAX_STR, true);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int check_dns(struct vctx *v, const Sextant__V1__DnsChange *d)
{
    int rc;

    if (d == NULL)
        return fail(v, -EINVAL, "dns: missing");
    rc = check_name(v, "dns.name", d->name, true);
    if (rc == 0)
        rc = check_name(v, "dns.target", d->target, false);
    if (rc == 0)
        rc = check_answers(v, "old_answers", d->n_old_answers,
                           d->old_answers);
    if (rc == 0)
        rc = check_answers(v, "new_answers", d->n_new_answers,
                           d->new_answers);
    return rc;
}

static int check_metric(struct vctx *v, const Sextant__V1__MetricSample *m)
{
    char name[48];
    size_t i;
    int rc;

    if (m == NULL)
        return fail(v, -EINVAL, "metric: missing");
    rc = check_name(v, "metric.name", m->name, true);
    if (rc == 0)
        rc = check_name(v, "metric.target", m->target, false);
    if (rc == 0 && m->n_labels > WIRE_MAX_LABELS)
        rc = fail(v, -EMSGSIZE, "metric.labels: %zu labels, over %u",
                  m->n_labels, WIRE_MAX_LABELS);
    for (i = 0; rc == 0 && i < m->n_labels; i++) {
        if (m->labels[i] == NULL)
            return fail(v, -EINVAL, "metric.labels[%zu]: missing", i);
        snprintf(name, sizeof(name), "metric.labels[%zu].name", i);
        rc = check_name(v, name, m->labels[i]->name, true);
        if (rc == 0) {
            snprintf(name, sizeof(name), "metric.labels[%zu].value", i);
            rc = check_str(v, name, m->labels[i]->value, WIRE_MAX_STR,
                           false);
        }
    }
    return rc;
}

static int check_failover(struct vctx *v, const Sextant__V1__Failover *f)
{
    int rc;

    if (f == NULL)
        return fail(v, -EINVAL, "failover: missing");
    rc = check_name(v, "failover.kind", f->kind, true);
    if (rc == 0)
        rc = check_name(v, "failover.from_region", f->from_region,
                        false);
    if (rc == 0)
        rc = check_name(v, "failover.to_region", f->to_region, false);
    if (rc == 0)
        rc = check_str(v, "failover.text", f->text, WIRE_MAX_TEXT, false);
    if (rc == 0)
        rc = check_name(v, "failover.service", f->service, false);
    return rc;
}

static int check_lifecycle(struct vctx *v, const Sextant__V1__Lifecycle *l)
{
    int rc = 0;

    if (l == NULL)
        return fail(v, -EINVAL, "lifecycle: missing");
    if (!enum_ok(&sextant__v1__lifecycle_phase__descriptor, l->phase, false))
        rc = fail(v, -EINVAL, "lifecycle.phase: %d is not a known "
                  "LifecyclePhase", (int)l->phase);
    if (rc == 0)
        rc = check_str(v, "lifecycle.version", l->version, WIRE_MAX_STR,
                       false);
    if (rc == 0)
        rc = check_str(v, "lifecycle.detail", l->detail, WIRE_MAX_TEXT,
                       false);
    return rc;
}

static int check_event(struct vctx *v, const Sextant__V1__Event *ev)
{
    if (ev->unix_ms < UNIX_MS_MIN || ev->unix_ms > UNIX_MS_MAX)
        return fail(v, -EINVAL, "unix_ms: %lld not in years 2000-2100",
                    (long long)ev->unix_ms);
    switch (ev->kind_case) {
    case SEXTANT__V1__EVENT__KIND_PROBE:
        return check_probe(v, ev->probe);
    case SEXTANT__V1__EVENT__KIND_STATE:
        return check_state(v, ev->state);
    case SEXTANT__V1__EVENT__KIND_DNS:
        return check_dns(v, ev->dns);
    case SEXTANT__V1__EVENT__KIND_METRIC:
        return check_metric(v, ev->metric);
    case SEXTANT__V1__EVENT__KIND_FAILOVER:
        return check_failover(v, ev->failover);
    case SEXTANT__V1__EVENT__KIND_LIFECYCLE:
        return check_lifecycle(v, ev->lifecycle);
    default:
        /* A kind from a newer agent: stored as "unknown", not refused. */
        return 0;
    }
}

int wire_batch_validate(const Sextant__V1__Batch *b, char *err,
                        size_t err_len)
{
    struct vctx v = { .err = err, .err_len = err_len, .at = "" };
    const Sextant__V1__Event *ev;
    uint64_t prev = 0;
    size_t i;
    int rc;

    if (b == NULL)
        return fail(&v, -EINVAL, "batch: missing");
    rc = check_name(&v, "cluster", b->cluster, true);
    if (rc == 0)
        rc = check_name(&v, "region", b->region, true);
    if (rc == 0)
        rc = check_name(&v, "node", b->node, true);
    if (rc == 0)
        rc = check_str(&v, "agent_version", b->agent_version, WIRE_MAX_STR,
                       false);
    if (rc < 0)
        return rc;
    if (b->epoch == 0)
        return fail(&v, -EINVAL, "epoch: zero");
    if (b->drops != NULL && b->drops->count > 0 &&
        b->drops->first_seq > b->drops->last_seq)
        return fail(&v, -EINVAL, "drops: first_seq %llu after last_seq %llu",
                    (unsigned long long)b->drops->first_seq,
                    (unsigned long long)b->drops->last_seq);
    if (b->n_events > WIRE_MAX_EVENTS)
        return fail(&v, -EMSGSIZE, "events: %zu events, over %u",
                    b->n_events, WIRE_MAX_EVENTS);

    for (i = 0; i < b->n_events; i++) {
        ev = b->events[i];
        snprintf(v.at, sizeof(v.at), "events[%zu]", i);
        if (ev == NULL)
            return fail(&v, -EINVAL, ": missing");
        if (ev->seq == 0)
            return fail(&v, -EINVAL, ".seq: zero");
        if (i == 0 && ev->seq != b->first_seq)
            return fail(&v, -EINVAL, ": seq %llu is not first_seq %llu",
                        (unsigned long long)ev->seq,
                        (unsigned long long)b->first_seq);
        if (i > 0 && ev->seq <= prev)
            return fail(&v, -EINVAL, ": seq %llu not after %llu",
                        (unsigned long long)ev->seq,
                        (unsigned long long)prev);
        prev = ev->seq;
        snprintf(v.at, sizeof(v.at), "events[%zu].", i);
        rc = check_event(&v, ev);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- batches ---- */

static int pack_batch(const Sextant__V1__Batch *b, size_t extra,
                      uint8_t **out, size_t *out_len)
{
    size_t n = sextant__v1__batch__get_packed_size(b);
    uint8_t *buf;

    if (extra > SIZE_MAX - n - 1)
        return -EMSGSIZE;
    buf = malloc(n + extra + 1);        /* +1: malloc(0) may be NULL */
    if (buf == NULL)
        return -ENOMEM;
    *out_len = sextant__v1__batch__pack(b, buf);
    *out = buf;
    return 0;
}

int wire_batch_encode(const Sextant__V1__Batch *b, uint8_t **out,
                      size_t *out_len)
{
    uint8_t *raw = NULL;
    size_t raw_len;
    int rc;

    rc = pack_batch(b, 0, &raw, &raw_len);
    if (rc == 0)
        rc = wire_deflate(raw, raw_len, out, out_len);
    free(raw);
    return rc;
}

int wire_batch_decode(const uint8_t *z, size_t len, size_t raw_cap,
                      Sextant__V1__Batch **out, char *err, size_t err_len)
{
    Sextant__V1__Batch *b = NULL;
    uint8_t *raw = NULL;
    size_t raw_len, n_events = 0;
    int rc;

    rc = wire_inflate(z, len, raw_cap, &raw, &raw_len);
    if (rc == -EMSGSIZE)
        say(err, err_len, "inflate: output over %zu bytes", raw_cap);
    else if (rc == -ENOMEM)
        say(err, err_len, "inflate: out of memory");
    else if (rc < 0)
        say(err, err_len, "inflate: not a valid zlib stream");
    if (rc < 0)
        goto out;
    rc = scan_msg(&sextant__v1__batch__descriptor, raw, raw_len, &n_events,
                  err, err_len);
    if (rc < 0)
        goto out;
    b = sextant__v1__batch__unpack(NULL, raw_len, raw);
    if (b == NULL) {
        say(err, err_len, "protobuf: cannot unpack");
        rc = -EBADMSG;
        goto out;
    }
    rc = wire_batch_validate(b, err, err_len);
    if (rc < 0)
        goto out;
    *out = b;
    b = NULL;                           /* now the caller's */
out:
    wire_batch_free(b);
    free(raw);
    return rc;
}

void wire_batch_free(Sextant__V1__Batch *b)
{
    if (b != NULL)
        sextant__v1__batch__free_unpacked(b, NULL);
}

int wire_event_pack(const Sextant__V1__Event *ev, uint8_t **out,
                    size_t *out_len)
{
    size_t n = sextant__v1__event__get_packed_size(ev);
    uint8_t *buf = malloc(n + 1);       /* +1: malloc(0) may be NULL */

    if (buf == NULL)
        return -ENOMEM;
    *out_len = sextant__v1__event__pack(ev, buf);
    *out = buf;
    return 0;
}

int wire_batch_encode_packed(const Sextant__V1__Batch *hdr,
                             const struct wire_buf *events, size_t n,
                             uint8_t **out, size_t *out_len)
{
    Sextant__V1__Batch h = *hdr;        /* shallow: only to drop events */
    uint8_t *raw = NULL;
    size_t raw_len, extra = 0, i;
    int rc;

    /* Each event: key, length varint (at most 10 bytes), bytes. */
    for (i = 0; i < n; i++) {
        if (events[i].len > SIZE_MAX - 11 - extra)
            return -EMSGSIZE;
        extra += 11 + events[i].len;
    }
    h.n_events = 0;
    h.events = NULL;
    rc = pack_batch(&h, extra, &raw, &raw_len);
    if (rc < 0)
        return rc;
    /* Fields may come in any order and repeated ones concatenate, so the
     * events after the header decode as if packed in place. */
    for (i = 0; i < n; i++) {
        raw[raw_len++] = BATCH_EVENTS_KEY;
        raw_len += util_put_varint(raw + raw_len, events[i].len);
        if (events[i].len > 0)
            memcpy(raw + raw_len, events[i].data, events[i].len);
        raw_len += events[i].len;
    }
    rc = wire_deflate(raw, raw_len, out, out_len);
    free(raw);
    return rc;
}

/* ---- ack ---- */

int wire_ack_encode(const Sextant__V1__Ack *a, uint8_t **out,
                    size_t *out_len)
{
    size_t n = sextant__v1__ack__get_packed_size(a);
    uint8_t *buf = malloc(n + 1);       /* +1: an all-zero Ack is 0 bytes */

    if (buf == NULL)
        return -ENOMEM;
    *out_len = sextant__v1__ack__pack(a, buf);
    *out = buf;
    return 0;
}

int wire_ack_decode(const uint8_t *buf, size_t len, Sextant__V1__Ack *out)
{
    Sextant__V1__Ack *a = sextant__v1__ack__unpack(NULL, len, buf);

    if (a == NULL)
        return -EBADMSG;
    /* Only the scalars: *out must not point into the freed message. */
    sextant__v1__ack__init(out);
    out->epoch = a->epoch;
    out->acked_seq = a->acked_seq;
    out->received_unix_ms = a->received_unix_ms;
    out->live_nodes_hash = a->live_nodes_hash;
    sextant__v1__ack__free_unpacked(a, NULL);
    return 0;
}

/* The names of @a's live list, copied into one allocation at *out. */
static int live_copy(const Sextant__V1__Ack *a, char ***out)
{
    size_t total = 0, len;
    char **v, *p;

    if (a->n_live_nodes > WIRE_MAX_LIVE)
        return -EMSGSIZE;
    for (size_t i = 0; i < a->n_live_nodes; i++) {
        len = strnlen(a->live_nodes[i], WIRE_MAX_NODE + 1);
        if (len == 0 || len > WIRE_MAX_NODE)
            return len ? -EMSGSIZE : -EINVAL;
        if (!utf8_valid((const unsigned char *)a->live_nodes[i], len) ||
            wire_name_check(a->live_nodes[i], len) < 0)
            return -EINVAL;
        if (i > 0 && strcmp(a->live_nodes[i - 1], a->live_nodes[i]) >= 0)
            return -EINVAL;
        total += len + 1;
    }
    if (total > WIRE_MAX_LIVE_BYTES)
        return -EMSGSIZE;
    v = malloc(a->n_live_nodes * sizeof(*v) + total);
    if (v == NULL)
        return -ENOMEM;
    p = (char *)(v + a->n_live_nodes);
    for (size_t i = 0; i < a->n_live_nodes; i++) {
        len = strlen(a->live_nodes[i]) + 1;
        memcpy(p, a->live_nodes[i], len);
        v[i] = p;
        p += len;
    }
    *out = v;
    return 0;
}

int wire_ack_live(const uint8_t *buf, size_t len, char ***names, size_t *n,
                  uint64_t *hash)
{
    Sextant__V1__Ack *a = sextant__v1__ack__unpack(NULL, len, buf);
    char **v = NULL;
    int rc = 0;

    if (a == NULL)
        return -EBADMSG;
    if (a->n_live_nodes > 0)
        rc = live_copy(a, &v);
    if (rc == 0) {
        *names = v;
        *n = a->n_live_nodes;
        *hash = a->live_nodes_hash;
    }
    sextant__v1__ack__free_unpacked(a, NULL);
    return rc;
}

int wire_state_is_handoff(const Sextant__V1__StateChange *s)
{
    return s->to == SEXTANT__V1__HEALTH__HEALTH_UNKNOWN && s->reason &&
           strncmp(s->reason, WIRE_HANDOFF, strlen(WIRE_HANDOFF)) == 0;
}

/* Only failovers and manual failovers move traffic, so only they may take
 * part in incidents; a deploy or a drill is an operator's marker on the
 * timeline. The same rule as schema migration 7's reclassification. */
static const char *wire_failover_kind(const Sextant__V1__Event *ev)
{
    const char *k = ev->failover ? ev->failover->kind : NULL;

    if (k && (strcmp(k, "failover") == 0 || strcmp(k, "manual") == 0))
        return "failover";
    return "marker";
}

const char *wire_event_kind(const Sextant__V1__Event *ev)
{
    switch (ev->kind_case) {
    case SEXTANT__V1__EVENT__KIND_PROBE:     return "probe";
    case SEXTANT__V1__EVENT__KIND_STATE:     return "state";
    case SEXTANT__V1__EVENT__KIND_DNS:       return "dns";
    case SEXTANT__V1__EVENT__KIND_METRIC:    return "metric";
    case SEXTANT__V1__EVENT__KIND_FAILOVER:  return wire_failover_kind(ev);
    case SEXTANT__V1__EVENT__KIND_LIFECYCLE: return "lifecycle";
    default:                                 return "unknown";
    }
}
