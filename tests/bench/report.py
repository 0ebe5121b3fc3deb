#!/usr/bin/env python3
"""Benchmark bookkeeping for tests/bench/run.sh (standard library only).

  report.py meta FILE key=value...   write one scenario's description (fields below)
  report.py set FILE key=value...    add to it (run.sh sets error=... when the gateway died)
  report.py build RAW OUT MODE [FRESH]  read RAW/*.meta.json and the raw figures they name, print
                                     the table, write OUT/results.json and OUT/latency.png;
                                     with FRESH (GROWN=N: RAW is the grown pass, FRESH the
                                     fresh one), both tables and the grown figures beside the fresh
  report.py idle RAW/NAME.json ...   (used by run.sh) assemble the idle-memory figures
  report.py soak OUT SAMPLES LOADGEN RATE DURATION EVERY   (used by soak.sh) table + soak.json

A scenario's meta (all optional but name and kind):
  name, label        key and the text shown in the table
  kind               http (raw: loadgen --find-saturation JSON; a flow scenario's rates are
                     flows/s and its figures per step are kept too) | pgbench (raw: pgbench's
                     output) | memory (raw: JSON from run.sh) | export (raw: JSON from run.sh:
                     rows, seconds to the last byte, rss_growth_kib; the rate is rows/s) | failed
  raw                file name in RAW
  ceiling            name of the scenario whose rate is this one's ceiling (ratio column)
  versus             name of a scenario this one's rate is set against (a line under the table)
  target_versus      rate at least this times the versus scenario's
  per_transaction    pgbench: items per transaction; the rate is tps times this
  target_rate        rate at least this (per second)
  target_ratio       rate at least this times the ceiling's
  target_p99_ms      p99 at half saturation at most this
  target_rss_mib     resident memory at most this (export: its growth during the export)
  target_seconds     export: the last byte within this many seconds
  note               shown under the table
  busy_pct_before/after  CPU use of the whole machine just before and after (run.sh sets them)
"""
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
BUSY_WARN_PCT = 25  # CPU use between scenarios (the bench idle) worth a warning


def cmd_meta(path, pairs):
    meta = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            sys.exit(f"report.py meta: expected key=value, got {pair!r}")
        if NUMBER.match(value) and key != "name":
            meta[key] = float(value) if "." in value else int(value)
        else:
            meta[key] = value
    with open(path, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)


