/* Tests for auth/jwt.c's key texts (what cluster mode stores in the cluster and writes back to a
 * node): a key's PEM texts read back as the same key; damaged texts and a public key of another
 * pair refused, naming their source; auth_keys_store() replacing a data directory's key files,
 * keeping the old private key, and the server's auth_keys_load() then reading the new key. */
#include "test.h"
#include "auth/auth_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static auth_keys *load(const char *name)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), name);
    mkdir(dir, 0700);
    auth_keys *k = NULL;
    tr_error err = {0};
    CHECK_EQ(auth_keys_load(dir, &k, &err), 0);
    return k;
}

TEST(auth_keys_pem_round_trip)
{
    auth_keys *a = load("a"), *b = load("b");
    CHECK(!auth_keys_equal(a, b));
    tr_buf p = TR_BUF_INIT, q = TR_BUF_INIT;
    auth_keys_pem(a, &p, &q);
    CHECK(strstr(p.data, "-----BEGIN PRIVATE KEY-----") != NULL);
    CHECK(strstr(q.data, "-----BEGIN PUBLIC KEY-----") != NULL);
    auth_keys *c = NULL;
    tr_error err = {0};
    CHECK_EQ(auth_keys_from_pem(p.data, p.len, q.data, q.len, "the test", &c, &err), 0);
    CHECK(auth_keys_equal(a, c));
    /* what the key files hold is exactly these texts */
    char path[600];
    snprintf(path, sizeof path, "%s/a/" AUTH_PRIVATE_KEY_FILE, test_tmpdir());
    tr_buf f = TR_BUF_INIT;
    CHECK_EQ(tr_read_file(path, 4096, &f, NULL), 0);
    CHECK_MEM_EQ(f.data, f.len, p.data);
    tr_buf_free(&f);

    /* a public key of another pair, a truncated text, a public key as the private one */
    tr_buf p2 = TR_BUF_INIT, q2 = TR_BUF_INIT;
    auth_keys_pem(b, &p2, &q2);
    auth_keys *bad = NULL;
    CHECK_EQ(auth_keys_from_pem(p.data, p.len, q2.data, q2.len, "the test", &bad, &err), TR_EPARSE);
    CHECK(strstr(err.msg, "the test: the public key does not belong to the private key") != NULL);
    CHECK_EQ(auth_keys_from_pem(p.data, p.len / 2, q.data, q.len, "the test", &bad, &err),
             TR_EPARSE);
    CHECK(strstr(err.msg, "the test: not an Ed25519 private key in PEM form") != NULL);
    CHECK_EQ(auth_keys_from_pem(q.data, q.len, q.data, q.len, "the test", &bad, &err), TR_EPARSE);
    CHECK(bad == NULL);

    tr_buf_free(&p);
    tr_buf_free(&q);
    tr_buf_free(&p2);
    tr_buf_free(&q2);
    auth_keys_free(a);
    auth_keys_free(b);
    auth_keys_free(c);
}

TEST(auth_keys_store_replaces_and_keeps_the_old)
{
    auth_keys *mine = load("node"), *cluster = load("cluster");
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/node", test_tmpdir());
    tr_error err = {0};
    CHECK_EQ(auth_keys_store(dir, cluster, &err), 0);
    auth_keys *now = NULL;
    CHECK_EQ(auth_keys_load(dir, &now, &err), 0);
    CHECK(auth_keys_equal(now, cluster));
    /* the node's own private key is kept, private */
    snprintf(path, sizeof path, "%s/" AUTH_PRIVATE_KEY_FILE ".replaced", dir);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ((int)(st.st_mode & 0777), 0600);
    tr_buf old = TR_BUF_INIT, p = TR_BUF_INIT, q = TR_BUF_INIT;
    CHECK_EQ(tr_read_file(path, 4096, &old, NULL), 0);
    auth_keys_pem(mine, &p, &q);
    CHECK_MEM_EQ(old.data, old.len, p.data);
    /* the new files are private too, and no temporary file is left */
    snprintf(path, sizeof path, "%s/" AUTH_PRIVATE_KEY_FILE, dir);
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ((int)(st.st_mode & 0777), 0600);
    snprintf(path, sizeof path, "%s/" AUTH_PRIVATE_KEY_FILE ".tmp", dir);
    CHECK(stat(path, &st) != 0);
    tr_buf_free(&old);
    tr_buf_free(&p);
    tr_buf_free(&q);
    auth_keys_free(now);
    auth_keys_free(mine);
    auth_keys_free(cluster);
}
