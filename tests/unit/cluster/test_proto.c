/* Tests for cluster/proto.c: dqlite's wire encoding of requests and parameters, and the decoding
 * of answers, fed whole, in batches, cut at every byte, and with lying counts and lengths. */
#include "test.h"
#include "cluster/cluster.h"

#include <stdint.h>

static void put_word(tr_buf *b, uint64_t v)
{
    dq_put_u64(b, v);
}

/* A ROWS body: columns "a" and "bb"; row 1 (7, "hi"), row 2 (NULL, x'010203'); then marker. */
static void rows_body(tr_buf *b, uint64_t marker)
{
    put_word(b, 2);
    dq_put_text(b, "a");
    dq_put_text(b, "bb");
    uint8_t h1[8] = {DQ_INTEGER | DQ_TEXT << 4};
    tr_buf_append(b, h1, 8);
    put_word(b, 7);
    dq_put_text(b, "hi");
    uint8_t h2[8] = {DQ_NULL | DQ_BLOB << 4};
    tr_buf_append(b, h2, 8);
    put_word(b, 0);
    put_word(b, 3);
    uint8_t blob[8] = {1, 2, 3};
    tr_buf_append(b, blob, 8);
    put_word(b, marker);
}

static char *copy(const tr_buf *b, size_t n)
{
    char *p = tr_malloc(n ? n : 1);
    memcpy(p, b->data, n);
    return p;
}

TEST(cluster_params_encoding)
{
    tr_buf b = TR_BUF_INIT;
    dq_value v[5] = {
        {.type = DQ_INTEGER, .i = -2},
        {.type = DQ_FLOAT, .f = 1.5},
        {.type = DQ_TEXT, .p = "héllo", .n = 6},
        {.type = DQ_BLOB, .p = "\0\1\2", .n = 3},
        {.type = DQ_NULL},
    };
    size_t start;
    dq_msg_begin(&b, DQ_REQ_EXEC_SQL, &start);
    dq_put_u64(&b, 0);
    dq_put_text(&b, "SELECT ?");
    CHECK_EQ(dq_put_params(&b, v, 5, NULL), 0);
    dq_msg_end(&b, start);
    const uint8_t *p = (const uint8_t *)b.data;
    /* header: 8 + db 8 + sql 16 + tuple header 8 + int 8 + float 8 + text 8 + blob 16 + null 8 */
    CHECK_EQ(b.len, 8 + 8 + 16 + 8 + 8 + 8 + 8 + 16 + 8);
    CHECK_EQ(p[0], (b.len - 8) / 8);
    CHECK_EQ(p[4], DQ_REQ_EXEC_SQL);
    const uint8_t *t = p + 32;
    CHECK_EQ(t[0], 5);
    CHECK_EQ(t[1], DQ_INTEGER);
    CHECK_EQ(t[5], DQ_NULL);
    CHECK_EQ(t[8], 0xfe); /* -2, little-endian */
    CHECK_EQ(t[15], 0xff);
    CHECK_MEM_EQ(t + 24, 6, "héllo");
    CHECK_EQ(t[32], 3); /* the blob's length word */
    CHECK_EQ(t[41], 1);
    tr_buf_free(&b);
}

TEST(cluster_params_refused)
{
    tr_buf b = TR_BUF_INIT;
    tr_error err = {0};
    dq_value nul = {.type = DQ_TEXT, .p = "a\0b", .n = 3};
    CHECK_EQ(dq_put_params(&b, &nul, 1, &err), TR_EINVAL);
    CHECK_CONTAINS(err.msg, "NUL");
    static dq_value many[DQ_MAX_PARAMS + 1];
    for (size_t i = 0; i < TR_ARRAY_LEN(many); i++)
        many[i].type = DQ_NULL;
    tr_buf_reset(&b);
    CHECK_EQ(dq_put_params(&b, many, DQ_MAX_PARAMS, &err), 0);
    tr_buf_reset(&b);
    CHECK_EQ(dq_put_params(&b, many, DQ_MAX_PARAMS + 1, &err), TR_ELIMIT);
    dq_value bad = {.type = 9};
    tr_buf_reset(&b);
    CHECK_EQ(dq_put_params(&b, &bad, 1, &err), TR_EINVAL);
    tr_buf_free(&b);
}

