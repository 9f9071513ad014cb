#!/usr/bin/env python3
"""bench/run.py TRAIL DEPOT REFDB: the benchmark table (run it through bench/run.sh or `make bench`).

Every server is pinned to CPU 0 (taskset); wrk (one thread) is pinned to CPU 1 and drives every
endpoint at each connection count, one server at a time (the others idle), interleaved: for each
endpoint and connection count, each server in turn, so that drift in the machine's other work
touches all of them alike. Per run: requests/s, p50 and p99 latency (wrk
--latency), peak RSS (VmHWM, reset through /proc/PID/clear_refs before the run) and the server's
CPU time per request (user+sys of the whole process from /proc/PID/stat over the run, divided by
the requests wrk completed). One wrk thread saturates near what nginx can serve here, so CPU per
request is the figure that separates fast servers; requests/s separates slow ones.

Servers: trail (one worker) serving bench/app's component, plus its native /api/healthcheck;
nginx returning a fixed body (bench/http/nginx.conf.in); Node.js (node:http + better-sqlite3),
Bun (Bun.serve + bun:sqlite) and Deno (Deno.serve + node:sqlite) running bench/ref/*.mjs, each
when installed. Then the CPU-bound endpoint on trail with 1 and with 2 workers (both on CPUs 0-1).

Never pass/fail: a server that fails to start or answers wrongly is reported and skipped.

Environment: QUICK=1 (1 s runs), BENCH_SECONDS (default 5), BENCH_CONNECTIONS
(default "1,16,64"), BENCH_REPEAT (measured runs per cell, default 1; the median by CPU/request
is kept), BENCH_SERVERS (subset of "trail,rust,nginx,node,bun,deno,cluster"; cluster: three trail
nodes beside one, bench/cluster.py, with BENCH_CLUSTER_CONNECTIONS, default "1,16"), BENCH_ENDPOINTS
(subset of "hello,greet,json,stats,todo,cpu,user,kv,wlist,rlist,rread,wcreate,rcreate"; default all but kv), BENCH_OUT (results directory, default bench/results).
"""
import datetime
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
QUICK = os.environ.get("QUICK", "") not in ("", "0")
SECS = int(os.environ.get("BENCH_SECONDS", "1" if QUICK else "5"))  # wrk takes whole seconds
WARM = 1
REPEAT = int(os.environ.get("BENCH_REPEAT", "1"))
CONNS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "1,16,64").split(",")]
SERVER_CPU, CLIENT_CPU = "0", "1"
TCK = os.sysconf("SC_CLK_TCK")

