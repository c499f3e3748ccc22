/* `candado serve`.
 *
 * Configuration is one table: each option has a flag, an environment variable and a
 * default; flags beat the environment, which beats the default. The loop owns one timer
 * for everything that happens at a given moment (lock expiry, wait deadlines), re-armed
 * before each poll from cd_locks_next_deadline(); expiry work per loop turn is bounded,
 * so a million locks ending at once are ended over several turns with I/O served in
 * between. */
#include "server/serve.h"

#include "api/api.h"
#include "http/http.h"
#include "lock/locks.h"
#include "store/memory.h"
#include "util/log.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

/* Expiry work per loop turn is bounded by time: batches of EXPIRY_BATCH locks (and waits)
 * until EXPIRY_SLICE_NS have passed, then back to I/O. */
#define EXPIRY_BATCH    256
#define EXPIRY_SLICE_NS 1000000

typedef struct config {
    char *host;
    long port;
    long default_ttl;
    long max_ttl;
    long max_wait;
    char *admin_token;
    long max_connections;
    long request_timeout;
    long idle_timeout;
    char *log_level;
    char *store;
} config;

enum opt_type { OPT_STR, OPT_NUM };

typedef struct option_def {
    const char *flag;
    const char *env;
    const char *env2;
    enum opt_type type;
    size_t offset;
    const char *dflt;
    long min, max;
    const char *help;
} option_def;

#define FIELD(f) offsetof(config, f)

static const option_def options[] = {
    {"host", "CANDADO_HOST", NULL, OPT_STR, FIELD(host), "127.0.0.1", 0, 0, "address to listen on"},
    {"port", "CANDADO_PORT", "PORT", OPT_NUM, FIELD(port), "3001", 0, 65535, "TCP port"},
    {"default-ttl", "CANDADO_DEFAULT_TTL", NULL, OPT_NUM, FIELD(default_ttl), "30000", 1, INT32_MAX,
     "TTL in ms when acquire gives none"},
    {"max-ttl", "CANDADO_MAX_TTL", NULL, OPT_NUM, FIELD(max_ttl), "300000", 1, INT32_MAX,
     "largest TTL in ms a client may ask for"},
    {"max-wait", "CANDADO_MAX_WAIT", NULL, OPT_NUM, FIELD(max_wait), "300000", 0, INT32_MAX,
     "longest `wait` in ms a client may ask for"},
    {"admin-token", "CANDADO_ADMIN_TOKEN", NULL, OPT_STR, FIELD(admin_token), NULL, 0, 0,
     "when set, DELETE /api/locks/client/:id needs Authorization: Bearer <token>"},
    {"max-connections", "CANDADO_MAX_CONNECTIONS", NULL, OPT_NUM, FIELD(max_connections), "10000",
     1, 1000000, "connections served at once; more are closed on accept"},
    {"request-timeout", "CANDADO_REQUEST_TIMEOUT", NULL, OPT_NUM, FIELD(request_timeout), "10000",
     1, INT32_MAX, "ms a client has to send a whole request (then 408)"},
    {"idle-timeout", "CANDADO_IDLE_TIMEOUT", NULL, OPT_NUM, FIELD(idle_timeout), "60000", 1,
     INT32_MAX, "ms an idle keep-alive connection stays open"},
    {"log-level", "CANDADO_LOG_LEVEL", NULL, OPT_STR, FIELD(log_level), "info", 0, 0,
     "error | warn | info | debug"},
    {"store", "CANDADO_STORE", NULL, OPT_STR, FIELD(store), "memory", 0, 0,
     "where locks live: memory"},
};
#define NOPTIONS (sizeof options / sizeof options[0])

static void usage(FILE *out)
{
    fprintf(out, "Usage: candado serve [options]\n\n"
                 "Runs the Candado lock server (HTTP/JSON API under /api/locks).\n\n"
                 "Options (each also read from its environment variable):\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        const option_def *o = &options[i];
        char flag[64];
        snprintf(flag, sizeof flag, "--%s %s", o->flag, o->type == OPT_NUM ? "N" : "VALUE");
        fprintf(out, "  %-26s %s\n  %-26s env %s%s%s", flag, o->help, "", o->env,
                o->env2 ? ", else " : "", o->env2 ? o->env2 : "");
        if (o->dflt)
            fprintf(out, "; default %s", o->dflt);
        fputc('\n', out);
    }
    fprintf(out, "  %-26s show this help\n\nSIGINT or SIGTERM stops the server (exit 0).\n",
            "-h, --help");
}

static int set_option(config *cfg, const option_def *o, const char *value, const char *from)
{
    void *field = (char *)cfg + o->offset;
    if (o->type == OPT_STR) {
        *(char **)field = (char *)value;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < o->min || v > o->max) {
        fprintf(stderr,
                "candado serve: %s must be an integer between %ld and %ld (got '%s' from %s)\n",
                o->flag, o->min, o->max, value, from);
        return -1;
    }
    *(long *)field = v;
    return 0;
}

