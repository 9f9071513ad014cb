#!/usr/bin/env python3
"""bench/cluster.py TRAIL: `make bench`'s cluster line (bench/run.py calls run(); standalone it
prints the same Markdown section).

Three release `trail run` nodes form a cluster on loopback (the first bootstraps it, the others
join), each with one worker and the same data directory contents: bench/cluster's component and
its migration (1,000 rows of `items`). Beside them, a single-node trail serves the same component.
wrk drives `POST /items` (one INSERT through execute(): a write committed through Raft) and
`GET /items/:id` (a read by primary key, which dqlite answers on the leader) through a follower,
through the leader and on the single trail, interleaved as in bench/run.py (for each endpoint and
connection count, each target in turn). Every trail process is pinned to CPU 0 (the three nodes
share it, so the cluster gets the single trail's CPU), wrk to CPU 1.

Per run: requests/s, p50 and p99 latency, errors, and CPU us per request: user+sys of every trail
process of the setup (the three nodes, or the single one) over the run, divided by the requests wrk
completed.

The nodes are stopped (their process groups, SIGTERM then SIGKILL) and their directories removed
at the end, also when a step fails or the run is interrupted.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (bench/run.py: Server, wrk, cpu_ticks, ms, free_port, log)

ROOT = bench.ROOT
SRC = os.path.join(ROOT, "bench", "cluster")
READ_ID = 500
ENDPOINTS = [
    ("insert", "POST", "/items", '{"id":'),
    ("read", "GET", f"/items/{READ_ID}", f'"body":"item number {READ_ID}"'),
]
TITLES = {
    "insert": "POST /items (one INSERT through execute(); the id chosen by the handler)",
    "read": f"GET /items/:id (a read by primary key)",
}
TARGETS = ["single", "follower", "leader"]
TARGET_NAMES = {
    "single": "one trail (no cluster)",
    "follower": "cluster, through a follower",
    "leader": "cluster, through the leader",
}


def make_depot(path, wasm):
    os.makedirs(os.path.join(path, "wasm"))
    os.makedirs(os.path.join(path, "migrations"))
    shutil.copy(wasm, os.path.join(path, "wasm", "cluster_bench.wasm"))
    for f in os.listdir(os.path.join(SRC, "migrations")):
        shutil.copy(os.path.join(SRC, "migrations", f), os.path.join(path, "migrations", f))


def leader_address(trail, depot, want_voters=3, timeout=60.0):
    """The leader's cluster address, from `trail cluster status`, once it shows every voter."""
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        p = subprocess.run([trail, "cluster", "status", "--data-dir", depot],
                           capture_output=True, text=True, timeout=30)
        out = p.stdout + p.stderr
        m = re.search(r"leader: node \d+ at (\S+)", out)
        if p.returncode == 0 and m and out.count(" voter") >= want_voters:
            return m.group(1)
        time.sleep(0.3)
    raise RuntimeError(f"no leader with {want_voters} voters: {out.strip()}")


def measure(servers, port, ep, conns, secs, lua):
    """One warm-up run, then REPEAT measured ones (BENCH_REPEAT, as in bench/run.py); the one with
    the median CPU per request. CPU is that of every process in servers; "cpu_us_each" splits it
    by process (the order of servers)."""
    _, method, path, _ = ep
    bench.wrk(port, method, path, conns, bench.WARM, lua)
    runs = [measure_once(servers, port, method, path, conns, secs, lua)
            for _ in range(bench.REPEAT)]
    return sorted(runs, key=lambda r: r["cpu_us"])[len(runs) // 2]


def measure_once(servers, port, method, path, conns, secs, lua):
    c0 = [bench.cpu_ticks(s.pid) for s in servers]
    out = bench.wrk(port, method, path, conns, secs, lua)
    c1 = [bench.cpu_ticks(s.pid) for s in servers]
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    each = [(b - a) / bench.TCK * 1e6 / reqs if reqs else float("nan") for a, b in zip(c0, c1)]
    r = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": reqs,
        "p50_ms": bench.ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99_ms": bench.ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
        "cpu_us": sum(each),
        "cpu_us_each": each,
        "errors": 0,
        "load": os.getloadavg()[0],
    }
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["errors"] += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["errors"] += sum(int(x) for x in m.groups())
    return r


def check(port, ep, body="bench"):
    _, method, path, want = ep
    data = body.encode() if method == "POST" else None
    import urllib.request
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            st, text = resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        st, text = e.code, e.read().decode(errors="replace")
    if st != 200 or want not in text:
        raise RuntimeError(f"{method} {path} on port {port} answered {st} {text[:200]!r}")
    return text


