/* Tests for base/: tr_buf growth and printf, arenas, error strings. */
#include "test.h"
#include "base/base.h"

TEST(base_buf_append_and_printf)
{
    tr_buf b = TR_BUF_INIT;
    tr_buf_append_str(&b, "hello");
    tr_buf_printf(&b, ", %s #%d", "world", 42);
    CHECK_MEM_EQ(b.data, b.len, "hello, world #42");
    for (int i = 0; i < 1000; i++) tr_buf_append_char(&b, 'x');
    CHECK_EQ(b.len, 16 + 1000);
    CHECK_EQ(b.data[b.len], '\0');
    tr_buf_consume(&b, 7);
    CHECK_MEM_EQ(b.data, 5, "world");
    tr_buf_free(&b);
    CHECK(b.data == NULL);
}

TEST(base_buf_printf_long)
{
    tr_buf b = TR_BUF_INIT;
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    tr_buf_printf(&b, "<%s>", big);
    CHECK_EQ(b.len, sizeof big + 1);
    CHECK_EQ(b.data[0], '<');
    CHECK_EQ(b.data[b.len - 1], '>');
    size_t n;
    char *p = tr_buf_take(&b, &n);
    CHECK_EQ(n, sizeof big + 1);
    tr_free(p);
}

TEST(base_arena_alloc_reset)
{
    tr_arena a;
    tr_arena_init(&a, 256);
    char *s = tr_arena_strndup(&a, "abcdef", 3);
    CHECK_STR_EQ(s, "abc");
    size_t one_chunk = tr_arena_size(&a);
    CHECK(one_chunk >= 256);
    unsigned char *blocks[100];
    for (int i = 0; i < 100; i++) {
        blocks[i] = tr_arena_alloc(&a, 100);
        CHECK_EQ(((uintptr_t)blocks[i]) % 16, 0);
        memset(blocks[i], i, 100);
    }
    unsigned char *big = tr_arena_alloc(&a, 10000);
    memset(big, 0xee, 10000);
    /* No block overlaps another: each still holds what was written into it. */
    CHECK_STR_EQ(s, "abc");
    for (int i = 0; i < 100; i++) {
        for (int j = 0; j < 100; j++) CHECK_EQ(blocks[i][j], i);
    }
    CHECK(tr_arena_size(&a) >= 100 * 100 + 10000);
    /* Reset gives back all but the first chunk, and the next allocation reuses it. */
    tr_arena_reset(&a);
    CHECK_EQ(tr_arena_size(&a), one_chunk);
    CHECK(tr_arena_alloc(&a, 16) == (void *)s);
    tr_arena_deinit(&a);
    CHECK_EQ(tr_arena_size(&a), 0);
}

TEST(base_strerror)
{
    CHECK_STR_EQ(tr_strerror(TR_ETRAP), "WebAssembly trap");
    CHECK_STR_EQ(tr_strerror(-2), "No such file or directory");
    tr_error e;
    CHECK_EQ(tr_error_set(&e, TR_EPARSE, "line %d", 7), TR_EPARSE);
    CHECK_STR_EQ(e.msg, "line 7");
    CHECK_EQ(tr_error_set(NULL, TR_EIO, "x"), TR_EIO);
}
