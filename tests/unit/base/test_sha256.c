/* Tests for base/sha256.c against FIPS 180-4 example vectors and sha256sum. */
#include "test.h"
#include "base/base.h"
#include "base/sha256.h"

TEST(sha256_known_vectors)
{
    char hex[65];
    tr_sha256_hex("", 0, hex);
    CHECK_STR_EQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    tr_sha256_hex("abc", 3, hex);
    CHECK_STR_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    tr_sha256_hex(two, strlen(two), hex);
    CHECK_STR_EQ(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(sha256_incremental_matches_oneshot)
{
    /* One million 'a' fed in odd-sized pieces: the FIPS long-message vector. */
    tr_sha256 s;
    tr_sha256_init(&s);
    char chunk[997];
    memset(chunk, 'a', sizeof chunk);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        tr_sha256_update(&s, chunk, n);
        left -= n;
    }
    unsigned char d[32];
    char hex[65];
    tr_sha256_final(&s, d);
    tr_hex_encode(d, 32, hex);
    CHECK_STR_EQ(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* The SHA-NI code (when the CPU has it) and the portable code agree on every length around
 * block boundaries and on a large buffer, fed whole and in pieces. */
TEST(sha256_accelerated_matches_portable)
{
    size_t big = 1 << 20;
    unsigned char *data = tr_malloc(big);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < big; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = (unsigned char)x;
    }
    static const size_t lens[] = {0,   1,   55,  56,  63,   64,   65,
                                  119, 127, 128, 129, 1000, 4096, 1 << 20};
    enum { NLENS = sizeof lens / sizeof lens[0] };
    char fast[NLENS][65], slow[65];
    bool accel = tr_sha256_accelerated(false);
    for (size_t i = 0; i < NLENS; i++)
        tr_sha256_hex(data, lens[i], fast[i]);
    CHECK(!tr_sha256_accelerated(true)); /* from here on: portable */
    for (size_t i = 0; i < NLENS; i++) {
        tr_sha256_hex(data, lens[i], slow);
        CHECK_STR_EQ(fast[i], slow);
    }
    test_report("SHA-256 on this CPU: %s", accel ? "SHA-NI" : "portable only");
    tr_free(data);
}
