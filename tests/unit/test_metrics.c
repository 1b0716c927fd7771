/* The metrics registry (src/daemon/metrics.h) against the Prometheus text format 0.0.4: HELP
 * and TYPE lines, label and help escaping, number spellings, request counters shown to the
 * platform administrator only, providers given the caller (a tenant sees its own series), the
 * bounded number of series, and a provider's mistakes refused. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/metrics.h"
#include "test.h"

static const struct api_caller admin = {.tenant = "", .user = "admin", .role = "platform-admin"};
static const struct api_caller alpha = {.tenant = "alpha", .user = "ann", .role = "tenant-admin"};

/* A provider with one gauge per tenant, each labelled with its tenant; a tenant's caller gets
 * only its own. */
static int tenants_provider(void *arg, const struct api_caller *c, struct metrics_writer *w)
{
    static const char *const tenants[] = {"alpha", "beta"};
    int *calls = arg, ret;
    size_t i;

    (*calls)++;
    ret = metrics_family(w, "tessera_tenant_vms", "gauge", "VMs of a tenant");
    for (i = 0; !ret && i < 2; i++) {
        const char *labels[] = {"tenant", tenants[i], NULL};

        if (!c->tenant[0] || !strcmp(c->tenant, tenants[i]))
            ret = metrics_sample(w, "tessera_tenant_vms", labels, (double)(i + 1));
    }
    return ret;
}

static int odd_provider(void *arg, const struct api_caller *c, struct metrics_writer *w)
{
    const char *labels[] = {"path", "C:\\dir \"x\"\nnext", "empty", "", NULL};
    int ret;

    ret = metrics_family(w, "tessera_odd", "gauge", "help with \\ and\nnewline");
    if (!ret)
        ret = metrics_sample(w, "tessera_odd", labels, 0.5);
    if (!ret)
        ret = metrics_sample(w, "tessera_odd", NULL, NAN);
    if (!ret)
        ret = metrics_sample(w, "tessera_odd", NULL, INFINITY);
    if (!ret)
        ret = metrics_sample(w, "tessera_odd", NULL, -INFINITY);
    if (!ret)
        ret = metrics_sample(w, "tessera_odd", NULL, 12345678901.0);
    return ret;
}

/* Every way a provider can break the format is refused, and the answer fails with it. */
static int bad_provider(void *arg, const struct api_caller *c, struct metrics_writer *w)
{
    const char *bad_label[] = {"bad-label", "x", NULL};
    const char *reserved[] = {"__name__", "x", NULL};
    const char *odd[] = {"a", NULL};

    CHECK(metrics_sample(w, "tessera_x", NULL, 1) == -EINVAL); /* no family yet */
    CHECK(metrics_family(w, "1bad", "gauge", "") == -EINVAL);
    CHECK(metrics_family(w, "tessera-x", "gauge", "") == -EINVAL);
    CHECK(metrics_family(w, "tessera_x", "histogram", "") == -EINVAL);
    CHECK(metrics_family(w, "tessera_x", "gauge", "x") == 0);
    CHECK(metrics_sample(w, "tessera_y", NULL, 1) == -EINVAL); /* outside its family */
    CHECK(metrics_sample(w, "tessera_x", bad_label, 1) == -EINVAL);
    CHECK(metrics_sample(w, "tessera_x", reserved, 1) == -EINVAL);
    CHECK(metrics_sample(w, "tessera_x", odd, 1) == -EINVAL);
    return metrics_family(w, "tessera_x", "gauge", "again"); /* -EEXIST */
}

static void test_text(void)
{
    struct metrics *m;
    char *text;
    size_t len;
    int calls = 0;

    CHECK(metrics_new(&m) == 0);
    CHECK(metrics_add_provider(m, tenants_provider, &calls) == 0);
    metrics_count_request(m, "GET", "/api/v1/vms/{name}", 200);
    metrics_count_request(m, "GET", "/api/v1/vms/{name}", 200);
    metrics_count_request(m, "GET", "/api/v1/vms/{name}", 404);
    metrics_count_request(m, "BREW", "other", 405);

    CHECK(metrics_render(m, &admin, &text, &len) == 0);
    CHECK(len == strlen(text));
    CHECK(!strcmp(text, "# HELP tessera_api_requests_total API requests answered, by method, "
                        "route template and HTTP status\n"
                        "# TYPE tessera_api_requests_total counter\n"
                        "tessera_api_requests_total{method=\"GET\",route=\"/api/v1/vms/{name}\","
                        "status=\"200\"} 2\n"
                        "tessera_api_requests_total{method=\"GET\",route=\"/api/v1/vms/{name}\","
                        "status=\"404\"} 1\n"
                        "tessera_api_requests_total{method=\"OTHER\",route=\"other\","
                        "status=\"405\"} 1\n"
                        "# HELP tessera_tenant_vms VMs of a tenant\n"
                        "# TYPE tessera_tenant_vms gauge\n"
                        "tessera_tenant_vms{tenant=\"alpha\"} 1\n"
                        "tessera_tenant_vms{tenant=\"beta\"} 2\n"));
    free(text);

    /* A tenant: no host-wide request counters, only its own tenant's series. */
    CHECK(metrics_render(m, &alpha, &text, &len) == 0);
    CHECK(!strcmp(text, "# HELP tessera_tenant_vms VMs of a tenant\n"
                        "# TYPE tessera_tenant_vms gauge\n"
                        "tessera_tenant_vms{tenant=\"alpha\"} 1\n"));
    free(text);
    CHECK(calls == 2);

    CHECK(metrics_add_provider(m, odd_provider, NULL) == 0);
    CHECK(metrics_render(m, &alpha, &text, &len) == 0);
    CHECK(strstr(text, "# HELP tessera_odd help with \\\\ and\\nnewline\n"
                       "# TYPE tessera_odd gauge\n"
                       "tessera_odd{path=\"C:\\\\dir \\\"x\\\"\\nnext\",empty=\"\"} 0.5\n"
                       "tessera_odd NaN\ntessera_odd +Inf\ntessera_odd -Inf\n"
                       "tessera_odd 12345678901\n") != NULL);
    free(text);

    CHECK(metrics_add_provider(m, bad_provider, NULL) == 0);
    CHECK(metrics_render(m, &admin, &text, &len) == -EEXIST && !text);
    metrics_free(m);
}

/* A client inventing routes or statuses cannot grow the registry past its bound. */
static void test_bounded(void)
{
    struct metrics *m;
    char route[32], *text, *p;
    size_t len, lines = 0;
    unsigned i;

    CHECK(metrics_new(&m) == 0);
    for (i = 0; i < 3 * METRICS_SERIES_MAX; i++) {
        snprintf(route, sizeof(route), "/r%u", i);
        metrics_count_request(m, "GET", route, 200);
    }
    metrics_count_request(m, "GET", "/r0", 1000); /* not a status */
    CHECK(metrics_render(m, &admin, &text, &len) == 0);
    for (p = text; (p = strchr(p, '\n')); p++)
        lines++;
    CHECK_EQ_U64(lines, 2 + METRICS_SERIES_MAX);
    CHECK(strstr(text, "{method=\"OTHER\",route=\"other\",status=\"0\"} 2050\n") != NULL);
    free(text);
    metrics_free(m);
}

int main(void)
{
    test_text();
    test_bounded();
    return test_finish("metrics");
}
