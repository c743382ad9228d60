"""Turn the harness's raw runs into medians, ratios, tables, targets and a chart.

Everything here works on the JSON document ``run.py`` produces (and saves
with ``--save``), so a saved run can be rendered again with ``--load``.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

#: kind -> (metric key, unit, higher is better, CPU key, CPU label)
METRIC: dict[str, tuple[str, str, bool, str | None, str | None]] = {
    "echo": ("rps", "req/s", True, "server_cpu_us_per_req", "CPU µs/req"),
    "udp": ("rps", "req/s", True, "server_cpu_us_per_req", "CPU µs/req"),
    "churn": ("conn_s", "conn/s", True, "server_cpu_us_per_req", "CPU µs/conn"),
    "sink": ("mb_s", "MB/s", True, "server_cpu_us_per_mb", "CPU µs/MB"),
    "source": ("mb_s", "MB/s", True, "server_cpu_us_per_mb", "CPU µs/MB"),
    "idle": ("kib_per_conn", "KiB/conn", False, "server_cpu_us_per_req", "CPU µs/echo"),
    "syscalls": ("syscalls_per_req", "syscalls/req", False, None, None),
}

REFS = ("gevent_stream", "uvloop_proto")
SUBJECT = "xsock_green"
REFERENCE_ONLY = {"gevent_hub", "xsock_core"}  # not a library a user would pick
#: What shows a target's floor in the same run: xsock_green's transfer core
#: without its API layer, and (req/s, churn) the bare hub loop doing the same
#: work with no API and no guarantee.
CORE = "xsock_core"
HUB = "gevent_hub"

BEGIN = "<!-- bench:results:begin -->"
END = "<!-- bench:results:end -->"

# -- aggregation -------------------------------------------------------------


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def aggregate(doc: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """workload -> server -> medians of every numeric field, spread, errors."""
    kinds = {w["name"]: w["kind"] for w in doc["workloads"]}
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in doc["runs"]:
        grouped[(run["workload"], run["server"])].append(run)
    rows: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (wname, server), runs in grouped.items():
        key = METRIC[kinds[wname]][0]
        agg: dict[str, Any] = {"reps": len(runs)}
        numeric: dict[str, list[float]] = defaultdict(list)
        for run in runs:
            for k, v in run.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    numeric[k].append(float(v))
        good = [float(r[key]) for r in runs if isinstance(r.get(key), (int, float))]
        if key == "rps":  # a run that lost its connections is not a measurement
            good = [float(r[key]) for r in runs if r.get(key) and not r.get("error")]
        for k, vs in numeric.items():
            agg[k] = _median(vs)
        agg["errors"] = int(sum(r.get("errors", 0) or 0 for r in runs))
        agg["lost"] = int(sum(r.get("lost", 0) or 0 for r in runs))
        errs = [r["error"] for r in runs if r.get("error")]
        if errs:
            agg["error"] = errs[0]
        if good:
            med = _median(good)
            agg["value"] = med
            agg["spread_pct"] = (max(good) - min(good)) / med * 100 if med else 0.0
            agg["n"] = len(good)
        rows[wname][server] = agg
    for sc in doc.get("syscalls", []):
        agg = dict(sc)
        if "syscalls_per_req" in sc:
            agg["value"] = sc["syscalls_per_req"]
            agg["n"] = 1
        rows[sc["workload"]][sc["server"]] = agg
    return rows


def ratio(
    rows: dict[str, dict[str, Any]], server: str, ref: str, key: str = "value"
) -> float | None:
    a, b = rows.get(server, {}).get(key), rows.get(ref, {}).get(key)
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not b:
        return None
    return float(a) / float(b)


def noise(rows: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    spreads = [
        (agg["spread_pct"], f"{w} / {s}")
        for w, per in rows.items()
        for s, agg in per.items()
        if "spread_pct" in agg and agg.get("n", 0) > 1
    ]
    if not spreads:
        return {}
    spreads.sort()
    return {
        "median_spread_pct": _median([x for x, _ in spreads]),
        "max_spread_pct": spreads[-1][0],
        "max_spread_row": spreads[-1][1],
        "rows": len(spreads),
    }


# -- the targets of issue 11 -----------------------------------------------------


def _fmt_x(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def targets(rows: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each target of issue 11 ("Ahead of gevent on every workload") as measured in this run."""
    out: list[dict[str, Any]] = []

    def add(
        workload: str, target: str, value: float | None, met: bool, shown: str, floor: str = ""
    ) -> None:
        out.append(
            {
                "workload": workload,
                "target": target,
                "value": value,
                "measured": shown if value is not None else "not measured in this run",
                "met": met if value is not None else None,
                "floor": floor,
            }
        )

    def against(
        label: str,
        target: str,
        wname: str,
        ref: str,
        key: str,
        limit: float,
        higher: bool,
        floors: tuple[str, ...] = (CORE,),
    ) -> None:
        """xsock_green's ``key`` over ``ref``'s: at least ``limit`` when higher is
        better (req/s, conn/s), at most ``limit`` when lower is (CPU, memory).
        ``floors`` name the servers whose ratios to ``ref`` bound the target."""
        r = rows.get(wname, {})
        x = ratio(r, SUBJECT, ref, key)
        shown = _fmt_x(x)
        if x is not None:
            shown += f" ({r[SUBJECT][key]:,.1f} vs {r[ref][key]:,.1f})"
        found = [(name, ratio(r, name, ref, key)) for name in floors]
        seen = ", ".join(f"{name} {f:.2f}x" for name, f in found if f is not None)
        add(label, target, x, x is not None and (x >= limit if higher else x <= limit), shown, seen)

    def fastest(label: str, wname: str) -> None:
        b = rows.get(wname, {})
        peers = [
            (agg["value"], s)
            for s, agg in b.items()
            if s != SUBJECT and s not in REFERENCE_ONLY and not s.startswith(SUBJECT)
            and "value" in agg
        ]  # fmt: skip
        x = None
        shown = ""
        if peers and "value" in b.get(SUBJECT, {}):
            best, who = max(peers)
            x = b[SUBJECT]["value"] / best
            shown = f"{x:.2f}x ({b[SUBJECT]['value']:,.0f} vs {who} {best:,.0f} MB/s)"
        add(label, "MB/s ≥ 0.95x the fastest peer", x, x is not None and x >= 0.95, shown)

    cpu = "server_cpu_us_per_req"
    against("TCP echo 1 KiB, 10 conns", "server CPU/req ≤ 1.1x the bare hub loop's",
            "tcp-1k-c10", "gevent_hub", cpu, 1.1, False)  # fmt: skip
    against("TCP echo 1 KiB, 10 conns", "req/s ≥ 1.6x gevent StreamServer",
            "tcp-1k-c10", "gevent_stream", "value", 1.6, True, (CORE, HUB))  # fmt: skip
    against("unix echo 1 KiB, 10 conns", "server CPU/req ≤ 1.15x the bare hub loop's",
            "unix-1k-c10", "gevent_hub", cpu, 1.15, False)  # fmt: skip
    against("connection churn", "conn/s ≥ 1.2x gevent StreamServer",
            "churn-c10", "gevent_stream", "value", 1.2, True, (HUB,))  # fmt: skip
    against("UDP ping-pong 64 B", "req/s ≥ the plain gevent recvfrom/sendto loop",
            "udp-64-c10", "gevent_raw", "value", 1.0, True)  # fmt: skip
    against("UDP ping-pong 64 B", "req/s ≥ uvloop's protocol",
            "udp-64-c10", "uvloop_proto", "value", 1.0, True)  # fmt: skip
    fastest("bulk, server receives", "bulk")
    fastest("bulk, server sends", "bulk-send")

    idle = rows.get("idle-64k", {})
    conns = idle.get(SUBJECT, {}).get("opened")
    label = f"{int(conns):,} connections, a 64 KiB buffer each" if conns else "64 KiB buffers"
    against(label, "KiB/conn ≤ the plain gevent recv_into loop's",
            "idle-64k", "gevent_raw", "value", 1.0, False, ())  # fmt: skip
    left = idle.get(SUBJECT, {}).get("kib_per_conn_after_close")
    shown = f"{left:,.1f} KiB/conn" if left is not None else ""
    add(label, "memory goes back on close: ≤ 6.4 KiB/conn (10% of a buffer) still held", left,
        left is not None and left <= 6.4, shown)  # fmt: skip

    sc = rows.get("syscalls", {}).get(SUBJECT, {})
    v = sc.get("value")
    add("system calls per 1 KiB echo request", "≤ 2.2 (strace -c)", v,
        v is not None and v <= 2.2, f"{v:.2f}" if v is not None else "")  # fmt: skip
    return out


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    rows = aggregate(doc)
    return {"rows": rows, "targets": targets(rows), "noise": noise(rows)}


