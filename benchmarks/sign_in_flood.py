"""Sign-in flood: does an authenticated API call stay quick while strangers flood `/signin`?

`quotasync serve` runs as its own process on a fresh data dir, with argon2's standard parameters
(64 MiB, three passes: what a deployment runs). A member's API token reads
`/api/v1/workspaces/W/me/usage` once every 50 ms; meanwhile 40 threads post sign-ins with
well-formed, unknown emails as fast as they are answered, each from a client address of its own
(`X-Forwarded-For`, which uvicorn takes from a proxy on 127.0.0.1), so that the per-client limit
does not end the flood and the password checks themselves are what is measured. Three variants,
each on a fresh server:

- `quiet`: no flood, the baseline;
- `flood, bounded`: the flood against password checks in `CHECK_SLOTS` slots (as deployed);
- `flood, unbounded`: the same flood with 64 slots (`QUOTASYNC_PASSWORD_CHECK_SLOTS=64`), which
  stands for the checks of before, each on a thread of the pool that serves every request.

Figures: the API call's median and 95th-percentile time, sign-ins answered by status, and the
server's peak resident memory (VmHWM). Rewrites the "sign_in_flood" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

from benchmarks import report
from quotasync.store import users

FLOODERS = 40
VARIANTS = {"quiet": None, "flood, bounded": None, "flood, unbounded": "64"}
COLUMNS = ["variant", "API median", "API p95", "vs quiet (p95)", "sign-ins", "server peak RSS"]


@dataclass
class Measured:
    variant: str
    api_seconds: list[float] = field(default_factory=list)
    sign_ins: Counter[int] = field(default_factory=Counter)
    peak_rss_mib: float = 0.0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.api_seconds)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def quotasync(data_dir: Path, *args: str, slots: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTASYNC_")}
    env["QUOTASYNC_DATA_DIR"] = str(data_dir)
    if slots is not None:
        env["QUOTASYNC_PASSWORD_CHECK_SLOTS"] = slots
    done = subprocess.run(
        [sys.executable, "-m", "quotasync.cli", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return done.stdout


def serve(data_dir: Path, slots: str | None) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTASYNC_")}
    env["QUOTASYNC_DATA_DIR"] = str(data_dir)
    if slots is not None:
        env["QUOTASYNC_PASSWORD_CHECK_SLOTS"] = slots
    server = subprocess.Popen(
        [sys.executable, "-m", "quotasync.cli", "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()  # "quotasync serving on http://127.0.0.1:PORT"
    found = re.search(r"(http://\S+)", line)
    if found is None:
        server.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    return server, found.group(1)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(variant: str, slots: str | None, seconds: float) -> Measured:
    found = Measured(variant)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        made = json.loads(
            quotasync(data, "workspace", "create", "Acme", "--admin", "a@acme.io", "--json")
        )
        workspace = made["workspace"]
        quotasync(data, "user", "add", "--workspace", workspace, "rep@acme.io")
        token = json.loads(
            quotasync(data, "user", "token", "--workspace", workspace, "rep@acme.io", "--json")
        )["token"]
        server, url = serve(data, slots)
        stop = threading.Event()
        lock = threading.Lock()

        def flood(index: int) -> None:
            browser = requests.Session()
            csrf = re.search(
                r'name="csrf_token" value="([^"]+)"', browser.get(f"{url}/signin").text
            )
            assert csrf is not None
            n = 0
            while not stop.is_set():
                n += 1
                answer = browser.post(
                    f"{url}/signin",
                    data={"email": f"stranger{index}.{n}@nowhere.example", "password": "guess " * 3,
                          "csrf_token": csrf.group(1)},
                    headers={"X-Forwarded-For": f"10.{index}.{n // 250 % 250}.{n % 250}"},
                    allow_redirects=False,
                )  # fmt: skip
                with lock:
                    found.sign_ins[answer.status_code] += 1

        flooders = [
            threading.Thread(target=flood, args=(i,), daemon=True)
            for i in range(FLOODERS if variant != "quiet" else 0)
        ]
        try:
            for thread in flooders:
                thread.start()
            time.sleep(1.0)  # the flood under way
            api = f"{url}/api/v1/workspaces/{workspace}/me/usage"
            bearer = {"Authorization": f"Bearer {token}"}
            ends = time.monotonic() + seconds
            while time.monotonic() < ends:
                started = time.perf_counter()
                answer = requests.get(api, headers=bearer, timeout=120)
                found.api_seconds.append(time.perf_counter() - started)
                assert answer.status_code == 200, answer.text
                time.sleep(0.05)
            found.peak_rss_mib = peak_rss_mib(server.pid)
        finally:
            stop.set()
            for thread in flooders:
                thread.join(timeout=30)
            server.terminate()
            server.wait(timeout=30)
    return found


def run(seconds: float) -> None:
    found = [measure(variant, slots, seconds) for variant, slots in VARIANTS.items()]
    quiet_p95 = found[0].percentile(0.95)
    rows = [
        [
            m.variant,
            f"{statistics.median(m.api_seconds) * 1000:.0f} ms",
            f"{m.percentile(0.95) * 1000:.0f} ms",
            f"{m.percentile(0.95) / quiet_p95:.1f}x",
            ", ".join(f"{n:,} answered {status}" for status, n in sorted(m.sign_ins.items()))
            or "-",
            f"{m.peak_rss_mib:,.0f} MiB",
        ]
        for m in found
    ]
    title = (
        f"An authenticated API call while {FLOODERS} threads flood /signin ({seconds:.0f} s each)"
    )
    report.show(title, COLUMNS, rows)
    bounded = found[1]
    words = (
        f"With the flood, the API call's 95th percentile is {bounded.percentile(0.95) * 1000:.0f} ms "
        f"({bounded.percentile(0.95) / quiet_p95:.1f}x the quiet server's; target: under 500 ms), "
        f"against {found[2].percentile(0.95) * 1000:.0f} ms with unbounded checks. "
        f"Sign-ins beyond the check slots ({users.CHECK_SLOTS} on this {report.cpus()}-core "
        "machine: one core is left to serve) are answered 503 at once, before any store work; "
        "each check that runs costs argon2's 64 MiB, so the slots bound the server's memory "
        "as well. The 40 flooding threads run on the same cores as the server, so the flooded "
        "figures are worse than a flood from elsewhere would make them."
    )
    print(words)
    report.write_section(
        "sign_in_flood",
        "\n\n".join(
            [
                "## Sign-in flood (`python -m benchmarks.sign_in_flood`)",
                "`quotasync serve` in its own process with argon2's standard parameters; a "
                "member's API token reads `me/usage` every 50 ms while 40 threads post sign-ins "
                "with unknown emails, each from an address of its own (`X-Forwarded-For`), so "
                "the per-client limit does not end the flood. `unbounded` runs 64 check slots, "
                "standing for the checks of before.",
                f"### {title}",
                report.markdown_table(COLUMNS, rows),
                words,
            ]
        ),
    )
    report.save_results(
        "sign_in_flood",
        {
            m.variant: {
                "api_median_s": statistics.median(m.api_seconds),
                "api_p95_s": m.percentile(0.95),
                "sign_ins": dict(m.sign_ins),
                "peak_rss_mib": m.peak_rss_mib,
            }
            for m in found
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15, help="each variant's measuring time")
    run(parser.parse_args().seconds)


if __name__ == "__main__":
    main()
