"""`make bench`'s report: the Markdown that bench/run.py prints and writes into BENCHMARKS.md, from
the `run` dict it gathers (results per code version, cost tables, lifecycles, profiles)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from bench.dataset import log

# Targets of issue 16, on this checkout's code ("after"): share of the bare view's req/s, p99 bound.
TARGETS: dict[str, tuple[float, float | None]] = {
    "page_poll": (0.50, None),
    "poll": (0.25, 50.0),
    "order_get": (0.25, 50.0),
}
PAGE_C1_P50_MS = 30.0
FLAT = ("poll", "order_get", "page_poll")  # cost table: small against big database
HEAVY = ("page", "page_poll")  # cost table: PAGE_MESSAGES against HEAVY_MESSAGES on one order
COST_TARGET = 1.2


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "nproc": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "cpu": cpu,
        "load": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def sizes_text(meta: dict[str, Any]) -> str:
    n = meta["sizes"]
    return f"{n['agents']:,} agents, {n['services']:,} services, {n['orders']:,} orders, {n['messages']:,} messages"


def _met(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def target(name: str, stats: dict[str, Any]) -> str:
    if name == "page_c1":
        return f"p50 < {PAGE_C1_P50_MS:.0f} ms: {_met(stats['p50_ms'] < PAGE_C1_P50_MS)}"
    if name not in TARGETS:
        return ""
    share, p99 = TARGETS[name]
    ok = stats["vs_bare"] >= share and (p99 is None or stats["p99_ms"] < p99)
    return f"≥ {share:.0%} of bare{f', p99 < {p99:.0f} ms' if p99 else ''}: {_met(ok)}"


def report(run: dict[str, Any]) -> str:
    config, big = run["config"], run["big"]
    keys = list(run["versions"])  # ["before", "after"] or ["after"]
    lines = [
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: `{run['command']}`",
        "",
        f"Machine: {run['machine']['nproc']} CPUs ({run['machine']['cpu']}), {run['machine']['memory']} memory. "
        f"Load average (1, 5, 15 min) before the run: {run['machine']['load']}; after: {run['load_after']}.",
        f"Server: gunicorn, 2 sync workers, DEBUG off, PostgreSQL (local), rate limits on Redis "
        f"(`CACHE_URL={config['redis']}`{'; the baseline on the next database' if len(keys) > 1 else ''}). "
        f"Client: wrk, 1 thread, {config['connections']} connections (unless noted), a random X-Forwarded-For per "
        "request (`TRUSTED_PROXY_COUNT=1`).",
    ]
    if len(keys) > 1:
        lines.append(
            f"Code: **before** = `{run['versions']['before']}`, checked out into a temporary worktree; **after** = "
            f"`{run['versions']['after']}`. Both run at the same time against the same databases (migrated by the "
            "after code)."
        )
    else:
        lines.append(f"Code: `{run['versions']['after']}`.")
    lines += [
        f"Measured: per endpoint {config['rounds']} rounds of {config['round_seconds']} s per code version, each "
        "the bare view and then the endpoint"
        + (", the versions' order alternating between rounds" if len(keys) > 1 else "")
        + ", after a 1 s warm-up. req/s, p50 and p99: the median of the rounds; **vs bare**: the median of each "
        "round's req/s divided by the bare view's req/s just before it (same version, same connections).",
        f"Data: {sizes_text(big)} (loaded in {big['load_seconds']} s{', reused from an earlier run' if big.get('reused') else ''}); "
        f"the polled agent has {big['hot_agent_orders']:,} orders; the busiest order has {big['max_messages_per_order']:,} "
        f"messages, and one more order of the page's buyer has {big['heavy_messages']:,} (the *heavy* rows). The Solana Pay "
        "poll's order is accepted and unpaid.",
        "",
    ]
    lines += _main_table(run, keys)
    lines += _answers(run, keys)
    lines += _writes(run, keys)
    lines += _cost_tables(run)
    lines += _profiles(run)
    return "\n".join(lines) + "\n"


def _main_table(run: dict[str, Any], keys: list[str]) -> list[str]:
    results, spec = run["results"], run["spec"]
    if len(keys) > 1:
        head = "| endpoint | before req/s | p50 ms | p99 ms | vs bare | after req/s | p50 ms | p99 ms | vs bare | req/s after ÷ before | target (after) |"
        rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    else:
        head, rule = "| endpoint | req/s | p50 ms | p99 ms | vs bare | target |", "|---|---:|---:|---:|---:|---|"
    lines = [head, rule]
    for name in results["after"]:
        cells = [spec[name]["label"]]
        for key in keys:
            s = results[key][name]
            cells += [f"{s['rps']:,.0f}", f"{s['p50_ms']:.1f}", f"{s['p99_ms']:.1f}", _share(s["vs_bare"])]
        if len(keys) > 1:
            cells.append(f"{results['after'][name]['rps'] / results['before'][name]['rps']:.2f}x")
        cells.append(target(name, results["after"][name]))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for key in keys:
        bare = results[key]["bare"]["rounds_rps"]
        lines.append(
            f"The bare view's {len(bare)} rounds{f' ({key})' if len(keys) > 1 else ''} at {run['config']['connections']} "
            f"connections ranged from {min(bare):,} to {max(bare):,} req/s."
        )
    errors = {
        f"{key} {name}": s["errors"]
        for key in keys
        for name, s in results[key].items()
        if s["errors"] and name != "bare"
    }
    if errors:
        lines.append(f"Answers ≥ 400 or socket errors during the run: {errors}.")
    return lines


def _share(ratio: float) -> str:
    return f"{ratio:.0%}" if ratio >= 0.1 else f"{ratio:.1%}"


def _answers(run: dict[str, Any], keys: list[str]) -> list[str]:
    """What each endpoint answered when checked before its rounds, where that was not 200, and the
    poll URLs the pages gave."""
    odd = [
        f"{name}: " + ", ".join(f"{key} {run['statuses'][key][name]}" for key in keys)
        for name in run["statuses"]["after"]
        if any(run["statuses"][key][name] != 200 for key in keys)
    ]
    urls = "; ".join((f"{key} " if len(keys) > 1 else "") + f"`{run['paths'][key]['page_poll']}`" for key in keys)
    lines = [f"Page poll URL as the page gives its poller: {urls}."]
    if odd:
        lines.append("Answers other than 200 (checked before each endpoint's rounds): " + "; ".join(odd) + ".")
    return [*lines, ""]


def _writes(run: dict[str, Any], keys: list[str]) -> list[str]:
    cycles, writes = run["lifecycles"], run["config"]["writes"]
    summary = "; ".join(
        f"{key + ': ' if len(keys) > 1 else ''}{c['completed']} completed in {c['wall']:.1f} s = "
        f"**{c['per_second']:.2f} lifecycles/s**"
        + (f", {len(c['failures'])} failed: {c['failures'][:2]}" if c["failures"] else "")
        for key in keys
        for c in [cycles[key]]
    )
    lines = [
        "Writes through the full lifecycle (create, accept when offered, USDC transfer on the Solana devchain, pay, "
        "start, deliver, approve), 2 client threads"
        + (", in rounds before, after, after, before" if len(keys) > 1 else "")
        + "; **bare** is `GET /bench/bare` by the same client between lifecycles, the steps' baseline "
        f"(the writes: {', '.join(writes)}; the message POST is in the table above): {summary}.",
        "",
    ]
    if len(keys) > 1:
        lines += [
            "| step | before n | p50 ms | p99 ms | p50 vs bare | after n | p50 ms | p99 ms | p50 vs bare | p50 after ÷ before |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    else:
        lines += ["| step | n | p50 ms | p99 ms | p50 vs bare |", "|---|---:|---:|---:|---:|"]
    for name in cycles["after"]["steps"]:
        label = name + (" (client-side, the devchain)" if name == "chain_transfer" else "")
        label = f"**{label}**" if name in writes else label
        cells = [label]
        for key in keys:
            steps = cycles[key]["steps"]
            s, bare = steps.get(name), steps.get("bare")
            if s is None:
                cells += ["0", "", "", ""]
                continue
            ratio = f"{s['p50_ms'] / bare['p50_ms']:.1f}x" if bare and name != "chain_transfer" else ""
            cells += [str(s["n"]), f"{s['p50_ms']:.1f}", f"{s['p99_ms']:.1f}", ratio]
        if len(keys) > 1:
            before, after = cycles["before"]["steps"].get(name), cycles["after"]["steps"][name]
            cells.append(f"{after['p50_ms'] / before['p50_ms']:.2f}" if before else "")
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _cost_tables(run: dict[str, Any]) -> list[str]:
    config, small, big = run["config"], run["small"], run["big"]
    how = (
        f"this checkout's code, one wrk connection, {config['cost_rounds']} interleaved rounds of "
        f"{config['cost_seconds']} s per cell (the order reversed every other round); the median of the rounds' "
        f"p50 latencies; target < {COST_TARGET}"
    )
    light, heavy = "200", f"{big['heavy_messages']:,}"
    lines = [
        f"Cost per request from {small['sizes']['orders']:,} to {big['sizes']['orders']:,} orders (both servers up; {how}):",
        "",
        f"| endpoint | p50 ms at {small['sizes']['orders']:,} (rounds) | p50 ms at {big['sizes']['orders']:,} (rounds) "
        "| cost ratio | req/s small / big | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    lines += [_cost_row(name, run["flat"][f"small {name}"], run["flat"][f"big {name}"]) for name in FLAT]
    lines += [
        "",
        f"Cost per request with {light} and with {heavy} messages on one order (the big database; {how}):",
        "",
        f"| endpoint | p50 ms, {light} messages (rounds) | p50 ms, {heavy} messages (rounds) | cost ratio | req/s {light} / {heavy} | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    lines += [_cost_row(name, run["heavy"][f"light {name}"], run["heavy"][f"heavy {name}"]) for name in HEAVY]
    return [*lines, ""]


def _cost_row(name: str, s: dict[str, Any], b: dict[str, Any]) -> str:
    ratio = b["p50_ms"] / s["p50_ms"]
    return (
        f"| {name} | {s['p50_ms']:.1f} ({', '.join(map(str, s['rounds']))}) | {b['p50_ms']:.1f} "
        f"({', '.join(map(str, b['rounds']))}) | {ratio:.2f} | {s['rps']:.0f} / {b['rps']:.0f} | {_met(ratio < COST_TARGET)} |"
    )


def _profiles(run: dict[str, Any]) -> list[str]:
    profiled = run["profiles"]
    if not profiled:
        return []
    if "error" in profiled:
        return [f"cProfile: failed ({profiled['error']}).", ""]
    first = next(iter(profiled.values()))
    lines = [
        "cProfile of this checkout's code on the big database, in-process through Django's WSGI handler "
        f"(bench/profiles.py: {first['n']} requests per endpoint after {first.get('warmup', 30)} unprofiled; "
        "the top 15 by own time; ms/request without and with the profiler):",
        "",
    ]
    for name, result in profiled.items():
        label = run["spec"][name]["label"].split(" `")[0]
        lines += [
            f"<details><summary>{name} ({label}): {result['ms']:.2f} ms/request ({result['profiled_ms']:.2f} profiled)</summary>",
            "",
            "```",
            result["top"],
            "```",
            "",
            "</details>",
            "",
        ]
    return lines


def write(text: str, output: str) -> None:
    if output == "-":
        return
    path = Path(output)
    marker_start, marker_end = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
    block = f"{marker_start}\n{text}{marker_end}\n"
    if path.exists() and marker_start in path.read_text():
        current = path.read_text()
        head, rest = current.split(marker_start, 1)
        tail = rest.split(marker_end, 1)[1].lstrip("\n")
        path.write_text(head + block + ("\n" + tail if tail else ""))
    else:
        path.write_text(
            "# Benchmarks\n\nWritten by `make bench` (bench/run.py); notes below the results are kept between runs.\n\n"
            + block
        )
    log(f"results written to {path}")
