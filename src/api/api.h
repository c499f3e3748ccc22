/* The API layer: the routes of the Candado HTTP API, request validation, and the JSON
 * views of every answer. Views live here and nowhere else. */
#ifndef CD_API_H
#define CD_API_H

#include "http/http.h"
#include "lock/locks.h"

typedef struct cd_api cd_api;

typedef struct cd_api_config {
    uint32_t default_ttl;    /* ms, when acquire gives none */
    uint32_t max_ttl;        /* ms */
    uint32_t max_wait;       /* ms */
    const char *admin_token; /* NULL: DELETE client/:id is open; copied */
} cd_api_config;

/** NULL on allocation failure. `locks` must outlive the API. */
cd_api *cd_api_new(cd_locks *locks, const cd_api_config *cfg);
void cd_api_free(cd_api *api);

/** The HTTP handler (a cd_http_handler); ud is the cd_api. */
void cd_api_handle(cd_http_req *req, void *ud);

#endif
