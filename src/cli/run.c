/* `candado run`: hold a lock for exactly as long as a command runs.
 *
 * Acquire (waiting if asked), fork/exec CMD with the grant in its environment, then one loop that
 * sleeps in poll() on a signalfd until the next extension is due. The signals we care about
 * (SIGCHLD, and the ones we pass on to CMD) are blocked and read from the signalfd, so there are no
 * handlers and no races between "child exited" and "time to extend". Extending every TTL/3 leaves
 * two more tries before the lock would expire. When the server says the lock is gone, CMD gets
 * SIGTERM, then SIGKILL after the grace period; an unreachable server is retried until the lock's
 * own deadline passes, because until then the lock is still ours.
 *
 * Extend requests block the loop for at most the time the lock has left; signals that arrive
 * meanwhile wait in the signalfd. */
#define _GNU_SOURCE
#include "cli.h"
#include "common.h"
#include "util/clock.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_GRACE_MS 5000

static const cd_cli_use run_opts[] = {
    {CD_OPT_RESOURCE, true, NULL},
    {CD_OPT_TTL, false, "lock lifetime in ms; it is extended every TTL/3 while CMD runs"},
    {CD_OPT_WAIT, false, "wait up to this long for the lock; CMD never starts without it"},
    {CD_OPT_CLIENT_ID, false, NULL},
    {CD_OPT_GRACE, false, NULL},
    {CD_OPT_SERVER, false, NULL},
    {CD_OPT_HELP, false, NULL},
};
static const cd_cli_verb run_verb = {
    "run",
    "--resource NAME [--ttl MS] [--wait MS] [--client-id ID] [--grace MS] -- CMD [ARGS...]",
    "Acquires the lock, runs CMD while holding it (extending it as needed), releases it when CMD\n"
    "exits, and exits with CMD's status. CMD finds CANDADO_RESOURCE, CANDADO_TOKEN,\n"
    "CANDADO_FENCING_TOKEN, CANDADO_CLIENT_ID and CANDADO_URL in its environment. If the lock is\n"
    "lost, CMD gets SIGTERM (then SIGKILL after --grace) and candado exits 5. SIGINT, SIGTERM,\n"
    "SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are passed on to CMD; if candado itself dies, CMD\n"
    "gets SIGTERM.",
    run_opts,
    (int)(sizeof run_opts / sizeof run_opts[0]),
    1,
    -1,
    true,
};

/* Passed on to CMD; SIGCHLD is blocked too, to be read from the signalfd. */
static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

/* The state of the lock while CMD runs. */
typedef struct run_state {
    cd_client *client;
    const cd_cli_args *args;
    const char *token;
    int64_t ttl;          /* what we extend with; -1: the grant's TTL */
    int64_t interval;     /* between extensions: TTL/3 */
    uint64_t deadline;    /* mono ms when the lock expires unless extended (conservative) */
    uint64_t next_extend; /* mono ms of the next extension (or retry) */
    bool failing;         /* the last extension got no answer: said once per outage */
    bool lost;
    uint64_t kill_at; /* lost: when SIGKILL follows the SIGTERM; 0 once sent */
    pid_t child;
} run_state;

static uint64_t now_ms(void)
{
    return cd_clock_mono(cd_clock_system());
}

static void set_env(const cd_cli_args *a, const cd_client_grant *g)
{
    char fencing[24] = "";
    if (g->fencing_token >= 0)
        snprintf(fencing, sizeof fencing, "%lld", (long long)g->fencing_token);
    setenv("CANDADO_RESOURCE", a->resource, 1);
    setenv("CANDADO_TOKEN", g->token, 1);
    setenv("CANDADO_FENCING_TOKEN", fencing, 1);
    setenv("CANDADO_CLIENT_ID", a->client_id, 1);
    setenv("CANDADO_URL", a->server, 1);
}

/* Starts CMD with the signal mask candado had before blocking. Returns its pid or -1. */
static pid_t spawn(char **cmd, const sigset_t *old_mask)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* If candado dies (even by SIGKILL) nobody extends the lock and it lapses within a TTL: CMD
     * must not go on as if it still held it. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(CD_EXIT_LOST);
    sigprocmask(SIG_SETMASK, old_mask, NULL);
    execvp(cmd[0], cmd);
    int err = errno;
    fprintf(stderr, "candado run: %s: %s\n", cmd[0], strerror(err));
    _exit(err == ENOENT ? 127 : 126); /* what shells exit with */
}

static void lose(run_state *s, const char *why)
{
    s->lost = true;
    s->kill_at = now_ms() + (uint64_t)(s->args->grace >= 0 ? s->args->grace : DEFAULT_GRACE_MS);
    fprintf(stderr, "candado run: lock on '%s' lost (%s); stopping the command\n",
            s->args->resource, why);
    kill(s->child, SIGTERM);
}

/* One extension, or one retry of it. */
static void extend(run_state *s)
{
    uint64_t start = now_ms();
    if (start >= s->deadline) {
        lose(s, "it expired while the server could not be reached");
        return;
    }
    /* Never wait on the server past the moment the lock would be gone anyway. */
    int64_t left = (int64_t)(s->deadline - start);
    cd_client_set_timeout(s->client, left < 100 ? 100 : left > 10000 ? 10000 : (long)left);
    cd_client_extension e;
    int err = cd_client_extend(s->client, s->args->resource, s->token, s->ttl, &e);
    if (err == 0 && e.extended) {
        s->failing = false;
        s->deadline = start + (uint64_t)e.expires_in_ms;
        s->interval = e.expires_in_ms / 3 > 10 ? e.expires_in_ms / 3 : 10;
        s->next_extend = start + (uint64_t)s->interval;
    } else if (err == 0) {
        lose(s, "the server says it is no longer held");
    } else {
        /* Transient, we hope: try again soon, but several times before the deadline. */
        uint64_t t = now_ms();
        int64_t retry = t < s->deadline ? (int64_t)(s->deadline - t) / 4 : 0;
        retry = retry < 20 ? 20 : retry > 1000 ? 1000 : retry;
        s->next_extend = t + (uint64_t)retry;
        if (!s->failing)
            fprintf(stderr, "candado run: extending the lock failed (%s: %s); retrying\n",
                    cd_client_strerror(err), cd_client_last_error(s->client));
        s->failing = true;
    }
}

