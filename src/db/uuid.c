/* db/uuid.c: UUIDv7 generation and the SQL functions uuid_v7(), uuid_text(), uuid_parse().
 *
 * DESIGN: RFC 9562 UUIDv7 with the 12-bit rand_a field used as a counter ("method 1"): within one
 * millisecond on one thread the counter increments, so ids from a thread sort in creation order;
 * a new millisecond reseeds it with 11 random bits (the 12th left clear so it has room to count).
 * If the counter overflows, or the clock steps back, the timestamp is carried forward instead, so
 * ids stay monotonic. Random bytes come from getrandom() through a small per-thread pool; a process
 * that forks must not generate ids in both parent and child without a refill (trail does not). */
#include "db/db_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

typedef struct uuid_state {
    uint64_t last_ms;
    uint32_t counter; /* 12 bits */
    uint8_t pool[256];
    size_t pool_pos; /* <= sizeof pool; == sizeof pool means empty */
    bool seeded;
} uuid_state;

static _Thread_local uuid_state state;

static void random_bytes(uint8_t *out, size_t n)
{
    if (!state.seeded) {
        state.pool_pos = sizeof state.pool;
        state.seeded = true;
    }
    while (n > 0) {
        if (state.pool_pos == sizeof state.pool) {
            size_t got = 0;
            while (got < sizeof state.pool) {
                ssize_t r = getrandom(state.pool + got, sizeof state.pool - got, 0);
                if (r < 0 && errno == EINTR) continue;
                if (r < 0) tr_fatal("getrandom: %s", strerror(errno));
                got += (size_t)r;
            }
            state.pool_pos = 0;
        }
        size_t k = TR_MIN(n, sizeof state.pool - state.pool_pos);
        memcpy(out, state.pool + state.pool_pos, k);
        state.pool_pos += k;
        out += k;
        n -= k;
    }
}

static uint32_t fresh_counter(void)
{
    uint8_t r[2];
    random_bytes(r, sizeof r);
    return ((uint32_t)r[0] << 8 | r[1]) & 0x7ff;
}

void db_uuid_v7(uint8_t out[16])
{
    uint64_t now = (uint64_t)tr_wall_ms();
    if (now > state.last_ms || !state.seeded) {
        state.last_ms = TR_MAX(now, state.last_ms);
        state.counter = fresh_counter();
    } else if (++state.counter > 0xfff) {
        state.last_ms++;
        state.counter = fresh_counter();
    }
    uint64_t ms = state.last_ms;
    for (int i = 0; i < 6; i++)
        out[i] = (uint8_t)(ms >> (40 - 8 * i));
    out[6] = (uint8_t)(0x70 | ((state.counter >> 8) & 0x0f));
    out[7] = (uint8_t)(state.counter & 0xff);
    random_bytes(out + 8, 8);
    out[8] = (uint8_t)(0x80 | (out[8] & 0x3f));
}

static void sql_uuid_v7(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    (void)argv;
    uint8_t id[16];
    db_uuid_v7(id);
    sqlite3_result_blob(ctx, id, sizeof id, SQLITE_TRANSIENT);
}

static void sql_uuid_text(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return;
    if (sqlite3_value_type(argv[0]) != SQLITE_BLOB || sqlite3_value_bytes(argv[0]) != 16) {
        sqlite3_result_error(ctx, "uuid_text(): expected a 16-byte BLOB", -1);
        return;
    }
    const uint8_t *b = sqlite3_value_blob(argv[0]);
    static const char hex[] = "0123456789abcdef";
    char s[36];
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s[o++] = '-';
        s[o++] = hex[b[i] >> 4];
        s[o++] = hex[b[i] & 15];
    }
    sqlite3_result_text(ctx, s, (int)sizeof s, SQLITE_TRANSIENT);
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void sql_uuid_parse(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return;
    const unsigned char *s = sqlite3_value_text(argv[0]);
    int n = sqlite3_value_bytes(argv[0]);
    uint8_t out[16];
    int o = 0, i = 0;
    bool dashed = n == 36;
    if (s != NULL && (n == 32 || n == 36)) {
        while (i < n && o < 16) {
            if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
                if (s[i++] != '-') break;
                continue;
            }
            int hi = hex_digit(s[i]), lo = i + 1 < n ? hex_digit(s[i + 1]) : -1;
            if (hi < 0 || lo < 0) break;
            out[o++] = (uint8_t)(hi << 4 | lo);
            i += 2;
        }
    }
    if (o != 16 || i != n) {
        sqlite3_result_error(ctx,
                             "uuid_parse(): expected a UUID as 32 hex digits, with or without "
                             "dashes (8-4-4-4-12)",
                             -1);
        return;
    }
    sqlite3_result_blob(ctx, out, sizeof out, SQLITE_TRANSIENT);
}

int db__uuid_register(sqlite3 *db)
{
    /* INNOCUOUS so that the functions may appear in schema (column defaults) even when the schema
     * is not trusted; uuid_v7() is not DETERMINISTIC, so it is re-evaluated for every row. */
    int rc = sqlite3_create_function(db, "uuid_v7", 0, SQLITE_UTF8 | SQLITE_INNOCUOUS, NULL,
                                     sql_uuid_v7, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function(db, "uuid_text", 1,
                                     SQLITE_UTF8 | SQLITE_INNOCUOUS | SQLITE_DETERMINISTIC, NULL,
                                     sql_uuid_text, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function(db, "uuid_parse", 1,
                                     SQLITE_UTF8 | SQLITE_INNOCUOUS | SQLITE_DETERMINISTIC, NULL,
                                     sql_uuid_parse, NULL, NULL);
    return rc;
}
