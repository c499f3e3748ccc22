/* libcandado's wire format: builds URLs and JSON bodies, and turns response bodies into the result
 * structs of client.h. Responses are decoded with field tables (key, type, where it goes, whether
 * the API promises it), so a new field is one line and the rule "extra keys are fine, missing
 * promised ones are not" lives in one function. */
#define _GNU_SOURCE
#include "proto.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- URLs and request bodies ------------------------------------------------------------ */

char *cd_client_proto_url(const char *base, const char *path, const char *segment)
{
    char *esc = NULL, *url = NULL;
    if (segment) {
        /* curl_easy_escape(NULL, ...) is allowed since libcurl 7.82. */
        esc = curl_easy_escape(NULL, segment, (int)strlen(segment));
        if (!esc)
            return NULL;
    }
    if (asprintf(&url, "%s%s%s", base, path, esc ? esc : "") < 0)
        url = NULL;
    curl_free(esc);
    return url;
}

char *cd_client_proto_list_url(const char *base, const cd_client_list_opts *opts)
{
    /* The query parameters in the order the API lists them; NULL values are left out. */
    char limit[24] = "";
    if (opts && opts->limit > 0)
        snprintf(limit, sizeof limit, "%lld", (long long)opts->limit);
    const struct {
        const char *key, *value;
    } params[] = {
        {"prefix", opts ? opts->prefix : NULL},
        {"clientId", opts ? opts->client_id : NULL},
        {"limit", limit[0] ? limit : NULL},
        {"cursor", opts ? opts->cursor : NULL},
    };
    char *url = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&url, &len);
    if (!f)
        return NULL;
    fprintf(f, "%s/api/locks", base);
    char sep = '?';
    bool ok = true;
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        if (!params[i].value)
            continue;
        char *esc = curl_easy_escape(NULL, params[i].value, (int)strlen(params[i].value));
        if (!esc) {
            ok = false;
            break;
        }
        fprintf(f, "%c%s=%s", sep, params[i].key, esc);
        curl_free(esc);
        sep = '&';
    }
    if (fclose(f) != 0 || !ok) {
        free(url);
        return NULL;
    }
    return url;
}

/* Drops a negative integer member: "not given" means the server's default applies. */
static char *dump_without_negatives(json_t *obj, const char *const *keys, size_t nkeys)
{
    if (!obj)
        return NULL;
    for (size_t i = 0; i < nkeys; i++) {
        json_t *v = json_object_get(obj, keys[i]);
        if (v && json_integer_value(v) < 0)
            json_object_del(obj, keys[i]);
    }
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return s;
}

char *cd_client_proto_acquire_body(const char *resource, const char *client_id, int64_t ttl_ms,
                                   int64_t wait_ms)
{
    static const char *const optional[] = {"ttl", "wait"};
    json_t *o = json_pack("{s:s, s:s, s:I, s:I}", "resource", resource, "clientId", client_id,
                          "ttl", (json_int_t)ttl_ms, "wait", (json_int_t)wait_ms);
    return dump_without_negatives(o, optional, 2);
}

char *cd_client_proto_release_body(const char *resource, const char *token)
{
    return dump_without_negatives(json_pack("{s:s, s:s}", "resource", resource, "token", token),
                                  NULL, 0);
}

char *cd_client_proto_extend_body(const char *resource, const char *token, int64_t ttl_ms)
{
    static const char *const optional[] = {"ttl"};
    json_t *o = json_pack("{s:s, s:s, s:I}", "resource", resource, "token", token, "ttl",
                          (json_int_t)ttl_ms);
    return dump_without_negatives(o, optional, 1);
}

/* ---- response decoding ------------------------------------------------------------------ */

enum field_type { F_BOOL, F_INT, F_STR, F_TEXT };

typedef struct field {
    const char *key;
    enum field_type type; /* F_STR: a malloc'd copy; F_TEXT: copied into a char[32] */
    size_t offset;        /* where it goes in the result struct */
    bool required;        /* the API promises it: its absence is CD_CLIENT_EPROTO */
} field;

#define FIELD(st, key, type, member, req)                                                          \
    {                                                                                              \
        key, type, offsetof(st, member), req                                                       \
    }

/* Fills the fields of *out named by the table from obj. Absent optional fields keep their value.
 * On failure the F_STR copies made so far stay in *out for the caller's clear function. */
static int decode(const json_t *obj, const field *fields, size_t n, void *out)
{
    if (!json_is_object(obj))
        return CD_CLIENT_EPROTO;
    for (size_t i = 0; i < n; i++) {
        const field *f = &fields[i];
        json_t *v = json_object_get(obj, f->key);
        char *dst = (char *)out + f->offset;
        if (!v || json_is_null(v)) {
            if (f->required)
                return CD_CLIENT_EPROTO;
            continue;
        }
        switch (f->type) {
        case F_BOOL:
            if (!json_is_boolean(v))
                return CD_CLIENT_EPROTO;
            *(bool *)dst = json_is_true(v);
            break;
        case F_INT:
            if (!json_is_integer(v))
                return CD_CLIENT_EPROTO;
            *(int64_t *)dst = json_integer_value(v);
            break;
        case F_STR: {
            if (!json_is_string(v))
                return CD_CLIENT_EPROTO;
            char *copy = strdup(json_string_value(v));
            if (!copy)
                return CD_CLIENT_ENOMEM;
            free(*(char **)dst);
            *(char **)dst = copy;
            break;
        }
        case F_TEXT:
            if (!json_is_string(v))
                return CD_CLIENT_EPROTO;
            snprintf(dst, 32, "%s", json_string_value(v));
            break;
        }
    }
    return 0;
}

