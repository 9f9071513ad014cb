/* tests/fuzz/fuzz_dqlite.c: libFuzzer target for the decoding of dqlite's answers
 * (cluster/proto.c), the bytes a node (or anyone on its address) sends trail's client.
 *
 * `make fuzz` builds and runs it (FUZZ_SECONDS, default 60; its corpus is kept under
 * build/fuzz/); `make test` builds it.
 * The first byte chooses the decoder; the rest is the body, copied into a block of its exact
 * size so that ASan sees any read past it. A ROWS body is also fed twice, as two batches of one
 * result. Every input must decode or fail with TR_EPARSE or TR_ELIMIT, and leak nothing; what
 * decodes must stay inside the body. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *copy(const uint8_t *p, size_t n)
{
    char *b = tr_malloc(n ? n : 1);
    if (n) memcpy(b, p, n);
    return b;
}

static void check_rows(const dq_rows *rows, const char *const *bodies, const size_t *lens,
                       size_t nbodies)
{
    for (size_t i = 0; i < rows->nrows * rows->ncols; i++) {
        const dq_value *v = &rows->vals[i];
        if (v->type != DQ_TEXT && v->type != DQ_BLOB) continue;
        bool inside = false;
        for (size_t b = 0; b < nbodies; b++)
            if (bodies[b] && v->p >= bodies[b] && v->n <= lens[b] &&
                (size_t)(v->p - bodies[b]) <= lens[b] - v->n)
                inside = true;
        assert(inside);
        if (v->type == DQ_TEXT) assert(v->p[v->n] == '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int which = data[0] % 4;
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    tr_error err;
    switch (which) {
    case 0: { /* ROWS, one batch then (when it says more) the same bytes again */
        dq_rows rows = DQ_ROWS_INIT;
        bool more = false;
        char *b1 = copy(body, len), *b2 = NULL;
        int rc = dq_rows_add_body(&rows, b1, len, 4096, &more, &err);
        assert(rc == 0 || rc == TR_EPARSE || rc == TR_ELIMIT);
        if (rc == 0 && more) {
            b2 = copy(body, len);
            rc = dq_rows_add_body(&rows, b2, len, 4096, &more, &err);
            assert(rc == 0 || rc == TR_EPARSE || rc == TR_ELIMIT);
        }
        if (rc == 0) {
            const char *bodies[2] = {b1, b2};
            size_t lens[2] = {len, b2 ? len : 0};
            check_rows(&rows, bodies, lens, 2);
        }
        dq_rows_free(&rows);
        break;
    }
    case 1: { /* SERVERS */
        char *b = copy(body, len);
        dq_node_info *nodes = NULL;
        size_t n = 0;
        int rc = dq_parse_servers((const uint8_t *)b, len, &nodes, &n, &err);
        assert(rc == 0 || rc == TR_EPARSE);
        if (rc == 0) {
            assert(n <= len / 24);
            dq_nodes_free(nodes, n);
        }
        tr_free(b);
        break;
    }
    case 2: { /* FAILURE */
        char *b = copy(body, len);
        uint64_t code;
        const char *msg;
        if (dq_parse_failure((const uint8_t *)b, len, &code, &msg) == 0)
            assert(msg != NULL && (*msg == '\0' || (msg >= b && msg < b + len)));
        tr_free(b);
        break;
    }
    default: { /* a header */
        if (len < 8) break;
        size_t blen;
        int type;
        int rc = dq_header_parse(body, 1u << 20, &blen, &type, &err);
        assert(rc == TR_ELIMIT || (rc == 0 && blen <= (1u << 20) && blen % 8 == 0));
        break;
    }
    }
    return 0;
}
