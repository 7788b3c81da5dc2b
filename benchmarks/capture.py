"""Capture benchmarks, measured in one run (targets from issue 4):

1. A 30 fps live source with a consumer 3x slower than the frame period: frame age at inference, in frame
   periods, for ``latest`` vs ``queue(30)`` side by side (target: latest <= 1.5 at p90).
2. 10,000 frames through ``sdk.Pipeline``: RSS growth (target <= 10 MB) and threads / child processes left
   behind (target 0).
3. RTSP server restart (gst-rtsp-server on 127.0.0.1): seconds until frames flow again (target <= 3 s).

    python benchmarks/capture.py [--model build/test-models/detector.onnx] [--plot age.png] [--quick]

Without ``--model`` the slow consumer is a stand-in that sleeps for three frame periods; with one, it runs
the model and then sleeps for the rest of the three periods. Part 3 needs the system Python's
gst-rtsp-server bindings (python3-gi, gir1.2-gst-rtsp-server-1.0) and is skipped, saying so, without them.
"""
from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sdk  # noqa: E402

FPS = 30.0
SERVER = ROOT / "sdk" / "sources" / "testserver.py"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def child_pids() -> list:
    me, out = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == me:
                    out.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return out


def sdk_threads() -> list:
    return [t.name for t in threading.enumerate() if t.name.startswith("edgesdk")]


class SlowConsumer:
    """Takes ``periods`` frame periods per frame: the model (if any) plus a sleep for the rest."""

    def __init__(self, model, period_s: float, periods: float = 3.0) -> None:
        self.model, self.budget = model, periods * period_s
        self.last_timings: dict = {}

    def __call__(self, image):
        t0 = time.perf_counter()
        result = self.model(image) if self.model is not None else sdk.Detections.empty()
        self.last_timings = dict(getattr(self.model, "last_timings", {}) or {})
        rest = self.budget - (time.perf_counter() - t0)
        if rest > 0:
            time.sleep(rest)
        return result


def age_run(uri: str, policy: str, model, n: int) -> np.ndarray:
    consumer = SlowConsumer(model, 1.0 / FPS)
    ages = []
    with sdk.Pipeline(uri, consumer, policy=policy, warmup=False, max_frames=n) as pipe:
        for frame, _ in pipe:
            ages.append(frame.meta["age_ms"])
    return np.asarray(ages) / (1000.0 / FPS)


def part1(model, n: int, plot: "str | None") -> dict:
    print(f"\n(1) 30 fps live source, consumer 3x slower ({3000 / FPS:.0f} ms per frame), {n} inferences per run;"
          f"\n    frame age at inference in frame periods ({1000 / FPS:.1f} ms)")
    sources = {"synthetic realtime": f"synthetic://shapes?realtime=1&fps={FPS:g}&size=640x480"}
    if shutil.which("gst-launch-1.0"):
        sources["gst videotestsrc"] = f"gst:videotestsrc is-live=true ! video/x-raw,width=640,height=480,framerate={int(FPS)}/1"
    print(f"    {'source':<20} {'policy':<10} {'p50':>6} {'p90':>6} {'max':>6}")
    results = {}
    for name, uri in sources.items():
        for policy in ("latest", "queue(30)"):
            ages = age_run(uri, policy, model, n)
            results[(name, policy)] = ages
            print(f"    {name:<20} {policy:<10} {np.percentile(ages, 50):6.2f} {np.percentile(ages, 90):6.2f} "
                  f"{ages.max():6.2f}")
        lat, q = results[(name, "latest")], results[(name, "queue(30)")]
        print(f"    {name:<20} queue(30)/latest at p90: {np.percentile(q, 90) / np.percentile(lat, 90):.1f}x; "
              f"latest p90 {'<=' if np.percentile(lat, 90) <= 1.5 else '>'} 1.5 target")
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        for (name, policy), ages in results.items():
            ax.plot(ages, label=f"{name}, {policy}")
        ax.axhline(1.5, color="k", ls="--", lw=0.8, label="target (latest, p90)")
        ax.set_xlabel("inference #")
        ax.set_ylabel("frame age at inference (frame periods)")
        ax.set_title("30 fps source, consumer 3x slower")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(plot, dpi=110)
        print(f"    plot: {plot}")
    return results


