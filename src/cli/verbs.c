/* The one-request client verbs: acquire, release, extend, info, ls, stats, release-client. Each is
 * "parse options, make one libcandado call, print". With --json they print the server's body as
 * it came; otherwise lines for people. Off a terminal, `acquire` prints only the token so that
 * TOKEN=$(candado acquire -r R) works, and `ls` prints tab-separated rows without a header. */
#include "cli.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOPTS(t) ((int)(sizeof(t) / sizeof((t)[0])))
#define COMMON                                                                                     \
    {CD_OPT_SERVER, false, NULL}, {CD_OPT_JSON, false, NULL},                                      \
    {                                                                                              \
        CD_OPT_HELP, false, NULL                                                                   \
    }

/* Sets up the verb: parse, then a client. Returns -1 to go on, else the exit code. */
static int start(const cd_cli_verb *v, int argc, char **argv, cd_cli_args *a, cd_client **c)
{
    int rc = cd_cli_parse(v, argc, argv, a);
    if (rc >= 0)
        return rc;
    *c = cd_cli_client(v, a);
    return *c ? -1 : CD_EXIT_FAILURE;
}

/* ---- acquire ----------------------------------------------------------------------------- */

static const cd_cli_use acquire_opts[] = {
    {CD_OPT_RESOURCE, true, NULL},
    {CD_OPT_CLIENT_ID, false, NULL},
    {CD_OPT_TTL, false, NULL},
    {CD_OPT_WAIT, false, NULL},
    COMMON,
};
static const cd_cli_verb acquire_verb = {
    "acquire",
    "--resource NAME [--ttl MS] [--wait MS] [--client-id ID] [--json]",
    "Acquires a lock and prints its token (only the token when stdout is not a terminal).\n"
    "Keep the token: release and extend need it.",
    acquire_opts,
    NOPTS(acquire_opts),
    0,
    0,
    false,
};

int cd_cli_acquire(int argc, char **argv)
{
    const cd_cli_verb *v = &acquire_verb;
    cd_cli_args a;
    cd_client *c = NULL;
    cd_client_grant g = {0};
    char d1[32];
    int rc = start(v, argc, argv, &a, &c);
    if (rc >= 0)
        goto done;
    cd_client_acquire_opts o = {a.client_id, a.ttl > 0 ? a.ttl : 0, a.wait > 0 ? a.wait : 0};
    int err = cd_client_acquire(c, a.resource, &o, &g);
    if (err < 0) {
        rc = cd_cli_fail(v, &a, c, err);
        goto done;
    }
    if (a.json)
        cd_cli_print_body(c);
    if (!g.acquired) {
        fprintf(stderr, "candado acquire: '%s' is held by another client (expires in %s)\n",
                a.resource, cd_cli_duration(g.expires_in_ms, d1, sizeof d1));
        rc = CD_EXIT_HELD;
        goto done;
    }
    if (!a.json && a.tty) {
        printf("acquired %s\n  token          %s\n", a.resource, g.token);
        if (g.fencing_token >= 0)
            printf("  fencing token  %lld\n", (long long)g.fencing_token);
        printf("  expires in     %s%s%s\n", cd_cli_duration(g.expires_in_ms, d1, sizeof d1),
               g.expires_at ? " at " : "", g.expires_at ? g.expires_at : "");
    } else if (!a.json) {
        printf("%s\n", g.token);
    }
    rc = CD_EXIT_OK;
done:
    cd_client_grant_clear(&g);
    cd_client_free(c);
    return rc;
}

/* ---- release ----------------------------------------------------------------------------- */

static const cd_cli_use release_opts[] = {
    {CD_OPT_RESOURCE, true, NULL},
    {CD_OPT_TOKEN, true, NULL},
    COMMON,
};
static const cd_cli_verb release_verb = {
    "release",
    "--resource NAME --token TOKEN [--json]",
    "Releases a lock. Only the holder's token releases it; exit 3 when the token is not the\n"
    "current holder's (expired, released already, or someone else's).",
    release_opts,
    NOPTS(release_opts),
    0,
    0,
    false,
};

int cd_cli_release(int argc, char **argv)
{
    const cd_cli_verb *v = &release_verb;
    cd_cli_args a;
    cd_client *c = NULL;
    bool released = false;
    int rc = start(v, argc, argv, &a, &c);
    if (rc >= 0)
        goto done;
    int err = cd_client_release(c, a.resource, a.token, &released);
    if (err < 0) {
        rc = cd_cli_fail(v, &a, c, err);
        goto done;
    }
    if (a.json)
        cd_cli_print_body(c);
    if (!released) {
        fprintf(stderr, "candado release: '%s' is not held with this token\n", a.resource);
        rc = CD_EXIT_HELD;
        goto done;
    }
    if (!a.json)
        printf("released %s\n", a.resource);
    rc = CD_EXIT_OK;
done:
    cd_client_free(c);
    return rc;
}

/* ---- extend ------------------------------------------------------------------------------ */

