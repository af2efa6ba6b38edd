/* dns_set.h -- DNS answer sets: the A, AAAA and CNAME records read out of
 * raw DNS replies (hostile input: every offset is checked), put in one
 * canonical order, compared TTLs aside, and written as text. Knows
 * nothing of probes, channels or the loop; the DNS probe keeps one set
 * per target to see answers change. */
#ifndef SEXTANT_AGENT_DNS_SET_H
#define SEXTANT_AGENT_DNS_SET_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* Records kept per answer set, after sorting: what one DnsChange may hold. */
#define DNS_SET_MAX_ANSWERS WIRE_MAX_ANSWERS
/* Answer records read from one run's replies before the rest are ignored;
 * a reply is at most 64 KiB (TCP), so this only bounds a hostile resolver. */
#define DNS_SET_MAX_RECORDS 1024u

struct dns_answer {
    int type;                   /* ns_t_a, ns_t_aaaa or ns_t_cname */
    unsigned char addr[16];     /* A, AAAA: for the numeric order */
    char *value;                /* owned: address text or lower-case name */
    uint32_t ttl;
};

/* A list of answers; zeroed is empty. Canonical after dns_set_canon():
 * sorted (A, AAAA, CNAME; addresses numerically, names by byte), no
 * duplicates, at most DNS_SET_MAX_ANSWERS. */
struct dns_set {
    struct dns_answer *a;       /* owned; cap of them */
    size_t n, cap;
};

void dns_set_free(struct dns_set *s);           /* back to empty */

/* Adds the answer records of @qtype (ns_t_a, ns_t_aaaa, ns_t_cname) and
 * the CNAMEs of the chain in the reply @abuf (@alen bytes, borrowed) to
 * @s, up to DNS_SET_MAX_RECORDS in all; other sections and types are
 * skipped. Returns an ARES_ status: ARES_EBADRESP for a malformed reply
 * (records read before the fault stay in @s), ARES_ENOMEM. */
int dns_set_read_reply(struct dns_set *s, int qtype,
                       const unsigned char *abuf, int alen);

/* Sorts, merges duplicates (the shorter TTL wins) and keeps the first
 * DNS_SET_MAX_ANSWERS. */
void dns_set_canon(struct dns_set *s);
/* 1 if @a and @b (both canonical) hold the same answers, TTLs aside. */
int dns_set_same(const struct dns_set *a, const struct dns_set *b);
/* "A 127.0.1.1 ttl 30, ..." (or without TTLs) into @buf; "..." at the end
 * when it does not fit. */
void dns_set_text(const struct dns_set *s, int ttl, char *buf, size_t len);

/* "A", "AAAA" or "CNAME" for a record type of an answer. Static. */
const char *dns_set_type_name(int type);
/* Lower-cases the ASCII letters of @s in place: names compare that way. */
void dns_set_lower(char *s);

#endif