def cmd_set(path, pairs):
    """Adds key=value pairs to an existing meta (or starts one)."""
    meta = load_json(path) if os.path.exists(path) else {"name": os.path.basename(path).split(".")[0], "kind": "failed"}
    for pair in pairs:
        key, _, value = pair.partition("=")
        meta[key] = int(value) if re.match(r"^-?\d+$", value) else value
    with open(path, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def parse_pgbench(text):
    out = {}
    m = re.search(r"^tps = ([0-9.]+)", text, re.M)
    if m:
        out["tps"] = float(m.group(1))
    m = re.search(r"^latency average = ([0-9.]+) ms", text, re.M)
    if m:
        out["latency_avg_ms"] = float(m.group(1))
    m = re.search(r"^number of failed transactions: (\d+)", text, re.M)
    if m:
        out["failed"] = int(m.group(1))
    m = re.search(r"^number of transactions actually processed: (\d+)", text, re.M)
    if m:
        out["transactions"] = int(m.group(1))
    for key in ("number of clients", "number of threads", "duration"):
        m = re.search(rf"^{key}: (\d+)", text, re.M)
        if m:
            out[key.replace("number of ", "").replace(" ", "_")] = int(m.group(1))
    return out


def flow_steps(run):
    """A flow scenario's figures per step (loadgen's flow_steps) of one run."""
    return [
        {
            "step": st["step"],
            "answers": st["answers"],
            "status": st["status"],
            "p50_ms": st["latency_ms"]["p50"],
            "p90_ms": st["latency_ms"]["p90"],
            "p99_ms": st["latency_ms"]["p99"],
            "p99_9_ms": st["latency_ms"]["p99_9"],
            "max_ms": st["latency_ms"]["max"],
            "mean_ms": st["latency_ms"]["mean"],
        }
        for st in run["flow_steps"]
    ]


def evaluate(meta, raw_dir):
    """One scenario's row: its figures, from its meta and raw output."""
    row = {k: meta[k] for k in meta}
    row.setdefault("label", meta["name"])
    kind = meta.get("kind")
    raw_path = os.path.join(raw_dir, meta["raw"]) if meta.get("raw") else None
    try:
        if kind == "http":
            raw = load_json(raw_path)
            row["rate"] = raw.get("saturation_rate") or 0
            half = raw.get("at_half") or {}
            lat = half.get("latency_ms") or {}
            row["at_half"] = {
                "offered_rate": half.get("offered_rate"),
                "achieved_rate": half.get("achieved_rate"),
                "errors": (half.get("errors") or {}).get("total"),
                "p50_ms": lat.get("p50"),
                "p99_ms": lat.get("p99"),
                "p99_9_ms": lat.get("p99_9"),
                "max_ms": lat.get("max"),
            }
            if half.get("flow_steps"):
                row["at_half"]["flow_steps"] = flow_steps(half)
            # A run that ran out of prepared requests, or completed none, measured nothing.
            if half.get("input_exhausted") or not half.get("completed"):
                row["error"] = ("the measurement at half load ran out of prepared requests"
                                if half.get("input_exhausted") else "the measurement at half load completed no request")
            for step in raw.get("steps", []):
                if step.get("input_exhausted"):
                    row["error"] = "a step ran out of prepared requests: prepare more (run.sh)"
            row["steps"] = [
                {
                    "offered_rate": s["offered_rate"],
                    "achieved_rate": s["achieved_rate"],
                    "p50_ms": s["latency_ms"]["p50"],
                    "p99_ms": s["latency_ms"]["p99"],
                    "p99_9_ms": s["latency_ms"]["p99_9"],
                    "max_ms": s["latency_ms"]["max"],
                    "errors": s["errors"]["total"],
                    "pass": s["pass"],
                    **({"flow_steps": flow_steps(s)} if s.get("flow_steps") else {}),
                }
                for s in raw.get("steps", [])
            ]
            if raw.get("capped_at_rate_max"):
                row["capped"] = True
            if not row["rate"]:
                # a result, not a failure of the bench: no rate met the criteria
                row["finding"] = "no step passed"
                steps = raw.get("steps") or []
                if steps:
                    e = steps[0]["errors"]
                    row["finding"] += (f"; first step: {e['http']} HTTP errors, {e['socket']} socket errors, "
                                     f"{e['timeout']} timeouts, p99 {steps[0]['latency_ms']['p99']} ms")
                first = next((s.get("first_error") for s in steps if s.get("first_error")), None)
                if first:
                    row["finding"] += f" (first error: {first[:120]})"
        elif kind == "pgbench":
            with open(raw_path, encoding="utf-8", errors="replace") as f:
                parsed = parse_pgbench(f.read())
            row["pgbench"] = parsed
            row["rate"] = parsed.get("tps")
            if row["rate"] is not None and meta.get("per_transaction"):
                row["rate"] *= meta["per_transaction"]
            if row["rate"] is None:
                row["error"] = "pgbench printed no tps (see " + meta["raw"] + ")"
            elif parsed.get("failed"):
                row["error"] = f"{parsed['failed']} failed transactions"
        elif kind == "memory":
            raw = load_json(raw_path)
            row["memory"] = raw
            row["rss_mib"] = raw["rss_kib"] / 1024.0
            if raw.get("open") != raw.get("requested"):
                row["error"] = f"only {raw.get('open')} of {raw.get('requested')} connections opened"
        elif kind == "export":
            raw = load_json(raw_path)
            row["export"] = raw
            row["rate"] = raw["rows"] / raw["seconds"] if raw.get("seconds") else None
            row["seconds"] = raw.get("seconds")
            if "rss_growth_kib" in raw:
                row["rss_mib"] = raw["rss_growth_kib"] / 1024.0
        elif kind == "failed":
            row.setdefault("error", "failed")
    except (OSError, ValueError, KeyError, TypeError) as e:
        row["error"] = f"cannot read {meta.get('raw')}: {e}"
    return row


def check_targets(row, by_name):
    checks = []
    rate = row.get("rate")
    ceiling_name = row.get("ceiling")
    if ceiling_name:
        ceiling = by_name.get(ceiling_name, {}).get("rate")
        row["ceiling_rate"] = ceiling
        if ceiling and rate is not None:
            row["ratio"] = rate / ceiling
    versus = by_name.get(row.get("versus") or "", {}).get("rate")
    if versus and rate is not None:
        row["versus_rate"] = versus
        row["versus_ratio"] = rate / versus
    if "target_versus" in row:
        t = row["target_versus"]
        checks.append({"target": f"≥{t:g}×{row['versus']}",
                       "met": row.get("versus_ratio") is not None and row["versus_ratio"] >= t})
    if "target_rate" in row:
        t = row["target_rate"]
        checks.append({"target": f"≥{t:,.0f}/s", "met": rate is not None and rate >= t})
    if "target_ratio" in row:
        t = row["target_ratio"]
        checks.append({"target": f"≥{t:g}×ceiling", "met": row.get("ratio") is not None and row["ratio"] >= t})
    if "target_p99_ms" in row:
        t = row["target_p99_ms"]
        p99 = (row.get("at_half") or {}).get("p99_ms")
        checks.append({"target": f"p99≤{t:g}ms", "met": p99 is not None and p99 <= t})
    if "target_rss_mib" in row:
        t = row["target_rss_mib"]
        checks.append({"target": f"≤{t:g}MiB", "met": row.get("rss_mib") is not None and row["rss_mib"] <= t})
    if "target_seconds" in row:
        t = row["target_seconds"]
        checks.append({"target": f"≤{t:g}s", "met": row.get("seconds") is not None and row["seconds"] <= t})
    row["targets"] = checks
    if "error" in row and checks:
        for c in checks:
            c["met"] = False
    row["met"] = all(c["met"] for c in checks) if checks else None


def fmt_rate(v):
    return "-" if v is None else f"{v:,.0f}"


def fmt_ms(v):
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


def print_table(rows, mode):
    head = ["scenario", "saturation/s", "p50", "p99", "p99.9", "max", "ceiling/s", "ratio", "target", "met?"]
    lines = []
    for r in rows:
        half = r.get("at_half") or {}
        if r.get("kind") == "memory":
            mem = r.get("memory") or {}
            value = "-" if r.get("rss_mib") is None else f"{r['rss_mib']:.1f} MiB"
            label = f"{r['label']} ({mem.get('open', '?'):,} conns)" if isinstance(mem.get("open"), int) else r["label"]
        elif r.get("kind") == "export" and r.get("seconds") is not None:
            value = fmt_rate(r.get("rate"))
            label = f"{r['label']} ({(r.get('export') or {}).get('rows', 0):,} rows in {r['seconds']:.2f} s"
            label += f", RSS +{r['rss_mib']:.1f} MiB)" if r.get("rss_mib") is not None else ")"
        else:
            value = fmt_rate(r.get("rate"))
            label = r["label"]
            if r.get("capped"):
                value = "≥" + value
        met = r.get("met")
        if met is None:
            met_s = "-"
        elif met:
            met_s = "yes"
        else:
            missed = [c["target"] for c in r["targets"] if not c["met"]]
            met_s = "NO" + (f" ({', '.join(missed)})" if len(missed) < len(r["targets"]) else "")
        if "error" in r:
            met_s = "ERROR" if r.get("targets") or r.get("kind") == "failed" else met_s
        ratio = r.get("ratio")
        lines.append([
            label,
            value,
            fmt_ms(half.get("p50_ms")),
            fmt_ms(half.get("p99_ms")),
            fmt_ms(half.get("p99_9_ms")),
            fmt_ms(half.get("max_ms")),
            fmt_rate(r.get("ceiling_rate")),
            "-" if ratio is None else f"{ratio:.2f}",
            " ".join(c["target"] for c in r.get("targets", [])) or "-",
            met_s,
        ])
    widths = [max(len(str(x[i])) for x in [head] + lines) for i in range(len(head))]
    right = {1, 2, 3, 4, 5, 6, 7}

    def fmt(cols):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(cols, widths)))

    print()
    print(f"feegate benchmark ({mode}); latencies in ms at half of the saturation rate")
    print(fmt(head))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(fmt(line))
    for r in rows:
        steps = (r.get("at_half") or {}).get("flow_steps")
        if steps:
            print(f"  {r['name']}: rates are flows/s ({len(steps)} requests each); p50/p99 ms per step at half load: "
                  + ", ".join(f"{st['step']} {fmt_ms(st['p50_ms'])}/{fmt_ms(st['p99_ms'])}" for st in steps))
        if r.get("versus_ratio") is not None:
            print(f"  {r['name']}: {r['versus_ratio']:.2f} × {r['versus']} ({fmt_rate(r.get('rate'))} against "
                  f"{fmt_rate(r['versus_rate'])}/s)")
        for key in ("error", "finding", "note"):
            if r.get(key):
                print(f"  {r['name']}: {'ERROR: ' if key == 'error' else ''}{r[key]}")
        busy = max(r.get("busy_pct_before", 0), r.get("busy_pct_after", 0))
        if busy >= BUSY_WARN_PCT and r.get("kind") != "memory":
            print(f"  {r['name']}: the CPUs were {busy}% busy around it while the bench was idle "
                  "(other programs, or PostgreSQL's own background work): its figures may be disturbed")
    print()


