/* The wire side of libcandado without any I/O: URLs and request bodies out, response bodies in.
 * Kept apart from the transport so unit tests can check it without a server. Internal: not part
 * of the public API. All functions follow client.h's conventions (0 or a negative CD_CLIENT_E*). */
#ifndef CD_CLIENT_PROTO_H
#define CD_CLIENT_PROTO_H

#include "candado/client.h"

#include <stddef.h>
#include <stdint.h>

/** base (no trailing '/') + path + percent-encoded segment (NULL: none). Caller frees. NULL on
 * ENOMEM. Everything but RFC 3986 unreserved characters is escaped, so ':' and '/' survive. */
char *cd_client_proto_url(const char *base, const char *path, const char *segment);

/** GET /api/locks with its query string built from opts (NULL: none). Caller frees. */
char *cd_client_proto_list_url(const char *base, const cd_client_list_opts *opts);

/** JSON request bodies. Negative ttl/wait are left out (the server's default applies). Caller
 * frees. NULL on ENOMEM or a string that is not valid UTF-8 (jansson refuses it). */
char *cd_client_proto_acquire_body(const char *resource, const char *client_id, int64_t ttl_ms,
                                   int64_t wait_ms);
char *cd_client_proto_release_body(const char *resource, const char *token);
char *cd_client_proto_extend_body(const char *resource, const char *token, int64_t ttl_ms);

/** Response parsers: body is NUL-terminated. 0, or CD_CLIENT_EPROTO when a field the API promises
 * is missing or of the wrong type, or CD_CLIENT_ENOMEM. On failure *out is left zeroed. */
int cd_client_proto_grant(const char *body, cd_client_grant *out);
int cd_client_proto_released(const char *body, bool *released);
int cd_client_proto_extension(const char *body, cd_client_extension *out);
int cd_client_proto_info(const char *body, cd_client_lock *out);
int cd_client_proto_list(const char *body, cd_client_lock_list *out);
int cd_client_proto_stats(const char *body, cd_client_stats *out);
int cd_client_proto_released_count(const char *body, int64_t *count);
int cd_client_proto_health(const char *body);

/** The "message" of an error body in the NestJS shape (a string, or an array of strings joined
 * with "; ") copied into buf (truncated). Returns false when the body has none. */
bool cd_client_proto_error_message(const char *body, char *buf, size_t len);

#endif
