"""The benchmark in one command: `python -m bench` (issue 8).

Starts the loopback farm (bench/farm.py), then runs every contender in a fresh
process of its own (bench/contenders.py) against the same feeds, in this order:

    floor    fetch with a bare httpx client (its own transport, httpx-aiohttp's and the
             project's; HTTP/2 too with --transports all), cold then warm (all 304);
             fetch + feedparser.parse with its defaults, cold
    project  this project's update: cold (empty store), warm (all 304),
             warm without validators (the farm ignores conditional GET), warm
             again on httpx's own transport; cold with parsing in one thread
    reader   lemon24/reader (if installed: pip install -e '.[bench]'), cold and warm
    build    render.build on a store of --store-entries entries: full, unchanged, then
             after one new post
    digest   run_digest on that store, then again

and prints wall time, feeds/s, entries/s, peak RSS, the farm's own request rate
and CPU use during each run, and the ratios the issue sets targets for.  With
--json FILE it also saves every figure, and with --markdown FILE a table for
bench/RESULTS.md.  Nothing here asserts anything: it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .farm import FarmProcess

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    name: str
    result: dict[str, Any]
    farm: dict[str, float] = field(default_factory=dict)

    @property
    def wall(self) -> float:
        return float(self.result.get("wall", 0.0))

    def rate(self, key: str) -> float | None:
        value = self.result.get(key)
        if not isinstance(value, int) or self.wall <= 0:
            return None
        return value / self.wall


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        load = ["?"]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "loadavg": " ".join(load),
    }


def contender(name: str, urls: Path, workdir: Path, *extra: str, timeout: float) -> dict[str, Any]:
    """Run one contender in a fresh interpreter and return what it printed."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.contenders", name, "--urls", str(urls),
         "--workdir", str(workdir), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        raise RuntimeError(
            f"The benchmark contender '{name}' failed (exit {completed.returncode}):\n"
            f"{completed.stderr[-3000:]}"
        )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def reader_installed() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import reader"], capture_output=True, check=False, cwd=ROOT
    )
    return probe.returncode == 0


def aiohttp_installed() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import httpx_aiohttp"], capture_output=True, check=False
    )
    return probe.returncode == 0


class Bench:
    def __init__(self, farm: FarmProcess, urls: Path, work: Path, timeout: float) -> None:
        self.farm = farm
        self.urls = urls
        self.work = work
        self.timeout = timeout
        self.rows: list[Row] = []

    def run(self, label: str, name: str, workdir: str, *extra: str, farm: bool = True) -> Row:
        """Run a contender; with `farm`, also what the farm served meanwhile."""
        if not farm:
            result = contender(name, self.urls, self.work / workdir, *extra, timeout=self.timeout)
            row = Row(label, result)
            self.rows.append(row)
            print(format_row(row), flush=True)
            return row
        before = self.farm.stats()
        result = contender(name, self.urls, self.work / workdir, *extra, timeout=self.timeout)
        after = self.farm.stats()
        requests = int(after["requests"]) - int(before["requests"])  # type: ignore[call-overload]
        cpu = float(after["cpu_seconds"]) - float(before["cpu_seconds"])  # type: ignore[arg-type]
        wall = float(result.get("wall", 0.0)) or 1e-9
        row = Row(
            label,
            result,
            {"requests": requests, "req_per_s": requests / wall, "cpu_share": cpu / wall},
        )
        self.rows.append(row)
        print(format_row(row), flush=True)
        return row

    def get(self, label: str) -> Row | None:
        return next((r for r in self.rows if r.name == label), None)


HEADER = (
    f"{'contender':<34} {'wall s':>8} {'feeds/s':>9} {'entries/s':>10} {'RSS MB':>8} "
    f"{'farm req/s':>10} {'farm CPU':>8}  notes"
)


def peak_rss(result: dict[str, Any]) -> float:
    """Peak RSS in MB: of the whole process tree when sampled, else of the process."""
    return float(result.get("tree_rss_mb") or result.get("rss_mb") or 0.0)


def format_row(row: Row) -> str:
    r = row.result
    feeds = row.rate("feeds")
    entries = row.rate("entries_new")
    rss_text = f"{peak_rss(r):.0f}"
    notes = []
    for key in ("ok", "not_modified", "errors", "written", "unchanged", "status"):
        if key in r:
            notes.append(f"{key}={r[key]}")
    if "store_s" in r:
        notes.append(f"store={r['store_s']:.2f}s")
    if r.get("tree_child_cpu_s"):
        notes.append(f"cpu={r['cpu_s']:.1f}+{r['tree_child_cpu_s']:.1f}s (workers)")
    elif "cpu_s" in r:
        notes.append(f"cpu={r['cpu_s']:.1f}s")
    farm_rate = f"{row.farm['req_per_s']:.0f}" if row.farm.get("requests") else "-"
    farm_cpu = f"{row.farm['cpu_share']:.0%}" if row.farm.get("requests") else "-"
    return (
        f"{row.name:<34} {row.wall:>8.2f} {feeds and f'{feeds:.0f}' or '-':>9} "
        f"{entries and f'{entries:.0f}' or '-':>10} {rss_text:>8} {farm_rate:>10} "
        f"{farm_cpu:>8}  {' '.join(notes)}"
    )


