/* component/sourcemap.c: decoding a version-3 source map's `sources` and `mappings` (base64 VLQ
 * segments, ';' between generated lines, ',' between segments) and mapping positions in stack
 * traces back to the original files.
 *
 * DESIGN: parsed once when a component is loaded; segments are kept in one array in generated
 * order with the index of each generated line's first segment, so a lookup searches one line. The
 * JSON reading is just enough for the two members used; anything malformed is TR_EPARSE and the
 * caller logs unmapped stacks. */
#include "component/component_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct segment {
    uint32_t gen_col; /* from 0 */
    uint32_t src;     /* index into sources */
    uint32_t line;    /* from 0 */
    uint32_t col;     /* from 0 */
} segment;

struct comp_srcmap {
    char **sources;
    size_t nsources;
    segment *segs; /* all segments, by generated line then column */
    size_t nsegs;
    size_t *line_at; /* line_at[l]: index of the first segment of generated line l (0-based) */
    size_t nlines;
};

void comp_srcmap_free(comp_srcmap *m)
{
    if (m == NULL) return;
    for (size_t i = 0; i < m->nsources; i++)
        tr_free(m->sources[i]);
    tr_free(m->sources);
    tr_free(m->segs);
    tr_free(m->line_at);
    tr_free(m);
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* The value of a JSON key: a pointer just after `"key"` and its colon. */
static const char *find_key(const char *json, size_t len, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 2 < len; i++) {
        if (json[i] == '"' && memcmp(json + i + 1, key, kl) == 0 && json[i + 1 + kl] == '"') {
            const char *p = skip_ws(json + i + kl + 2, json + len);
            if (p < json + len && *p == ':') return p + 1;
        }
    }
    return NULL;
}

/* Reads a JSON string at p (its opening quote) into a new allocation; returns the end. */
static const char *read_string(const char *p, const char *end, char **out)
{
    if (p >= end || *p != '"') return NULL;
    tr_buf b = TR_BUF_INIT;
    for (p++; p < end && *p != '"'; p++) {
        char c = *p;
        if (c == '\\' && p + 1 < end) {
            c = *++p;
            if (c == 'n') {
                c = '\n';
            } else if (c == 't') {
                c = '\t';
            } else if (c == 'u') { /* a \uXXXX escape in a file name shows as '?' */
                p += p + 4 < end ? 4 : 0;
                c = '?';
            }
        }
        tr_buf_append_char(&b, c);
    }
    if (p >= end) {
        tr_buf_free(&b);
        return NULL;
    }
    *out = tr_buf_take(&b, NULL);
    return p + 1;
}

