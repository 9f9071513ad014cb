/* cli/cmd_eval.c: `trail eval CODE`: evaluates JavaScript in a fresh sandboxed isolate and prints the
 * result. The engine's smoke test and a debugging aid.
 *
 * DESIGN: the isolate runs on a thread created like a worker's (WRT_THREAD_STACK_SIZE), so deep
 * recursion behaves exactly as it will in `trail run`. A promise result is awaited by running
 * pending jobs. Strings print as they are, other primitives as String(v), objects and arrays as
 * JSON (String(v) when JSON.stringify cannot represent them). */
#include "cli/cli_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "wasm/js/jsg.h"
#include "wasm/runtime/wrt.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MEMORY_MB  64
#define MAX_SOURCE         ((size_t)64 << 20)

typedef struct eval_job {
    const char *code;
    size_t len;
    const char *filename;
    bool module;
    uint64_t timeout_ms;
    size_t memory_mb;
    int status; /* exit status */
} eval_job;

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: trail eval [options] CODE\n"
        "       trail eval [options] -f FILE   (FILE may be - for standard input)\n\n"
        "Evaluates JavaScript in a fresh sandboxed isolate (QuickJS in WebAssembly) and prints\n"
        "the result: strings as they are, objects and arrays as JSON, anything else as\n"
        "String(value). A promise is awaited. An uncaught exception prints its message and\n"
        "stack to standard error and exits with status 1.\n\n"
        "Options:\n"
        "  -f, --file FILE     read the code from FILE\n"
        "  -m, --module        evaluate as an ES module and print its exports\n"
        "  --timeout MS        stop the code after MS milliseconds (default %d; 0: none)\n"
        "  --memory MB         memory limit of the isolate in MiB (default %d)\n"
        "  -h, --help          show this help\n",
        DEFAULT_TIMEOUT_MS, DEFAULT_MEMORY_MB);
}

static int print_value(jsg_isolate *iso, jsg_ref v, tr_error *err)
{
    tr_buf out = TR_BUF_INIT;
    int rc;
    switch (jsg_ref_kind(iso, v)) {
    case JSG_K_ARRAY:
    case JSG_K_OBJECT:
        rc = jsg_to_json(iso, v, &out, err);
        if (rc == TR_EJS) rc = jsg_to_string(iso, v, &out, err); /* cyclic, BigInt inside, ... */
        break;
    default:
        rc = jsg_to_string(iso, v, &out, err);
        break;
    }
    if (rc == 0) {
        fwrite(out.data, 1, out.len, stdout);
        fputc('\n', stdout);
    }
    tr_buf_free(&out);
    return rc;
}

static int settle(jsg_isolate *iso, jsg_ref *v, tr_error *err)
{
    int rc = jsg_run_jobs(iso, err);
    if (rc < 0 || jsg_ref_kind(iso, *v) != JSG_K_PROMISE) return rc;
    jsg_promise_state st;
    jsg_ref result = 0;
    rc = jsg_promise_state_get(iso, *v, &st, &result, err);
    if (rc < 0) return rc;
    if (st == JSG_PENDING)
        return tr_error_set(err, TR_EJS, "the result is a promise that never settles");
    jsg_ref_free(iso, *v);
    *v = result;
    if (st == JSG_REJECTED) return jsg_error_from(iso, result, err);
    return 0;
}

static void on_rejection(jsg_isolate *iso, void *user, const tr_error *reason)
{
    (void)iso;
    (void)user;
    fprintf(stderr, "trail eval: unhandled promise rejection: %s\n", reason->msg);
}

