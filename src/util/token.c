/* Token generation, text form and constant-time comparison. */
#include "token.h"

#include "hex.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Kernel CSPRNG output, fetched 4 KiB at a time: one getrandom(2) per ~340 tokens instead
 * of one per token (a syscall costs as much as the rest of a grant). Bytes are wiped as
 * they are handed out, so the pool never holds a token that was issued. */
static uint8_t pool[4096];
static size_t pool_left;

static void pool_refill(void)
{
    size_t got = 0;
    while (got < sizeof pool) {
        ssize_t n = getrandom(pool + got, sizeof pool - got, 0);
        if (n > 0)
            got += (size_t)n;
        else if (errno != EINTR)
            abort(); /* no kernel randomness: no token may be issued */
    }
    pool_left = sizeof pool;
}

void cd_token_new(cd_token *t, int64_t ms)
{
    t->ms = ms;
    if (pool_left < sizeof t->rnd)
        pool_refill();
    uint8_t *p = pool + sizeof pool - pool_left;
    memcpy(t->rnd, p, sizeof t->rnd);
    explicit_bzero(p, sizeof t->rnd);
    pool_left -= sizeof t->rnd;
}

size_t cd_token_format(const cd_token *t, char *buf)
{
    static const char hex[] = "0123456789abcdef";
    int n = snprintf(buf, CD_TOKEN_MAX_LEN, "lock-%lld-", (long long)t->ms);
    size_t len = (size_t)n;
    for (size_t i = 0; i < sizeof t->rnd; i++) {
        buf[len++] = hex[t->rnd[i] >> 4];
        buf[len++] = hex[t->rnd[i] & 15];
    }
    buf[len] = '\0';
    return len;
}

bool cd_token_parse(cd_token *t, const char *s, size_t len)
{
    if (len < 5 + 1 + 1 + 2 * CD_TOKEN_RANDOM_BYTES || memcmp(s, "lock-", 5) != 0)
        return false;
    size_t i = 5;
    int64_t ms = 0;
    size_t digits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (++digits > 18)
            return false;
        ms = ms * 10 + (s[i++] - '0');
    }
    if (digits == 0 || i >= len || s[i++] != '-' || len - i != 2 * CD_TOKEN_RANDOM_BYTES)
        return false;
    for (size_t k = i; k < len; k++)
        if (s[k] >= 'A' && s[k] <= 'F')
            return false; /* tokens are written in lowercase: one text per token */
    for (size_t k = 0; k < CD_TOKEN_RANDOM_BYTES; k++) {
        int v = cd_hex_byte(s + i + 2 * k);
        if (v < 0)
            return false;
        t->rnd[k] = (uint8_t)v;
    }
    t->ms = ms;
    return true;
}

bool cd_token_equal(const cd_token *a, const cd_token *b)
{
    /* Every byte is looked at whatever the outcome, so the time taken says nothing
     * about how much of a guessed token was right. */
    volatile uint8_t diff = 0;
    for (size_t i = 0; i < CD_TOKEN_RANDOM_BYTES; i++)
        diff |= a->rnd[i] ^ b->rnd[i];
    uint64_t dm = (uint64_t)(a->ms ^ b->ms);
    for (int i = 0; i < 8; i++)
        diff |= (uint8_t)(dm >> (8 * i));
    return diff == 0;
}