def run(trail, secs, conns):
    """Measures and returns {"runs": [...], "load_before": x, "load_after": y, "leader": n} (or
    {"error": reason}). Never leaves a process or a directory behind."""
    work = tempfile.mkdtemp(prefix="trail-bench-cluster-")
    started = []
    old_term = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        wasm = os.path.join(work, "cluster_bench.wasm")
        subprocess.run([os.path.join(ROOT, "tools", "sdk-build.sh"), SRC, wasm], check=True,
                       stdout=subprocess.DEVNULL)
        lua = os.path.join(work, "post.lua")
        with open(lua, "w") as f:
            f.write('wrk.method = "POST"\nwrk.body = "bench"\n'
                    'wrk.headers["Content-Type"] = "text/plain"\n')
        res = {"load_before": os.getloadavg()[0], "runs": [], "seconds": secs, "conns": conns,
               "repeat": bench.REPEAT}

        def start(name, depot, extra):
            srv = bench.Server(name, [trail, "run", "--address", "127.0.0.1:@PORT@", "--data-dir",
                                      depot, "--runtime-threads", "1", "--quiet"] + extra)
            started.append(srv)
            # a joining node listens for HTTP only once it is a member
            if not srv.wait_ready(ENDPOINTS[1][2], timeout=120):
                raise RuntimeError(f"{name} did not start:\n{srv.output()[-2000:]}")
            bench.log(f"bench: {name} ready in {srv.ready_ms:.0f} ms (pid {srv.pid})")
            return srv

        nodes, addrs = [], []
        for i in range(3):
            depot = os.path.join(work, f"n{i + 1}")
            make_depot(depot, wasm)
            addrs.append(f"127.0.0.1:{bench.free_port()}")
            extra = ["--cluster-address", addrs[i]]
            if i:
                extra += ["--join", ",".join(addrs[:i])]
            nodes.append(start(f"node {i + 1}", depot, extra))
        leader_addr = leader_address(trail, os.path.join(work, "n3"))
        li = addrs.index(leader_addr)
        fi = (li + 1) % 3
        res["leader"] = li + 1
        single_depot = os.path.join(work, "single")
        make_depot(single_depot, wasm)
        single = start("single", single_depot, [])

        # Every target answers, and a row written through a follower is read through the other.
        other = (li + 2) % 3
        got = check(nodes[fi].port, ENDPOINTS[0], "written through a follower")
        new_id = int(re.search(r'"id":(\d+)', got).group(1))
        check(nodes[other].port, ("", "GET", f"/items/{new_id}", "written through a follower"))
        check(single.port, ENDPOINTS[0])

        # CPU split as: the leader, the follower measured through, the other follower
        ordered = [nodes[li], nodes[fi], nodes[other]]
        targets = {"single": ([single], single.port), "follower": (ordered, nodes[fi].port),
                   "leader": (ordered, nodes[li].port)}
        for ep in ENDPOINTS:
            for c in conns:
                for t in TARGETS:
                    procs, port = targets[t]
                    r = measure(procs, port, ep, c, secs, lua)
                    r.update(target=t, endpoint=ep[0], conns=c)
                    res["runs"].append(r)
                    bench.log(f"  cluster {t:<8} {ep[0]:<6} c={c:<3} {r['rps']:>7.0f} req/s"
                              f"  p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms"
                              f"  {r['cpu_us']:.1f} us/req"
                              + (f"  {r['errors']} errors" if r["errors"] else ""))
        res["load_after"] = os.getloadavg()[0]
        return res
    except (RuntimeError, OSError, subprocess.SubprocessError, KeyboardInterrupt) as e:
        bench.log(f"bench: the cluster line failed: {e!r}")
        return {"error": "interrupted" if isinstance(e, KeyboardInterrupt) else str(e)}
    finally:
        for srv in started:
            srv.stop()
        shutil.rmtree(work, ignore_errors=True)
        signal.signal(signal.SIGTERM, old_term)


def render(res):
    """The cluster section as Markdown lines."""
    L = ["## Cluster: three nodes on loopback beside one trail", ""]
    if "error" in res:
        return L + [f"Not measured: {res['error']}", ""]
    runs = res["runs"]
    loads = [r["load"] for r in runs] or [0]
    L.append(f"Three `trail run --cluster-address` nodes (one worker each) and a single trail serve"
             f" bench/cluster's component; every trail process on CPU 0, wrk on CPU 1;"
             f" {res['seconds']} s per run after a 1 s warm-up"
             f"{'' if res.get('repeat', 1) == 1 else ', median of %d runs' % res['repeat']}."
             f" CPU us/req: user+sys of every trail"
             f" process of the setup (three nodes, or one) / requests. Load average"
             f" {res['load_before']:.2f} before, {min(loads):.2f} to {max(loads):.2f} during,"
             f" {res['load_after']:.2f} after. The insert's round trip to the leader blocks the"
             f" node's worker (one statement at a time per worker), so through the cluster"
             f" req/s of POST is about 1 / its latency per node.")
    L.append("")
    get = {(r["target"], r["endpoint"], r["conns"]): r for r in runs}
    for key, _, _, _ in ENDPOINTS:
        L.append(f"### {TITLES[key]}")
        L.append("")
        L.append("| conns | setup | req/s | p50 ms | p99 ms | CPU us/req | of which leader /"
                 " follower / other | errors | req/s ÷ one trail | CPU ÷ one trail |")
        L.append("|---:|---|---:|---:|---:|---:|---|---:|---:|---:|")
        for c in res["conns"]:
            base = get.get(("single", key, c))
            for t in TARGETS:
                r = get.get((t, key, c))
                if not r:
                    continue
                ratio = (f"{r['rps'] / base['rps']:.2f}x | {r['cpu_us'] / base['cpu_us']:.2f}x"
                         if base and t != "single" else "- | -")
                split = (" / ".join(f"{x:.0f}" for x in r["cpu_us_each"])
                         if t != "single" else "-")
                L.append(f"| {c} | {TARGET_NAMES[t]} | {r['rps']:.0f} | {r['p50_ms']:.3f} |"
                         f" {r['p99_ms']:.3f} | {r['cpu_us']:.1f} | {split} | {r['errors']} |"
                         f" {ratio} |")
        L.append("")
    return L


def main():
    trail = os.path.abspath(sys.argv[1])
    conns = [int(c) for c in os.environ.get("BENCH_CLUSTER_CONNECTIONS", "1,16").split(",")]
    res = run(trail, bench.SECS, conns)
    print("\n".join(render(res)))
    return 1 if "error" in res else 0


if __name__ == "__main__":
    sys.exit(main())
