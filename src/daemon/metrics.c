/* The daemon's metrics (metrics.h). */
#include "daemon/metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_METHOD_LEN 8
#define METRICS_FAMILIES   256 /* families in one answer */
#define METRICS_NAME_LEN   128

struct metrics_series {
    char method[METRICS_METHOD_LEN];
    char route[METRICS_ROUTE_LEN];
    unsigned status;
    uint64_t count;
};

struct metrics {
    pthread_mutex_t lock; /* the series; providers are fixed before the server starts */
    struct metrics_series series[METRICS_SERIES_MAX];
    size_t nseries;
    struct {
        metrics_provider_fn fn;
        void *arg;
    } providers[METRICS_PROVIDERS];
    size_t nproviders;
};

struct metrics_writer {
    char *buf;
    size_t len, cap;
    int error; /* the first failure: later writes are no-ops */
    char family[METRICS_NAME_LEN];
    char (*seen)[METRICS_NAME_LEN]; /* families written so far */
    size_t nseen;
};

int metrics_new(struct metrics **out)
{
    struct metrics *m = calloc(1, sizeof(*m));

    *out = m;
    if (!m)
        return -ENOMEM;
    pthread_mutex_init(&m->lock, NULL);
    return 0;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

int metrics_add_provider(struct metrics *m, metrics_provider_fn fn, void *arg)
{
    if (m->nproviders == METRICS_PROVIDERS)
        return -ENOSPC;
    m->providers[m->nproviders].fn = fn;
    m->providers[m->nproviders].arg = arg;
    m->nproviders++;
    return 0;
}

/* The methods that get a series of their own; anything else a client sends is "OTHER", so a
 * client cannot mint series by inventing methods. */
static const char *method_label(const char *method)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    size_t i;

    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (!strcmp(method, known[i]))
            return known[i];
    return "OTHER";
}

void metrics_count_request(struct metrics *m, const char *method, const char *route,
                           unsigned status)
{
    struct metrics_series *s;
    size_t i;

    method = method_label(method);
    if (status < 100 || status > 599)
        status = 0;
    pthread_mutex_lock(&m->lock);
    for (i = 0; i < m->nseries; i++) {
        s = &m->series[i];
        if (s->status == status && !strcmp(s->route, route) && !strcmp(s->method, method))
            goto count;
    }
    /* The last slot is the overflow: whatever does not fit is counted, under "other". */
    if (m->nseries == METRICS_SERIES_MAX - 1) {
        s = &m->series[METRICS_SERIES_MAX - 1];
        snprintf(s->method, sizeof(s->method), "OTHER");
        snprintf(s->route, sizeof(s->route), "other");
        goto count;
    }
    s = &m->series[m->nseries++];
    snprintf(s->method, sizeof(s->method), "%s", method);
    snprintf(s->route, sizeof(s->route), "%s", route);
    s->status = status;
count:
    s->count++;
    pthread_mutex_unlock(&m->lock);
}

/* ---- The writer ---- */