static json_t *parse(const char *body)
{
    return body ? json_loads(body, JSON_REJECT_DUPLICATES, NULL) : NULL;
}

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))

int cd_client_proto_grant(const char *body, cd_client_grant *out)
{
    static const field head[] = {FIELD(cd_client_grant, "acquired", F_BOOL, acquired, true)};
    static const field granted[] = {
        FIELD(cd_client_grant, "token", F_STR, token, true),
        FIELD(cd_client_grant, "expiresIn", F_INT, expires_in_ms, true),
        FIELD(cd_client_grant, "expiresAt", F_STR, expires_at, false),
        FIELD(cd_client_grant, "fencingToken", F_INT, fencing_token, false),
    };
    static const field refused[] = {
        FIELD(cd_client_grant, "error", F_STR, message, false),
        FIELD(cd_client_grant, "code", F_STR, code, false),
        FIELD(cd_client_grant, "expiresIn", F_INT, expires_in_ms, false),
    };
    memset(out, 0, sizeof *out);
    out->fencing_token = -1;
    out->expires_in_ms = -1;
    json_t *root = parse(body);
    int rc = decode(root, head, NFIELDS(head), out);
    if (rc == 0 && out->acquired)
        rc = decode(root, granted, NFIELDS(granted), out);
    else if (rc == 0)
        rc = decode(root, refused, NFIELDS(refused), out);
    json_decref(root);
    if (rc < 0)
        cd_client_grant_clear(out);
    return rc;
}

int cd_client_proto_released(const char *body, bool *released)
{
    static const field fields[] = {{"released", F_BOOL, 0, true}};
    bool value = false;
    json_t *root = parse(body);
    int rc = decode(root, fields, 1, &value);
    json_decref(root);
    if (rc == 0)
        *released = value;
    return rc;
}

int cd_client_proto_extension(const char *body, cd_client_extension *out)
{
    static const field head[] = {FIELD(cd_client_extension, "extended", F_BOOL, extended, true)};
    static const field extended[] = {
        FIELD(cd_client_extension, "expiresIn", F_INT, expires_in_ms, true),
        FIELD(cd_client_extension, "expiresAt", F_TEXT, expires_at, false),
    };
    memset(out, 0, sizeof *out);
    json_t *root = parse(body);
    int rc = decode(root, head, NFIELDS(head), out);
    if (rc == 0 && out->extended)
        rc = decode(root, extended, NFIELDS(extended), out);
    json_decref(root);
    if (rc < 0)
        memset(out, 0, sizeof *out);
    return rc;
}

/* One held lock, as info (with "exists") and every entry of a list show it. */
static const field lock_fields[] = {
    FIELD(cd_client_lock, "resource", F_STR, resource, true),
    FIELD(cd_client_lock, "clientId", F_STR, client_id, true),
    FIELD(cd_client_lock, "acquiredAt", F_STR, acquired_at, true),
    FIELD(cd_client_lock, "expiresAt", F_STR, expires_at, true),
    FIELD(cd_client_lock, "timeRemaining", F_INT, time_remaining_ms, true),
    FIELD(cd_client_lock, "fencingToken", F_INT, fencing_token, false),
    FIELD(cd_client_lock, "waiting", F_INT, waiting, false),
};

static int decode_lock(const json_t *obj, cd_client_lock *out)
{
    memset(out, 0, sizeof *out);
    out->exists = true;
    out->fencing_token = -1;
    out->waiting = -1;
    return decode(obj, lock_fields, NFIELDS(lock_fields), out);
}

int cd_client_proto_info(const char *body, cd_client_lock *out)
{
    static const field head[] = {FIELD(cd_client_lock, "exists", F_BOOL, exists, true)};
    static const field free_fields[] = {
        FIELD(cd_client_lock, "resource", F_STR, resource, false),
        FIELD(cd_client_lock, "waiting", F_INT, waiting, false),
    };
    bool exists = false;
    json_t *root = parse(body);
    int rc = decode(root, head, 1, &exists);
    if (rc == 0 && exists) {
        rc = decode_lock(root, out);
    } else if (rc == 0) {
        memset(out, 0, sizeof *out);
        out->fencing_token = -1;
        out->waiting = -1;
        rc = decode(root, free_fields, NFIELDS(free_fields), out);
    } else {
        memset(out, 0, sizeof *out);
    }
    json_decref(root);
    if (rc < 0)
        cd_client_lock_clear(out);
    return rc;
}

