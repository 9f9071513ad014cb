/* Tests for component/native_encoding.c: a request as a compiled guest receives it, with its
 * caller at the end (docs/guest-abi.md): one byte when anonymous, the user, or why the
 * credentials did not count. */
#include "test.h"
#include "auth/auth.h"
#include "component/native_internal.h"

#include <string.h>

/* GET /me?x=1 with one header and an empty body, encoded with caller c; *after_body the offset
 * of the first byte after the body's str. */
static void encode(const auth_caller *c, tr_buf *b, size_t *after_body)
{
    static const http_header h[1] = {{{"Authorization", 13}, {"Bearer t", 8}}};
    http_request req = {.method = {"GET", 3},
                        .target = {"/me?x=1", 7},
                        .path = {"/me", 3},
                        .query = {"x=1", 3},
                        .headers = h,
                        .nheaders = 1};
    comp__encode_request(&req, c, b);
    /* method, url, path, query, no params, one header, empty body */
    *after_body = (4 + 3) + (4 + 7) + (4 + 3) + (4 + 3) + 4 + 4 + (4 + 13) + (4 + 8) + 4;
}

static uint32_t u32_at(const tr_buf *b, size_t at)
{
    const unsigned char *p = (const unsigned char *)b->data + at;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

TEST(component_native_request_anonymous_costs_one_byte)
{
    auth_caller c = {0};
    tr_buf b = TR_BUF_INIT;
    size_t at;
    encode(&c, &b, &at);
    CHECK_EQ(b.len, at + 1);
    CHECK_EQ(b.data[at], 0);
    CHECK_MEM_EQ(b.data + 4 * 6 + 3 + 7 + 3 + 3 + 4, 13, "authorization"); /* names lower case */
    tr_buf_free(&b);
}

TEST(component_native_request_carries_the_user)
{
    auth_caller c = {.signed_in = true};
    strcpy(c.claims.sub, "AZK3eL7XdJSmy4l_Vk_lSg==");
    strcpy(c.claims.email, "a@example.org");
    strcpy(c.claims.csrf_token, "ABCDEFGHIJKLMNOPQRST");
    tr_buf b = TR_BUF_INIT;
    size_t at;
    encode(&c, &b, &at);
    CHECK_EQ(b.data[at], 1);
    CHECK_EQ(u32_at(&b, at + 1), 24u);
    CHECK_MEM_EQ(b.data + at + 5, 24, "AZK3eL7XdJSmy4l_Vk_lSg==");
    CHECK_EQ(u32_at(&b, at + 29), 13u);
    CHECK_MEM_EQ(b.data + at + 33, 13, "a@example.org");
    CHECK_EQ(u32_at(&b, at + 46), 20u);
    CHECK_MEM_EQ(b.data + at + 50, 20, "ABCDEFGHIJKLMNOPQRST");
    CHECK_EQ(b.len, at + 70);
    tr_buf_free(&b);
}

TEST(component_native_request_carries_the_auth_error)
{
    /* credentials that did not count: claims may hold a valid user (a cookie POST without its
     * CSRF token); none of it reaches the guest */
    auth_caller c = {.error = "missing CSRF", .error_status = 403};
    strcpy(c.claims.sub, "AZK3eL7XdJSmy4l_Vk_lSg==");
    strcpy(c.claims.email, "a@example.org");
    tr_buf b = TR_BUF_INIT;
    size_t at;
    encode(&c, &b, &at);
    CHECK_EQ(b.data[at], 2);
    CHECK_EQ(u32_at(&b, at + 1), 403u);
    CHECK_EQ(u32_at(&b, at + 5), 12u);
    CHECK_MEM_EQ(b.data + at + 9, 12, "missing CSRF");
    CHECK_EQ(b.len, at + 21);
    tr_buf_append_char(&b, '\0');
    CHECK(strstr(b.data + at, "example") == NULL);
    tr_buf_free(&b);
}
