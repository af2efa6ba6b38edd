/* dns_set.c -- DNS answer sets (dns_set.h): reading A, AAAA and CNAME
 * records out of a reply with every offset checked (names are expanded
 * by c-ares, which bounds compression pointers), the canonical order, and
 * the text for logs and errors. */
#include "dns_set.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "log.h"

/* A, AAAA rdata: the address in network order. */
#define DNS_SET_A_LEN    4u
#define DNS_SET_AAAA_LEN 16u
/* Offsets in the fixed header (RFC 1035 4.1.1): QDCOUNT, ANCOUNT. */
#define DNS_SET_HDR_QD   4
#define DNS_SET_HDR_AN   6
/* Offsets in a record's fixed part after its name (RFC 1035 4.1.3). */
#define DNS_SET_RR_CLASS 2
#define DNS_SET_RR_TTL   4
#define DNS_SET_RR_RDLEN 8
/* First capacity of a set: one reply's usual few records. */
#define DNS_SET_FIRST_CAP 8u

void dns_set_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

const char *dns_set_type_name(int type)
{
    return type == ns_t_a ? "A" : type == ns_t_aaaa ? "AAAA" : "CNAME";
}

void dns_set_free(struct dns_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->a[i].value);
    free(s->a);
    memset(s, 0, sizeof(*s));
}

/* Appends a record; takes @value, even on failure. */
static int dns_set_add(struct dns_set *s, int type, const unsigned char *addr,
                       size_t addr_len, char *value, uint32_t ttl)
{
    struct dns_answer *a;

    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : DNS_SET_FIRST_CAP;

        a = realloc(s->a, ncap * sizeof(*a));
        if (!a) {
            free(value);
            return -ENOMEM;
        }
        s->a = a;
        s->cap = ncap;
    }
    a = &s->a[s->n++];
    memset(a, 0, sizeof(*a));
    a->type = type;
    if (addr)
        memcpy(a->addr, addr, addr_len);
    a->value = value;
    a->ttl = ttl;
    return 0;
}

static int dns_rank(int type)
{
    return type == ns_t_a ? 0 : type == ns_t_aaaa ? 1 : 2;
}

/* The canonical order; 0 means the same answer, whatever the TTL. */
static int dns_answer_cmp(const void *pa, const void *pb)
{
    const struct dns_answer *a = pa, *b = pb;

    if (dns_rank(a->type) != dns_rank(b->type))
        return dns_rank(a->type) - dns_rank(b->type);
    if (a->type != ns_t_cname)
        return memcmp(a->addr, b->addr, sizeof(a->addr));
    return strcmp(a->value, b->value);
}

/* The CNAME chain comes with both replies of "ANY": merged. The cut comes
 * after the sort, so it does not depend on the reply's order. */
void dns_set_canon(struct dns_set *s)
{
    size_t j = 0;

    if (s->n == 0)
        return;
    qsort(s->a, s->n, sizeof(*s->a), dns_answer_cmp);
    for (size_t i = 0; i < s->n; i++) {
        if (j > 0 && dns_answer_cmp(&s->a[j - 1], &s->a[i]) == 0) {
            if (s->a[i].ttl < s->a[j - 1].ttl)
                s->a[j - 1].ttl = s->a[i].ttl;
            free(s->a[i].value);
        } else {
            s->a[j++] = s->a[i];
        }
    }
    s->n = j;
    if (s->n > DNS_SET_MAX_ANSWERS) {
        log_msg(LOGL_DEBUG, "dns", "%zu answers, keeping the first %u", s->n,
                DNS_SET_MAX_ANSWERS);
        while (s->n > DNS_SET_MAX_ANSWERS)
            free(s->a[--s->n].value);
    }
}

int dns_set_same(const struct dns_set *a, const struct dns_set *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (dns_answer_cmp(&a->a[i], &b->a[i]) != 0)
            return 0;
    return 1;
}

void dns_set_text(const struct dns_set *s, int ttl, char *buf, size_t len)
{
    size_t off = 0;

    if (len == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < s->n; i++) {
        const struct dns_answer *a = &s->a[i];
        int n = ttl ? snprintf(buf + off, len - off, "%s%s %s ttl %u",
                               i ? ", " : "", dns_set_type_name(a->type),
                               a->value, (unsigned)a->ttl)
                    : snprintf(buf + off, len - off, "%s%s %s",
                               i ? ", " : "", dns_set_type_name(a->type),
                               a->value);

        if (n < 0 || (size_t)n >= len - off) {
            if (len >= 4)
                memcpy(buf + len - 4, "...", 4);
            return;
        }
        off += (size_t)n;
    }
}

/* -- reading replies (hostile input: every offset is checked) -- */

static unsigned dns_u16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t dns_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