def ratios(bench: Bench) -> list[tuple[str, float, str]]:
    """(what, ratio, target) for each ratio the issue names, when both sides ran."""
    out = []

    def ratio(label: str, a: str, b: str, target: str) -> None:
        x, y = bench.get(a), bench.get(b)
        if x is not None and y is not None and y.wall > 0:
            out.append((label, x.wall / y.wall, target))

    ratio("project cold / reader cold", "project cold", "reader cold", "<= 0.33")
    ratio("project warm / reader warm", "project warm (304)", "reader warm", "")
    ratio(
        "project warm / raw httpx fetch warm", "project warm (304)", "fetch httpx warm", "<= 0.25"
    )
    ratio(
        "project warm / raw httpx+aiohttp fetch warm",
        "project warm (304)",
        "fetch httpx+aiohttp warm",
        "",
    )
    ratio(
        "project warm / bare fetch, project transport",
        "project warm (304)",
        "fetch httpx+project transport warm",
        "",
    )
    ratio(
        "project warm, httpx transport / aiohttp",
        "project warm (304) [httpx transport]",
        "project warm (304)",
        "",
    )
    ratio("project cold / raw httpx fetch cold", "project cold", "fetch httpx cold", "")
    ratio(
        "project cold, parse in 1 thread / pool",
        "project cold (parse in 1 thread)",
        "project cold",
        "",
    )
    ratio("project cold / fetch+feedparser", "project cold", "fetch+feedparser cold", "")
    ratio(
        "project warm no validators / warm (304)",
        "project warm (no validators)",
        "project warm (304)",
        "",
    )
    ratio("build unchanged / build full", "build unchanged", "build full", "< 0.10")
    ratio("build one new post / build full", "build one new post", "build full", "")
    return out