static void w_append(struct metrics_writer *w, const char *p, size_t n)
{
    size_t cap;
    char *b;

    if (w->error)
        return;
    if (w->len + n + 1 > METRICS_TEXT_MAX) {
        w->error = -E2BIG;
        return;
    }
    if (w->len + n + 1 > w->cap) {
        for (cap = w->cap ? w->cap : 4096; cap < w->len + n + 1; cap *= 2)
            ;
        b = realloc(w->buf, cap);
        if (!b) {
            w->error = -ENOMEM;
            return;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void w_str(struct metrics_writer *w, const char *s)
{
    w_append(w, s, strlen(s));
}

/* Escapes s as the format wants: in HELP, backslash and line feed; in a label value, those
 * and the double quote (exposition format 0.0.4, "Comments, help text, and type
 * information" and "Syntax"). */
static void w_escaped(struct metrics_writer *w, const char *s, bool quote)
{
    const char *run = s;

    for (; *s; s++) {
        const char *esc = *s == '\\'           ? "\\\\"
                          : *s == '\n'         ? "\\n"
                          : quote && *s == '"' ? "\\\""
                                               : NULL;

        if (!esc)
            continue;
        w_append(w, run, (size_t)(s - run));
        w_str(w, esc);
        run = s + 1;
    }
    w_append(w, run, (size_t)(s - run));
}

static bool name_valid(const char *name, bool colon)
{
    size_t i;

    for (i = 0; name[i]; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (colon && c == ':') || (i && c >= '0' && c <= '9');

        if (!ok)
            return false;
    }
    return i > 0 && i < METRICS_NAME_LEN;
}

int metrics_family(struct metrics_writer *w, const char *name, const char *type, const char *help)
{
    size_t i;

    if (w->error)
        return w->error;
    if (!name_valid(name, true) ||
        (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "untyped")))
        return -EINVAL;
    for (i = 0; i < w->nseen; i++)
        if (!strcmp(w->seen[i], name))
            return -EEXIST;
    if (w->nseen == METRICS_FAMILIES)
        return -E2BIG;
    snprintf(w->seen[w->nseen++], METRICS_NAME_LEN, "%s", name);
    snprintf(w->family, sizeof(w->family), "%s", name);
    w_str(w, "# HELP ");
    w_str(w, name);
    w_str(w, " ");
    w_escaped(w, help, false);
    w_str(w, "\n# TYPE ");
    w_str(w, name);
    w_str(w, " ");
    w_str(w, type);
    w_str(w, "\n");
    return w->error;
}

int metrics_sample(struct metrics_writer *w, const char *name, const char *const *labels,
                   double value)
{
    char num[40];
    size_t i;

    if (w->error)
        return w->error;
    if (!w->family[0] || strcmp(name, w->family))
        return -EINVAL;
    for (i = 0; labels && labels[i]; i += 2)
        if (!labels[i + 1] || !name_valid(labels[i], false) || !strncmp(labels[i], "__", 2))
            return -EINVAL;
    w_str(w, name);
    for (i = 0; labels && labels[i]; i += 2) {
        w_str(w, i ? "," : "{");
        w_str(w, labels[i]);
        w_str(w, "=\"");
        w_escaped(w, labels[i + 1], true);
        w_str(w, "\"");
    }
    if (labels && labels[0])
        w_str(w, "}");
    /* Values are Go ParseFloat syntax: NaN, +Inf, -Inf spelt so. */
    if (isnan(value))
        snprintf(num, sizeof(num), "NaN");
    else if (isinf(value))
        snprintf(num, sizeof(num), "%cInf", value > 0 ? '+' : '-');
    else if (value == (double)(int64_t)value && fabs(value) < 9e15)
        snprintf(num, sizeof(num), "%lld", (long long)value);
    else
        snprintf(num, sizeof(num), "%.17g", value);
    w_str(w, " ");
    w_str(w, num);
    w_str(w, "\n");
    return w->error;
}

/* ---- The answer ---- */

static int render_requests(struct metrics *m, struct metrics_writer *w)
{
    char status[8];
    size_t i;
    int ret;

    ret = metrics_family(w, "tessera_api_requests_total", "counter",
                         "API requests answered, by method, route template and HTTP status");
    pthread_mutex_lock(&m->lock);
    for (i = 0; !ret && i < m->nseries; i++) {
        const struct metrics_series *s = &m->series[i];
        const char *labels[] = {"method", s->method, "route", s->route, "status", status, NULL};

        snprintf(status, sizeof(status), "%u", s->status);
        ret = metrics_sample(w, "tessera_api_requests_total", labels, (double)s->count);
    }
    if (!ret && m->nseries == METRICS_SERIES_MAX - 1 && m->series[METRICS_SERIES_MAX - 1].count) {
        const char *labels[] = {"method", "OTHER", "route", "other", "status", "0", NULL};

        ret = metrics_sample(w, "tessera_api_requests_total", labels,
                             (double)m->series[METRICS_SERIES_MAX - 1].count);
    }
    pthread_mutex_unlock(&m->lock);
    return ret;
}

int metrics_render(struct metrics *m, const struct api_caller *caller, char **text, size_t *len)
{
    struct metrics_writer w = {0};
    size_t i;
    int ret = 0;

    *text = NULL;
    *len = 0;
    w.seen = calloc(METRICS_FAMILIES, sizeof(*w.seen));
    if (!w.seen)
        return -ENOMEM;
    if (!strcmp(caller->role, "platform-admin"))
        ret = render_requests(m, &w);
    for (i = 0; !ret && i < m->nproviders; i++)
        ret = m->providers[i].fn(m->providers[i].arg, caller, &w);
    if (!ret)
        w_append(&w, "", 0);
    if (!ret)
        ret = w.error;
    free(w.seen);
    if (ret) {
        free(w.buf);
        return ret;
    }
    /* An empty answer is still a string. */
    if (!w.buf)
        w.buf = calloc(1, 1);
    if (!w.buf)
        return -ENOMEM;
    *text = w.buf;
    *len = w.len;
    return 0;
}
