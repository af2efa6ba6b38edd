#!/bin/bash
# demo_failover.sh -- the README's demo end to end: examples/demo.sh --exit
# (breaking the primary as soon as every region is healthy) must see the
# incident detected and closed, every agent must see the DNS flip, the
# RTO must lie in the window the demo's settings predict, the summary it
# prints must equal the stored incident, and once it exited nothing it
# started may be left: no process, no file, no bound port.
#
# The RTO window, from the demo's settings (examples/demo.sh: agents probe
# every I = 1 s; the traffic manager checks the primary every P = 2 s and
# moves the name after N = 3 failures in a row; DNS TTL 5 s). Let B be the
# break. The first failure is an agent's first failed probe: in
# [B, B + I]. The traffic manager's first failed check is in [B, B + P),
# so it flips the name at F in [B + (N-1)P, B + NP) plus the check's own
# time. RTO ends when most agents' HTTP probes through the name are served
# by the standby: each probe resolves the name again and caches nothing,
# so at the latest one interval after F (the TTL does not enter: it would
# for a client that caches). Hence
#     (N-1)P - I = 3 s  <=  RTO  <=  NP + I = 7 s,
# widened by 1 s below and 3 s above for a loaded 2-core machine (a late
# probe, a slow check, an ASan build): [2 s, 10 s].
# The RPO estimate is the standby's gauge (tools/demo_app.c keeps it in
# [0.2, 0.8] s). The summary is compared with `sextant-collector incidents
# --db` on the database the demo kept (--db): the same reply as GET
# /api/v1/incidents, which the demo's summary was printed from.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/demo_lib.sh"

DB=$TMP/demo.db
start_demo --exit --break-after 3 --db "$DB"
wait "$DEMO_PID" || { cat "$DEMO_OUT" >&2; fail "the demo exited $?"; }
cat "$DEMO_OUT"

assert_demo_left_nothing

# The incident, as the API gives it.
"$COLLECTOR" incidents --db "$DB" > "$TMP/inc.json" ||
    fail "incidents --db failed"
jq -e '.count == 1' "$TMP/inc.json" > /dev/null ||
    fail "not one incident: $(cat "$TMP/inc.json")"
INC=$(jq -c '.incidents[0]' "$TMP/inc.json")
inc() {
    jq -r "$1" <<< "$INC"
}
assert_eq "$(inc '"\(.service) \(.region) \(.to_region) \(.open)"')" \
    "shop eu-west-1 us-east-1 false" "the incident"
for t in first_failure detected failover_start dns_switched_first \
         dns_switched_all restored closed; do
    [ "$(inc ".times.$t.ms")" != null ] || fail "the incident has no $t"
done
grep -q "incident #$(inc .id) opened" "$DEMO_OUT" ||
    fail "the demo did not narrate the opening"

# Every agent saw the name move to the standby.
"$COLLECTOR" timeline --db "$DB" --from 0 --to 9999999999999 --kind dns \
    > "$TMP/dns.json" || fail "timeline --db failed"
assert_eq "$(jq -r '[.events[] | select(.fields.name == "app.global.test"
        and ([.fields.new[].value] == ["127.0.2.1"])) | .cluster]
        | unique | join(" ")' "$TMP/dns.json")" \
    "ap-southeast-1 eu-west-1 us-east-1" "clusters that saw the DNS flip"

# The RTO in the predicted window, the RPO in the gauge's range.
RTO=$(inc .durations_ms.rto)
[ "$RTO" -ge 2000 ] && [ "$RTO" -le 10000 ] ||
    fail "RTO $RTO ms outside [2000, 10000] ms (see the header)"
RPO=$(inc .rpo_ms)
jq -e '. >= 200 and . <= 800' <<< "$RPO" > /dev/null ||
    fail "RPO $RPO ms outside the gauge's [200, 800] ms"

# The summary says what the API says.
when() {
    inc ".times.$1.utc | sub(\".*T\"; \"\") | sub(\"Z\"; \" UTC\")"
}
secs() {
    inc "$1 / 1000 | tostring"
}
# summary_is LABEL WANT: the summary line LABEL starts with WANT (a time
# or a duration; a few words saying what it is may follow).
summary_is() {
    assert_eq "$(demo_value "$1" | awk '{ print $1, $2 }')" "$2" "summary: $1"
}
summary_is 'first failure' "$(when first_failure)"
summary_is detected "$(when detected)"
summary_is 'failover start' "$(when failover_start)"
summary_is 'DNS switched' "$(when dns_switched_first)"
assert_eq "$(demo_value 'DNS switched' | sed 's/.*all: //')" \
    "$(when dns_switched_all)" "summary: DNS switched all"
summary_is restored "$(when restored)"
summary_is closed "$(when closed)"
summary_is 'time to detect' "$(secs .durations_ms.time_to_detect) s"
summary_is 'time to fail over' "$(secs .durations_ms.time_to_failover) s"
summary_is RTO "$(secs .durations_ms.rto) s"
summary_is 'RPO (estimate)' "$(secs .rpo_ms) s"
demo_value 'incident page' | grep -q "/#/incidents/$(inc .id)$" ||
    fail "summary: incident page link: $(demo_value 'incident page')"
echo "demo_failover: RTO $RTO ms, RPO $RPO ms, as the summary says"