def markdown(bench: Bench, info: dict[str, str], command: str, farm: dict[str, Any]) -> str:
    lines = [
        f"Command: `{command}`  ",
        f"Date: {info['date']}; machine: {info['nproc']} cores, {info['cpu']}, "
        f"Python {info['python']}; load average at start {info['loadavg']}.  ",
        f"Farm: {farm['feeds']} feeds x {farm['entries']} entries, "
        f"{int(farm['bytes']) / 1e6:.0f} MB of XML, {farm['failing']} failing, "
        f"{farm['slow']} slow, on {len(farm['hosts'])} loopback addresses.",
        "",
        "| contender | wall s | feeds/s | entries/s | peak RSS MB | farm req/s | farm CPU "
        "| notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in bench.rows:
        cells = format_row(row)
        r = row.result
        feeds = row.rate("feeds")
        entries = row.rate("entries_new")
        rss = f"{peak_rss(r):.0f}"
        notes = cells.split("  ")[-1]
        lines.append(
            f"| {row.name} | {row.wall:.2f} | {feeds and f'{feeds:.0f}' or '-'} | "
            f"{entries and f'{entries:.0f}' or '-'} | {rss} | "
            f"{row.farm['req_per_s']:.0f} | {row.farm['cpu_share']:.0%} | {notes} |"
            if row.farm.get("requests")
            else f"| {row.name} | {row.wall:.2f} | {feeds and f'{feeds:.0f}' or '-'} | "
            f"{entries and f'{entries:.0f}' or '-'} | {rss} | - | - | {notes} |"
        )
    lines += ["", "| ratio | measured | target |", "| --- | ---: | --- |"]
    for label, value, target in ratios(bench):
        lines.append(f"| {label} | {value:.2f} | {target or '-'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--store-entries", type=int, default=100_000, help="for build/digest")
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--slow", type=float, default=0.0)
    parser.add_argument("--slow-delay", type=float, default=2.0)
    parser.add_argument("--fail", type=float, default=0.02)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument(
        "--transports",
        default="httpx,aiohttp,project",
        help="comma-separated: httpx,aiohttp,http2,project or all",
    )
    parser.add_argument(
        "--skip", default="", help="comma-separated: reader,build,digest,floor,threads,cycles"
    )
    parser.add_argument("--cycles", type=int, default=100, help="update cycles for memory")
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temp folder)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per contender")
    parser.add_argument("--json", type=Path, help="save every figure here")
    parser.add_argument("--markdown", type=Path, help="save the table here")
    args = parser.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    transports = (
        ["httpx", "aiohttp", "http2", "project"]
        if args.transports == "all"
        else [t.strip() for t in args.transports.split(",") if t.strip()]
    )
    if "aiohttp" in transports and not aiohttp_installed():
        print("httpx-aiohttp is not installed (pip install -e '.[bench]'): skipping that transport")
        transports.remove("aiohttp")
    info = machine()
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    print(
        f"{info['date']}  {info['nproc']} cores  {info['cpu']}  Python {info['python']}  "
        f"load {info['loadavg']}"
    )
    farm_args = [
        "--feeds", str(args.feeds), "--entries", str(args.entries), "--hosts", str(args.hosts),
        "--latency", str(args.latency), "--slow", str(args.slow),
        "--slow-delay", str(args.slow_delay), "--fail", str(args.fail),
    ]  # fmt: skip
    if args.gzip:
        farm_args.append("--gzip")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with FarmProcess(*farm_args) as farm:
            print(
                f"farm ready in {time.perf_counter() - started:.1f}s: {farm.info['feeds']} feeds x "
                f"{farm.info['entries']} entries, {int(farm.info['bytes']) / 1e6:.0f} MB "  # type: ignore[call-overload]
                f"({farm.info['failing']} failing, {farm.info['slow']} slow)"
            )
            urls = work / "urls.txt"
            urls.write_text("\n".join(farm.urls()) + "\n")
            bench = Bench(farm, urls, work, args.timeout)
            extra: dict[str, Any] = {}
            print(HEADER)
            if "floor" not in skip:
                for t in transports:
                    name = {"httpx": "httpx", "project": "httpx+project transport"}.get(
                        t, f"httpx+{t}"
                    )
                    bench.run(f"fetch {name} cold", "fetch", f"fetch-{t}", "--transport", t)
                    bench.run(f"fetch {name} warm", "fetch", f"fetch-{t}", "--transport", t)
                bench.run(
                    "fetch+feedparser cold", "fetch-parse", "fetch-parse", "--transport", "httpx"
                )
            bench.run("project cold", "project", "project")
            bench.run("project warm (304)", "project", "project")
            for t in transports:
                # "project warm (304)" is the project's own transport, httpx over aiohttp.
                if t not in ("aiohttp", "project"):
                    bench.run(
                        f"project warm (304) [{t} transport]", "project", "project",
                        "--transport", t,
                    )  # fmt: skip
            # Last: without validators the store forgets the ETags it had.
            farm.mode(conditional=False)
            bench.run("project warm (no validators)", "project", "project")
            farm.mode(conditional=True)
            if "threads" not in skip:
                bench.run(
                    "project cold (parse in 1 thread)", "project", "project-threads",
                    "--parse-workers", "1",
                )  # fmt: skip
            if "cycles" not in skip and args.cycles > 0:
                # Memory across scheduler cycles: many updates in one process, on the
                # first 100 feeds (the first cycle is cold, the rest mostly 304s).
                few = work / "urls-100.txt"
                few.write_text("\n".join(farm.urls()[:100]) + "\n")
                cycles = contender(
                    "cycles", few, work / "cycles", "--cycles", str(args.cycles),
                    timeout=args.timeout,
                )  # fmt: skip
                print(
                    f"memory across {args.cycles} update cycles of 100 feeds in one process "
                    f"(RSS MB after cycle n): {cycles['rss_after_cycle_mb']}"
                )
                extra["cycles"] = cycles
            if "reader" not in skip:
                if reader_installed():
                    bench.run("reader cold", "reader", "reader")
                    bench.run("reader warm", "reader", "reader")
                else:
                    print("reader is not installed (pip install -e '.[bench]'): skipping it")
        store_dir = "store"
        if not {"build", "digest"} <= skip:
            made = contender(
                "make-store", urls, work / store_dir,
                "--entries-total", str(args.store_entries), timeout=args.timeout,
            )  # fmt: skip
            per_entry = made["db_bytes"] / max(1, made["entries_stored"])
            print(
                f"store: {made['entries_stored']} entries, {made['db_bytes'] / 1e6:.0f} MB "
                f"({per_entry:.0f} bytes an entry), made in {made['wall']:.1f}s"
            )
            output = str(work / store_dir / "public")
            if "build" not in skip:
                bench.run("build full", "build", store_dir, "--output", output, farm=False)
                bench.run("build unchanged", "build", store_dir, "--output", output, farm=False)
                contender("add-post", urls, work / store_dir, timeout=args.timeout)
                bench.run("build one new post", "build", store_dir, "--output", output, farm=False)
            if "digest" not in skip:
                bench.run("digest", "digest", store_dir, "--output", output, farm=False)
                bench.run("digest again", "digest", store_dir, "--output", output, farm=False)
        print()
        for label, value, target in ratios(bench):
            print(f"{label:<44} {value:6.2f}   {('target ' + target) if target else ''}")
        for row in bench.rows:
            if row.name.startswith("project cold") and row.result.get("entries_stored"):
                size = row.result["db_bytes"] / row.result["entries_stored"]
                print(f"database per entry ({row.name}): {size:.0f} bytes")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "machine": info,
                        "farm": farm.info,
                        "rows": [r.__dict__ for r in bench.rows],
                        "ratios": ratios(bench),
                        **extra,
                    },
                    indent=1,
                )
            )
        if args.markdown:
            args.markdown.write_text(markdown(bench, info, command, farm.info))
    return 0
