# The collector's side of durable delivery (issue 5): out-of-order storage,
# gaps, drops, clock offset; and HTTPS with client certificates.
add_script_test(collector_delivery collector_delivery.sh)
set_tests_properties(collector_delivery PROPERTIES COST 44)
add_script_test(collector_tls collector_tls.sh)
set_tests_properties(collector_tls PROPERTIES COST 44)