TEST(cluster_rows_decode)
{
    tr_buf b = TR_BUF_INIT;
    rows_body(&b, 0xffffffffffffffffULL);
    dq_rows rows = DQ_ROWS_INIT;
    bool more = true;
    CHECK_EQ(dq_rows_add_body(&rows, copy(&b, b.len), b.len, 100, &more, NULL), 0);
    CHECK(!more);
    CHECK_EQ(rows.ncols, 2);
    CHECK_STR_EQ(rows.names[0], "a");
    CHECK_STR_EQ(rows.names[1], "bb");
    CHECK_EQ(rows.nrows, 2);
    CHECK_EQ(rows.vals[0].type, DQ_INTEGER);
    CHECK_EQ(rows.vals[0].i, 7);
    CHECK_EQ(rows.vals[1].type, DQ_TEXT);
    CHECK_MEM_EQ(rows.vals[1].p, rows.vals[1].n, "hi");
    CHECK_EQ(rows.vals[2].type, DQ_NULL);
    CHECK_EQ(rows.vals[3].type, DQ_BLOB);
    CHECK_EQ(rows.vals[3].n, 3);
    CHECK_EQ(rows.vals[3].p[2], 3);
    dq_rows_free(&rows);
    tr_buf_free(&b);
}

/* A result in two batches: the first ends "more", the second repeats the columns. A batch with
 * other columns is refused. */
TEST(cluster_rows_batches)
{
    tr_buf part = TR_BUF_INIT, done = TR_BUF_INIT;
    rows_body(&part, 0xeeeeeeeeeeeeeeeeULL);
    rows_body(&done, 0xffffffffffffffffULL);
    dq_rows rows = DQ_ROWS_INIT;
    bool more = false;
    CHECK_EQ(dq_rows_add_body(&rows, copy(&part, part.len), part.len, 100, &more, NULL), 0);
    CHECK(more);
    CHECK_EQ(dq_rows_add_body(&rows, copy(&done, done.len), done.len, 100, &more, NULL), 0);
    CHECK(!more);
    CHECK_EQ(rows.nrows, 4);
    CHECK_MEM_EQ(rows.vals[5].p, rows.vals[5].n, "hi");
    /* the values of the first batch still point into its body */
    CHECK_MEM_EQ(rows.vals[1].p, rows.vals[1].n, "hi");
    tr_buf other = TR_BUF_INIT;
    put_word(&other, 1);
    dq_put_text(&other, "a");
    put_word(&other, 0xffffffffffffffffULL);
    tr_error err = {0};
    CHECK_EQ(dq_rows_add_body(&rows, copy(&other, other.len), other.len, 100, &more, &err),
             TR_EPARSE);
    CHECK_CONTAINS(err.msg, "columns");
    CHECK_EQ(rows.nrows, 4);
    dq_rows_free(&rows);
    /* the limit on values counts every batch */
    CHECK_EQ(dq_rows_add_body(&rows, copy(&part, part.len), part.len, 6, &more, NULL), 0);
    CHECK_EQ(dq_rows_add_body(&rows, copy(&done, done.len), done.len, 6, &more, &err), TR_ELIMIT);
    dq_rows_free(&rows);
    tr_buf_free(&part);
    tr_buf_free(&done);
    tr_buf_free(&other);
}

/* Every prefix of a valid body is refused (no marker, or a value cut short), never read past. */
TEST(cluster_rows_cut_at_every_byte)
{
    tr_buf b = TR_BUF_INIT;
    rows_body(&b, 0xffffffffffffffffULL);
    for (size_t n = 0; n < b.len; n++) {
        dq_rows rows = DQ_ROWS_INIT;
        bool more;
        /* an exact-size copy, so that ASan sees any read past the end */
        CHECK_EQ(dq_rows_add_body(&rows, copy(&b, n), n, 100, &more, NULL), TR_EPARSE);
        dq_rows_free(&rows);
    }
    tr_buf_free(&b);
}