# (key, method, path, a substring the body must contain)
ENDPOINTS = [
    ("hello", "GET", "/hello", "Hello from WASM!"),
    ("greet", "GET", "/greet/Alice", "Hello, Alice!"),
    ("json", "POST", "/json", '"received":{"message":"test"}'),
    ("stats", "GET", "/stats/todos", '"total":10000,"done":3333,"pending":6667'),
    ("todo", "GET", "/todos/4242", '"text":"todo number 4242"'),
    ("cpu", "GET", "/cpu", '"result":'),
]
# Endpoints only trail has (the references have no shared store to compare with).
TRAIL_ONLY = [
    ("kv", "GET", "/kv/incr", ""),
    ("user", "GET", "/me", "bench@example.org"),
    # the Record API (config written in main()) beside the same operations as WASM handlers
    ("wlist", "GET", "/todos?limit=20", '"text":"todo number 10000"'),
    ("rlist", "GET", "/api/records/v1/todos?limit=20", '"text":"todo number 10000"'),
    ("rread", "GET", "/api/records/v1/todos/4242", '"text":"todo number 4242"'),
    ("wcreate", "POST", "/todos", '"id":'),
    ("rcreate", "POST", "/api/records/v1/todos", '"ids":["'),
]
RECORD_KEYS = ["wlist", "rlist", "rread", "wcreate", "rcreate"]
CREATE_BODY = '{"user":7,"text":"bench","completed":0,"created_at":1,"updated_at":1}'
# wrk scripts by path for POST endpoints (others use the POST /json one); filled in main()
LUAS = {}
# Request headers by path: GET /me carries a bearer token (minted in main() with `trail user`).
HEADERS = {}
HEALTH = ("health", "GET", "/api/healthcheck", "Ok")  # trail native, and nginx's fixed body
UNCACHED = "trail, no result cache"
# The Rust component in trail (bench/rust/app), and the same Rust compiled for the host
# (bench/rust/native): GET /hello and GET /cpu only.
RUST, RUST_NATIVE = "trail, Rust", "Rust native"
RUST_KEYS = ("hello", "cpu")
# The compiled component bench/c (C, the same /hello body and /cpu loop), when run.sh built it.
COMPILED_C = "trail C (compiled)"
POST_BODY = '{"message":"test"}'
TITLES = {
    "hello": "GET /hello",
    "greet": "GET /greet/:name",
    "json": "POST /json",
    "stats": "GET /stats/todos (aggregate over 10,000 rows)",
    "todo": "GET /todos/:id (point lookup)",
    "cpu": "GET /cpu (CPU-bound, 20,000 xorshift rounds)",
    "kv": "GET /kv/incr (an increment in the shared key-value store; trail only)",
    "user": "GET /me (req.user() of a bearer token: an Ed25519 JWT verified; trail only)",
    "wlist": "GET /todos?limit=20 (WASM handler: 20 rows as JSON)",
    "rlist": "GET /api/records/v1/todos?limit=20 (Record API list)",
    "rread": "GET /api/records/v1/todos/:id (Record API read; the WASM one is GET /todos/:id)",
    "wcreate": "POST /todos (WASM handler: one INSERT)",
    "rcreate": "POST /api/records/v1/todos (Record API create)",
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fetch(port, method, path):
    body = CREATE_BODY if path in LUAS else POST_BODY
    data = body.encode() if method == "POST" else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if data:
        req.add_header("Content-Type", "application/json")
    for h in HEADERS.get(path, []):
        name, value = h.split(": ", 1)
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    v = float(m.group(1))
    return {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]


class Server:
    """A server process; `pid` is the process whose CPU and memory are measured."""

    def __init__(self, name, argv, env=None, cwd=None, cpus=SERVER_CPU, measured_child=False):
        self.name = name
        self.port = free_port()
        self.out = tempfile.TemporaryFile()
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env["PORT"] = str(self.port)
        argv = [a.replace("@PORT@", str(self.port)) for a in argv]
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(["taskset", "-c", cpus] + argv, env=full_env, cwd=cwd,
                                     stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.pid = self.proc.pid
        self.measured_child = measured_child
        self.ready_ms = None

    def wait_ready(self, path, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
                st, _ = fetch(self.port, "GET", path)
                if st < 500:
                    self.ready_ms = (time.monotonic() - self.t0) * 1000
                    if self.measured_child:  # nginx: measure the worker, not the master
                        kids = open(f"/proc/{self.pid}/task/{self.pid}/children").read().split()
                        self.pid = int(kids[0])
                    return True
            except OSError:
                pass
            time.sleep(0.01)
        return False

    def output(self):
        self.out.seek(0)
        return self.out.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def wrk(port, method, path, conns, secs, lua, cpus=CLIENT_CPU):
    argv = ["taskset", "-c", cpus, "wrk", "-t1", f"-c{conns}", f"-d{secs}s", "--latency",
            "--timeout", "10s"]
    if method == "POST":
        argv += ["-s", LUAS.get(path, lua)]
    for h in HEADERS.get(path, []):
        argv += ["-H", h]
    argv.append(f"http://127.0.0.1:{port}{path}")
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def measure(srv, ep, conns, lua, secs=SECS, cpus=CLIENT_CPU):
    """One warm-up run, then REPEAT measured runs; the one with the median CPU/request."""
    _, method, path, _ = ep
    wrk(srv.port, method, path, conns, WARM, lua, cpus)
    runs = [measure_once(srv, method, path, conns, lua, secs, cpus) for _ in range(REPEAT)]
    return sorted(runs, key=lambda r: r["cpu_us"])[len(runs) // 2]


def measure_once(srv, method, path, conns, lua, secs, cpus):
    reset_peak_rss(srv.pid)
    c0 = cpu_ticks(srv.pid)
    out = wrk(srv.port, method, path, conns, secs, lua, cpus)
    c1 = cpu_ticks(srv.pid)
    rss = status_kib(srv.pid, "VmHWM")
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    r = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": reqs,
        "p50_ms": ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99_ms": ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
        "rss_mib": rss / 1024,
        "cpu_us": (c1 - c0) / TCK * 1e6 / reqs if reqs else float("nan"),
        "errors": 0,
    }
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["errors"] += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["errors"] += sum(int(x) for x in m.groups())
    return r


def check(srv, ep):
    key, method, path, want = ep
    try:
        st, body = fetch(srv.port, method, path)
    except OSError as e:
        st, body = 0, str(e)
    if st != 200 or want not in body:
        log(f"bench: {srv.name} {method} {path} answered {st} {body[:200]!r}; skipped")
        return False
    return True


def start_server(srv, ready_path, results):
    """Waits for a server to answer; returns False (and stops it) when it does not."""
    if not srv.wait_ready(ready_path):
        log(f"bench: {srv.name} did not start:\n{srv.output()[-2000:]}")
        srv.stop()
        return False
    idle = status_kib(srv.pid, "VmRSS") / 1024
    log(f"bench: {srv.name} ready in {srv.ready_ms:.0f} ms (pid {srv.pid}), RSS {idle:.1f} MiB")
    results["servers"][srv.name] = {"ready_ms": srv.ready_ms, "idle_rss_mib": idle}
    return True


def run_interleaved(cells, lua, results):
    """cells: (server, endpoint) pairs. For each endpoint and connection count, every server in
    turn, so that drift in the machine's other work spreads over all servers alike. The servers
    not being measured are idle meanwhile."""
    ok = [(srv, ep) for srv, ep in cells if check(srv, ep)]
    keys = [e[0] for e in ENDPOINTS + TRAIL_ONLY]
    for key in keys[:1] + [HEALTH[0]] + keys[1:]:  # the limits right after GET /hello
        for c in CONNS:
            for srv, ep in ok:
                if ep[0] != key:
                    continue
                r = measure(srv, ep, c, lua)
                r.update(server=srv.name, endpoint=ep[0], conns=c, load=os.getloadavg()[0])
                results["runs"].append(r)
                log(f"  {srv.name:<12} {ep[0]:<7} c={c:<3} {r['rps']:>8.0f} req/s"
                    f"  p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  {r['rss_mib']:.1f} MiB"
                    f"  {r['cpu_us']:.2f} us/req" + (f"  {r['errors']} errors" if r["errors"] else ""))


def tool_version(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (p.stdout or p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def fmt_ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def tc_cpu(med):
    return med("trail", "cpu", "cpu_us")


def sv_ready(results, name):
    s = results["servers"].get(name)
    return f"{s['ready_ms']:.0f}" if s else "?"


def render(results):
    """The table as Markdown: one block per endpoint, rows by connections then server."""
    runs = results["runs"]
    get = {(r["server"], r["endpoint"], r["conns"]): r for r in runs}
    order = ["trail", COMPILED_C, UNCACHED, RUST, RUST_NATIVE, "trail native", "nginx", "node", "bun",
             "deno"]
    L = []
    env = results["env"]
    L.append(f"# trail benchmark, {env['date']}")
    L.append("")
    loads = [r["load"] for r in runs] or [0]
    L.append(f"- machine: {env['cpu']}, {env['ncpu']} CPUs; 1-minute load average"
             f" {env['load_before']:.2f} before, {min(loads):.2f} to {max(loads):.2f} during,"
             f" {env['load_after']:.2f} after (the load generator and the server itself count)")
    L.append(f"- trail {env['trail_rev']}; {env['versions']}")
    L.append(f"- wrk -t1, {env['seconds']:g} s per run after {env['warm']:g} s warm-up"
             f"{'' if env['repeat'] == 1 else ', median of %d runs' % env['repeat']}; "
             f"server on CPU {SERVER_CPU}, wrk on CPU {CLIENT_CPU}; trail with one worker")
    L.append("- CPU us/req: server user+sys over the run / requests. RSS: peak during the run."
             " Ratios: trail / that server (req/s: >1 means trail serves more; CPU: <1 means"
             " trail spends less per request).")
    L.append("- `trail native` is trail's built-in `GET /api/healthcheck`; `nginx` returns a fixed"
             " body. Both are shown under GET /hello as the limits for a WASM endpoint.")
    L.append(f"- `{UNCACHED}` is trail with `database {{ result_cache_mb: 0 }}`: the aggregate"
             " run by SQLite on every request, as the references do (docs/database.md).")
    L.append("")
    for key, _, path, _ in ENDPOINTS + TRAIL_ONLY:
        if not any(r["endpoint"] == key for r in runs):
            continue
        L.append(f"## {TITLES[key]}")
        L.append("")
        L.append("| conns | server | req/s | p50 ms | p99 ms | peak RSS MiB | CPU us/req |"
                 " trail/this req/s | trail/this CPU |")
        L.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for c in CONNS:
            t = get.get(("trail", key, c))
            for name in order:
                if key == "hello" and name in ("trail native", "nginx"):
                    r = get.get((name, "health", c))
                elif name in ("trail native", "nginx"):
                    continue
                else:
                    r = get.get((name, key, c))
                if not r:
                    continue
                rr = fmt_ratio(t["rps"], r["rps"]) if t and r is not t else ""
                rc = fmt_ratio(t["cpu_us"], r["cpu_us"]) if t and r is not t else ""
                err = f" ({r['errors']} errors)" if r["errors"] else ""
                L.append(f"| {c} | {name} | {r['rps']:.0f}{err} | {r['p50_ms']:.3f} | "
                         f"{r['p99_ms']:.3f} | {r['rss_mib']:.1f} | {r['cpu_us']:.2f} | {rr} | {rc} |")
        L.append("")

    # Medians over connection counts, and the targets of the performance issue (not pass/fail).
    def med(server, ep, field):
        v = [get[(server, ep, c)][field] for c in CONNS if (server, ep, c) in get]
        return statistics.median(v) if v else None

    L.append("## Summary (median over connection counts)")
    L.append("")
    refs = [s for s in ("node", "bun", "deno") if any(r["server"] == s for r in runs)]
    head = "| endpoint | trail req/s | trail CPU us/req |"
    for s in refs:
        head += f" {s} CPU us/req | trail/{s} req/s | trail/{s} CPU |"
    L.append(head)
    L.append("|---" * (3 + 3 * len(refs)) + "|")
    for key, _, _, _ in ENDPOINTS + TRAIL_ONLY:
        tr, tc = med("trail", key, "rps"), med("trail", key, "cpu_us")
        if tr is None:
            continue
        row = f"| {key} | {tr:.0f} | {tc:.2f} |"
        for s in refs:
            sr, sc = med(s, key, "rps"), med(s, key, "cpu_us")
            row += (f" {sc:.2f} | {fmt_ratio(tr, sr)} | {fmt_ratio(tc, sc)} |" if sr else " - | - | - |")
        L.append(row)
    tr, tc = med(UNCACHED, "stats", "rps"), med(UNCACHED, "stats", "cpu_us")
    if tr is not None:
        row = f"| stats, {UNCACHED} | {tr:.0f} | {tc:.2f} |"
        for s in refs:
            sr, sc = med(s, "stats", "rps"), med(s, "stats", "cpu_us")
            row += (f" {sc:.2f} | {fmt_ratio(tr, sr)} | {fmt_ratio(tc, sc)} |" if sr else " - | - | - |")
        L.append(row)
    for s, label in (("trail native", "trail native /api/healthcheck"), ("nginx", "nginx fixed body")):
        c = med(s, "health", "cpu_us")
        if c is not None:
            L.append(f"| {label} | {med(s, 'health', 'rps'):.0f} | {c:.2f} |" + " |" * (3 * len(refs)))
    L.append("")
    hc, nc, wc = med("trail", "hello", "cpu_us"), med("trail native", "health", "cpu_us"), None
    if hc and nc:
        L.append(f"- GET /hello (WASM) vs native /api/healthcheck, CPU per request: "
                 f"{hc:.2f} / {nc:.2f} us = {hc / nc:.2f}x (target <= 1.25x)")
    uc = med("trail", "user", "cpu_us")
    if hc and uc:
        L.append(f"- GET /me (req.user(), bearer token) vs GET /hello, CPU per request: {uc:.2f} /"
                 f" {hc:.2f} us: {uc - hc:.2f} us more (the token, remembered by the worker after its first"
                 f" Ed25519 check, the user object, the longer request; `make bench-auth` times"
                 f" the check itself; goal well under 100 us)")
    pairs = [("list 20", "wlist", "rlist"), ("read by id", "todo", "rread"),
             ("create", "wcreate", "rcreate")]
    got = [(n, med("trail", w, "cpu_us"), med("trail", r, "cpu_us")) for n, w, r in pairs]
    if any(w and r for _, w, r in got):
        L.append("- Record API vs the same operation as a WASM handler, CPU per request: " + "; ".join(
            f"{n} {r:.2f} / {w:.2f} us" for n, w, r in got if w and r))
    rc = med("trail", "rread", "cpu_us")
    if rc:
        L.append(f"- Record API read by id: {1e6 / rc:.0f} reads per CPU-second on one core; the"
                 f" reference publishes 54.6k reads/s on a Ryzen 7840U (8 cores, 16 threads), about"
                 f" {54600 / 8:.0f} per core")
    kc = med("trail", "kv", "cpu_us")
    if hc and kc:
        L.append(f"- GET /kv/incr vs GET /hello, CPU per request: {kc:.2f} / {hc:.2f} us ="
                 f" {kc / hc:.2f}x (goal <= 1.5x)")
    ng = med("nginx", "health", "cpu_us")
    if hc and ng:
        L.append(f"- GET /hello (WASM) vs nginx fixed body, CPU per request: {hc / ng:.2f}x")
    p99 = get.get(("trail", "hello", 64))
    if p99:
        L.append(f"- GET /hello p99 at 64 connections: {p99['p99_ms']:.3f} ms (target < 2 ms)")
    cc, ch = med(COMPILED_C, "cpu", "cpu_us"), med(COMPILED_C, "hello", "cpu_us")
    native = results["env"].get("native_cpu_us")
    if cc and native:
        L.append(f"- GET /cpu compiled (C in the sandbox) vs the same loop compiled natively, CPU:"
                 f" {cc:.2f} us per request / {native:.2f} us per call = {cc / native:.2f}x"
                 f" (the request's own cost included; goal <= 1.3x)")
    if cc and tc_cpu(med):
        L.append(f"- GET /cpu compiled C vs JS in trail, CPU per request: {cc:.2f} / "
                 f"{tc_cpu(med):.2f} us = {cc / tc_cpu(med):.3f}x")
    if ch and hc:
        L.append(f"- GET /hello compiled C vs JS, CPU per request: {ch:.2f} / {hc:.2f} us ="
                 f" {ch / hc:.2f}x (goal <= 1.1x)")
    if results["env"].get("compile_ms"):
        L.append(f"- bench/c: `trail components add` compiled it in {results['env']['compile_ms']}"
                 f" ms; first response after a start with the cache warm"
                 f" {sv_ready(results, COMPILED_C)} ms")
    sv = results["servers"]
    if "trail" in sv:
        L.append(f"- trail: first WASM response {sv['trail']['ready_ms']:.0f} ms after start"
                 f" (target 150 ms); idle RSS with one worker {sv['trail']['idle_rss_mib']:.1f} MiB")
    rc_, jc, nc_ = med(RUST, "cpu", "cpu_us"), med("trail", "cpu", "cpu_us"), med(RUST_NATIVE, "cpu", "cpu_us")
    if rc_:
        line = f"- GET /cpu in Rust (compiled, in trail's sandbox): {rc_:.2f} us/req"
        if jc:
            line += f"; JS in trail {jc:.2f} ({jc / rc_:.1f}x the Rust)"
        for s in ("bun", "node", "deno"):
            sc_ = med(s, "cpu", "cpu_us")
            if sc_:
                line += f"; {s} {sc_:.2f} (Rust/{s} {rc_ / sc_:.2f}x)"
        L.append(line + " (goal: Rust <= bun)")
    if rc_ and nc_:
        L.append(f"- GET /cpu in Rust, trail / the same Rust compiled for the host: {rc_:.2f} /"
                 f" {nc_:.2f} us = {rc_ / nc_:.2f}x (the sandbox's cost; goal <= 1.3x)")
    rh = med(RUST, "hello", "cpu_us")
    if rh and hc:
        L.append(f"- GET /hello in Rust / in JS, CPU per request: {rh:.2f} / {hc:.2f} us ="
                 f" {rh / hc:.2f}x (goal <= 1.1x)")
    rust = results.get("rust")
    if rust:
        L.append(f"- the Rust component: compiled to native code in {rust['compile_ms']} ms"
                 f" ({rust['wasm_bytes']} bytes of WebAssembly); after a restart with the cache warm,"
                 f" first response {sv[RUST]['ready_ms']:.0f} ms after start (goal < 150 ms)"
                 if RUST in sv else f"- the Rust component: compiled in {rust['compile_ms']} ms")
    sc = results.get("scaling")
    if sc:
        L.append("")
        L.append("## CPU-bound endpoint, 1 and 2 workers")
        L.append("")
        L.append(f"trail on CPUs 0-1 (`--runtime-threads N`), wrk on CPU 1 (its share at ~1 ms per"
                 f" request is small), GET /cpu, {sc['conns']} connections.")
        L.append("")
        L.append("| workers | req/s | p50 ms | p99 ms | peak RSS MiB | idle RSS MiB | CPU us/req |"
                 " CPUs used |")
        L.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for w in ("1", "2"):
            r = sc.get(w)
            if r:
                L.append(f"| {w} | {r['rps']:.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
                         f"{r['rss_mib']:.1f} | {r['idle_rss_mib']:.1f} | {r['cpu_us']:.2f} | "
                         f"{r['rps'] * r['cpu_us'] / 1e6:.2f} |")
        if sc.get("kv1") and sc.get("kv2"):
            L.append("")
            L.append(f"GET /kv/incr, the same way: {sc['kv1']['rps']:.0f} increments/s with 1 worker,"
                     f" {sc['kv2']['rps']:.0f} with 2 ({sc['kv2']['rps'] / sc['kv1']['rps']:.2f}x;"
                     f" each worker counts under its own key); GET /hello in the same setup"
                     f" {sc['hello1']['rps']:.0f} and {sc['hello2']['rps']:.0f} req/s"
                     f" ({sc['hello2']['rps'] / sc['hello1']['rps']:.2f}x): for requests this cheap"
                     f" wrk on the second CPU is the limit, so compare the two ratios.")
        if sc.get("1") and sc.get("2"):
            L.append("")
            L.append(f"Throughput with 2 workers / 1 worker: {sc['2']['rps'] / sc['1']['rps']:.2f}x"
                     f" (CPUs used = req/s x CPU per request: what the server got; on a machine"
                     f" busy with other work a second worker finds no idle CPU to use)."
                     f" Idle RSS added by the second worker (its isolate, stack, SQLite"
                     f" connection): {sc['2']['idle_rss_mib'] - sc['1']['idle_rss_mib']:.1f} MiB.")
    L.append("")
    return "\n".join(L)


def main():
    trail, depot, refdb = (os.path.abspath(a) for a in sys.argv[1:4])
    depot_c = os.path.abspath(sys.argv[4]) if len(sys.argv) > 4 else None
    servers = os.environ.get("BENCH_SERVERS", "trail,rust,nginx,node,bun,deno,cluster").split(",")
    keys = os.environ.get("BENCH_ENDPOINTS",
                          ",".join([e[0] for e in ENDPOINTS] + ["user"] + RECORD_KEYS)).split(",")
    eps = [e for e in ENDPOINTS if e[0] in keys]
    trail_eps = eps + [e for e in TRAIL_ONLY if e[0] in keys]
    work = tempfile.mkdtemp(prefix="trail-bench-")
    if any(e[0] == "user" for e in trail_eps):
        # a user and an access token for GET /me, made by the CLI on the bench's data directory
        subprocess.run([trail, "user", "add", "bench@example.org", "bench-password",
                        "--data-dir", depot], capture_output=True, check=False)
        out = subprocess.run([trail, "user", "mint-token", "bench@example.org", "--data-dir",
                              depot], capture_output=True, text=True, check=True).stdout
        token = re.search(r"auth_token: (\S+)", out).group(1)
        HEADERS["/me"] = [f"Authorization: Bearer {token}"]
    if any(e[0] in RECORD_KEYS for e in trail_eps):
        cfg = os.path.join(depot, "config.textproto")
        text = open(cfg).read() if os.path.exists(cfg) else ""
        if not re.search(r"^\s*record_apis\s*\{", text, re.M):  # the default config names it in a comment
            with open(cfg, "a") as f:
                f.write('\nrecord_apis { name: "todos" table_name: "todos" acl_world: [READ, CREATE] }\n')
        for path in ("/todos", "/api/records/v1/todos"):
            LUAS[path] = os.path.join(work, f"create{len(LUAS)}.lua")
            with open(LUAS[path], "w") as f:
                f.write('wrk.method = "POST"\nwrk.body = \'%s\'\n'
                        'wrk.headers["Content-Type"] = "application/json"\n' % CREATE_BODY)
    lua = os.path.join(work, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = \'%s\'\n'
                'wrk.headers["Content-Type"] = "application/json"\n' % POST_BODY)
    nm = os.path.join(BENCH, "node_modules")
    bun_bin = os.path.join(nm, "bun", "bin", "bun.exe")
    deno_bin = os.path.join(nm, "deno", "deno")
    if not os.path.exists(deno_bin):
        deno_bin = os.path.join(nm, "@deno", "linux-x64-glibc", "deno")

    def fresh_db(name):
        p = os.path.join(work, f"{name}.db")
        shutil.copyfile(refdb, p)
        return p

    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    versions = [f"node {tool_version(['node', '--version'])}",
                tool_version(["nginx", "-v"]).replace("nginx version: ", "")]
    if os.path.exists(bun_bin):
        versions.append("bun " + tool_version([bun_bin, "--version"]))
    if os.path.exists(deno_bin):
        versions.append(tool_version([deno_bin, "--version"]).split(" (")[0])
    rev = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    results = {
        "env": {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "cpu": cpu, "ncpu": os.cpu_count(), "load_before": os.getloadavg()[0],
                "trail_rev": rev, "versions": ", ".join(versions), "seconds": SECS, "warm": WARM, "repeat": REPEAT,
                "conns": CONNS,
                "native_cpu_us": float(os.environ["BENCH_NATIVE_CPU_US"])
                if os.environ.get("BENCH_NATIVE_CPU_US") else None,
                "compile_ms": os.environ.get("BENCH_C_COMPILE_MS")},
        "servers": {},
        "runs": [],
    }
    log(f"bench: load average {os.getloadavg()[0]:.2f}; {SECS:g} s per run, connections {CONNS}")

    started, cells = [], []

    def add(srv, ready_path, endpoints):
        started.append(srv)
        if start_server(srv, ready_path, results):
            cells.extend((srv, ep) for ep in endpoints)

    try:
        if "trail" in servers:
            add(Server("trail", [trail, "run", "--address", "127.0.0.1:@PORT@", "--data-dir",
                                 depot, "--runtime-threads", "1", "--quiet"]), "/hello", trail_eps)
            if depot_c:
                add(Server(COMPILED_C, [trail, "run", "--address", "127.0.0.1:@PORT@",
                                        "--data-dir", depot_c, "--runtime-threads", "1",
                                        "--quiet"]),
                    "/hello", [e for e in eps if e[0] in ("hello", "cpu")])
            add(Server("trail native", [trail, "run", "--address", "127.0.0.1:@PORT@",
                                        "--data-dir", depot, "--runtime-threads", "1", "--quiet"]),
                "/api/healthcheck", [HEALTH])
            stats = [e for e in eps if e[0] == "stats"]
            if stats:
                # the same app and data, the result cache off: SQLite runs the aggregate each time
                plain = os.path.join(work, "depot-no-result-cache")
                shutil.copytree(depot, plain, ignore=shutil.ignore_patterns("data", "trail.sock"))  # migrates its own
                with open(os.path.join(plain, "config.textproto"), "w") as f:
                    f.write("database { result_cache_mb: 0 }\n")
                add(Server(UNCACHED, [trail, "run", "--address", "127.0.0.1:@PORT@", "--data-dir",
                                      plain, "--runtime-threads", "1", "--quiet"]), "/hello", stats)
        rust_depot = os.environ.get("BENCH_RUST_DEPOT")
        if "rust" in servers and rust_depot:
            reps = [e for e in eps if e[0] in RUST_KEYS]
            # The first start compiles the module into the data directory's cache; the measured
            # server is a restart with the cache warm (its ready_ms is that start's first response).
            srv = Server("trail, Rust (compiling)", [trail, "run", "--address", "127.0.0.1:@PORT@",
                                                     "--data-dir", rust_depot, "--runtime-threads", "1"])
            if srv.wait_ready("/hello", timeout=900):
                m = re.search(r"compiled to native code in (\d+) ms", srv.output())
                wasm = os.path.join(rust_depot, "wasm", "bench_app.wasm")
                results["rust"] = {"compile_ms": int(m.group(1)) if m else -1,
                                   "wasm_bytes": os.path.getsize(wasm)}
                log(f"bench: the Rust component compiled in {results['rust']['compile_ms']} ms")
            else:
                log(f"bench: the Rust component did not load:\n{srv.output()[-2000:]}")
            srv.stop()
            if "rust" in results:
                add(Server(RUST, [trail, "run", "--address", "127.0.0.1:@PORT@", "--data-dir",
                                  rust_depot, "--runtime-threads", "1", "--quiet"]), "/hello", reps)
        native = os.environ.get("BENCH_RUST_NATIVE")
        if "rust" in servers and native:
            add(Server(RUST_NATIVE, [native]), "/hello", [e for e in eps if e[0] in RUST_KEYS])
        if "nginx" in servers and shutil.which("nginx"):
            nd = os.path.join(work, "nginx")
            os.makedirs(os.path.join(nd, "logs"))
            port = free_port()
            with open(os.path.join(BENCH, "http", "nginx.conf.in")) as f:
                conf = f.read().replace("@DIR@", nd).replace("@PORT@", str(port))
            with open(os.path.join(nd, "nginx.conf"), "w") as f:
                f.write(conf)
            srv = Server("nginx", ["nginx", "-p", nd, "-c", os.path.join(nd, "nginx.conf"), "-e",
                                   os.path.join(nd, "logs", "error.log")], measured_child=True)
            srv.port = port
            add(srv, "/", [HEALTH])
        if "node" in servers:
            if os.path.isdir(os.path.join(nm, "better-sqlite3")):
                add(Server("node", ["node", os.path.join(BENCH, "ref", "node.mjs")],
                           env={"DB": fresh_db("node")}), "/hello", eps)
            else:
                log("bench: better-sqlite3 is not installed (bench/node_modules); Node.js skipped")
        if "bun" in servers:
            if os.path.exists(bun_bin):
                add(Server("bun", [bun_bin, os.path.join(BENCH, "ref", "bun.mjs")],
                           env={"DB": fresh_db("bun")}), "/hello", eps)
            else:
                log("bench: bun is not installed (bench/node_modules); skipped")
        if "deno" in servers:
            if os.path.exists(deno_bin):
                add(Server("deno", [deno_bin, "run", "--allow-all", "--quiet",
                                    os.path.join(BENCH, "ref", "deno.mjs")],
                           env={"DB": fresh_db("deno"), "DENO_NO_UPDATE_CHECK": "1",
                                "DENO_DIR": os.path.join(work, "deno-cache")}), "/hello", eps)
            else:
                log("bench: deno is not installed (bench/node_modules); skipped")
        try:
            run_interleaved(cells, lua, results)
        finally:
            for srv in started:
                srv.stop()
        cpu_ep = next((e for e in eps if e[0] == "cpu"), None)
        if "trail" in servers and cpu_ep:
            conns = 16
            sc = {"conns": conns}
            for w in ("1", "2"):
                srv = Server(f"trail x{w}", [trail, "run", "--address", "127.0.0.1:@PORT@",
                                             "--data-dir", depot, "--runtime-threads", w, "--quiet"],
                             cpus="0,1")
                if not srv.wait_ready("/hello"):
                    log(f"bench: trail with {w} workers did not start:\n{srv.output()[-2000:]}")
                    srv.stop()
                    continue
                time.sleep(0.2)
                idle = status_kib(srv.pid, "VmRSS") / 1024
                try:
                    r = measure(srv, cpu_ep, conns, lua, cpus=CLIENT_CPU)
                    kv_ep = next((e for e in trail_eps if e[0] == "kv"), None)
                    hello_ep = next((e for e in trail_eps if e[0] == "hello"), None)
                    if kv_ep and hello_ep:
                        # /hello beside it: what a second worker gives a request this cheap on
                        # this machine, where wrk needs most of the CPU the second worker would use
                        sc["kv" + w] = measure(srv, kv_ep, conns, lua, cpus=CLIENT_CPU)
                        sc["hello" + w] = measure(srv, hello_ep, conns, lua, cpus=CLIENT_CPU)
                finally:
                    srv.stop()
                r["idle_rss_mib"] = idle
                sc[w] = r
                log(f"  trail {w} worker(s) cpu c={conns} {r['rps']:.0f} req/s p99 {r['p99_ms']:.3f} ms"
                    f" idle RSS {idle:.1f} MiB")
            results["scaling"] = sc
        if "cluster" in servers:
            import cluster  # bench/cluster.py: three nodes beside one trail
            conns = os.environ.get("BENCH_CLUSTER_CONNECTIONS", "1,16")
            results["cluster"] = cluster.run(trail, SECS, [int(c) for c in conns.split(",")])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results["env"]["load_after"] = os.getloadavg()[0]
    text = render(results)
    if "cluster" in results:
        import cluster
        text += "\n" + "\n".join(cluster.render(results["cluster"]))
    print(text)
    out = os.environ.get("BENCH_OUT", os.path.join(BENCH, "results"))
    os.makedirs(out, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(out, f"{stamp}.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out, f"{stamp}.json"), "w") as f:
        json.dump(results, f, indent=1)
    log(f"bench: saved {os.path.join(out, stamp)}.md and .json")


if __name__ == "__main__":
    main()