# -- tables ---------------------------------------------------------------------


def _num(v: Any, digits: int = 0) -> str:
    if not isinstance(v, (int, float)):
        return "-"
    return f"{v:,.{digits}f}"


def _table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def workload_table(doc: dict[str, Any], w: dict[str, Any]) -> str:
    rows = doc["summary"]["rows"].get(w["name"], {})
    _, unit, higher, cpu_key, cpu_label = METRIC[w["kind"]]
    order = [s["name"] for s in doc["servers"]]
    refs = [ref for ref in REFS if "value" in rows.get(ref, {})]
    header = ["server", unit]
    kind = w["kind"]
    if kind in ("echo", "udp"):
        header += ["MB/s", "p50 µs", "p99 µs"]
    elif kind == "churn":
        header += ["p50 µs", "p99 µs"]
    elif kind == "idle":
        header += ["after close, KiB/conn", "echo on all, ms", "open, s", "p99 µs"]
    elif kind == "syscalls":
        header += ["calls per request"]
    if cpu_label:
        header.append(cpu_label)
    header += [f"vs {ref}" for ref in refs]
    header += ["spread", "errors"] if kind != "syscalls" else []
    body = []
    for name in order:
        if name not in rows:
            continue
        agg = rows[name]
        digits = 2 if kind in ("idle", "syscalls") else 1 if kind in ("sink", "source") else 0
        if "value" not in agg:
            reason = agg.get("error", "no result")
            body.append([name, f"failed: {reason[:90]}"] + ["-"] * (len(header) - 2))
            continue
        row = [name, _num(agg["value"], digits)]
        if kind in ("echo", "udp"):
            row += [_num(agg.get("mb_s"), 1), _num(agg.get("p50_us")), _num(agg.get("p99_us"))]
        elif kind == "churn":
            row += [_num(agg.get("p50_us")), _num(agg.get("p99_us"))]
        elif kind == "idle":
            row.append(_num(agg.get("kib_per_conn_after_close"), 2))
            row += [_num(agg.get("echo_all_ms"), 1), _num(agg.get("open_s"), 2)]
            row += [_num(agg.get("p99_us"))]
        elif kind == "syscalls":
            per = agg.get("per_req", {})
            row.append(", ".join(f"{k} {v:.2f}" for k, v in list(per.items())[:5]))
        if cpu_key:
            row.append(_num(agg.get(cpu_key), 1))
        row += [_fmt_x(ratio(rows, name, ref)) for ref in refs]
        if kind != "syscalls":
            row.append(f"{agg.get('spread_pct', 0):.0f}%" if agg.get("n", 0) > 1 else "-")
            errs = agg.get("errors", 0)
            lost = agg.get("lost", 0)
            row.append(f"{errs}" + (f" ({lost} lost)" if lost else ""))
        body.append(row)
    note = "Ratios compare the first metric column"
    note += "; higher is better." if higher else "; lower is better."
    return _table(header, body) + "\n\n" + note


