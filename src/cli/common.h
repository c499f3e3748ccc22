/* What every client verb shares: one table of options (parsed with getopt_long), per-verb help
 * built from it, the server/client setup, and the one map from library errors to exit codes. */
#ifndef CD_CLI_COMMON_H
#define CD_CLI_COMMON_H

#include "candado/client.h"

#include <stdbool.h>
#include <stdint.h>

/* Every option any client verb takes; a verb lists the ones it accepts. */
enum cd_cli_opt {
    CD_OPT_SERVER,
    CD_OPT_RESOURCE,
    CD_OPT_CLIENT_ID,
    CD_OPT_TOKEN,
    CD_OPT_TTL,
    CD_OPT_WAIT,
    CD_OPT_PREFIX,
    CD_OPT_LIMIT,
    CD_OPT_CURSOR,
    CD_OPT_ADMIN_TOKEN,
    CD_OPT_GRACE,
    CD_OPT_JSON,
    CD_OPT_HELP,
    CD_OPT_COUNT
};

/* The parsed command line. Numbers are -1 when not given. */
typedef struct cd_cli_args {
    const char *server; /* --server, else $CANDADO_URL, else the default */
    const char *resource, *client_id, *token, *prefix, *cursor;
    const char *admin_token; /* --admin-token, else $CANDADO_ADMIN_TOKEN, else NULL */
    int64_t ttl, wait, limit, grace;
    bool json;
    int npos;   /* positional arguments left after the options */
    char **pos; /* points into argv */
    bool tty;   /* stdout is a terminal: print for people, not for pipes */
    char default_id[300];
} cd_cli_args;

typedef struct cd_cli_use {
    enum cd_cli_opt opt;
    bool required;
    const char *help; /* NULL: the option's general help line */
} cd_cli_use;

typedef struct cd_cli_verb {
    const char *name;
    const char *synopsis; /* after "candado NAME " */
    const char *about;    /* what the verb does and what it prints */
    const cd_cli_use *opts;
    int nopts;
    int min_pos, max_pos; /* positional arguments; max_pos -1: any number */
    bool stop_at_operand; /* the first operand ends the options (`run -- CMD ...`) */
} cd_cli_verb;

/** Parses argv (argv[0] is the verb) into *a. Returns -1 when the verb should go on; otherwise
 * the exit code to return at once: 0 after --help, CD_EXIT_USAGE after a usage error (said on
 * stderr). */
int cd_cli_parse(const cd_cli_verb *v, int argc, char **argv, cd_cli_args *a);

/** A client of a->server, or NULL after saying why on stderr. */
cd_client *cd_cli_client(const cd_cli_verb *v, const cd_cli_args *a);

/** The exit code for a library error (client.h) - the one table that maps them. */
int cd_cli_exit_code(int err);

/** Reports a failed call: its reason on stderr and, with --json, the server's body on stdout.
 * Returns cd_cli_exit_code(err). */
int cd_cli_fail(const cd_cli_verb *v, const cd_cli_args *a, cd_client *c, int err);

/** Prints the last response body and a newline on stdout (for --json). */
void cd_cli_print_body(cd_client *c);

/** Formats ms as "1.5 s", "250 ms", "2 min 5 s" into buf (at least 32 bytes). */
const char *cd_cli_duration(int64_t ms, char *buf, size_t len);

#endif
