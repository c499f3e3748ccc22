/* Hexadecimal digits, for the few places text carries bytes: tokens, percent-encoding,
 * list cursors. */
#ifndef CD_HEX_H
#define CD_HEX_H

/** The value of one hex digit (either case), or -1. */
static inline int cd_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/** The byte written as two hex digits at s, or -1. */
static inline int cd_hex_byte(const char *s)
{
    int hi = cd_hex_digit(s[0]), lo = hi < 0 ? -1 : cd_hex_digit(s[1]);
    return lo < 0 ? -1 : hi << 4 | lo;
}

#endif
