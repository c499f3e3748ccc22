/* Lock tokens: "lock-<grant epoch ms>-<24 lowercase hex>", 96 bits from the OS CSPRNG. */
#ifndef CD_TOKEN_H
#define CD_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CD_TOKEN_RANDOM_BYTES 12
#define CD_TOKEN_MAX_LEN      64 /* "lock-" + 20 digits + "-" + 24 hex + NUL fits */

typedef struct cd_token {
    int64_t ms;                         /* grant time, epoch ms */
    uint8_t rnd[CD_TOKEN_RANDOM_BYTES]; /* secret part */
} cd_token;

/** Fills t with 96 fresh bits from the kernel CSPRNG (getrandom(2), buffered). Not
 * thread-safe: the server calls it from its loop thread only. */
void cd_token_new(cd_token *t, int64_t ms);

/** Writes the text form into buf (at least CD_TOKEN_MAX_LEN bytes); returns its length. */
size_t cd_token_format(const cd_token *t, char *buf);

/** Parses the text form strictly; false on anything else. */
bool cd_token_parse(cd_token *t, const char *s, size_t len);

/** Constant-time equality of the random parts and the grant time. */
bool cd_token_equal(const cd_token *a, const cd_token *b);

#endif
