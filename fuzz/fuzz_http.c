/* libFuzzer driver over the whole request -> response path: the bytes of one client
 * connection go through the real HTTP layer (over a socketpair), the API, the lock
 * layer and the memory store; answers are read back and dropped. Crashes, sanitizer
 * reports and leaks are the findings. */
#include "api/api.h"
#include "http/http.h"
#include "lock/locks.h"
#include "store/memory.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static uv_loop_t *loop;
static cd_http_server *server;
static cd_locks *locks;

/* The store runs on a clock that jumps past every TTL and wait after each input, so
 * locks from one input end before the next and memory stays flat over a long run. */
static uint64_t mono_now = 1000;
static uint64_t fake_mono(void *ud)
{
    (void)ud;
    return mono_now;
}
static int64_t fake_wall(void *ud)
{
    (void)ud;
    return 1704567890123 + (int64_t)mono_now;
}
static const cd_clock fuzz_clock = {fake_mono, fake_wall, NULL};

static void setup(void)
{
    loop = uv_default_loop();
    cd_store *store = cd_memstore_new(&fuzz_clock, 0);
    locks = cd_locks_new(store, &fuzz_clock);
    cd_api_config cfg = {
        .default_ttl = 30000, .max_ttl = 300000, .max_wait = 300000, .admin_token = NULL};
    cd_api *api = cd_api_new(locks, &cfg);
    server = cd_http_server_new(loop, NULL, cd_api_handle, api);
    if (!server)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!server)
        setup();
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
        abort();
    int big = 1 << 20;
    setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    if (cd_http_server_adopt_fd(server, fds[0]) != 0)
        abort();
    size_t off = 0;
    char sink[65536];
    /* feed the input, drain the answers, then hang up and let the server notice */
    for (int turns = 0; turns < 10000 && cd_http_server_connections(server) > 0; turns++) {
        if (off < size) {
            ssize_t n = write(fds[1], data + off, size - off);
            if (n > 0)
                off += (size_t)n;
            if (off == size)
                shutdown(fds[1], SHUT_WR);
        } else if (size == 0 && turns == 0) {
            shutdown(fds[1], SHUT_WR);
        }
        uv_run(loop, UV_RUN_NOWAIT);
        while (read(fds[1], sink, sizeof sink) > 0)
            ;
        cd_locks_tick(locks, 1024);
    }
    close(fds[1]);
    uv_run(loop, UV_RUN_NOWAIT); /* let the closed connection's handles finish */
    mono_now += 300001;
    while (cd_locks_tick(locks, 4096))
        ;
    return 0;
}
