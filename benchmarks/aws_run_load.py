"""Concurrent sign-ups against `tctf run --aws` (embedded moto server) beside in-memory
`tctf run`, in one run: requests/s, statuses, e-mails handled, stop time and peak memory.

Each contender runs as a subprocess on a free loopback port. N sign-ups (POST /users) go out
from a bounded thread pool; the run then waits until every created user's welcome e-mail is
handled (read from the JSON delivery log on stdout), or a deadline, and stops the platform
with SIGINT. Peak RSS is each process's high-water mark (VmHWM) read just before SIGINT.

    .venv/bin/python benchmarks/aws_run_load.py [--requests 500] [--threads 32]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # the load only ever targets loopback


@dataclass
class Result:
    contender: str
    requests_per_s: float
    statuses: Counter[str]
    emails_handled: int
    seconds_to_handle: float
    seconds_to_stop: float
    platform_peak_mb: float
    moto_peak_mb: float | None
    tracebacks: int


@dataclass
class Platform:
    """A `tctf run` subprocess, its log lines pumped by threads."""

    args: list[str]
    port: int = 0
    process: subprocess.Popen[str] | None = None
    banner: queue.Queue[str] = field(default_factory=queue.Queue)
    emails: int = 0
    tracebacks: int = 0

    def start(self, cwd: str) -> None:
        self.port = _free_port()
        command = [sys.executable, "-m", "tctf.cli", "run", *self.args, "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        threading.Thread(target=self._read_log, args=(self.process.stdout,), daemon=True).start()
        threading.Thread(target=self._read_err, args=(self.process.stderr,), daemon=True).start()
        line = self.banner.get(timeout=120)
        if "HTTP on" not in line:
            raise RuntimeError(f"tctf run did not start: {line}")

    def _read_log(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("type") == "SEND_EMAIL" and record.get("outcome") == "handled":
                self.emails += 1

    def _read_err(self, stream: IO[str]) -> None:
        for line in stream:
            if line.startswith("tctf:"):
                self.banner.put(line)
            if line.startswith("Traceback"):
                self.tracebacks += 1
        self.banner.put("(exited)")

    def peak_rss_mb(self) -> tuple[float, float | None]:
        assert self.process is not None
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        moto = _peak_rss_mb(int(children[0])) if children else None
        return _peak_rss_mb(pid), moto

    def stop(self, timeout: float = 60.0) -> float:
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.monotonic() - started


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def sign_up(port: int, n: int, timeout: float) -> str:
    body = json.dumps({"email": f"user{n}@example.com", "name": f"User {n}"}).encode()
    request = urllib.request.Request(f"http://{HOST}:{port}/users", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return str(response.status)
    except urllib.error.HTTPError as error:
        return str(error.code)
    except (TimeoutError, urllib.error.URLError, ConnectionError) as error:
        return type(getattr(error, "reason", error)).__name__


def measure(name: str, args: list[str], requests: int, threads: int, deadline: float) -> Result:
    platform = Platform(args)
    with tempfile.TemporaryDirectory() as cwd:  # `.tctf/endpoint` lands here, not in the repo
        platform.start(cwd)
        started = time.monotonic()
        with ThreadPoolExecutor(threads) as pool:
            statuses = Counter(pool.map(lambda n: sign_up(platform.port, n, 10.0), range(requests)))
        elapsed = time.monotonic() - started
        created = statuses["201"]
        until = time.monotonic() + deadline
        while platform.emails < created and time.monotonic() < until:
            time.sleep(0.05)
        handled_after = time.monotonic() - started
        platform_mb, moto_mb = platform.peak_rss_mb()
        seconds_to_stop = platform.stop()
    return Result(
        name,
        requests / elapsed,
        statuses,
        platform.emails,
        handled_after,
        seconds_to_stop,
        platform_mb,
        moto_mb,
        platform.tracebacks,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="sign-ups per contender")
    parser.add_argument("--threads", type=int, default=32, help="client threads")
    parser.add_argument(
        "--deadline", type=float, default=120.0, help="seconds to wait for the e-mails"
    )
    options = parser.parse_args()
    os.chdir(ROOT)
    contenders = [("tctf run (in memory)", []), ("tctf run --aws (embedded moto)", ["--aws"])]
    results = [
        measure(name, args, options.requests, options.threads, options.deadline)
        for name, args in contenders
    ]
    print(
        f"{options.requests} sign-ups from {options.threads} threads\n\n"
        "| contender | requests/s | statuses | e-mails handled | all handled after s "
        "| stop on SIGINT s | platform peak RSS MB | moto peak RSS MB | tracebacks |\n"
        "|---|---:|---|---:|---:|---:|---:|---:|---:|"
    )
    for r in results:
        statuses = ", ".join(f"{code}: {count}" for code, count in sorted(r.statuses.items()))
        moto = f"{r.moto_peak_mb:,.0f}" if r.moto_peak_mb is not None else "-"
        print(
            f"| {r.contender} | {r.requests_per_s:,.1f} | {statuses} | {r.emails_handled} "
            f"| {r.seconds_to_handle:.1f} | {r.seconds_to_stop:.1f} | {r.platform_peak_mb:,.0f} "
            f"| {moto} | {r.tracebacks} |"
        )


if __name__ == "__main__":
    main()
