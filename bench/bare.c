/* The benchmarks' reference: Candado's own HTTP layer with a handler that answers every
 * request with a fixed 80-byte JSON body, so that a benchmark run can say what share of
 * the HTTP stack's throughput the lock API keeps. */
#include "http/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char body[] =
    "{\"acquired\":true,\"token\":\"lock-1704567890123-9f86d081884c7d659a2feaa0\",\"ok\":100}";

static void handle(cd_http_req *req, void *ud)
{
    (void)ud;
    cd_http_respond(req, 200, body, sizeof body - 1);
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 3002;
    _Static_assert(sizeof body - 1 == 80, "the reference body is 80 bytes");
    uv_loop_t *loop = uv_default_loop();
    cd_http_server *s = cd_http_server_new(loop, NULL, handle, NULL);
    int err = s ? cd_http_server_listen(s, "127.0.0.1", port) : UV_ENOMEM;
    if (err) {
        fprintf(stderr, "candado-bare: %s\n", uv_strerror(err));
        return 1;
    }
    fprintf(stderr, "candado-bare listening on 127.0.0.1:%d\n", port);
    return uv_run(loop, UV_RUN_DEFAULT);
}