def machine():
    info = {"cpus": os.cpu_count(), "kernel": platform.release(), "machine": platform.machine()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            if m:
                info["cpu_model"] = m.group(1).strip()
        with open("/proc/meminfo", encoding="utf-8") as f:
            m = re.search(r"^MemTotal:\s*(\d+) kB", f.read(), re.M)
            if m:
                info["memory_mib"] = int(m.group(1)) // 1024
    except OSError:
        pass
    try:
        with open("/etc/debian_version", encoding="utf-8") as f:
            info["debian"] = f.read().strip()
    except OSError:
        pass
    return info


def plot(rows, out_dir, raw_dir):
    series = [r for r in rows if r.get("steps")]
    if not series:
        return None
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("report: gnuplot not installed; no plot", file=sys.stderr)
        return None
    parts = []
    for i, r in enumerate(series):
        dat = os.path.join(raw_dir, f"plot_{r['name']}.dat")
        with open(dat, "w", encoding="utf-8") as f:
            f.write("# offered achieved p50_ms p99_ms p99_9_ms\n")
            for s in sorted(r["steps"], key=lambda s: s["offered_rate"]):
                f.write(f"{s['offered_rate']} {s['achieved_rate']} {max(s['p50_ms'], 0.001)} "
                        f"{max(s['p99_ms'], 0.001)} {max(s['p99_9_ms'], 0.001)}\n")
        title = r["label"].replace('"', "'")
        parts.append(f'"{dat}" using 1:4 with linespoints lw 2 pt 7 lc {i + 1} title "{title}: p99"')
        parts.append(f'"{dat}" using 1:3 with linespoints dt 2 pt 6 lc {i + 1} title "{title}: p50"')
    png = os.path.join(out_dir, "latency.png")
    terminal = "pngcairo size 1100,750 font 'sans,10'"
    probe = subprocess.run([gnuplot, "-e", "set terminal pngcairo"], capture_output=True, text=True)
    if probe.returncode != 0 or "unknown" in probe.stderr.lower():
        terminal = "png size 1100,750"
    script = "\n".join([
        f"set terminal {terminal}",
        f'set output "{png}"',
        'set title "feegate: latency against offered rate (saturation steps)"',
        'set xlabel "offered rate (requests/s)"',
        'set ylabel "latency (ms), from the intended send time"',
        "set logscale xy",
        "set grid",
        "set key outside below horizontal maxrows 3",
        "set arrow from graph 0, first 100 to graph 1, first 100 nohead dt 3 lc rgb 'red'",
        "set arrow from graph 0, first 10 to graph 1, first 10 nohead dt 3 lc rgb 'orange'",
        "plot " + ", \\\n     ".join(parts),
        "",
    ])
    res = subprocess.run([gnuplot], input=script, capture_output=True, text=True)
    if res.returncode != 0:
        print(f"report: gnuplot failed: {res.stderr.strip()}", file=sys.stderr)
        return None
    return png


def build_rows(raw_dir):
    metas = []
    for name in os.listdir(raw_dir):
        if name.endswith(".meta.json"):
            metas.append(load_json(os.path.join(raw_dir, name)))
    metas.sort(key=lambda m: m.get("order", 0))
    rows = [evaluate(m, raw_dir) for m in metas]
    by_name = {r["name"]: r for r in rows}
    for r in rows:
        check_targets(r, by_name)
    return rows


GROWN_RATE_RATIO = 0.8  # issue 17: every saturation figure at least this times the fresh one
GROWN_P99_RATIO = 2.0   # and p99 at half load within this times the fresh one


def compare_grown(rows, fresh_rows):
    """The grown pass's figures beside the fresh pass's, by scenario: kept in each grown row."""
    fresh = {r["name"]: r for r in fresh_rows}
    out = []
    for r in rows:
        f = fresh.get(r["name"])
        if not f:
            continue
        c = {"name": r["name"], "label": r["label"], "kind": r.get("kind"),
             "fresh_rate": f.get("rate"), "grown_rate": r.get("rate")}
        if c["fresh_rate"] and c["grown_rate"] is not None:
            c["rate_ratio"] = c["grown_rate"] / c["fresh_rate"]
        fp99 = (f.get("at_half") or {}).get("p99_ms")
        gp99 = (r.get("at_half") or {}).get("p99_ms")
        c["fresh_p99_ms"], c["grown_p99_ms"] = fp99, gp99
        if fp99 and gp99 is not None:
            c["p99_ratio"] = gp99 / fp99
        if r.get("kind") == "export":
            c["fresh_seconds"], c["grown_seconds"] = f.get("seconds"), r.get("seconds")
            c["fresh_rows"] = (f.get("export") or {}).get("rows")
            c["grown_rows"] = (r.get("export") or {}).get("rows")
        if r.get("kind") == "http":
            c["met"] = (c.get("rate_ratio") is not None and c["rate_ratio"] >= GROWN_RATE_RATIO
                        and c.get("p99_ratio") is not None and c["p99_ratio"] <= GROWN_P99_RATIO)
        r["fresh"] = c
        out.append(c)
    return out


def print_grown(comparison, n):
    print(f"grown ({n:,} orders) beside fresh, same run; targets: saturation ≥ {GROWN_RATE_RATIO:g} × fresh, "
          f"p99 at half load ≤ {GROWN_P99_RATIO:g} × fresh")
    head = ["scenario", "fresh/s", "grown/s", "grown/fresh", "fresh p99", "grown p99", "p99 ×", "met?"]
    lines = []
    for c in comparison:
        label = c["label"]
        if c.get("kind") == "export" and c.get("grown_seconds") is not None:
            label += (f" ({c.get('fresh_rows') or 0:,} rows in {c.get('fresh_seconds') or 0:.2f} s fresh, "
                      f"{c.get('grown_rows') or 0:,} in {c['grown_seconds']:.2f} s grown)")
        lines.append([label, fmt_rate(c.get("fresh_rate")), fmt_rate(c.get("grown_rate")),
                      "-" if c.get("rate_ratio") is None else f"{c['rate_ratio']:.2f}",
                      fmt_ms(c.get("fresh_p99_ms")), fmt_ms(c.get("grown_p99_ms")),
                      "-" if c.get("p99_ratio") is None else f"{c['p99_ratio']:.2f}",
                      "-" if "met" not in c else ("yes" if c["met"] else "NO")])
    widths = [max(len(str(x[i])) for x in [head] + lines) for i in range(len(head))]

    def fmt(cols):
        return "  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(cols, widths)))

    print(fmt(head))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(fmt(line))
    print()


def cmd_build(raw_dir, out_dir, mode, fresh_dir=None):
    rows = build_rows(raw_dir)
    fresh_rows = build_rows(fresh_dir) if fresh_dir else None
    env_path = os.path.join(raw_dir, "env.json")
    env = load_json(env_path) if os.path.exists(env_path) else {}
    png = plot(rows, out_dir, raw_dir)
    results = {
        "mode": mode,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "run": env,
        "scenarios": rows,
        "plot": os.path.relpath(png, out_dir) if png else None,
    }
    comparison = None
    if fresh_rows is not None:
        comparison = compare_grown(rows, fresh_rows)
        results["fresh_scenarios"] = fresh_rows
        results["grown_beside_fresh"] = comparison
    with open(os.path.join(out_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1, ensure_ascii=False)
        f.write("\n")
    if fresh_rows is not None:
        print_table(fresh_rows, mode + ", fresh database")
        print_table(rows, mode + ", grown database")
        print_grown(comparison, env.get("grown_orders") or 0)
    else:
        print_table(rows, mode)
    print(f"figures: {os.path.join(out_dir, 'results.json')}" + (f", plot: {png}" if png else ""))
    return 1 if any("error" in r for r in rows + (fresh_rows or [])) else 0


def cmd_idle(out_path, stats_path, before_path, during_path):
    """Idle-memory figures: loadgen's line, and gateway process samples before and during."""
    def samples(path):
        procs = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                pid, role, rss, fds = line.split()
                procs.append({"pid": int(pid), "role": role, "rss_kib": int(rss), "fds": int(fds)})
        return procs

    stats = load_json(stats_path)
    before = samples(before_path)
    during = samples(during_path)
    out = {
        "requested": stats.get("requested"),
        "open": stats.get("open"),
        "failed": stats.get("failed"),
        "rss_kib": sum(p["rss_kib"] for p in during),
        "rss_kib_before": sum(p["rss_kib"] for p in before),
        "fds": sum(p["fds"] for p in during),
        "processes": during,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)


def cmd_soak(out_path, samples_path, loadgen_path, rate, duration, every):
    samples = []
    with open(samples_path, encoding="utf-8") as f:
        for line in f:
            t, rss, fds, n = line.split()
            samples.append({"t_s": int(t), "rss_kib": int(rss), "fds": int(fds), "processes": int(n)})
    lg = load_json(loadgen_path)
    timeline = lg.get("timeline") or []

    def window_at(t):
        """The load generator's interval ending nearest to t."""
        best = None
        for w in timeline:
            if best is None or abs(w["t_s"] - t) < abs(best["t_s"] - t):
                best = w
        return best if best is not None and abs(best["t_s"] - t) <= float(every) else None

    print()
    print(f"feegate soak: {float(rate):,.0f} orders/s offered for {duration} s; gateway processes summed")
    print(f"{'t (s)':>6}  {'RSS MiB':>8}  {'fds':>6}  {'procs':>5}  {'rate/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}")
    for i, s in enumerate(samples):
        last = i == len(samples) - 1  # taken after the load ended
        w = window_at(s["t_s"]) if s["t_s"] > 0 and not last else None
        if last:
            s["after_load"] = True
        s["interval"] = w
        cols = [f"{s['t_s']:>6}", f"{s['rss_kib'] / 1024:>8.1f}", f"{s['fds']:>6}", f"{s['processes']:>5}"]
        if w:
            cols += [f"{w['rate']:>8,.0f}", f"{w['p50_ms']:>7.2f}", f"{w['p99_ms']:>7.2f}", f"{w['errors']:>6}"]
        else:
            cols += [f"{'-':>8}", f"{'-':>7}", f"{'-':>7}", f"{'-':>6}"]
        print("  ".join(cols))
    lat = lg.get("latency_ms") or {}
    under_load = samples[1:-1] or samples
    summary = {
        "rate_offered": float(rate),
        "rate_achieved": lg.get("achieved_rate"),
        "requests": lg.get("requests"),
        "errors": lg.get("errors"),
        "latency_ms": lat,
        "rss_mib_first": samples[0]["rss_kib"] / 1024 if samples else None,
        "rss_mib_max": max(s["rss_kib"] for s in samples) / 1024 if samples else None,
        "rss_mib_last_under_load": under_load[-1]["rss_kib"] / 1024 if under_load else None,
        "rss_mib_after": samples[-1]["rss_kib"] / 1024 if samples else None,
        "fds_first": samples[0]["fds"] if samples else None,
        "fds_max": max(s["fds"] for s in samples) if samples else None,
        "fds_after": samples[-1]["fds"] if samples else None,
    }
    if len(under_load) >= 4:
        # growth over the second half of the run, where warm-up effects are over
        half = under_load[len(under_load) // 2:]
        secs = half[-1]["t_s"] - half[0]["t_s"]
        if secs > 0:
            summary["rss_mib_per_min_second_half"] = (half[-1]["rss_kib"] - half[0]["rss_kib"]) / 1024 / secs * 60
            summary["fds_change_second_half"] = half[-1]["fds"] - half[0]["fds"]
    print()
    print(f"overall: achieved {summary['rate_achieved']}/s, errors {(lg.get('errors') or {}).get('total')}, "
          f"p50 {lat.get('p50')} ms, p99 {lat.get('p99')} ms, p99.9 {lat.get('p99_9')} ms, max {lat.get('max')} ms")
    print(f"RSS: first {summary['rss_mib_first']:.1f} MiB, max {summary['rss_mib_max']:.1f} MiB, "
          f"after {summary['rss_mib_after']:.1f} MiB"
          + (f", second half {summary['rss_mib_per_min_second_half']:+.2f} MiB/min"
             if "rss_mib_per_min_second_half" in summary else ""))
    print(f"fds: first {summary['fds_first']}, max {summary['fds_max']}, after {summary['fds_after']}")
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "duration_s": int(duration),
        "sample_every_s": int(every),
        "summary": summary,
        "samples": samples,
        "loadgen": {k: v for k, v in lg.items() if k != "timeline"},
        "timeline": timeline,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"figures: {out_path}")
    print()


def main(argv):
    if len(argv) >= 2 and argv[1] == "meta":
        cmd_meta(argv[2], argv[3:])
        return 0
    if len(argv) >= 2 and argv[1] == "set":
        cmd_set(argv[2], argv[3:])
        return 0
    if len(argv) in (5, 6) and argv[1] == "build":
        return cmd_build(*argv[2:])
    if len(argv) == 8 and argv[1] == "soak":
        cmd_soak(*argv[2:])
        return 0
    if len(argv) == 6 and argv[1] == "idle":
        cmd_idle(*argv[2:])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
