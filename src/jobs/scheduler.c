/* jobs/scheduler.c: the scheduler thread (see jobs.h). */
#include "jobs/jobs.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct sched_entry {
    comp_module *mod; /* ref held */
    size_t job;
    int64_t next_at; /* Unix seconds; -1: never */
    bool running;
    uint64_t token; /* of the run in progress */
} sched_entry;

struct job_sched {
    pthread_t thread;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;
    bool stop;
    sched_entry *entries;
    size_t n;
    uint64_t next_token;
    const cron_tz *tz;
    job_launch_fn launch;
    void *ud;
    int64_t offset_s; /* scheduler clock minus the wall clock (see TRAIL_SCHEDULER_START) */
};

/* The scheduler's clock: the wall clock, unless TRAIL_SCHEDULER_START (Unix seconds) was set at
 * start, which makes it start at that instant and advance in real time. Tests use it to watch
 * a midnight or a Sunday arrive within seconds; it changes nothing else (not Date.now()). */
static int64_t now_s(const job_sched *s)
{
    return tr_wall_ms() / 1000 + s->offset_s;
}

static void *sched_main(void *arg)
{
    job_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        int64_t now = now_s(s);
        int64_t earliest = -1;
        for (size_t i = 0; i < s->n; i++) {
            sched_entry *e = &s->entries[i];
            if (e->next_at < 0) continue;
            if (e->next_at <= now) {
                const comp_job *j = comp_module_job(e->mod, e->job);
                int64_t due = e->next_at;
                e->next_at = cron_next(&j->cron, s->tz, due > now ? due : now);
                if (e->running) {
                    /* Skipped, but its next time still counts towards when to wake up: else
                     * a scheduler whose every job is running would sleep without a timeout. */
                    tr_log_warn("job '%s' of %s is still running; skipping the run due at %lld",
                                j->name, comp_module_name(e->mod), (long long)due);
                    if (e->next_at >= 0 && (earliest < 0 || e->next_at < earliest))
                        earliest = e->next_at;
                    continue;
                }
                e->running = true;
                e->token = ++s->next_token;
                comp_module *m = comp_module_ref(e->mod);
                size_t job = e->job;
                uint64_t token = e->token;
                pthread_mutex_unlock(&s->mu);
                s->launch(s->ud, m, job, due, token);
                comp_module_unref(m);
                pthread_mutex_lock(&s->mu);
                /* The set may have changed meanwhile: start over. */
                earliest = 0;
                break;
            }
            if (earliest < 0 || e->next_at < earliest) earliest = e->next_at;
        }
        if (s->stop) break;
        if (earliest == 0) continue;
        if (earliest < 0) {
            pthread_cond_wait(&s->cv, &s->mu);
        } else {
            struct timespec ts = {.tv_sec = (time_t)(earliest - s->offset_s), .tv_nsec = 0};
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int job_sched_start(const cron_tz *tz, job_launch_fn launch, void *ud, job_sched **out,
                    tr_error *err)
{
    job_sched *s = tr_calloc(1, sizeof *s);
    s->tz = tz;
    s->launch = launch;
    s->ud = ud;
    const char *start = getenv("TRAIL_SCHEDULER_START");
    if (start && *start) {
        s->offset_s = strtoll(start, NULL, 10) - tr_wall_ms() / 1000;
        tr_log_warn("job scheduler: clock starts at %s (TRAIL_SCHEDULER_START)", start);
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int rc = pthread_create(&s->thread, NULL, sched_main, s);
    if (rc != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        tr_free(s);
        return tr_error_set(err, -rc, "cannot start the job scheduler: %s", strerror(rc));
    }
    *out = s;
    return 0;
}

void job_sched_set(job_sched *s, const comp_set *set)
{
    size_t n = 0;
    for (size_t i = 0; set && i < comp_set_count(set); i++)
        n += comp_module_njobs(comp_set_module(set, i));
    sched_entry *entries = tr_calloc(n ? n : 1, sizeof *entries);
    int64_t now = now_s(s);
    size_t k = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; set && i < comp_set_count(set); i++) {
        comp_module *m = comp_set_module(set, i);
        for (size_t j = 0; j < comp_module_njobs(m); j++) {
            sched_entry *e = &entries[k++];
            e->mod = comp_module_ref(m);
            e->job = j;
            e->next_at = cron_next(&comp_module_job(m, j)->cron, s->tz, now);
            /* A run in progress of the same job (same component file and name) still counts. */
            for (size_t o = 0; o < s->n; o++) {
                sched_entry *old = &s->entries[o];
                if (old->running && strcmp(comp_module_name(old->mod), comp_module_name(m)) == 0 &&
                    strcmp(comp_module_job(old->mod, old->job)->name,
                           comp_module_job(m, j)->name) == 0) {
                    e->running = true;
                    e->token = old->token;
                }
            }
        }
    }
    sched_entry *old = s->entries;
    size_t nold = s->n;
    s->entries = entries;
    s->n = n;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < nold; i++) comp_module_unref(old[i].mod);
    tr_free(old);
}

void job_sched_finished(job_sched *s, uint64_t token)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++)
        if (s->entries[i].running && s->entries[i].token == token) s->entries[i].running = false;
    /* The scheduler may be waiting on nothing but this run (all others skipped or none). */
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void job_sched_stop(job_sched *s)
{
    if (s == NULL) return;
    pthread_mutex_lock(&s->mu);
    bool joined = s->stop;
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (!joined) pthread_join(s->thread, NULL);
}

void job_sched_free(job_sched *s)
{
    if (s == NULL) return;
    job_sched_stop(s);
    for (size_t i = 0; i < s->n; i++) comp_module_unref(s->entries[i].mod);
    tr_free(s->entries);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    tr_free(s);
}
