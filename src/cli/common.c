/* The option table and help printer shared by the client verbs. Each option is described once
 * (name, short letter, argument, where it lands in cd_cli_args, general help); a verb picks the
 * options it takes, so flags mean the same thing in every verb and --help cannot drift from the
 * parser. */
#define _GNU_SOURCE
#include "common.h"
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_URL "http://127.0.0.1:3001"

enum arg_kind { ARG_FLAG, ARG_STR, ARG_MS, ARG_NUM };

static const struct {
    const char *name;
    char short_name; /* 0: long form only */
    enum arg_kind kind;
    const char *metavar;
    size_t offset; /* in cd_cli_args */
    int64_t min;   /* smallest value a number may take */
    const char *help;
} options[CD_OPT_COUNT] = {
    [CD_OPT_SERVER] = {"server", 's', ARG_STR, "URL", offsetof(cd_cli_args, server), 0,
                       "server to talk to (env CANDADO_URL, default " DEFAULT_URL ")"},
    [CD_OPT_RESOURCE] = {"resource", 'r', ARG_STR, "NAME", offsetof(cd_cli_args, resource), 0,
                         "the resource the lock is for, e.g. factura:create:FFF1"},
    [CD_OPT_CLIENT_ID] = {"client-id", 'c', ARG_STR, "ID", offsetof(cd_cli_args, client_id), 0,
                          "who holds the lock (default <hostname>-<pid>)"},
    [CD_OPT_TOKEN] = {"token", 't', ARG_STR, "TOKEN", offsetof(cd_cli_args, token), 0,
                      "the token acquire printed"},
    [CD_OPT_TTL] = {"ttl", 0, ARG_MS, "MS", offsetof(cd_cli_args, ttl), 1,
                    "lock lifetime in ms (also 10s, 2m; default: the server's, 30000)"},
    [CD_OPT_WAIT] = {"wait", 'w', ARG_MS, "MS", offsetof(cd_cli_args, wait), 0,
                     "wait up to this long for a held lock (default 0: try once)"},
    [CD_OPT_PREFIX] = {"prefix", 'p', ARG_STR, "PREFIX", offsetof(cd_cli_args, prefix), 0,
                       "only resources that start with PREFIX"},
    [CD_OPT_LIMIT] = {"limit", 'n', ARG_NUM, "N", offsetof(cd_cli_args, limit), 1,
                      "at most N locks (prints the cursor of the next page on stderr)"},
    [CD_OPT_CURSOR] = {"cursor", 0, ARG_STR, "CURSOR", offsetof(cd_cli_args, cursor), 0,
                       "continue a listing where the last page ended"},
    [CD_OPT_ADMIN_TOKEN] = {"admin-token", 0, ARG_STR, "TOKEN", offsetof(cd_cli_args, admin_token),
                            0, "the server's admin token (env CANDADO_ADMIN_TOKEN)"},
    [CD_OPT_GRACE] = {"grace", 0, ARG_MS, "MS", offsetof(cd_cli_args, grace), 0,
                      "after SIGTERM, wait this long before SIGKILL (default 5000)"},
    [CD_OPT_JSON] = {"json", 'j', ARG_FLAG, NULL, offsetof(cd_cli_args, json), 0,
                     "print the server's JSON answer (for scripts)"},
    [CD_OPT_HELP] = {"help", 'h', ARG_FLAG, NULL, 0, 0, "show this help"},
};

/* getopt_long's value for an option: its short letter, else a code past every char. */
static int opt_val(enum cd_cli_opt o)
{
    return options[o].short_name ? options[o].short_name : 256 + (int)o;
}

static void help(const cd_cli_verb *v, FILE *out)
{
    fprintf(out, "Usage: candado %s %s\n\n%s\n\nOptions:\n", v->name, v->synopsis, v->about);
    for (int i = 0; i < v->nopts; i++) {
        enum cd_cli_opt o = v->opts[i].opt;
        char left[64];
        snprintf(left, sizeof left, "%c%c%s--%s%s%s", options[o].short_name ? '-' : ' ',
                 options[o].short_name ? options[o].short_name : ' ',
                 options[o].short_name ? ", " : "  ", options[o].name,
                 options[o].metavar ? " " : "", options[o].metavar ? options[o].metavar : "");
        fprintf(out, "  %-24s %s%s\n", left, v->opts[i].help ? v->opts[i].help : options[o].help,
                v->opts[i].required ? " (required)" : "");
    }
    fprintf(out,
            "\nExit codes: 0 ok, 1 other failure, 2 bad input (or the server said 400),\n"
            "3 held by someone else / not held with this token, 4 server unreachable or 5xx"
            "%s.\n",
            strcmp(v->name, "run") == 0 ? ",\n5 the lock was lost while CMD ran; otherwise CMD's "
                                          "status (128+N if killed by signal N)"
                                        : "");
}

/* Milliseconds: "1500", "1500ms", "10s", "2m". */
static int parse_ms(const char *s, int64_t *out, bool units)
{
    static const struct {
        const char *suffix;
        int64_t factor;
    } unit[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}};
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -1;
    for (size_t i = 0; i < (units ? sizeof unit / sizeof unit[0] : 1); i++) {
        if (strcmp(end, unit[i].suffix) == 0) {
            if (v > INT64_MAX / unit[i].factor)
                return -1;
            *out = v * unit[i].factor;
            return 0;
        }
    }
    return -1;
}

__attribute__((format(printf, 2, 3))) static int usage_error(const cd_cli_verb *v, const char *fmt,
                                                             ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "candado %s: ", v->name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (candado %s --help)\n", v->name);
    va_end(ap);
    return CD_EXIT_USAGE;
}

