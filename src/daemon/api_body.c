/* Typed request bodies and stored documents for the API's resource files (api_int.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/api_int.h"

#define FIELD_LEN 96 /* "prefix.field" in messages */

static const char *field_path(char *buf, const char *prefix, const char *field)
{
    snprintf(buf, FIELD_LEN, "%s%s%s", prefix ? prefix : "", prefix && *prefix ? "." : "", field);
    return buf;
}

int body_keys(struct req *q, json_t *obj, const char *prefix, const char *const *fields)
{
    char b[API_QUOTE_LEN], names[STORE_TEXT_LEN] = "", f[FIELD_LEN];
    const char *key;
    json_t *val;
    size_t i, n = 0;

    for (i = 0; fields[i]; i++)
        n += (size_t)snprintf(names + n, n < sizeof(names) ? sizeof(names) - n : 0, "%s%s",
                              i ? ", " : "", fields[i]);
    json_object_foreach(obj, key, val)
    {
        (void)val;
        for (i = 0; fields[i] && strcmp(fields[i], key); i++)
            ;
        if (!fields[i]) {
            reply_error(q->r, 400, prefix && *prefix ? field_path(f, prefix, "") : NULL,
                        "unknown field '%s%s%s' (valid fields: %s)", prefix ? prefix : "",
                        prefix && *prefix ? "." : "", quote(key, b), names);
            return -EINVAL;
        }
    }
    return 0;
}

int body_object(struct req *q, const char *const *fields, const char *sample, json_t **root)
{
    char b[API_QUOTE_LEN];
    json_error_t jerr;

    *root = NULL;
    if (!q->len) {
        reply_error(q->r, 400, NULL, "empty request body (expected a JSON object such as %s)",
                    sample);
        return -EINVAL;
    }
    *root = json_loadb(q->body, q->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!*root) {
        reply_error(q->r, 400, NULL, "request body is not valid JSON: %s (at byte %d)",
                    quote(jerr.text, b), jerr.position);
        return -EINVAL;
    }
    if (!json_is_object(*root)) {
        reply_error(q->r, 400, NULL, "request body must be a JSON object such as %s", sample);
        goto fail;
    }
    if (body_keys(q, *root, NULL, fields))
        goto fail;
    return 0;
fail:
    json_decref(*root);
    *root = NULL;
    return -EINVAL;
}

static json_t *member(struct req *q, json_t *obj, const char *prefix, const char *field,
                      bool required, int *ret)
{
    json_t *v = json_object_get(obj, field);
    char f[FIELD_LEN];

    *ret = 0;
    if (!v && required) {
        field_path(f, prefix, field);
        reply_error(q->r, 400, f, "field '%s' is required", f);
        *ret = -EINVAL;
    }
    return v;
}

static int body_string(struct req *q, json_t *obj, const char *prefix, const char *field,
                       bool required, size_t max, bool lines, const char **out)
{
    char f[FIELD_LEN];
    const char *s;
    int ret;
    json_t *v = member(q, obj, prefix, field, required, &ret);
    size_t i;

    *out = NULL;
    if (!v)
        return ret;
    field_path(f, prefix, field);
    if (!json_is_string(v)) {
        reply_error(q->r, 400, f, "field '%s' must be a string", f);
        return -EINVAL;
    }
    s = json_string_value(v);
    for (i = 0; s[i]; i++) {
        if (lines && (s[i] == '\n' || s[i] == '\t' || s[i] == '\r'))
            continue;
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            reply_error(q->r, 400, f, "field '%s' must not hold control characters%s", f,
                        lines ? " other than tabs and line breaks" : "");
            return -EINVAL;
        }
    }
    if (i > max || i != json_string_length(v)) {
        reply_error(q->r, 400, f, "field '%s' is longer than %zu bytes or holds a NUL", f, max);
        return -EINVAL;
    }
    *out = s;
    return 0;
}

int body_str(struct req *q, json_t *obj, const char *prefix, const char *field, bool required,
             size_t max, const char **out)
{
    return body_string(q, obj, prefix, field, required, max, false, out);
}

int body_text(struct req *q, json_t *obj, const char *prefix, const char *field, bool required,
              size_t max, const char **out)
{
    return body_string(q, obj, prefix, field, required, max, true, out);
}

int body_u64(struct req *q, json_t *obj, const char *prefix, const char *field, bool required,
             uint64_t min, uint64_t max, uint64_t *out, bool *present)
{
    char f[FIELD_LEN];
    json_int_t n;
    int ret;
    json_t *v = member(q, obj, prefix, field, required, &ret);

    if (present)
        *present = v != NULL;
    if (!v)
        return ret;
    field_path(f, prefix, field);
    if (!json_is_integer(v) || (n = json_integer_value(v)) < 0 || (uint64_t)n < min ||
        (uint64_t)n > max) {
        reply_error(q->r, 400, f, "field '%s' must be an integer from %" PRIu64 " to %" PRIu64, f,
                    min, max);
        return -EINVAL;
    }
    *out = (uint64_t)n;
    return 0;
}