/* CMD's exit status as a shell would give it. */
static int status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return CD_EXIT_FAILURE;
}

/* Waits for CMD, extending the lock and passing signals on. Returns CMD's wait status. */
static int supervise(run_state *s, int sfd)
{
    int status = 0;
    for (;;) {
        uint64_t t = now_ms(), due = UINT64_MAX;
        if (!s->lost)
            due = s->next_extend;
        else if (s->kill_at)
            due = s->kill_at;
        int timeout = due == UINT64_MAX ? -1
                      : due <= t        ? 0
                      : due - t > 60000 ? 60000
                                        : (int)(due - t);
        struct pollfd p = {sfd, POLLIN, 0};
        int n = poll(&p, 1, timeout);
        if (n < 0 && errno != EINTR) {
            perror("candado run: poll");
            kill(s->child, SIGKILL);
        }
        struct signalfd_siginfo si;
        while (n > 0 && read(sfd, &si, sizeof si) == sizeof si) {
            if (si.ssi_signo == SIGCHLD)
                continue; /* reaped below */
            /* A key pressed on the terminal (SI_KERNEL) already reached CMD, which is in the
             * same foreground process group; only pass on what was sent to us alone. */
            if (si.ssi_code != SI_KERNEL)
                kill(s->child, (int)si.ssi_signo);
        }
        pid_t r = waitpid(s->child, &status, WNOHANG);
        if (r == s->child)
            return status;
        t = now_ms();
        if (!s->lost && t >= s->next_extend)
            extend(s);
        else if (s->lost && s->kill_at && t >= s->kill_at) {
            fprintf(stderr, "candado run: the command did not stop; sending SIGKILL\n");
            kill(s->child, SIGKILL);
            s->kill_at = 0;
        }
    }
}

int cd_cli_run(int argc, char **argv)
{
    const cd_cli_verb *v = &run_verb;
    cd_cli_args a;
    cd_client *c = NULL;
    cd_client_grant g = {0};
    sigset_t mask, old_mask;
    int sfd = -1;

    int rc = cd_cli_parse(v, argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (!(c = cd_cli_client(v, &a)))
        return CD_EXIT_FAILURE;

    cd_client_acquire_opts o = {a.client_id, a.ttl > 0 ? a.ttl : 0, a.wait > 0 ? a.wait : 0};
    int err = cd_client_acquire(c, a.resource, &o, &g);
    uint64_t granted = now_ms();
    if (err < 0) {
        rc = cd_cli_fail(v, &a, c, err);
        goto done;
    }
    if (!g.acquired) {
        fprintf(stderr, "candado run: '%s' is held by another client; not running %s\n", a.resource,
                a.pos[0]);
        rc = CD_EXIT_HELD;
        goto done;
    }

    /* Until here a signal just ends us (and a waiting acquire with us). From here on the lock is
     * ours, so signals are read from the signalfd and the lock released. A signal in the few
     * instructions between the grant and this block leaves the lock to expire by its TTL. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaddset(&mask, forwarded[i]);
    sigprocmask(SIG_BLOCK, &mask, &old_mask);
    if ((sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        perror("candado run: signalfd");
        rc = CD_EXIT_FAILURE;
        goto release;
    }

    int64_t ttl = g.expires_in_ms > 0 ? g.expires_in_ms : (a.ttl > 0 ? a.ttl : 30000);
    run_state s = {
        .client = c,
        .args = &a,
        .token = g.token,
        .ttl = a.ttl > 0 ? a.ttl : -1,
        .interval = ttl / 3 > 10 ? ttl / 3 : 10,
        .deadline = granted + (uint64_t)ttl,
    };
    s.next_extend = granted + (uint64_t)s.interval;
    set_env(&a, &g);
    fflush(NULL);
    if ((s.child = spawn(a.pos, &old_mask)) < 0) {
        perror("candado run: fork");
        rc = CD_EXIT_FAILURE;
        goto release;
    }
    rc = status_code(supervise(&s, sfd));
    if (s.lost) {
        fprintf(stderr, "candado run: exiting %d: the lock was lost while the command ran\n",
                CD_EXIT_LOST);
        rc = CD_EXIT_LOST;
        goto done;
    }

release:;
    bool released = false;
    cd_client_set_timeout(c, 0);
    err = cd_client_release(c, a.resource, g.token, &released);
    if (err < 0)
        fprintf(stderr, "candado run: could not release '%s' (%s: %s); it expires by its TTL\n",
                a.resource, cd_client_strerror(err), cd_client_last_error(c));
    else if (!released && rc != CD_EXIT_FAILURE) {
        /* Nobody told us during the run, but the lock was gone before the command ended. */
        fprintf(stderr, "candado run: lock on '%s' was lost before the command ended\n",
                a.resource);
        rc = CD_EXIT_LOST;
    }
done:
    /* The signals stay blocked: one that came after CMD exited would kill us on unblocking and
     * replace CMD's status with its own, and the process ends right after this. */
    if (sfd >= 0)
        close(sfd);
    cd_client_grant_clear(&g);
    cd_client_free(c);
    return rc;
}
