/* tests/unit/guest/sql_fixture.c: see sql_fixture.h. */
#include "unit/guest/sql_fixture.h"

#include "test.h"

void sql_fx_init(sql_fx *f, const char *name, const char *schema)
{
    memset(f, 0, sizeof *f);
    tr_error err = {0};
    f->path = tr_asprintf("%s/%s", test_tmpdir(), name);
    CHECK_EQ(db_open(f->path, &f->db, &err), 0);
    if (db_exec(f->db, schema, &err) != 0) test_fail(__FILE__, __LINE__, "schema: %s", err.msg);
    guest_env_init(&f->env, NULL, f->db, NULL);
    CHECK_EQ(jsg_isolate_new(NULL, &f->iso, &err), 0);
    CHECK_EQ(guest_new(f->iso, &f->env, NULL, NULL, &f->g, &err), 0);
}

void sql_fx_deinit(sql_fx *f)
{
    guest_free(f->g);
    jsg_isolate_free(f->iso);
    guest_env_deinit(&f->env);
    db_close(f->db);
    tr_free(f->path);
}

const char *sql_fx_run(sql_fx *f, const char *code)
{
    static char text[8192];
    tr_error err = {0};
    int rc = jsg_eval(f->iso, code, strlen(code), "test.js", NULL, &err);
    if (rc == 0) rc = jsg_run_jobs(f->iso, &err);
    if (rc != 0) test_fail(__FILE__, __LINE__, "js: %s", err.msg);
    static const char get[] = "String(globalThis.out)";
    jsg_ref r = 0;
    CHECK_EQ(jsg_eval(f->iso, get, sizeof get - 1, "out.js", &r, &err), 0);
    tr_buf b = TR_BUF_INIT;
    CHECK_EQ(jsg_to_string(f->iso, r, &b, &err), 0);
    snprintf(text, sizeof text, "%.*s", (int)b.len, b.data);
    tr_buf_free(&b);
    jsg_ref_free(f->iso, r);
    return text;
}