def targets_table(doc: dict[str, Any]) -> str:
    body = []
    for t in doc["summary"]["targets"]:
        met = {True: "**met**", False: "not met", None: "-"}[t["met"]]
        body.append([t["workload"], t["target"], t["measured"], met, t.get("floor") or "-"])
    head = ["workload", "target", "measured (xsock_green)", "", "floor in the same run"]
    table = _table(head, body)
    return table + (
        "\n\nThe floor column is the same ratio for `xsock_core` (xsock_green's transfer core"
        " called directly, without the public methods' argument, option and result objects)"
        " and, for TCP req/s and churn, for `gevent_hub`, the bare hub loop doing the same"
        " reads, writes, accepts and `gevent.spawn` with no API on top."
    )


def _settings_line(doc: dict[str, Any]) -> str:
    m = doc["meta"]
    s = m["settings"]
    return (
        f"{m['mode']} mode: each row is the median of {s['repeat']} runs"
        + (
            f" ({s['target_repeat']} for the rows behind the targets)"
            if s.get("target_repeat", s["repeat"]) != s["repeat"]
            else ""
        )
        + " of "
        f"{s['warmup_ms']} ms warm-up + {s['duration_ms']} ms measured; bulk "
        f"{s['bulk_bytes'] / 2**20:,.0f} MiB; {s['idle_conns']:,} idle connections"
    )


