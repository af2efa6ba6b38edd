/* probe_kube.h -- the Kubernetes API probe: with the pod's service account
 * it reads the node list or one Deployment from the API server, in one
 * GET through the loop's curl multi handle, and reports the fraction of
 * Ready nodes or the ready/desired replicas as metric samples. Its only
 * public face is its ops; everything else goes through probe.h.
 *
 * Config keys (besides the common ones):
 *   url         API server base, https only  (https://kubernetes.default.svc)
 *   token_file  bearer token, re-read every run (KUBE_DEFAULT_TOKEN_FILE)
 *   ca_file     the only CA trusted for the API server (KUBE_DEFAULT_CA_FILE)
 *   resource    "nodes" or "deployment" (required)
 *   namespace   the Deployment's namespace (required for "deployment")
 *   deployment  the Deployment's name (required for "deployment"; "name"
 *               is the target's own)
 *
 * Events after the probe result, one metric sample each, target = the
 * target's name:
 *   nodes:      kube_nodes_ready, kube_nodes_total, kube_nodes_ready_ratio
 *   deployment: kube_deployment_ready_replicas,
 *               kube_deployment_desired_replicas,
 *               kube_deployment_ready_ratio
 *               (labels namespace and deployment)
 * The ratio is 0 for an empty node list and 1 for a Deployment scaled to
 * 0. A node is ready when its Ready condition is "True" (not "False", not
 * "Unknown"); ready replicas are status.readyReplicas (absent means 0).
 * A run is ok when the API server answered 200 with the JSON object asked
 * for; how many nodes or replicas are ready is the samples' business. A
 * 401, a 403 (RBAC), an unreadable token or CA file, a TLS failure, JSON
 * that is invalid, truncated, too deep or over the cap fail the run with
 * an error saying which. */
#ifndef SEXTANT_AGENT_PROBE_KUBE_H
#define SEXTANT_AGENT_PROBE_KUBE_H

#include "probe.h"

#define KUBE_DEFAULT_URL        "https://kubernetes.default.svc"
#define KUBE_DEFAULT_TOKEN_FILE \
    "/var/run/secrets/kubernetes.io/serviceaccount/token"
#define KUBE_DEFAULT_CA_FILE \
    "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"

/* Caps on what a run reads. A node object is 5-20 KiB (images, managed
 * fields), so 8 MiB holds a few hundred nodes; one object is at most etcd's
 * 1.5 MiB. The token is a JWT of about 1 KiB. */
#define KUBE_MAX_NODES_BODY      (8u << 20)
#define KUBE_MAX_DEPLOYMENT_BODY (2u << 20)
#define KUBE_MAX_TOKEN           (16u << 10)
#define KUBE_JSON_DEPTH          64     /* managedFields nest about 10 deep */
/* The API server's own limits, checked at load so that both go into the
 * URL path without escaping: a namespace is an RFC 1123 label, an object
 * name an RFC 1123 subdomain. */
#define KUBE_MAX_NAMESPACE       63u
#define KUBE_MAX_OBJECT_NAME     253u

extern const struct probe_ops probe_kube_ops;

#endif