static int b64(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* One base64 VLQ value at *p; advances. */
static bool vlq(const char **p, const char *end, int64_t *out)
{
    uint64_t v = 0;
    unsigned shift = 0;
    for (;;) {
        if (*p >= end || shift > 60) return false;
        int d = b64(**p);
        if (d < 0) return false;
        (*p)++;
        v |= (uint64_t)(d & 31) << shift;
        shift += 5;
        if (!(d & 32)) break;
    }
    *out = (v & 1) ? -(int64_t)(v >> 1) : (int64_t)(v >> 1);
    return true;
}

int comp_srcmap_parse(const char *json, size_t len, comp_srcmap **out, tr_error *err)
{
    const char *end = json + len;
    const char *src = find_key(json, len, "sources");
    const char *map = find_key(json, len, "mappings");
    if (src == NULL || map == NULL)
        return tr_error_set(err, TR_EPARSE, "source map without sources or mappings");
    comp_srcmap *m = tr_calloc(1, sizeof *m);
    src = skip_ws(src, end);
    if (src >= end || *src != '[') goto bad;
    src = skip_ws(src + 1, end);
    while (src < end && *src != ']') {
        char *name = NULL;
        src = read_string(src, end, &name);
        if (src == NULL) goto bad;
        m->sources = tr_realloc(m->sources, (m->nsources + 1) * sizeof *m->sources);
        m->sources[m->nsources++] = name;
        src = skip_ws(src, end);
        if (src < end && *src == ',') src = skip_ws(src + 1, end);
    }
    map = skip_ws(map, end);
    if (map >= end || *map != '"') goto bad;
    const char *p = map + 1;
    size_t cap = 0, line_cap = 1;
    int64_t src_idx = 0, src_line = 0, src_col = 0, gen_col = 0;
    m->line_at = tr_malloc(sizeof *m->line_at);
    m->line_at[0] = 0;
    m->nlines = 1;
    while (p < end && *p != '"') {
        if (*p == ';') {
            if (m->nlines == line_cap) {
                line_cap *= 2;
                m->line_at = tr_realloc(m->line_at, line_cap * sizeof *m->line_at);
            }
            m->line_at[m->nlines++] = m->nsegs;
            gen_col = 0;
            p++;
            continue;
        }
        if (*p == ',') {
            p++;
            continue;
        }
        int64_t f[5];
        int nf = 0;
        while (nf < 5 && p < end && *p != ',' && *p != ';' && *p != '"')
            if (!vlq(&p, end, &f[nf++])) goto bad;
        if (nf == 0) goto bad;
        gen_col += f[0];
        if (nf >= 4) {
            src_idx += f[1];
            src_line += f[2];
            src_col += f[3];
            if (gen_col < 0 || src_idx < 0 || src_line < 0 || src_col < 0 ||
                (size_t)src_idx >= m->nsources)
                goto bad;
            if (m->nsegs == cap) {
                cap = cap ? cap * 2 : 1024;
                m->segs = tr_realloc(m->segs, cap * sizeof *m->segs);
            }
            m->segs[m->nsegs++] = (segment){(uint32_t)gen_col, (uint32_t)src_idx,
                                            (uint32_t)src_line, (uint32_t)src_col};
        }
    }
    *out = m;
    return 0;
bad:
    comp_srcmap_free(m);
    return tr_error_set(err, TR_EPARSE, "malformed source map");
}

bool comp_srcmap_lookup(const comp_srcmap *m, uint32_t line, uint32_t col, const char **source,
                        uint32_t *src_line, uint32_t *src_col)
{
    if (m == NULL || line == 0 || line > m->nlines) return false;
    size_t lo = m->line_at[line - 1];
    size_t hi = line < m->nlines ? m->line_at[line] : m->nsegs;
    if (lo >= hi) return false;
    /* The last segment at or before the column (the first when none is): a binary search, as
     * a minified bundle is one line of many thousand segments, and every new error of a
     * component looks up each of its frames (component/stacks.c). */
    uint32_t c = col ? col - 1 : 0;
    size_t a = lo + 1, b = hi; /* the answer is the segment before the first past c in [a, b) */
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (m->segs[mid].gen_col <= c)
            a = mid + 1;
        else
            b = mid;
    }
    const segment *best = &m->segs[a - 1];
    *source = m->sources[best->src];
    *src_line = best->line + 1;
    *src_col = best->col + 1;
    return true;
}

void comp_srcmap_rewrite(const comp_srcmap *m, const char *gen_name, const char *text, tr_buf *out)
{
    size_t gl = strlen(gen_name);
    const char *p = text;
    for (;;) {
        const char *hit = strstr(p, gen_name);
        if (hit == NULL) break;
        const char *q = hit + gl;
        char *e1 = NULL, *e2 = NULL;
        unsigned long line = *q == ':' ? strtoul(q + 1, &e1, 10) : 0;
        unsigned long col = line && *e1 == ':' ? strtoul(e1 + 1, &e2, 10) : 0;
        const char *source;
        uint32_t sl, sc;
        if (col && comp_srcmap_lookup(m, (uint32_t)line, (uint32_t)col, &source, &sl, &sc)) {
            tr_buf_append(out, p, (size_t)(hit - p));
            tr_buf_printf(out, "%s:%u:%u", source, sl, sc);
            p = e2;
            continue;
        }
        tr_buf_append(out, p, (size_t)(q - p));
        p = q;
    }
    tr_buf_append_str(out, p);
}