def markdown(doc: dict[str, Any], level: int = 2) -> str:
    h = "#" * level
    m = doc["meta"]
    mach = m["machine"]
    vers = ", ".join(f"{k} {v}" for k, v in mach.get("versions", {}).items())
    nz = doc["summary"]["noise"]
    out = [
        f"{h} Results ({m['mode']} mode, {m['date']})",
        "",
        f"* Command: `{m['command'].strip()}`, {m['elapsed_s']:.0f} s.",
        f"* Machine: {mach.get('cpu', '?')}, {mach.get('cores')} cores, Linux "
        f"{mach.get('kernel')}, Python {mach.get('python')}; {vers}.",
        f"* Generator: {m['generator_how']}; {m['pinning']}.",
        f"* {_settings_line(doc)}.",
    ]
    if m.get("other_load"):
        out.append(f"* Other processes on the machine used {m['other_load']} during the run.")
    if nz:
        out.append(
            f"* Noise: the spread (max - min) / median of the main metric over the repeats is "
            f"{nz['median_spread_pct']:.0f}% for the median row and {nz['max_spread_pct']:.0f}% "
            f"at worst ({nz['max_spread_row']})."
        )
    for s in doc["servers"]:
        if s.get("skipped"):
            out.append(f"* Skipped {s['name']}: {s['skipped']}.")
    for n in doc.get("notes", []):
        out.append(f"* Note: {n}")
    out += ["", f"{h}# Targets of issue 11", "", targets_table(doc), ""]
    for w in doc["workloads"]:
        if w["name"] not in doc["summary"]["rows"]:
            continue
        out += [f"{h}# {w['title']} (`{w['name']}`)", "", workload_table(doc, w), ""]
    prof = doc.get("profile")
    if prof:
        out += [f"{h}# Where {prof['server']}'s server time goes", "", profile_text(prof), ""]
    return "\n".join(out).rstrip() + "\n"


# -- profile ----------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short_file(path: str) -> str:
    """``gevent/_socket3.py`` rather than the whole installed path."""
    for marker in ("site-packages/", "/lib/python3."):
        i = path.find(marker)
        if i >= 0:
            rest = path[i + len(marker) :]
            return rest.split("/", 1)[1] if marker.startswith("/lib") and "/" in rest else rest
    here = str(Path(__file__).resolve().parent.parent) + "/"
    return path[len(here) :] if path.startswith(here) else path


def fold_profile(text: str, server: str) -> dict[str, Any]:
    """Self and inclusive samples per function from py-spy's raw (folded) output."""
    self_s: dict[str, int] = defaultdict(int)
    incl: dict[str, int] = defaultdict(int)
    by_area: dict[str, int] = defaultdict(int)
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        names = []
        for frame in stack.split(";"):
            mt = _FRAME.match(frame.strip())
            if not mt:
                continue
            names.append(f"{mt['func']} ({_short_file(mt['file'])})")
        if not names:
            continue
        self_s[names[-1]] += n
        for name in set(names):
            incl[name] += n
        leaf_file = names[-1]
        area = "other"
        for key, label in (
            ("xsock_green/", "xsock_green"),
            ("gevent/", "gevent"),
            ("greenlet", "greenlet"),
            ("bench/", "bench server loop"),
        ):
            if key in leaf_file:
                area = label
                break
        by_area[area] += n

    def top(d: dict[str, int], k: int = 15) -> list[tuple[str, float]]:
        return [(name, n * 100 / total) for name, n in sorted(d.items(), key=lambda kv: -kv[1])[:k]]

    return {
        "server": server,
        "samples": total,
        "self": top(self_s),
        "inclusive": top(incl),
        "by_area": top(by_area, 10),
    }


