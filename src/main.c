/* The `candado` binary: one verb table, one line of help per verb. */
#include "cli/cli.h"
#include "server/serve.h"

#include <stdio.h>
#include <string.h>

typedef struct verb {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *help;
} verb;

static const verb verbs[] = {
    {"serve", cd_serve_main, "run the lock server"},
    {"acquire", cd_cli_acquire, "acquire a lock (optionally waiting for it)"},
    {"release", cd_cli_release, "release a lock with its token"},
    {"extend", cd_cli_extend, "extend a held lock with its token"},
    {"info", cd_cli_info, "show who holds a resource"},
    {"ls", cd_cli_ls, "list held locks"},
    {"stats", cd_cli_stats, "show server statistics"},
    {"release-client", cd_cli_release_client, "release every lock a client holds"},
    {"run", cd_cli_run, "run a command while holding a lock"},
};

static void usage(FILE *out)
{
    fprintf(out,
            "candado %s - a distributed lock server and its client\n\n"
            "Usage: candado <verb> [options]   (candado <verb> --help for each)\n\nVerbs:\n",
            CD_VERSION);
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(out, "  %-16s %s\n", verbs[i].name, verbs[i].help);
    fprintf(out, "\nClient verbs talk to --server URL (env CANDADO_URL, default "
                 "http://127.0.0.1:3001).\n"
                 "Exit codes: 0 ok, 1 other failure, 2 bad input, 3 lock held by someone else\n"
                 "(or token not the holder's), 4 server unreachable, 5 lock lost during `run`.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("candado %s\n", CD_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcmp(argv[1], verbs[i].name) == 0)
            return verbs[i].main(argc - 1, argv + 1);
    fprintf(stderr, "candado: unknown verb '%s' (candado --help lists them)\n", argv[1]);
    return 2;
}
