"""Where a training step of a shipped recipe spends its time: drawing the batch vs the network, per device.

    python benchmarks/train_throughput.py [--recipe yolo_nano_shapes] [--steps 6] [--workers 0,2]
                                          [--devices cpu[,cuda]] [--threads 1]

For one recipe's model and data (random weights of the shipped architecture, the recipe's synthetic data
mix and batch size), it measures in one run:

- **draw**: images/s of ``Task.batch`` alone (render the synthetic images, letterbox / stretch, flip), in
  the training process;
- **step**: images/s of forward + loss + backward + optimiser step on batches drawn beforehand, per device;
- **loop**: images/s of the training loop's own batch stream with N workers feeding each device.

The ratios say what a GPU or more batch workers would buy: when ``draw`` is slower than ``step``, the GPU
waits for data and workers are what help. Printed, not asserted (the machines are shared and noisy).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _task(recipe: str, threads: int):
    import torch

    from converters.train.config import TrainConfig
    from converters.train.data import open_data
    from converters.train.recipes import RECIPES
    from converters.train.tasks import build_network, make_task

    cfg = dict(RECIPES[recipe].config)
    cfg.update(weights=None, freeze_backbone=False, unfreeze_at=None, bn_calibration=0, out="build/bench-train",
               threads=threads, progress=False)
    config = TrainConfig(**cfg)
    torch.set_num_threads(threads)
    data = open_data(config.task, config.data, val_images=1, input_size=config.size, options=config.data_options)
    model = build_network(config, data.class_names)
    return config, make_task(config, data, model), model


def _step_rate(config, task, model, batches: List, device: str) -> float:
    import torch

    from converters.train.batches import resolve_device, to_device
    from converters.train.optim import build_optimizer

    dev = resolve_device(device)
    net = model.to(dev).train()
    task = type(task)(config, task.data, net)  # the loss module on the same device
    opt = build_optimizer(net, kind=config.optimizer, lr=config.peak_lr, weight_decay=config.decay)

    def one(batch) -> None:
        loss, _ = task.loss(net, to_device(batch, dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    one(batches[0])  # warm-up (cuDNN autotuning, allocator)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for b in batches:
        one(b)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return len(batches) * config.batch / (time.perf_counter() - t0)


def _stream_rate(config, task, steps: int, workers: int) -> float:
    from converters.train.batches import batch_stream

    t0 = time.perf_counter()
    n = sum(1 for _ in batch_stream(task.batch, 1, steps, workers=workers))
    return n * config.batch / (time.perf_counter() - t0)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="yolo_nano_shapes")
    p.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    p.add_argument("--workers", default="0,2", help="comma-separated worker counts for the batch stream")
    p.add_argument("--devices", default="cpu", help="comma-separated devices (cpu, cuda, cuda:N)")
    p.add_argument("--threads", type=int, default=1, help="torch threads in the training process")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    config, task, model = _task(args.recipe, args.threads)
    t0 = time.perf_counter()
    batches = [task.batch(0, s) for s in range(args.steps + 1)]
    draw = (args.steps + 1) * config.batch / (time.perf_counter() - t0)
    print(f"{args.recipe}: batch {config.batch}, input {config.size}, data {config.data_options}")
    print(f"  draw (in process, {args.threads} thread)      {draw:8.1f} images/s")
    steps: Dict[str, float] = {}
    for device in [d for d in args.devices.split(",") if d]:
        steps[device] = _step_rate(config, task, model, batches[1:], device)
        print(f"  step on {device:<8s} (batches drawn before) {steps[device]:8.1f} images/s "
              f"(x{steps[device] / draw:.2f} of draw)")
    streams: Dict[int, float] = {}
    for w in [int(v) for v in args.workers.split(",") if v.strip()]:
        streams[w] = _stream_rate(config, task, args.steps, w)
        print(f"  batch stream, {w} workers               {streams[w]:8.1f} images/s "
              f"(x{streams[w] / streams.get(0, streams[w]):.2f} of 0 workers)")
    for device, rate in steps.items():
        best = max(streams.values()) if streams else draw
        print(f"  => on {device}: the step needs {rate:.1f} images/s, the fastest stream gives {best:.1f}: "
              + ("data-bound" if best < rate else "compute-bound"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