/* Lying answers: counts and lengths larger than the body, texts without their NUL, unknown types,
 * and a length header over the client's bound. */
TEST(cluster_rows_hostile)
{
    struct {
        const char *what;
        uint64_t words[6];
        size_t n;
    } cases[] = {
        {"zero columns", {0, 0xffffffffffffffffULL}, 2},
        {"2^60 columns", {1ULL << 60, 0x61}, 2},
        {"blob longer than the body", {1, 0x61, 4, 1ULL << 62, 0, 0xffffffffffffffffULL}, 6},
        {"unknown type", {1, 0x61, 7, 0, 0xffffffffffffffffULL}, 5},
        {"text without NUL", {1, 0x61, 3, 0x4141414141414141ULL}, 4},
    };
    for (size_t i = 0; i < TR_ARRAY_LEN(cases); i++) {
        tr_buf b = TR_BUF_INIT;
        for (size_t w = 0; w < cases[i].n; w++)
            put_word(&b, cases[i].words[w]);
        dq_rows rows = DQ_ROWS_INIT;
        bool more;
        tr_error err = {0};
        int rc = dq_rows_add_body(&rows, copy(&b, b.len), b.len, 100, &more, &err);
        if (rc != TR_EPARSE) test_fail(__FILE__, __LINE__, "%s: rc %d", cases[i].what, rc);
        dq_rows_free(&rows);
        tr_buf_free(&b);
    }
    uint8_t hdr[8] = {0xff, 0xff, 0xff, 0xff, DQ_RESP_ROWS};
    size_t len;
    int type;
    tr_error err = {0};
    CHECK_EQ(dq_header_parse(hdr, 64u << 20, &len, &type, &err), TR_ELIMIT);
    CHECK_CONTAINS(err.msg, "over the limit");
    uint8_t ok[8] = {2, 0, 0, 0, DQ_RESP_RESULT};
    CHECK_EQ(dq_header_parse(ok, 64u << 20, &len, &type, &err), 0);
    CHECK_EQ(len, 16);
    CHECK_EQ(type, DQ_RESP_RESULT);
}

TEST(cluster_servers_and_failure)
{
    tr_buf b = TR_BUF_INIT;
    put_word(&b, 2);
    put_word(&b, 1);
    dq_put_text(&b, "127.0.0.1:7001");
    put_word(&b, DQ_ROLE_VOTER);
    put_word(&b, 99);
    dq_put_text(&b, "[::1]:7002");
    put_word(&b, DQ_ROLE_SPARE);
    dq_node_info *nodes;
    size_t n;
    CHECK_EQ(dq_parse_servers((const uint8_t *)b.data, b.len, &nodes, &n, NULL), 0);
    CHECK_EQ(n, 2);
    CHECK_STR_EQ(nodes[0].address, "127.0.0.1:7001");
    CHECK_EQ(nodes[1].id, 99);
    CHECK_STR_EQ(dq_role_name(nodes[1].role), "spare");
    dq_nodes_free(nodes, n);
    /* cut short, and a count the body cannot hold */
    CHECK_EQ(dq_parse_servers((const uint8_t *)b.data, b.len - 8, &nodes, &n, NULL), TR_EPARSE);
    ((uint8_t *)b.data)[7] = 0x7f;
    CHECK_EQ(dq_parse_servers((const uint8_t *)b.data, b.len, &nodes, &n, NULL), TR_EPARSE);
    tr_buf_reset(&b);
    put_word(&b, 10250);
    dq_put_text(&b, "not leader");
    uint64_t code;
    const char *msg;
    CHECK_EQ(dq_parse_failure((const uint8_t *)b.data, b.len, &code, &msg), 0);
    CHECK_EQ(code, DQ_CODE_NOT_LEADER);
    CHECK_STR_EQ(msg, "not leader");
    tr_buf_free(&b);
}