def profile_text(prof: dict[str, Any]) -> str:
    rps = prof.get("rps")
    head = (
        f"py-spy, {prof['samples']:,} samples of CPU-active time while serving TCP echo 1 KiB "
        f"over 10 connections" + (f" ({rps:,.0f} req/s under sampling)." if rps else ".")
    )
    head += (
        " A Python function's own time includes the C code and system calls it makes"
        " (the socket methods hold their `send` and `recv` calls; `strace -c` splits"
        " those out); the hub's own time (`Hub.run`) is libev's loop, `epoll_wait`"
        " included."
    )
    parts = [head, "", "Self time by leaf file:", ""]
    parts.append(_table(["where", "% of samples"], [[a, f"{p:.1f}"] for a, p in prof["by_area"]]))
    parts += ["", "Self time (the function on top of the stack):", ""]
    parts.append(_table(["function", "%"], [[f"`{f}`", f"{p:.1f}"] for f, p in prof["self"]]))
    parts += ["", "Inclusive time (on the stack):", ""]
    parts.append(_table(["function", "%"], [[f"`{f}`", f"{p:.1f}"] for f, p in prof["inclusive"]]))
    return "\n".join(parts)


# -- chart and docs -----------------------------------------------------------------

CHART_WORKLOADS = (
    "tcp-64-c1",
    "tcp-1k-c10",
    "tcp-16k-c10",
    "tcp-100k-c10",
    "tcp-1k-c1000",
    "unix-1k-c10",
    "udp-64-c10",
    "bulk",
    "bulk-send",
    "churn-c10",
)


def chart(doc: dict[str, Any], path: Path) -> bool:
    """Bars: throughput relative to gevent StreamServer; CPU per request; memory."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = doc["summary"]["rows"]
    servers = [s["name"] for s in doc["servers"] if not s.get("skipped")]
    wls = [w for w in CHART_WORKLOADS if "value" in rows.get(w, {}).get("gevent_stream", {})]
    fig = plt.figure(figsize=(13, 8.5))
    grid = fig.add_gridspec(2, 2, height_ratios=(1.4, 1))
    ax = fig.add_subplot(grid[0, :])
    width = 0.8 / max(1, len(servers))
    cmap = plt.get_cmap("tab10")
    for i, s in enumerate(servers):
        ys = [ratio(rows[w], s, "gevent_stream") or 0.0 for w in wls]
        xs = [j + (i - (len(servers) - 1) / 2) * width for j in range(len(wls))]
        ax.bar(xs, ys, width, label=s, color=cmap(i % 10),
               edgecolor="black" if s == SUBJECT else None, linewidth=1.2)  # fmt: skip
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(wls)), wls)
    ax.set_ylabel("throughput / gevent StreamServer")
    ax.set_title(f"Echo servers on loopback ({doc['meta']['mode']} mode, medians)")
    ax.legend(ncol=5, fontsize=8, loc="upper left")

    def bars(axis: Any, wname: str, key: str, label: str, title: str) -> None:
        per = rows.get(wname, {})
        names = [s for s in servers if isinstance(per.get(s, {}).get(key), (int, float))]
        vals = [per[s][key] for s in names]
        colors = [cmap(servers.index(s) % 10) for s in names]
        axis.barh(names, vals, color=colors)
        axis.invert_yaxis()
        axis.set_xlabel(label)
        axis.set_title(title, fontsize=10)
        for y, v in enumerate(vals):
            axis.text(v, y, f" {v:.1f}", va="center", fontsize=8)

    bars(fig.add_subplot(grid[1, 0]), "tcp-1k-c10", "server_cpu_us_per_req",
         "server CPU µs per request (lower is better)",
         "TCP echo 1 KiB, 10 connections")  # fmt: skip
    bars(fig.add_subplot(grid[1, 1]), "idle", "kib_per_conn",
         "KiB of server memory per connection (lower is better)", "idle connections")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def update_docs(doc: dict[str, Any], md: Path, png: Path) -> None:
    """Replace the results block of BENCHMARKS.md and redraw the chart."""
    drew = chart(doc, png)
    block = markdown(doc, level=2)
    if drew:
        block = block.replace(
            "\n", f"\n\n![throughput relative to gevent StreamServer]({png.name})\n", 1
        )
    text = md.read_text() if md.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    md.write_text(f"{head}{BEGIN}\n{block}{END}{tail}")