static const cd_cli_use extend_opts[] = {
    {CD_OPT_RESOURCE, true, NULL},
    {CD_OPT_TOKEN, true, NULL},
    {CD_OPT_TTL, false,
     "new remaining time in ms, from now (default: the TTL it was granted with)"},
    COMMON,
};
static const cd_cli_verb extend_verb = {
    "extend",
    "--resource NAME --token TOKEN [--ttl MS] [--json]",
    "Extends a held lock: its remaining time becomes --ttl from now. Same token, same fencing\n"
    "token. Exit 3 when the lock is no longer held with this token.",
    extend_opts,
    NOPTS(extend_opts),
    0,
    0,
    false,
};

int cd_cli_extend(int argc, char **argv)
{
    const cd_cli_verb *v = &extend_verb;
    cd_cli_args a;
    cd_client *c = NULL;
    cd_client_extension e;
    char d[32];
    int rc = start(v, argc, argv, &a, &c);
    if (rc >= 0)
        goto done;
    int err = cd_client_extend(c, a.resource, a.token, a.ttl, &e);
    if (err < 0) {
        rc = cd_cli_fail(v, &a, c, err);
        goto done;
    }
    if (a.json)
        cd_cli_print_body(c);
    if (!e.extended) {
        fprintf(stderr, "candado extend: '%s' is not held with this token\n", a.resource);
        rc = CD_EXIT_HELD;
        goto done;
    }
    if (!a.json)
        printf("extended %s: expires in %s%s%s\n", a.resource,
               cd_cli_duration(e.expires_in_ms, d, sizeof d), e.expires_at[0] ? " at " : "",
               e.expires_at);
    rc = CD_EXIT_OK;
done:
    cd_client_free(c);
    return rc;
}

/* ---- info -------------------------------------------------------------------------------- */

static const cd_cli_use info_opts[] = {
    {CD_OPT_RESOURCE, false, "the resource (or give it as the argument)"},
    COMMON,
};
static const cd_cli_verb info_verb = {
    "info",
    "RESOURCE [--json]",
    "Shows who holds RESOURCE, since when and for how long. A free resource is not an error\n"
    "(exit 0, \"free\"). Tokens are never shown.",
    info_opts,
    NOPTS(info_opts),
    0,
    1,
    false,
};

int cd_cli_info(int argc, char **argv)
{
    const cd_cli_verb *v = &info_verb;
    cd_cli_args a;
    cd_client *c = NULL;
    cd_client_lock l = {0};
    char d[32];
    int rc = start(v, argc, argv, &a, &c);
    if (rc >= 0)
        goto done;
    const char *resource = a.npos ? a.pos[0] : a.resource;
    if (!resource) {
        fprintf(stderr, "candado info: which resource? (candado info --help)\n");
        rc = CD_EXIT_USAGE;
        goto done;
    }
    int err = cd_client_info(c, resource, &l);
    if (err < 0) {
        rc = cd_cli_fail(v, &a, c, err);
        goto done;
    }
    rc = CD_EXIT_OK;
    if (a.json) {
        cd_cli_print_body(c);
    } else if (!l.exists) {
        printf("%s is free\n", resource);
    } else {
        printf("%s\n  held by        %s\n  acquired at    %s\n  expires at     %s (in %s)\n",
               l.resource, l.client_id, l.acquired_at, l.expires_at,
               cd_cli_duration(l.time_remaining_ms, d, sizeof d));
        if (l.fencing_token >= 0)
            printf("  fencing token  %lld\n", (long long)l.fencing_token);
        if (l.waiting >= 0)
            printf("  waiting        %lld\n", (long long)l.waiting);
    }
done:
    cd_client_lock_clear(&l);
    cd_client_free(c);
    return rc;
}

/* ---- ls ---------------------------------------------------------------------------------- */

static const cd_cli_use ls_opts[] = {
    {CD_OPT_PREFIX, false, NULL},
    {CD_OPT_CLIENT_ID, false, "only locks held by this client"},
    {CD_OPT_LIMIT, false, NULL},
    {CD_OPT_CURSOR, false, NULL},
    COMMON,
};
static const cd_cli_verb ls_verb = {
    "ls",
    "[--prefix PREFIX] [--client-id ID] [--limit N] [--cursor C] [--json]",
    "Lists the held locks. On a terminal: a table; otherwise one tab-separated line per lock:\n"
    "resource, client id, ms remaining, fencing token.",
    ls_opts,
    NOPTS(ls_opts),
    0,
    0,
    false,
};

static void print_table(const cd_client_lock_list *l)
{
    int wr = (int)strlen("RESOURCE"), wc = (int)strlen("CLIENT");
    for (size_t i = 0; i < l->count; i++) {
        int r = (int)strlen(l->locks[i].resource), c = (int)strlen(l->locks[i].client_id);
        wr = r > wr ? r : wr;
        wc = c > wc ? c : wc;
    }
    printf("%-*s  %-*s  %12s  %s\n", wr, "RESOURCE", wc, "CLIENT", "EXPIRES IN", "FENCING");
    for (size_t i = 0; i < l->count; i++) {
        const cd_client_lock *k = &l->locks[i];
        char d[32], f[24] = "-";
        if (k->fencing_token >= 0)
            snprintf(f, sizeof f, "%lld", (long long)k->fencing_token);
        printf("%-*s  %-*s  %12s  %s\n", wr, k->resource, wc, k->client_id,
               cd_cli_duration(k->time_remaining_ms, d, sizeof d), f);
    }
    if (l->count == 0)
        printf("(no locks held)\n");
}

