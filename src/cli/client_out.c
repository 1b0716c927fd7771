/* The client's output for people (client.h): sizes, aligned tables, objects, quotas. Values
 * come from the daemon, so they are outside input: control bytes never reach the terminal. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/client.h"

#define CELL_MAX 256 /* a cell's text, cut beyond */

void client_size_format(uint64_t bytes, char *buf, size_t n)
{
    static const char units[] = "KMGTPE";
    unsigned u = 0;

    if (bytes < 1024) {
        snprintf(buf, n, "%" PRIu64 "B", bytes);
        return;
    }
    while (u + 1 < sizeof(units) - 1 && bytes >> (10 * (u + 2)))
        u++;
    /* Exact multiples read as --memory takes them ("512M"); others with one decimal. */
    if (!(bytes & ((UINT64_C(1) << (10 * (u + 1))) - 1)))
        snprintf(buf, n, "%" PRIu64 "%c", bytes >> (10 * (u + 1)), units[u]);
    else
        snprintf(buf, n, "%.1f%c", (double)bytes / (double)(UINT64_C(1) << (10 * (u + 1))),
                 units[u]);
}

/* Copies s to buf (n bytes) with control bytes as '?'. */
static void plain_copy(char *buf, size_t n, const char *s)
{
    size_t i;

    for (i = 0; s[i] && i + 1 < n; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    buf[i] = 0;
}

/* A JSON value as a cell's text. */
static void cell_text(json_t *v, enum client_cell kind, char *buf, size_t n)
{
    char tmp[CELL_MAX];

    if (!v || json_is_null(v) || (json_is_string(v) && !json_string_length(v))) {
        snprintf(buf, n, "-");
    } else if (json_is_integer(v) && kind == CLIENT_CELL_SIZE && json_integer_value(v) >= 0) {
        client_size_format((uint64_t)json_integer_value(v), buf, n);
    } else if (json_is_integer(v) && kind == CLIENT_CELL_TIME) {
        time_t t = (time_t)json_integer_value(v);
        struct tm tm;

        if (gmtime_r(&t, &tm))
            strftime(buf, n, "%Y-%m-%d %H:%M:%SZ", &tm);
        else
            snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_number(v) && kind == CLIENT_CELL_PERCENT) {
        snprintf(buf, n, "%.0f%%", json_number_value(v) * 100);
    } else if (json_is_integer(v)) {
        snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(buf, n, "%g", json_real_value(v));
    } else if (json_is_true(v) || json_is_false(v)) {
        snprintf(buf, n, "%s", json_is_true(v) ? "yes" : "no");
    } else if (json_is_string(v)) {
        plain_copy(buf, n, json_string_value(v));
    } else if (json_is_object(v) && json_is_string(json_object_get(v, "name"))) {
        /* A reference to another object ({"tenant": "acme", "name": "data"}): "acme/data", or
         * the name alone for the platform's shared objects (tenant ""). */
        const char *tenant = json_string_value(json_object_get(v, "tenant"));

        snprintf(tmp, sizeof(tmp), "%s%s%s", tenant && *tenant ? tenant : "",
                 tenant && *tenant ? "/" : "", json_string_value(json_object_get(v, "name")));
        plain_copy(buf, n, tmp);
    } else {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

        plain_copy(tmp, sizeof(tmp), text ? text : "?");
        snprintf(buf, n, "%s", tmp);
        free(text);
    }
}

int client_table_print(FILE *out, const struct client_column *cols, size_t ncols, json_t *rows)
{
    size_t width[16] = {0}, nrows, i, c;
    char cell[CELL_MAX];
    json_t *row;

    if (!json_is_array(rows) || ncols > sizeof(width) / sizeof(width[0]))
        return -EPROTO;
    json_array_foreach(rows, i, row)
    {
        if (!json_is_object(row))
            return -EPROTO;
    }
    nrows = json_array_size(rows);
    for (c = 0; c < ncols; c++) {
        width[c] = strlen(cols[c].header);
        for (i = 0; i < nrows; i++) {
            cell_text(json_object_get(json_array_get(rows, i), cols[c].key), cols[c].cell, cell,
                      sizeof(cell));
            if (strlen(cell) > width[c])
                width[c] = strlen(cell);
        }
    }
    for (i = 0; i <= nrows; i++) {
        for (c = 0; c < ncols; c++) {
            const char *text = cols[c].header;

            if (i) {
                cell_text(json_object_get(json_array_get(rows, i - 1), cols[c].key), cols[c].cell,
                          cell, sizeof(cell));
                text = cell;
            }
            /* The last column is not padded: no trailing blanks. */
            if (c + 1 == ncols)
                fprintf(out, "%s\n", text);
            else
                fprintf(out, "%-*s  ", (int)width[c], text);
        }
    }
    return 0;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);

    return a >= b && !strcmp(s + a - b, tail);
}

int client_object_print(FILE *out, json_t *obj)
{
    size_t width = 0;
    const char *key;
    char cell[CELL_MAX], name[64];
    json_t *v;

    if (!json_is_object(obj))
        return -EPROTO;
    json_object_foreach(obj, key, v)
    {
        if (strlen(key) > width)
            width = strlen(key);
    }
    if (width > sizeof(name) - 1)
        width = sizeof(name) - 1;
    json_object_foreach(obj, key, v)
    {
        enum client_cell kind = CLIENT_CELL_TEXT;

        if (ends_with(key, "_bytes"))
            kind = CLIENT_CELL_SIZE;
        else if (!strcmp(key, "created") || !strcmp(key, "started") || !strcmp(key, "finished") ||
                 !strcmp(key, "time"))
            kind = CLIENT_CELL_TIME;
        cell_text(v, kind, cell, sizeof(cell));
        plain_copy(name, sizeof(name), key);
        fprintf(out, "%-*s  %s\n", (int)width + 1, strcat(name, ":"), cell);
    }
    return 0;
}

int client_quota_print(FILE *out, json_t *quota)
{
    static const struct client_column cols[] = {
        {"RESOURCE", "resource", CLIENT_CELL_TEXT},
        {"LIMIT", "limit", CLIENT_CELL_TEXT},
        {"USED", "used", CLIENT_CELL_TEXT},
    };
    static const char *const keys[] = {"vcpus", "memory_bytes", "disk_bytes", "vms"};
    json_t *limits = json_object_get(quota, "limits"), *usage = json_object_get(quota, "usage");
    json_t *rows;
    int ret = 0;

    if (!json_is_object(limits) || !json_is_object(usage))
        return -EPROTO;
    rows = json_array();
    for (size_t i = 0; rows && i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *limit = json_object_get(limits, keys[i]), *used = json_object_get(usage, keys[i]);
        bool bytes = ends_with(keys[i], "_bytes");
        char a[32] = "unlimited", b[32] = "-";
        size_t klen = bytes ? strlen(keys[i]) - 6 : strlen(keys[i]);

        /* Counts print as numbers, byte amounts for people; null is no limit. */
        if (json_is_integer(limit))
            cell_text(limit, bytes ? CLIENT_CELL_SIZE : CLIENT_CELL_TEXT, a, sizeof(a));
        if (json_is_integer(used))
            cell_text(used, bytes ? CLIENT_CELL_SIZE : CLIENT_CELL_TEXT, b, sizeof(b));
        if (json_array_append_new(rows, json_pack("{s:s%,s:s,s:s}", "resource", keys[i], klen,
                                                  "limit", a, "used", b)))
            ret = -ENOMEM;
    }
    if (!rows)
        return -ENOMEM;
    if (!ret)
        ret = client_table_print(out, cols, 3, rows);
    json_decref(rows);
    return ret;
}
