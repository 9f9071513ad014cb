/* base/sha256.h: SHA-256 (FIPS 180-4), for identifying engine modules and components. */
#ifndef TRAIL_BASE_SHA256_H
#define TRAIL_BASE_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tr_sha256 {
    uint32_t h[8];
    uint64_t total;      /* bytes hashed so far */
    unsigned char block[64];
    size_t fill;         /* bytes in block, < 64 */
} tr_sha256;

void tr_sha256_init(tr_sha256 *s);
void tr_sha256_update(tr_sha256 *s, const void *data, size_t n);
void tr_sha256_final(tr_sha256 *s, unsigned char out[32]);

/* True when hashing runs on the CPU's SHA extensions (x86-64 SHA-NI, detected at run time).
 * portable = true switches to the portable code for good (tests compare the two). */
bool tr_sha256_accelerated(bool portable);

/* One-shot hash of (data, n) as 64 lower-case hex digits plus NUL. */
void tr_sha256_hex(const void *data, size_t n, char out[65]);
/* 32 bytes to 64 hex digits plus NUL. */
void tr_hex_encode(const unsigned char *bytes, size_t n, char *out);

#endif
