/* Tests for cluster/status.c: the last Raft log index read from a node's segment files, with
 * closed segments, snapshots, open segments of whole, torn and unused batches, and a damaged
 * format. */
#include "test.h"
#include "cluster/cluster.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void put64(tr_buf *b, uint64_t v)
{
    unsigned char w[8];
    for (int i = 0; i < 8; i++)
        w[i] = (unsigned char)(v >> (8 * i));
    tr_buf_append(b, w, 8);
}

/* A batch of n entries of len bytes each (data padded to 8). */
static void batch(tr_buf *b, unsigned n, uint32_t len)
{
    put64(b, 0); /* two checksums: not verified */
    put64(b, n);
    for (unsigned i = 0; i < n; i++) {
        put64(b, 3); /* term */
        unsigned char t[8] = {1, 0, 0, 0, (unsigned char)len, (unsigned char)(len >> 8), 0, 0};
        tr_buf_append(b, t, 8);
    }
    size_t padded = ((size_t)len + 7) & ~(size_t)7;
    for (unsigned i = 0; i < n; i++)
        for (size_t k = 0; k < padded; k++)
            tr_buf_append(b, "\x5a", 1);
}

static void write_file(const char *dir, const char *name, const tr_buf *b)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (b->len) CHECK_EQ(fwrite(b->data, 1, b->len, f), b->len);
    fclose(f);
}

TEST(cluster_log_last_index_from_segments)
{
    const char *dir = test_tmpdir();
    uint64_t last = 99;
    tr_error err = {0};
    /* A new node: nothing on disk. */
    CHECK_EQ(cluster_log_last_index(dir, &last, &err), 0);
    CHECK_EQ(last, 0);

    tr_buf b = TR_BUF_INIT;
    write_file(dir, "0000000000000001-0000000000000010", &b);
    write_file(dir, "0000000000000011-0000000000000040", &b);
    write_file(dir, "metadata1", &b);
    /* open-1: format 1, a batch of 2 and one of 1 (odd length: padded), then preallocated
     * zeros; open-2: prepared, all zeros. */
    put64(&b, 1);
    batch(&b, 2, 16);
    batch(&b, 1, 13);
    for (int i = 0; i < 64; i++)
        put64(&b, 0);
    write_file(dir, "open-1", &b);
    tr_buf_free(&b);
    for (int i = 0; i < 16; i++)
        put64(&b, 0);
    write_file(dir, "open-2", &b);
    tr_buf_free(&b);
    CHECK_EQ(cluster_log_last_index(dir, &last, &err), 0);
    CHECK_EQ(last, 43);

    /* A batch cut short (its data not all written yet) is not counted; a header whose count
     * cannot fit in the file ends the count too. */
    put64(&b, 1);
    batch(&b, 4, 8);
    batch(&b, 2, 64);
    b.len -= 20;
    write_file(dir, "open-2", &b);
    tr_buf_free(&b);
    CHECK_EQ(cluster_log_last_index(dir, &last, &err), 0);
    CHECK_EQ(last, 47);
    put64(&b, 1);
    batch(&b, 1, 8);
    put64(&b, 0);
    put64(&b, UINT64_MAX);
    write_file(dir, "open-3", &b);
    tr_buf_free(&b);
    CHECK_EQ(cluster_log_last_index(dir, &last, &err), 0);
    CHECK_EQ(last, 48);

    /* A snapshot newer than the log counts (a follower that was sent one). */
    write_file(dir, "snapshot-3-500-1700000000000", &b);
    write_file(dir, "snapshot-3-500-1700000000000.meta", &b);
    CHECK_EQ(cluster_log_last_index(dir, &last, &err), 0);
    CHECK_EQ(last, 500);

    /* Another format is an error that names the file. */
    put64(&b, 7);
    batch(&b, 1, 8);
    write_file(dir, "open-4", &b);
    tr_buf_free(&b);
    CHECK_EQ(cluster_log_last_index(dir, &last, &err), TR_EPARSE);
    CHECK_CONTAINS(err.msg, "open-4");
    CHECK_EQ(cluster_log_last_index("/nonexistent/dir", &last, &err), -ENOENT);
}