int cd_cli_parse(const cd_cli_verb *v, int argc, char **argv, cd_cli_args *a)
{
    struct option longopts[CD_OPT_COUNT + 1];
    char shortopts[2 + 3 * CD_OPT_COUNT + 1];
    size_t ns = 0;

    memset(a, 0, sizeof *a);
    a->ttl = a->wait = a->limit = a->grace = -1;
    a->tty = isatty(STDOUT_FILENO);
    if (v->stop_at_operand)
        shortopts[ns++] = '+';
    shortopts[ns++] = ':'; /* report a missing argument as ':' rather than '?' */
    for (int i = 0; i < v->nopts; i++) {
        enum cd_cli_opt o = v->opts[i].opt;
        int has_arg = options[o].kind == ARG_FLAG ? no_argument : required_argument;
        longopts[i] = (struct option){options[o].name, has_arg, NULL, opt_val(o)};
        if (options[o].short_name) {
            shortopts[ns++] = options[o].short_name;
            if (has_arg)
                shortopts[ns++] = ':';
        }
    }
    longopts[v->nopts] = (struct option){0};
    shortopts[ns] = '\0';

    bool given[CD_OPT_COUNT] = {false};
    opterr = 0;
    optind = 0; /* glibc: start over, even if something parsed before */
    int ch;
    while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (ch == '?')
            return usage_error(v, "unknown option '%s'", argv[optind - 1]);
        if (ch == ':')
            return usage_error(v, "option '%s' needs a value", argv[optind - 1]);
        int i = 0;
        while (i < v->nopts && opt_val(v->opts[i].opt) != ch)
            i++;
        enum cd_cli_opt o = v->opts[i].opt;
        given[o] = true;
        if (o == CD_OPT_HELP) {
            help(v, stdout);
            return CD_EXIT_OK;
        }
        char *dst = (char *)a + options[o].offset;
        switch (options[o].kind) {
        case ARG_FLAG:
            *(bool *)dst = true;
            break;
        case ARG_STR:
            *(const char **)dst = optarg;
            break;
        case ARG_MS:
        case ARG_NUM: {
            int64_t n;
            if (parse_ms(optarg, &n, options[o].kind == ARG_MS) < 0 || n < options[o].min)
                return usage_error(v, "bad value for --%s", options[o].name);
            *(int64_t *)dst = n;
            break;
        }
        }
    }
    a->npos = argc - optind;
    a->pos = argv + optind;
    if (a->npos < v->min_pos)
        return usage_error(
            v, "%s", v->min_pos == 1 && a->npos == 0 ? "missing argument" : "too few arguments");
    if (v->max_pos >= 0 && a->npos > v->max_pos)
        return usage_error(v, "unexpected argument '%s'", a->pos[v->max_pos]);
    for (int i = 0; i < v->nopts; i++)
        if (v->opts[i].required && !given[v->opts[i].opt])
            return usage_error(v, "--%s is required", options[v->opts[i].opt].name);

    if (!a->server)
        a->server = getenv("CANDADO_URL");
    if (!a->server || !*a->server)
        a->server = DEFAULT_URL;
    if (!a->admin_token)
        a->admin_token = getenv("CANDADO_ADMIN_TOKEN");
    if (a->admin_token && !*a->admin_token)
        a->admin_token = NULL;
    if (!a->client_id) {
        cd_client_default_id(a->default_id, sizeof a->default_id);
        a->client_id = a->default_id;
    }
    return -1;
}

cd_client *cd_cli_client(const cd_cli_verb *v, const cd_cli_args *a)
{
    cd_client *c = cd_client_new(a->server);
    if (!c)
        fprintf(stderr, "candado %s: cannot set up a client for '%s'\n", v->name, a->server);
    return c;
}

int cd_cli_exit_code(int err)
{
    static const struct {
        int err, code;
    } table[] = {
        {0, CD_EXIT_OK},
        {CD_CLIENT_EINVAL, CD_EXIT_USAGE},
        {CD_CLIENT_EBADREQ, CD_EXIT_USAGE},
        {CD_CLIENT_EAUTH, CD_EXIT_USAGE}, /* a wrong admin token is bad input too */
        {CD_CLIENT_ELOCKED, CD_EXIT_HELD},
        {CD_CLIENT_EUNREACHABLE, CD_EXIT_UNREACHABLE},
        {CD_CLIENT_ESERVER, CD_EXIT_UNREACHABLE},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].err == err)
            return table[i].code;
    return CD_EXIT_FAILURE; /* ENOMEM, ENOTFOUND (not a Candado server?), EPROTO */
}

void cd_cli_print_body(cd_client *c)
{
    const char *body = cd_client_last_body(c);
    size_t n = strlen(body);
    fputs(body, stdout);
    if (n == 0 || body[n - 1] != '\n')
        fputc('\n', stdout);
}

int cd_cli_fail(const cd_cli_verb *v, const cd_cli_args *a, cd_client *c, int err)
{
    const char *why = cd_client_last_error(c);
    fprintf(stderr, "candado %s: %s%s%s\n", v->name, cd_client_strerror(err), *why ? ": " : "",
            why);
    if (a->json && *cd_client_last_body(c))
        cd_cli_print_body(c);
    return cd_cli_exit_code(err);
}

const char *cd_cli_duration(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        snprintf(buf, len, "?");
    else if (ms < 1000)
        snprintf(buf, len, "%lld ms", (long long)ms);
    else if (ms < 60000)
        snprintf(buf, len, "%lld.%lld s", (long long)(ms / 1000), (long long)(ms % 1000 / 100));
    else
        snprintf(buf, len, "%lld min %lld s", (long long)(ms / 60000),
                 (long long)(ms % 60000 / 1000));
    return buf;
}