static void *eval_thread(void *p)
{
    eval_job *job = p;
    jsg_options opt = {
        .memory_limit = job->memory_mb << 20,
        .timeout_ns = job->timeout_ms * 1000000ull,
    };
    tr_error err;
    tr_error_clear(&err);
    jsg_isolate *iso = NULL;
    int rc = jsg_isolate_new(&opt, &iso, &err);
    jsg_ref v = 0;
    if (rc == 0) {
        jsg_set_rejection_handler(iso, on_rejection, NULL);
        rc = job->module ? jsg_eval_module(iso, job->code, job->len, job->filename, &v, &err)
                         : jsg_eval(iso, job->code, job->len, job->filename, &v, &err);
    }
    if (rc == 0) rc = settle(iso, &v, &err);
    if (rc == 0) rc = print_value(iso, v, &err);
    if (rc < 0) {
        if (rc == TR_EJS)
            fprintf(stderr, "Uncaught %s\n", err.msg);
        else
            fprintf(stderr, "trail eval: %s\n", err.code ? err.msg : tr_strerror(rc));
        job->status = 1;
    }
    if (iso != NULL) {
        jsg_ref_free(iso, v);
        jsg_isolate_free(iso);
    }
    wrt_thread_deinit();
    return NULL;
}

static int read_all(const char *path, tr_buf *out)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) return -errno;
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (out->len + n > MAX_SOURCE) {
            rc = TR_ELIMIT;
            break;
        }
        tr_buf_append(out, chunk, n);
    }
    if (rc == 0 && ferror(f)) rc = TR_EIO;
    if (f != stdin) fclose(f);
    return rc;
}

static bool parse_num(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0' || s[0] == '-' || v > max) return false;
    *out = v;
    return true;
}

int cli_eval(int argc, char **argv)
{
    eval_job job = {.timeout_ms = DEFAULT_TIMEOUT_MS, .memory_mb = DEFAULT_MEMORY_MB};
    const char *file = NULL, *code = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        unsigned long long n;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-m") == 0 || strcmp(a, "--module") == 0) {
            job.module = true;
        } else if ((strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0) && i + 1 < argc) {
            file = argv[++i];
        } else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
            if (!parse_num(argv[++i], 24ull * 3600 * 1000, &n)) {
                fprintf(stderr, "trail eval: --timeout wants milliseconds, got '%s'\n", argv[i]);
                return 2;
            }
            job.timeout_ms = n;
        } else if (strcmp(a, "--memory") == 0 && i + 1 < argc) {
            if (!parse_num(argv[++i], 4095, &n) || n < 4) {
                fprintf(stderr, "trail eval: --memory wants MiB between 4 and 4095, got '%s'\n",
                        argv[i]);
                return 2;
            }
            job.memory_mb = (size_t)n;
        } else if (strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0 ||
                   strcmp(a, "--timeout") == 0 || strcmp(a, "--memory") == 0) {
            fprintf(stderr, "trail eval: %s needs a value (see `trail eval --help`)\n", a);
            return 2;
        } else if (a[0] == '-' && a[1] != '\0' && code == NULL) {
            fprintf(stderr, "trail eval: unknown option '%s' (see `trail eval --help`)\n", a);
            return 2;
        } else if (code == NULL) {
            code = a;
        } else {
            fprintf(stderr, "trail eval: one piece of code at a time (quote it)\n");
            return 2;
        }
    }
    if ((code == NULL) == (file == NULL)) {
        usage(stderr);
        return 2;
    }
    tr_buf src = TR_BUF_INIT;
    if (file != NULL) {
        int rc = read_all(file, &src);
        if (rc < 0) {
            fprintf(stderr, "trail eval: %s: %s\n", file, tr_strerror(rc));
            tr_buf_free(&src);
            return 1;
        }
        job.code = src.data ? src.data : "";
        job.len = src.len;
        job.filename = strcmp(file, "-") == 0 ? "<stdin>" : file;
    } else {
        job.code = code;
        job.len = strlen(code);
        job.filename = job.module ? "<eval>.js" : "<eval>";
    }

    pthread_attr_t attr;
    pthread_t th;
    int rc = wrt_thread_attr_init(&attr);
    if (rc == 0) {
        rc = -pthread_create(&th, &attr, eval_thread, &job);
        pthread_attr_destroy(&attr);
    }
    if (rc < 0) {
        fprintf(stderr, "trail eval: cannot start a thread: %s\n", tr_strerror(rc));
        tr_buf_free(&src);
        return 1;
    }
    pthread_join(th, NULL);
    tr_buf_free(&src);
    fflush(stdout);
    return job.status;
}
