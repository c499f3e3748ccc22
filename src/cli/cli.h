/* The client verbs of the `candado` binary. Each takes the verb's own argv (argv[0] is
 * the verb name) and returns the process exit code (see CD_EXIT_* below). */
#ifndef CD_CLI_H
#define CD_CLI_H

/* Exit codes shared by every client verb, documented in `candado --help` and the README. */
enum {
    CD_EXIT_OK = 0,
    CD_EXIT_FAILURE = 1,     /* anything else went wrong */
    CD_EXIT_USAGE = 2,       /* bad flags or arguments, or the server said 400 */
    CD_EXIT_HELD = 3,        /* the lock is held by someone else / not held by this token */
    CD_EXIT_UNREACHABLE = 4, /* no server answered, or it answered 5xx */
    CD_EXIT_LOST = 5,        /* `run`: the lock was lost while the command ran */
};

int cd_cli_acquire(int argc, char **argv);
int cd_cli_release(int argc, char **argv);
int cd_cli_extend(int argc, char **argv);
int cd_cli_info(int argc, char **argv);
int cd_cli_ls(int argc, char **argv);
int cd_cli_stats(int argc, char **argv);
int cd_cli_release_client(int argc, char **argv);
int cd_cli_run(int argc, char **argv);

#endif
