#!/bin/sh
# collector-b.sh -- prints the manifests of a second collector, "b", for
# an HA pair in the same cluster: deploy/collector's ConfigMap, volume,
# Deployment, Service and backup CronJob with every name and label
# sextant-collector turned into sextant-collector-b (its own database on
# its own volume, its own Service, a backup on its own node). It shares
# the token Secrets, so every agent's token is good at both. Apply with
#
#   deploy/ha/collector-b.sh | kubectl apply -f -
#
# and give the agents both collectors (deploy/ha/agent-config.yaml).
# A collector in another cluster (another region) is the stronger pair:
# apply deploy/collector there unchanged instead.
set -eu
dir=$(dirname "$0")/../collector
for f in config storage deployment backup; do
    echo "---"
    # Names and labels only: the binary keeps its name in command.
    sed 's/\([nN]ame: *sextant-collector\)/\1-b/' "$dir/$f.yaml"
done