/* The name at @p, expanded (compression pointers are followed by c-ares,
 * which bounds them); *enc is its length at @p. Caller frees *name. */
static int dns_name_at(const unsigned char *p, const unsigned char *abuf,
                       int alen, char **name, long *enc)
{
    if (p < abuf || p >= abuf + alen)
        return ARES_EBADRESP;
    if (ares_expand_name(p, abuf, alen, name, enc) != ARES_SUCCESS)
        return ARES_EBADRESP;
    if (*enc <= 0 || *enc > (abuf + alen) - p) {
        ares_free_string(*name);
        return ARES_EBADRESP;
    }
    return ARES_SUCCESS;
}

/* Steps *p over the name there, and checks that @fixed bytes (the
 * question's or the record's fixed part) follow it. */
static int dns_skip_name(const unsigned char **p, const unsigned char *abuf,
                         int alen, long fixed)
{
    char *name;
    long enc;
    int rc = dns_name_at(*p, abuf, alen, &name, &enc);

    if (rc != ARES_SUCCESS)
        return rc;
    ares_free_string(name);
    *p += enc;
    return (abuf + alen) - *p < fixed ? ARES_EBADRESP : ARES_SUCCESS;
}

/* One answer record of @type with @rdlen bytes at @p; ARES_ status. */
static int dns_read_rr(struct dns_set *s, int type, const unsigned char *p,
                       unsigned rdlen, const unsigned char *abuf, int alen,
                       uint32_t ttl)
{
    char buf[INET6_ADDRSTRLEN], *name = NULL, *v;
    long enc;
    int rc;

    if (type == ns_t_a || type == ns_t_aaaa) {
        int af = type == ns_t_a ? AF_INET : AF_INET6;

        if (rdlen != (type == ns_t_a ? DNS_SET_A_LEN : DNS_SET_AAAA_LEN))
            return ARES_EBADRESP;
        if (!inet_ntop(af, p, buf, sizeof(buf)))
            return ARES_EBADRESP;
        v = strdup(buf);
        if (!v)
            return ARES_ENOMEM;
        return dns_set_add(s, type, p, rdlen, v, ttl) < 0 ? ARES_ENOMEM
                                                          : ARES_SUCCESS;
    }
    rc = dns_name_at(p, abuf, alen, &name, &enc);
    if (rc != ARES_SUCCESS)
        return rc;
    /* c-ares escapes unprintable bytes, so the name is printable ASCII;
     * an empty (root) or over-long target is not worth an answer. */
    if (name[0] == '\0' || strlen(name) >= WIRE_MAX_STR) {
        ares_free_string(name);
        return ARES_SUCCESS;
    }
    v = strdup(name);
    ares_free_string(name);
    if (!v)
        return ARES_ENOMEM;
    dns_set_lower(v);
    return dns_set_add(s, type, NULL, 0, v, ttl) < 0 ? ARES_ENOMEM
                                                     : ARES_SUCCESS;
}

int dns_set_read_reply(struct dns_set *s, int qtype,
                       const unsigned char *abuf, int alen)
{
    const unsigned char *p, *end;
    unsigned qd, an;
    int rc;

    if (!abuf || alen < NS_HFIXEDSZ)
        return ARES_EBADRESP;
    end = abuf + alen;
    qd = dns_u16(abuf + DNS_SET_HDR_QD);
    an = dns_u16(abuf + DNS_SET_HDR_AN);
    p = abuf + NS_HFIXEDSZ;
    for (unsigned i = 0; i < qd; i++) {
        rc = dns_skip_name(&p, abuf, alen, NS_QFIXEDSZ);
        if (rc != ARES_SUCCESS)
            return rc;
        p += NS_QFIXEDSZ;
    }
    for (unsigned i = 0; i < an; i++) {
        unsigned type, cls, rdlen;
        uint32_t ttl;

        rc = dns_skip_name(&p, abuf, alen, NS_RRFIXEDSZ);
        if (rc != ARES_SUCCESS)
            return rc;
        type = dns_u16(p);
        cls = dns_u16(p + DNS_SET_RR_CLASS);
        ttl = dns_u32(p + DNS_SET_RR_TTL);
        rdlen = dns_u16(p + DNS_SET_RR_RDLEN);
        p += NS_RRFIXEDSZ;
        if ((size_t)(end - p) < rdlen)
            return ARES_EBADRESP;
        if (ttl > INT32_MAX)        /* RFC 2181 5.2: treat as zero */
            ttl = 0;
        if (cls == ns_c_in && (type == (unsigned)qtype || type == ns_t_cname)
            && s->n < DNS_SET_MAX_RECORDS) {
            rc = dns_read_rr(s, (int)type, p, rdlen, abuf, alen, ttl);
            if (rc != ARES_SUCCESS)
                return rc;
        }
        p += rdlen;
    }
    return ARES_SUCCESS;
}