def part2(model, n: int) -> None:
    if shutil.which("gst-launch-1.0"):
        uri = f"gst:videotestsrc num-buffers={n} pattern=ball ! video/x-raw,width=160,height=120"
        label = "gst-launch videotestsrc (subprocess)"
    else:
        uri, label = f"synthetic://shapes?size=160x120&frames={n}", "synthetic"
    print(f"\n(2) {n} frames through sdk.Pipeline from {label}, policy every, model "
          f"{'test detector' if model is not None else 'none (identity)'}")
    infer = model if model is not None else (lambda image: sdk.Detections.empty())
    threads_before, children_before = set(sdk_threads()), set(child_pids())
    gc.collect()
    start_rss, warm_rss = rss_mb(), None
    count = 0
    t0 = time.perf_counter()
    with sdk.Pipeline(uri, infer, policy="every", warmup=False) as pipe:
        for frame, _ in pipe:
            count += 1
            if count == 500:
                gc.collect()
                warm_rss = rss_mb()
        stats = pipe.stats()
    elapsed = time.perf_counter() - t0
    gc.collect()
    time.sleep(0.2)
    end_rss = rss_mb()
    threads_left = sorted(set(sdk_threads()) - threads_before)
    children_left = sorted(set(child_pids()) - children_before)
    growth = end_rss - (warm_rss if warm_rss is not None else start_rss)
    print(f"    frames {count} in {elapsed:.1f} s ({count / elapsed:.0f} FPS), dropped {stats['dropped']}")
    print(f"    RSS: start {start_rss:.1f} MB, after 500 frames {warm_rss or float('nan'):.1f} MB, end {end_rss:.1f} MB"
          f" -> growth {growth:+.1f} MB (target <= 10)")
    print(f"    left behind: threads {len(threads_left)} {threads_left or ''}, child processes "
          f"{len(children_left)} {children_left or ''} (target 0)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> "tuple[subprocess.Popen, float]":
    for _ in range(50):
        proc = subprocess.Popen(["/usr/bin/python3", str(SERVER), "--port", str(port), "--size", "320x240",
                                 "--fps", str(int(FPS))], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = proc.stdout.readline()
        if line.startswith("READY"):
            return proc, time.monotonic()
        stop_server(proc)
        time.sleep(0.1)
    raise RuntimeError(f"RTSP test server did not start on port {port}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()


def part3(restarts: int) -> None:
    print(f"\n(3) RTSP server restart on 127.0.0.1 ({restarts} restarts per backend, server down ~0.5 s)")
    ok = os.path.exists("/usr/bin/python3") and subprocess.run(
        ["/usr/bin/python3", "-c", "import gi; gi.require_version('GstRtspServer','1.0')"],
        capture_output=True).returncode == 0
    if not ok or not shutil.which("gst-launch-1.0"):
        print("    skipped: needs gst-launch-1.0 and /usr/bin/python3 with gst-rtsp-server (python3-gi, "
              "gir1.2-gst-rtsp-server-1.0)")
        return
    backends = ["gst-launch"] + (["ffmpeg"] if shutil.which("ffmpeg") else [])
    print(f"    {'backend':<12} {'from server up: mean':>21} {'max':>6}   {'outage (kill→frame): mean':>26} {'max':>6}")
    for backend in backends:
        port = free_port()
        server, _ = start_server(port)
        since_up, outage = [], []
        try:
            with sdk.open_source(f"rtsp://127.0.0.1:{port}/test", backend=backend, backoff=0.1, backoff_max=1.0,
                                 max_retries=30, read_timeout=30) as source:
                for _ in range(10):
                    source.read()
                for _ in range(restarts):
                    t_kill = time.monotonic()
                    stop_server(server)
                    time.sleep(0.5)
                    server, t_up = start_server(port)
                    while True:
                        frame = source.read()
                        if frame.t_capture > t_up:
                            since_up.append(frame.t_capture - t_up)
                            outage.append(frame.t_capture - t_kill)
                            break
                    for _ in range(10):
                        source.read()
        finally:
            stop_server(server)
        print(f"    {backend:<12} {np.mean(since_up):20.2f}s {max(since_up):5.2f}s   {np.mean(outage):25.2f}s "
              f"{max(outage):5.2f}s   (target <= 3 s from server up)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="run this model in the consumer (default: a sleeping stand-in)")
    parser.add_argument("--frames", type=int, default=10_000, help="frames for part 2")
    parser.add_argument("--inferences", type=int, default=60, help="inferences per run in part 1")
    parser.add_argument("--restarts", type=int, default=3, help="server restarts per backend in part 3")
    parser.add_argument("--plot", help="save a PNG of frame age over time (part 1)")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.inferences, args.restarts = 1000, 20, 1
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    model = sdk.load(args.model) if args.model else None
    caps = sdk.sources.capabilities()
    print(f"capture paths here: OpenCV GStreamer {caps['opencv_gstreamer']}, OpenCV FFmpeg {caps['opencv_ffmpeg']}, "
          f"gst-launch {'yes' if caps['gst_launch'] else 'no'}, ffmpeg {'yes' if caps['ffmpeg'] else 'no'}, "
          f"board {caps['board']}")
    part1(model, args.inferences, args.plot)
    part2(model, args.frames)
    part3(args.restarts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
