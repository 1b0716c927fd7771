/* The daemon's metrics (docs/daemon.md, "Metrics"): what GET /metrics answers, in the
 * Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * The registry holds the daemon's own counters (API requests by method, route template and
 * status) and a list of providers: functions that write their families (per VM, per tenant,
 * per host) into the answer each time it is built. A provider is given the caller, so a
 * tenant's token gets only its own tenant's series: each provider filters by caller. The
 * request counters are host-wide and shown to platform administrators only.
 *
 * Cardinality is bounded: routes are templates ("/api/v1/vms/{name}", never a raw path),
 * methods outside a fixed list count as "OTHER", and at most METRICS_SERIES_MAX request
 * series exist (further ones count under route "other").
 *
 * Threads: metrics_count_request() from any thread (the registry has its own mutex, a leaf
 * lock). metrics_render() runs the providers in the calling thread; the server calls it with
 * the daemon's lock held (server.h), so providers may read the store. Providers are added
 * before the server starts. */
#ifndef TESSERA_DAEMON_METRICS_H
#define TESSERA_DAEMON_METRICS_H

#include <stddef.h>

#include "daemon/api.h"

#define METRICS_SERIES_MAX 1024        /* request-counter series */
#define METRICS_ROUTE_LEN  64          /* a route template, with the NUL */
#define METRICS_TEXT_MAX   (16u << 20) /* the rendered answer */
#define METRICS_PROVIDERS  16

struct metrics;
struct metrics_writer; /* what a provider writes into */

/* A provider: writes its families for caller (never NULL) with metrics_family() and
 * metrics_sample(). Returns 0 or -errno (the whole answer is then a 500). */
typedef int (*metrics_provider_fn)(void *arg, const struct api_caller *caller,
                                   struct metrics_writer *w);

int metrics_new(struct metrics **out);
void metrics_free(struct metrics *m); /* NULL is a no-op */

/* -ENOSPC beyond METRICS_PROVIDERS. */
int metrics_add_provider(struct metrics *m, metrics_provider_fn fn, void *arg);

/* Counts one answered request: method as received, route a template from a fixed set (the
 * caller maps the path: server.c), status the HTTP status. */
void metrics_count_request(struct metrics *m, const char *method, const char *route,
                           unsigned status);

/* Starts a family: name ([a-zA-Z_:][a-zA-Z0-9_:]*), type ("counter", "gauge", "untyped"),
 * help (any text; escaped). Each family once per answer: -EEXIST otherwise; -EINVAL for a bad
 * name or type; -E2BIG past METRICS_TEXT_MAX. */
int metrics_family(struct metrics_writer *w, const char *name, const char *type, const char *help);

/* One sample of the current family (name must be the family's): labels is NULL or a NULL-
 * terminated list of name, value, name, value, ... (label names [a-zA-Z_][a-zA-Z0-9_]*, not
 * starting "__"; values any text, escaped). -EINVAL for a bad name or a sample outside its
 * family. */
int metrics_sample(struct metrics_writer *w, const char *name, const char *const *labels,
                   double value);

/* The whole answer for caller: *text (malloc'd, NUL-terminated; free it) and *len. Returns 0,
 * or the first provider's error, -E2BIG or -ENOMEM. */
int metrics_render(struct metrics *m, const struct api_caller *caller, char **text, size_t *len);

#endif