int cd_client_proto_list(const char *body, cd_client_lock_list *out)
{
    static const field page[] = {
        FIELD(cd_client_lock_list, "nextCursor", F_STR, next_cursor, false),
    };
    memset(out, 0, sizeof *out);
    int rc = CD_CLIENT_EPROTO;
    json_t *root = parse(body);
    json_t *locks = json_object_get(root, "locks");
    if (!json_is_array(locks))
        goto fail;
    size_t n = json_array_size(locks);
    if (n) {
        out->locks = calloc(n, sizeof *out->locks);
        if (!out->locks) {
            rc = CD_CLIENT_ENOMEM;
            goto fail;
        }
    }
    for (size_t i = 0; i < n; i++) {
        out->count = i + 1; /* so a failure below frees entry i too */
        rc = decode_lock(json_array_get(locks, i), &out->locks[i]);
        if (rc < 0)
            goto fail;
    }
    rc = decode(root, page, NFIELDS(page), out);
    if (rc < 0)
        goto fail;
    json_decref(root);
    return 0;
fail:
    json_decref(root);
    cd_client_lock_list_clear(out);
    return rc;
}

int cd_client_proto_stats(const char *body, cd_client_stats *out)
{
    static const field top[] = {
        FIELD(cd_client_stats, "totalLocks", F_INT, total_locks, true),
        FIELD(cd_client_stats, "activeLocks", F_INT, active_locks, true),
        FIELD(cd_client_stats, "expiredLocks", F_INT, expired_locks, true),
        FIELD(cd_client_stats, "waiting", F_INT, waiting, false),
        FIELD(cd_client_stats, "uptimeMs", F_INT, uptime_ms, false),
    };
    static const field counters[] = {
        FIELD(cd_client_stats, "acquired", F_INT, acquired, false),
        FIELD(cd_client_stats, "contended", F_INT, contended, false),
        FIELD(cd_client_stats, "released", F_INT, released, false),
        FIELD(cd_client_stats, "expired", F_INT, expired, false),
        FIELD(cd_client_stats, "extended", F_INT, extended, false),
        FIELD(cd_client_stats, "waitTimeouts", F_INT, wait_timeouts, false),
    };
    memset(out, 0, sizeof *out);
    out->waiting = out->uptime_ms = -1;
    out->acquired = out->contended = out->released = -1;
    out->expired = out->extended = out->wait_timeouts = -1;
    json_t *root = parse(body);
    int rc = decode(root, top, NFIELDS(top), out);
    if (rc < 0)
        goto fail;
    json_t *c = json_object_get(root, "counters");
    if (c && (rc = decode(c, counters, NFIELDS(counters), out)) < 0)
        goto fail;
    json_t *by = json_object_get(root, "locksByClient");
    rc = CD_CLIENT_EPROTO;
    if (!json_is_object(by))
        goto fail;
    if (json_object_size(by)) {
        out->by_client = calloc(json_object_size(by), sizeof *out->by_client);
        if (!out->by_client) {
            rc = CD_CLIENT_ENOMEM;
            goto fail;
        }
    }
    const char *key;
    json_t *v;
    json_object_foreach(by, key, v)
    {
        rc = CD_CLIENT_EPROTO;
        if (!json_is_integer(v))
            goto fail;
        cd_client_client_count *cc = &out->by_client[out->nclients];
        rc = CD_CLIENT_ENOMEM;
        if (!(cc->client_id = strdup(key)))
            goto fail;
        cc->count = json_integer_value(v);
        out->nclients++;
    }
    json_decref(root);
    return 0;
fail:
    json_decref(root);
    cd_client_stats_clear(out);
    return rc;
}

int cd_client_proto_released_count(const char *body, int64_t *count)
{
    static const field fields[] = {{"releasedCount", F_INT, 0, true}};
    int64_t value = 0;
    json_t *root = parse(body);
    int rc = decode(root, fields, 1, &value);
    json_decref(root);
    if (rc == 0)
        *count = value;
    return rc;
}

int cd_client_proto_health(const char *body)
{
    json_t *root = parse(body);
    const char *status = json_string_value(json_object_get(root, "status"));
    int rc = status && strcmp(status, "ok") == 0 ? 0 : CD_CLIENT_EPROTO;
    json_decref(root);
    return rc;
}

bool cd_client_proto_error_message(const char *body, char *buf, size_t len)
{
    json_t *root = parse(body);
    json_t *msg = json_object_get(root, "message");
    bool found = false;
    if (len == 0)
        goto done;
    buf[0] = '\0';
    if (json_is_string(msg)) {
        snprintf(buf, len, "%s", json_string_value(msg));
        found = true;
    } else if (json_is_array(msg)) {
        /* NestJS's validation pipe sends one message per broken rule. */
        size_t i, used = 0;
        json_t *item;
        json_array_foreach(msg, i, item)
        {
            if (!json_is_string(item) || used >= len)
                continue;
            int n =
                snprintf(buf + used, len - used, "%s%s", used ? "; " : "", json_string_value(item));
            used += n > 0 ? (size_t)n : 0;
            found = true;
        }
    }
done:
    json_decref(root);
    return found;
}