int body_num(struct req *q, json_t *obj, const char *prefix, const char *field, double min,
             double max, bool nullable, double *out, bool *present, bool *is_null)
{
    char f[FIELD_LEN];
    double n;
    int ret;
    json_t *v = member(q, obj, prefix, field, false, &ret);

    if (present)
        *present = v != NULL;
    if (is_null)
        *is_null = false;
    if (!v)
        return ret;
    field_path(f, prefix, field);
    if (json_is_null(v) && nullable) {
        if (is_null)
            *is_null = true;
        return 0;
    }
    if (!json_is_number(v) || !((n = json_number_value(v)) >= min) || n > max) {
        reply_error(q->r, 400, f, "field '%s' must be a number from %g to %g%s", f, min, max,
                    nullable ? ", or null" : "");
        return -EINVAL;
    }
    *out = n;
    return 0;
}

int body_str_at(struct req *q, json_t *arr, const char *field, size_t i, size_t max,
                const char **out)
{
    char f[FIELD_LEN];
    json_t *wrap;
    int ret;

    snprintf(f, sizeof(f), "%s[%zu]", field, i);
    /* One checker for strings: the element as the one member of an object. */
    wrap = json_pack("{s:O}", "x", json_array_get(arr, i));
    if (!wrap) {
        reply_error(q->r, 500, NULL, "out of memory");
        return -ENOMEM;
    }
    ret = body_str(q, wrap, NULL, "x", true, max, out);
    if (ret) {
        /* Name the element in the reply rather than the wrapper's key. */
        json_t *err = json_loadb(q->r->body, q->r->len, 0, NULL);
        const char *msg =
            json_string_value(json_object_get(json_object_get(err, "error"), "message"));
        char m[API_MSG_LEN];

        snprintf(m, sizeof(m), "%s", msg ? msg : "");
        json_decref(err);
        api_response_free(q->r);
        reply_error(q->r, 400, f, "%s: %s", f, strstr(m, "must") ? strstr(m, "must") : m);
    } else {
        /* The array keeps the string alive; the wrapper only borrowed it. */
        *out = json_string_value(json_array_get(arr, i));
    }
    json_decref(wrap);
    return ret;
}

int body_bool(struct req *q, json_t *obj, const char *prefix, const char *field, bool *out)
{
    char f[FIELD_LEN];
    json_t *v = json_object_get(obj, field);

    if (!v)
        return 0;
    if (!json_is_boolean(v)) {
        reply_error(q->r, 400, field_path(f, prefix, field), "field '%s' must be true or false", f);
        return -EINVAL;
    }
    *out = json_is_true(v);
    return 0;
}

int body_name(struct req *q, json_t *obj, const char *field, bool required, const char **out)
{
    int ret = body_str(q, obj, NULL, field, required, STORE_NAME_LEN - 1, out);

    if (ret || !*out)
        return ret;
    return check_name(q, field, *out);
}

json_t *doc_load(struct req *q, const char *kind, const char *tenant, const char *name,
                 const char *what)
{
    char *text;
    json_t *v;
    int ret = q->s->ops->doc_get(q->s, kind, tenant, name, &text);

    if (ret == -ENOENT) {
        reply_error(q->r, 404, "name", "%s '%s' not found", what, name);
        return NULL;
    }
    if (ret) {
        reply_store(q, what, ret);
        return NULL;
    }
    v = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_object(v)) {
        json_decref(v);
        reply_error(q->r, 500, NULL, "%s '%s': its stored record is damaged", what, name);
        return NULL;
    }
    return v;
}

int doc_save(struct req *q, const char *kind, const char *tenant, const char *name, json_t *obj,
             enum store_put how)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    int ret;

    if (!text) {
        reply_error(q->r, 500, NULL, "out of memory");
        return -ENOMEM;
    }
    ret = q->s->ops->doc_put(q->s, kind, tenant, name, text, how);
    free(text);
    if (ret == -EEXIST)
        reply_error(q->r, 409, "name", "%s '%s' already exists", kind, name);
    else if (ret)
        reply_store(q, kind, ret);
    return ret;
}

int doc_append_each(void *arr, const char *tenant, const char *name, const char *doc)
{
    (void)tenant;
    (void)name;
    return append(arr, json_loads(doc, 0, NULL));
}

void doc_list_reply(struct req *q, const char *kind, const char *key)
{
    json_t *arr = json_array();
    /* A platform administrator without ?tenant= sees every tenant's. */
    const char *scope = q->c.role == ROLE_PLATFORM_ADMIN && !q->rq->tenant ? NULL : q->scope;

    if (!arr) {
        reply_error(q->r, 500, NULL, "out of memory");
        return;
    }
    reply_list(q, key, arr, q->s->ops->doc_list(q->s, kind, scope, doc_append_each, arr));
}

int doc_upsert(struct req *q, const char *kind, const char *tenant, const char *name, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    int ret;

    if (!text) {
        reply_error(q->r, 500, NULL, "out of memory");
        return -ENOMEM;
    }
    ret = q->s->ops->doc_put(q->s, kind, tenant, name, text, STORE_PUT_UPDATE);
    if (ret == -ENOENT)
        ret = q->s->ops->doc_put(q->s, kind, tenant, name, text, STORE_PUT_CREATE);
    free(text);
    if (ret)
        reply_store(q, kind, ret);
    return ret;
}
