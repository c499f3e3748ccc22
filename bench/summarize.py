#!/usr/bin/env python3
"""Reads one bench/results/<time>/ directory written by bench/run.sh and prints the summary
(Markdown) with ratios against the reference measured in the same run."""
import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest"


def kv(path):
    d = {}
    if not os.path.exists(path):
        return d
    for line in open(path):
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            d[k] = v
    return d


def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def parse_wrk(path):
    t = open(path).read()
    r = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))}
    r["p50"] = ms(re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1))
    r["p99"] = ms(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", t)
    r["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", t)
    r["sockerr"] = m.group(1) if m else ""
    m = re.search(r"server_cpu_ticks=(\d+)", t)
    r["ticks"] = int(m.group(1)) if m else 0
    m = re.search(r"wall_ms=(\d+)", t)
    r["wall"] = int(m.group(1)) / 1000 if m else dur
    m = re.search(r"lua: (.*)", t)
    r["lua"] = m.group(1) if m else ""
    return r


machine = kv(os.path.join(out, "machine.txt"))
clk = int(machine.get("clk_tck", 100))
dur = float(machine.get("duration_s", 3))

names = [
    ("reference", "1. reference: candado-bare, POST 72-byte body"),
    ("control", "   control: candado-bare, scenario 2's Lua request generator"),
    ("distinct", "2. acquire, distinct resources"),
    ("cycle", "3. acquire→release cycles (req/s counts both)"),
    ("contended", "4. contended acquire, one resource"),
    ("info", "5. info reads"),
]
res = {}
for key, _ in names:
    runs = [parse_wrk(f) for f in sorted(glob.glob(os.path.join(out, f"wrk-{key}-*.txt")))]
    if runs:
        res[key] = runs

ref = statistics.median(r["rps"] for r in res["reference"])


def med(key, field):
    return statistics.median(r[field] for r in res[key])


def cpu_us_per_req(key):
    # server CPU time (user+sys) divided by the requests served, median over runs
    return statistics.median(r["ticks"] / clk * 1e6 / r["requests"] for r in res[key] if r["requests"])


def cpu_share(key):
    # server CPU time over the wall time of the wrk process (which includes its start-up)
    return statistics.median(r["ticks"] / clk / r["wall"] * 100 for r in res[key])


def yes(ok):
    return "met" if ok else "**missed**"


print(f"# Candado benchmark run {machine.get('date', '?')} (commit {machine.get('commit', '?')})\n")
print(f"Machine: {machine.get('nproc')} CPUs, {machine.get('cpu')}, kernel {machine.get('kernel')}, "
      f"wrk {machine.get('wrk')}; load average at start {machine.get('loadavg_start')}.")
print(f"Server pinned to CPU {machine.get('server_cpu')}, load generator to CPU {machine.get('client_cpu')}. "
      f"wrk -t1 -c{machine.get('conns')} -d{machine.get('duration_s')}s, keep-alive, median of "
      f"{machine.get('runs')} interleaved rounds.\n")
print("| scenario | req/s | × reference | p50 ms | p99 ms | best-run p99 ms | server CPU | server µs/req | p99 < 1 ms |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for key, label in names:
    if key not in res:
        continue
    rps, p50, p99 = med(key, "rps"), med(key, "p50"), med(key, "p99")
    best = min(r["p99"] for r in res[key])
    print(f"| {label} | {rps:,.0f} | {rps / ref:.2f} | {p50:.3f} | {p99:.3f} | {best:.3f} | "
          f"{cpu_share(key):.0f}% | {cpu_us_per_req(key):.1f} | {yes(p99 < 1.0)} |")
print()

notes = []
for key, runs in res.items():
    all_rps = ", ".join(f"{r['rps']:,.0f} ({r['p99']:.2f})" for r in runs)
    extra = ""
    bad = sum(r["non2xx"] for r in runs)
    if bad:
        extra += f"; non-2xx: {bad}"
    errs = [r["sockerr"] for r in runs if r["sockerr"]]
    if errs:
        extra += f"; socket errors: {errs[0]}"
    luas = [r["lua"] for r in runs if r["lua"]]
    if luas:
        extra += f"; last run's script counts: {luas[-1]}"
    notes.append(f"- {key}: {all_rps}{extra}")
print("Per-run req/s (p99 ms):\n" + "\n".join(notes) + "\n")

for key in ("distinct", "cycle", "contended", "info"):
    p = os.path.join(out, f"stats-{key}.json")
    if os.path.exists(p):
        try:
            c = json.load(open(p))["counters"]
            print(f"- server counters after {key}: " + ", ".join(f"{k} {v}" for k, v in c.items() if v))
        except (ValueError, KeyError):
            pass
print()

acq_ratio = med("distinct", "rps") / ref
print("| target | measured | result |")
print("| --- | --- | --- |")
print(f"| acquire throughput ≥ 0.9 × bare | {acq_ratio:.2f} × ({med('distinct', 'rps'):,.0f} vs {ref:,.0f} req/s) | {yes(acq_ratio >= 0.9)} |")
worst = max(((med(k, "p99"), k) for k in res if k not in ("reference", "control")))
print(f"| p99 < 1 ms at {machine.get('conns')} connections (all lock scenarios) | worst {worst[0]:.3f} ms ({worst[1]}) | {yes(worst[0] < 1.0)} |")

mem = kv(os.path.join(out, "memory.txt"))
if mem:
    after = int(mem["rss_after_kb"]) / 1024
    before = int(mem["rss_before_kb"]) / 1024
    n = int(mem["load_granted"])
    print(f"| {n:,} live locks (30-byte names) ≤ 256 MB RSS | {after:.0f} MB (from {before:.0f} MB: "
          f"{(after - before) * 1024 * 1024 / max(n, 1):.0f} B/lock); loaded in {float(mem['load_seconds']):.1f} s "
          f"at {int(mem['load_rate']):,} req/s pipelined | {yes(after <= 256 and n >= 1000000)} |")
exp = kv(os.path.join(out, "expiry.txt"))
if exp and "probe_max_ms" in exp:
    mx = float(exp["probe_max_ms"])
    print(f"| mass expiry: probe latency never > 10 ms | max {mx:.1f} ms (stats {float(exp['probe_max_stats_ms']):.1f}, "
          f"acquire {float(exp['probe_max_acquire_ms']):.1f}); {exp['probe_over_10ms']} of {2 * int(exp['probe_pairs'])} "
          f"answers > 10 ms; p99 {float(exp['probe_p99_ms']):.3f} ms | {yes(mx <= 10)} |")
print()
if exp and "probe_max_ms" in exp:
    print(f"Mass expiry: {int(exp['load_granted']):,} locks, ttl {exp['ttl_min']}–{exp['ttl_max']} ms so that all end "
          f"{exp['deadline_in_ms']} ms after the load started; stats showed activeLocks = 0 "
          f"{float(exp['active_zero_after_deadline_ms']):.0f} ms after the deadline and totalLocks = 0 (cleanup done) "
          f"{float(exp['cleanup_done_after_deadline_ms']):.0f} ms after it (the probe's own lock excluded); "
          f"RSS {int(exp['rss_after_expiry_kb']) / 1024:.0f} MB after expiry.")
ho = kv(os.path.join(out, "handoff.txt"))
if ho:
    print(f"Hand-off: {ho['handoff_waiters']} waiters × {ho['handoff_rounds']} rounds = {ho['handoff_samples']} "
          f"release→grant samples: p50 {float(ho['handoff_p50_ms']):.3f} ms, p99 {float(ho['handoff_p99_ms']):.3f} ms, "
          f"max {float(ho['handoff_max_ms']):.3f} ms, mean {float(ho['handoff_mean_ms']):.3f} ms "
          f"(bad answers: {ho['handoff_bad']}).")
print(f"\nRaw results: {out}")