int cd_cli_ls(int argc, char **argv)
{
    const cd_cli_verb *v = &ls_verb;
    cd_cli_args a;
    cd_client *c = NULL;
    cd_client_lock_list l = {0};
    int rc = start(v, argc, argv, &a, &c);
    if (rc >= 0)
        goto done;
    /* The default client id means "me" elsewhere; here no --client-id means "everyone". */
    cd_client_list_opts o = {a.prefix, a.client_id == a.default_id ? NULL : a.client_id,
                             a.limit > 0 ? a.limit : 0, a.cursor};
    int err = cd_client_list(c, &o, &l);
    if (err < 0) {
        rc = cd_cli_fail(v, &a, c, err);
        goto done;
    }
    rc = CD_EXIT_OK;
    if (a.json) {
        cd_cli_print_body(c);
        goto done;
    }
    if (a.tty)
        print_table(&l);
    else
        for (size_t i = 0; i < l.count; i++)
            printf("%s\t%s\t%lld\t%lld\n", l.locks[i].resource, l.locks[i].client_id,
                   (long long)l.locks[i].time_remaining_ms, (long long)l.locks[i].fencing_token);
    if (l.next_cursor)
        fprintf(stderr, "more: candado ls --cursor '%s'\n", l.next_cursor);
done:
    cd_client_lock_list_clear(&l);
    cd_client_free(c);
    return rc;
}

/* ---- stats ------------------------------------------------------------------------------- */

static const cd_cli_use stats_opts[] = {COMMON};
static const cd_cli_verb stats_verb = {
    "stats",
    "[--json]",
    "Shows the server's lock counts, locks per client and totals since start.",
    stats_opts,
    NOPTS(stats_opts),
    0,
    0,
    false,
};

int cd_cli_stats(int argc, char **argv)
{
    const cd_cli_verb *v = &stats_verb;
    cd_cli_args a;
    cd_client *c = NULL;
    cd_client_stats s = {0};
    char d[32];
    int rc = start(v, argc, argv, &a, &c);
    if (rc >= 0)
        goto done;
    int err = cd_client_stats_get(c, &s);
    if (err < 0) {
        rc = cd_cli_fail(v, &a, c, err);
        goto done;
    }
    rc = CD_EXIT_OK;
    if (a.json) {
        cd_cli_print_body(c);
        goto done;
    }
    /* Rows the server did not send (-1) are left out. */
    const struct {
        const char *label;
        int64_t value;
    } rows[] = {
        {"active locks", s.active_locks}, {"expired locks", s.expired_locks},
        {"total locks", s.total_locks},   {"waiting", s.waiting},
        {"acquired", s.acquired},         {"contended", s.contended},
        {"released", s.released},         {"expired", s.expired},
        {"extended", s.extended},         {"wait timeouts", s.wait_timeouts},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].value >= 0)
            printf("%-16s %lld\n", rows[i].label, (long long)rows[i].value);
    if (s.uptime_ms >= 0)
        printf("%-16s %s\n", "uptime", cd_cli_duration(s.uptime_ms, d, sizeof d));
    if (s.nclients)
        printf("locks by client:\n");
    for (size_t i = 0; i < s.nclients; i++)
        printf("  %-30s %lld\n", s.by_client[i].client_id, (long long)s.by_client[i].count);
done:
    cd_client_stats_clear(&s);
    cd_client_free(c);
    return rc;
}

/* ---- release-client ---------------------------------------------------------------------- */

static const cd_cli_use release_client_opts[] = {
    {CD_OPT_ADMIN_TOKEN, false, NULL},
    COMMON,
};
static const cd_cli_verb release_client_verb = {
    "release-client",
    "CLIENT_ID [--admin-token TOKEN] [--json]",
    "Releases every lock CLIENT_ID holds (for a client that crashed). Needs the admin token\n"
    "when the server has one configured (exit 2 without it).",
    release_client_opts,
    NOPTS(release_client_opts),
    1,
    1,
    false,
};

int cd_cli_release_client(int argc, char **argv)
{
    const cd_cli_verb *v = &release_client_verb;
    cd_cli_args a;
    cd_client *c = NULL;
    int64_t n = 0;
    int rc = start(v, argc, argv, &a, &c);
    if (rc >= 0)
        goto done;
    int err = cd_client_release_client(c, a.pos[0], a.admin_token, &n);
    if (err < 0) {
        rc = cd_cli_fail(v, &a, c, err);
        goto done;
    }
    rc = CD_EXIT_OK;
    if (a.json)
        cd_cli_print_body(c);
    else
        printf("released %lld lock%s of %s\n", (long long)n, n == 1 ? "" : "s", a.pos[0]);
done:
    cd_client_free(c);
    return rc;
}