static int parse_config(config *cfg, int argc, char **argv)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        const option_def *o = &options[i];
        const char *v = getenv(o->env);
        const char *from = o->env;
        if (!v && o->env2) {
            v = getenv(o->env2);
            from = o->env2;
        }
        if ((!v || !*v) && o->dflt)
            v = o->dflt, from = "default";
        if (v && *v && set_option(cfg, o, v, from) < 0)
            return -1;
    }
    struct option longopts[NOPTIONS + 2];
    for (size_t i = 0; i < NOPTIONS; i++)
        longopts[i] = (struct option){options[i].flag, required_argument, NULL, (int)i + 256};
    longopts[NOPTIONS] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[NOPTIONS + 1] = (struct option){0};
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return 1;
        }
        if (ch < 256 || ch >= 256 + (int)NOPTIONS) {
            fprintf(stderr, "candado serve --help lists the options\n");
            return -1;
        }
        if (set_option(cfg, &options[ch - 256], optarg, "the command line") < 0)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "candado serve: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (cfg->default_ttl > cfg->max_ttl) {
        fprintf(stderr, "candado serve: --default-ttl (%ld) is larger than --max-ttl (%ld)\n",
                cfg->default_ttl, cfg->max_ttl);
        return -1;
    }
    if (cd_log_parse_level(cfg->log_level) < 0) {
        fprintf(stderr, "candado serve: --log-level must be error, warn, info or debug\n");
        return -1;
    }
    if (strcmp(cfg->store, "memory") != 0) {
        fprintf(stderr, "candado serve: unknown --store '%s' (known: memory)\n", cfg->store);
        return -1;
    }
    if (cfg->admin_token && !*cfg->admin_token)
        cfg->admin_token = NULL;
    return 0;
}

/* ---- the loop ---- */

typedef struct server {
    uv_loop_t *loop;
    cd_locks *locks;
    cd_http_server *http;
    uv_timer_t timer;
    uv_prepare_t prepare;
    uv_signal_t sigint, sigterm;
    uint64_t armed; /* deadline the timer is set for; 0: not set */
    bool more;      /* the last tick left due work for the next turn */
} server;

static void on_tick(uv_timer_t *t)
{
    server *s = t->data;
    s->armed = 0;
    uint64_t start = uv_hrtime();
    do
        s->more = cd_locks_tick(s->locks, EXPIRY_BATCH);
    while (s->more && uv_hrtime() - start < EXPIRY_SLICE_NS);
}

/* Before every poll: point the timer at the next moment something is due. */
static void on_prepare(uv_prepare_t *p)
{
    server *s = p->data;
    uint64_t next = s->more ? 1 : cd_locks_next_deadline(s->locks);
    if (next == UINT64_MAX) {
        if (s->armed)
            uv_timer_stop(&s->timer);
        s->armed = 0;
        return;
    }
    if (next == s->armed)
        return;
    uint64_t now = cd_clock_mono(cd_clock_system());
    uv_timer_start(&s->timer, on_tick, next > now ? next - now : 0, 0);
    s->armed = next;
}

static void on_signal(uv_signal_t *sig, int signum)
{
    server *s = sig->data;
    cd_log_info("signal %d: shutting down", signum);
    cd_http_server_close(s->http);
    uv_close((uv_handle_t *)&s->timer, NULL);
    uv_close((uv_handle_t *)&s->prepare, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
}

/* Thousands of idle clients need thousands of descriptors. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int cd_serve_main(int argc, char **argv)
{
    config cfg = {0};
    int rc = parse_config(&cfg, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    cd_log_set_level((enum cd_log_level)cd_log_parse_level(cfg.log_level));
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    const cd_clock *clock = cd_clock_system();
    /* Fencing tokens start at the wall clock in µs, so they keep growing across restarts
     * of the memory store as long as it grants fewer than a million locks a second on
     * average; see docs/DESIGN.md. */
    uint64_t fencing_start = (uint64_t)cd_clock_wall(clock) * 1000u;
    server s = {.loop = uv_default_loop()};
    cd_store *store = cd_memstore_new(clock, fencing_start);
    s.locks = store ? cd_locks_new(store, clock) : NULL;
    cd_api_config acfg = {
        .default_ttl = (uint32_t)cfg.default_ttl,
        .max_ttl = (uint32_t)cfg.max_ttl,
        .max_wait = (uint32_t)cfg.max_wait,
        .admin_token = cfg.admin_token,
    };
    cd_api *api = s.locks ? cd_api_new(s.locks, &acfg) : NULL;
    cd_http_limits lim = cd_http_limits_default();
    lim.max_connections = (unsigned)cfg.max_connections;
    lim.request_timeout_ms = (uint64_t)cfg.request_timeout;
    lim.idle_timeout_ms = (uint64_t)cfg.idle_timeout;
    s.http = api ? cd_http_server_new(s.loop, &lim, cd_api_handle, api) : NULL;
    if (!s.http) {
        cd_log_error("out of memory at start");
        return 1;
    }
    int err = cd_http_server_listen(s.http, cfg.host, (int)cfg.port);
    if (err) {
        cd_log_error("cannot listen on %s:%ld: %s", cfg.host, cfg.port, uv_strerror(err));
        return 1;
    }
    uv_timer_init(s.loop, &s.timer);
    uv_prepare_init(s.loop, &s.prepare);
    uv_signal_init(s.loop, &s.sigint);
    uv_signal_init(s.loop, &s.sigterm);
    s.timer.data = s.prepare.data = s.sigint.data = s.sigterm.data = &s;
    uv_prepare_start(&s.prepare, on_prepare);
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);

    cd_log_info("candado %s listening on http://%s:%d (store: %s, default ttl %ld ms, max ttl "
                "%ld ms, max wait %ld ms, admin token %s)",
                CD_VERSION, cfg.host, cd_http_server_port(s.http), store->ops->name,
                cfg.default_ttl, cfg.max_ttl, cfg.max_wait, cfg.admin_token ? "set" : "not set");
    uv_run(s.loop, UV_RUN_DEFAULT);

    cd_api_free(api);
    cd_locks_free(s.locks);
    cd_store_free(store);
    uv_loop_close(s.loop);
    cd_log_info("stopped");
    return 0;
}
