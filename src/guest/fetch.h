/* guest/fetch.h: outgoing HTTP for guests: `__trailhost.fetch` (docs/guest-abi.md), on which
 * the prelude builds fetch()/Request/Response.
 *
 * DESIGN: a worker has one guest_fetch: a libcurl multi handle driven by the worker's loop
 * (curl's sockets are loop_io watchers, its timeout one loop_timer), so a request in flight
 * never blocks the worker. Each call adds an easy handle and returns a promise; when the
 * transfer ends the promise is settled, the isolate's pending jobs run, and the owner's wake
 * function is called, as after a timer. An isolate's transfers are listed in its
 * guest_fetch_set, so that freeing the isolate cancels them before anything could touch it.
 *
 * Policy (config `fetch { ... }`, docs in config.c's default file): http and https only;
 * `allowed_hosts` restricts the hosts (empty: any); every connection's address, after DNS, must
 * be public unless its host is in `allowed_private_hosts` (guest_fetch_addr_public); redirects are
 * followed by this code, not by curl, at most GUEST_FETCH_MAX_REDIRECTS, each target checked like
 * the first URL; one timeout covers the whole request; a response body larger than
 * max_response_bytes fails the request, and so does one that would make the bodies an isolate is
 * receiving exceed GUEST_FETCH_BUFFER_FACTOR times that. No proxy, netrc or cookie setting of the
 * environment reaches a transfer.
 *
 * Thread: owning worker only. */
#ifndef TRAIL_GUEST_FETCH_H
#define TRAIL_GUEST_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "guest/guest.h"

#define GUEST_MAX_FETCHES            1000        /* in flight per isolate */
#define GUEST_FETCH_MAX_REDIRECTS    20          /* as the Fetch standard */
#define GUEST_FETCH_MAX_HEADER_BYTES (256 << 10) /* response header section */
#define GUEST_FETCH_MAX_URL          (64 << 10)
#define GUEST_FETCH_MAX_HEADERS      1000 /* request header fields */
/* An isolate's transfers together hold at most this many times fetch.max_response_bytes of
 * response bodies while they receive them (the host's memory is shared by every isolate). */
#define GUEST_FETCH_BUFFER_FACTOR 4

typedef struct guest_fetch guest_fetch;
typedef struct guest_fetch_xfer guest_fetch_xfer;

/* One isolate's transfers in flight; embedded in its guest, zero-initialised when empty. */
typedef struct guest_fetch_set {
    guest_fetch_xfer *head;
    size_t n;
    uint64_t buffered; /* response bytes its transfers hold */
} guest_fetch_set;

/* A worker's outgoing HTTP over loop l; conf (borrowed, NULL: the defaults) must outlive it. */
guest_fetch *guest_fetch_new(loop *l, const cfg_fetch *conf);
/* Closes curl's connections and frees f; every set must have been cancelled. NULL is a no-op. */
void guest_fetch_free(guest_fetch *f);

/* `__trailhost.fetch(method, url, headers, body, timeoutMs)` for the isolate iso of a guest
 * whose transfers are in set: *result gets a promise. Invalid arguments, a refused URL or host
 * and transport failures all reject it with an Error; only TR_ETRAP-like failures of the isolate
 * itself are returned. wake(owner) is called after each of set's transfers settled its promise
 * (and may free the guest). env->fetch is created on the first call. */
int guest_fetch_call(guest_env *env, guest_fetch_set *set, jsg_isolate *iso, guest_wake_fn wake,
                     void *owner, size_t argc, const jsg_ref *argv, jsg_ref *result, tr_error *err);

/* The same transport for a host that is not an isolate (compiled components): args are the
 * five values of `__trailhost.fetch` (method, url, headers as [name, value] pairs, body as
 * bytes or null, timeoutMs), with the same checks and policy. done(ud, ...) is called once from
 * the loop, never during this call: rc 0 and the response [status, statusText, headers, body,
 * finalUrl] (valid during the call), or rc < 0 and why. An error returned here (an argument, the
 * policy, the limit of transfers) means done is never called. Cancel with
 * guest_fetch_set_cancel(set, NULL). */
typedef void (*guest_fetch_done_fn)(void *ud, int rc, const tr_error *why, const jsg_val *response);
int guest_fetch_start(guest_env *env, guest_fetch_set *set, const jsg_val *args,
                      guest_fetch_done_fn done, void *ud, tr_error *why);

/* Cancels set's transfers without settling their promises; they are never touched again. Call
 * before freeing iso (which may already be dead). */
void guest_fetch_set_cancel(guest_fetch_set *set, jsg_isolate *iso);

/* Whether conf lets a request reach host (as in a URL: lower case, IPv6 in brackets). */
bool guest_fetch_host_allowed(const cfg_fetch *conf, const char *host);

struct sockaddr;
/* Whether sa (AF_INET or AF_INET6) is a public address: not loopback, private, carrier-grade
 * NAT, link-local, unspecified, multicast, documentation or reserved, also when an IPv4 address
 * is written inside IPv6 (::ffff:a.b.c.d, 64:ff9b::a.b.c.d, 2002::/16). fetch() connects to any
 * other address only for hosts listed in fetch.allowed_private_hosts. */
bool guest_fetch_addr_public(const struct sockaddr *sa);

#endif
