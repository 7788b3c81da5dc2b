"""The same Ultralytics YOLOv8n ONNX export through Ultralytics' ``predict`` and through ``sdk.load``.

Target (issue 5): SDK time per frame end to end <= 0.8x Ultralytics', with the same detections
(matched one to one, same class, IoU >= 0.99).

What is measured
----------------
* The model: ``YOLO("yolov8n.yaml")``, i.e. YOLOv8n built from its architecture file with random
  weights (``--seed``), exported with Ultralytics' own exporter (``model.export(format="onnx")``).
  Nothing is downloaded: no ``yolov8n.pt``, no fonts, no auto-installed packages (see
  :func:`_offline_ultralytics`: ``YOLO_OFFLINE=1`` makes its ``ONLINE`` flag False, ``YOLO_AUTOINSTALL=0``
  stops ``check_requirements`` from calling pip, ``YOLO_CONFIG_DIR`` points at a temporary folder so
  its ``settings.json`` is not written into your home, and the settings get ``sync=False`` so no
  analytics or crash reports are sent; ``simplify=False`` avoids the ``onnxslim`` requirement).
* Making a random network detect something, honestly: a random-init YOLOv8n keeps Ultralytics'
  prior class bias ``log(5 / nc / (640 / stride)^2)`` (about -9), so nothing passes ``conf=0.25``;
  and with the initial BatchNorm statistics (mean 0, var 1) its activations saturate, so every frame
  gives the same clipped boxes with one tied score. Before export, with the weights left random and
  no gradient step: (1) the BatchNorm running statistics are estimated on a few calibration frames
  (one forward pass in train mode), so the outputs depend on the image; (2) the DFL box bias gets a
  decaying prior over its 16 bins (``-0.5 k``), giving boxes of a few strides (about 120..450 frame
  pixels wide) instead of frame-sized clipped ones; (3) the class-logit biases of the three heads
  (``Detect.cv3[i][-1].bias``) get one common shift, calibrated so that about ``--candidates``
  anchors per frame (default 200, the pre-NMS count of a trained nano model on a busy scene) score
  above the threshold. Both sides then decode and NMS ~200 candidates over ~55 of the 80 classes
  per frame, with scores spread from 0.25 to ~0.9. The boxes mean nothing; what is compared is two
  implementations of the same pre/post-processing around the same network, which is what this
  benchmark is for. (Fitting a few steps on synthetic data would mean no more at this scale and needs
  an Ultralytics training run, its dataset files and its plotting fonts.)
* Both sides run the SAME ``.onnx`` file on CPU with ONNX Runtime and the same intra-op thread count
  (``--threads``): Ultralytics creates its session with default options (all cores), so after its
  predictor is set up its session is replaced by one with ``intra_op_num_threads=--threads`` and
  the same graph optimisation level. torch (used by Ultralytics' pre/post-processing and NMS) keeps
  Ultralytics' own thread count (``select_device`` sets ``cpu_count - 1``; ``--torch-threads`` to
  change it). ``--no-spin`` sets ``session.intra_op.allow_spinning=0`` on both sessions: on an
  oversubscribed CPU the spinning ONNX Runtime workers steal the cores the numpy/torch
  post-processing needs (and ``infer`` itself gets ~2x slower). The SDK reads Ultralytics' ONNX
  metadata itself (``sdk/foreign.py``): no sidecar, no flags.
* Frames: 1280x720 (``--frame-size``) BGR from ``synthetic://shapes``. Ultralytics: ``YOLO(onnx).predict(frame,
  imgsz, conf, iou, max_det, device="cpu")`` once per frame, as a live application calls it; SDK:
  ``model(frame, conf_threshold, iou_threshold, max_det)``. Rounds are interleaved and the order
  alternates every round (U S, S U, ...) so machine noise hits both alike; medians are printed,
  with each side's own pre/infer/post split.
* A third side, the SDK's own backend choice: ``sdk.load(onnx, device=CFG)`` with the device config that
  matches this host (``--device``; x86-cpu lists OpenVINO first, which reads the same ``.onnx``, in f32).
  Its ratio is printed separately: the first ratio isolates the SDK's pre/post-processing (same runtime
  on both sides), the second is what a user of ``sdk.load(..., device=...)`` gets on this host.
* Same detections: per frame, greedy one-to-one matching by IoU among boxes of the same class; the
  match rate is matched / max(n_ultralytics, n_sdk) over all compared frames.

Run: ``.venv/bin/python benchmarks/vs_ultralytics.py [--imgsz 320|640] [--rounds 200] [--threads 2] [--no-spin]``.
Needs ``ultralytics`` (and torch) installed: ``pip install --no-deps ultralytics`` in an environment
that already has torch, torchvision, opencv, pillow, pyyaml, requests, psutil, matplotlib, scipy.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET = 0.80
IOU_MATCH = 0.99
DEGENERATE_TOL = 0.5    # px: zero-area boxes match when all corners agree this closely
BOX_PRIOR_DECAY = 0.5   # DFL bin k gets bias -0.5 k: mean distance ~1.5 strides per side
INSTALL_HINT = ("ultralytics is not installed; this comparison is skipped. To run it:\n"
                "  .venv/bin/pip install --no-deps ultralytics\n"
                "(--no-deps keeps your torch/numpy/opencv; it needs torch, torchvision, opencv, pillow, pyyaml, "
                "requests, psutil, matplotlib and scipy, which the convert environment has)")


def _offline_ultralytics(config_dir: Path, verbose: bool) -> Any:
    """Import ultralytics with every network path closed; returns the ``YOLO`` class or None.

    Must run before the first ``import ultralytics``: ``AUTOINSTALL`` and ``ONLINE`` are read at import.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")            # utils.is_online() -> False, so ONLINE = False
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")        # check_requirements() never runs pip/uv
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))  # settings.json in a temp dir, not ~/.config
    if not verbose:
        os.environ.setdefault("YOLO_VERBOSE", "False")
    import importlib.util

    if importlib.util.find_spec("ultralytics") is None:
        return None
    try:
        from ultralytics import YOLO
        from ultralytics.utils import SETTINGS
    except ImportError as exc:  # installed with --no-deps but one of its imports is missing
        raise SystemExit(f"ultralytics is installed but does not import: {exc}; install the missing package "
                         f"({getattr(exc, 'name', '?')}) without letting it replace torch/numpy") from None
    SETTINGS.update({"sync": False})                       # no events / crash reports
    return YOLO


def _frames(n: int, size: str = "1280x720") -> List[np.ndarray]:
    import sdk

    with sdk.open_source(f"synthetic://shapes?size={size}") as src:
        it = iter(src)
        return [next(it).image for _ in range(n)]


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def _build_and_export(YOLO: Any, workdir: Path, *, imgsz: int, seed: int, conf: float, candidates: int,
                      calib: List[np.ndarray]) -> Tuple[Path, float]:
    """YOLOv8n from its yaml, random weights made to detect (module docstring), exported to ONNX by Ultralytics.

    Returns:
        (path of the .onnx, the bias shift applied).
    """
    import torch

    from sdk.preprocess import PreprocessConfig, Preprocessor

    torch.manual_seed(seed)
    model = YOLO("yolov8n.yaml")
    net = model.model
    head = net.model[-1]
    pre = Preprocessor(PreprocessConfig(size_hw=(imgsz, imgsz)))
    batch = torch.from_numpy(np.concatenate([pre(f)[0] for f in calib]))
    # BatchNorm statistics of the random network, estimated on the calibration frames (no gradient step):
    # with the initial running stats (mean 0, var 1) the activations saturate and every frame gives
    # the same clipped boxes with the same score; with these the outputs depend on the image.
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None                      # cumulative average over the calibration passes
    net.train()
    with torch.no_grad():
        net(batch)
    net.eval()
    kth = []
    with torch.no_grad():
        for frame in calib:
            tensor, _ = pre(frame)
            out = net(torch.from_numpy(np.ascontiguousarray(tensor)))
            raw = out[1] if isinstance(out, (tuple, list)) else None
            if not isinstance(raw, dict) or "scores" not in raw:
                raise RuntimeError("unexpected Ultralytics Detect output; cannot calibrate the head bias")
            best = raw["scores"][0].max(0).values.numpy()          # (N,) best class logit per anchor
            k = min(candidates, best.size) - 1
            kth.append(np.partition(best, best.size - 1 - k)[best.size - 1 - k])
    shift = _logit(conf) - float(np.median(kth)) + 1e-3
    with torch.no_grad():
        for branch in head.cv3:
            branch[-1].bias += shift
        # box prior: the initial DFL bias (2.0 on every bin) spreads each side over 16 bins, i.e. boxes of
        # ~15 strides that get clipped to the frame; a decaying prior over the bins gives boxes of a few
        # strides (tens to hundreds of frame pixels), the random weights still vary them per anchor
        prior = -BOX_PRIOR_DECAY * torch.arange(head.reg_max, dtype=torch.float32)
        for branch in head.cv2:
            branch[-1].bias.copy_(prior.repeat(4))
    cwd = os.getcwd()
    os.chdir(workdir)          # the exporter writes next to the model "file", i.e. the working directory
    try:
        path = model.export(format="onnx", imgsz=imgsz, simplify=False, dynamic=False,
                            device="cpu", verbose=False)
    finally:
        os.chdir(cwd)
    return Path(workdir, path).resolve(), shift


def _match(a_xyxy: np.ndarray, a_cls: np.ndarray, b_xyxy: np.ndarray, b_cls: np.ndarray) -> List[Tuple[int, int, float]]:
    """Greedy one-to-one matching by IoU (highest first) among same-class boxes with IoU >= IOU_MATCH.

    Args:
        a_xyxy, b_xyxy: (Na, 4), (Nb, 4) boxes; a_cls, b_cls: (Na,), (Nb,) class ids.

    Returns:
        (index in a, index in b, IoU) per matched pair.
    """
    from sdk.ops import box_iou

    if len(a_xyxy) == 0 or len(b_xyxy) == 0:
        return []
    a64, b64 = a_xyxy.astype(np.float64), b_xyxy.astype(np.float64)
    iou = box_iou(a64, b64)
    # zero-area boxes (an anchor in the letterbox padding, clipped to the frame edge) have no IoU:
    # two of them are the same detection when their corners agree to DEGENERATE_TOL pixels
    flat_a = (a64[:, 2] <= a64[:, 0]) | (a64[:, 3] <= a64[:, 1])
    flat_b = (b64[:, 2] <= b64[:, 0]) | (b64[:, 3] <= b64[:, 1])
    if flat_a.any() and flat_b.any():
        ia, ib = np.flatnonzero(flat_a), np.flatnonzero(flat_b)
        close = np.abs(a64[ia, None, :] - b64[None, ib, :]).max(axis=2) <= DEGENERATE_TOL
        sub = iou[np.ix_(ia, ib)]
        sub[close] = 1.0
        iou[np.ix_(ia, ib)] = sub
    iou[a_cls[:, None] != b_cls[None, :]] = -1.0
    pairs = []
    order = np.argsort(-iou, axis=None)
    used_a, used_b = set(), set()
    for flat in order:
        i, j = divmod(int(flat), iou.shape[1])
        if iou[i, j] < IOU_MATCH:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        pairs.append((i, j, float(iou[i, j])))
    return pairs


def _compare(u_res: List[Tuple[np.ndarray, np.ndarray, np.ndarray]], s_res: List[Any]) -> Dict[str, Any]:
    n_u = n_s = n_m = 0
    ious, dconf, dbox = [], [], []
    unmatched_conf = []
    n_flat = 0
    for (ux, uc, ucls), dets in zip(u_res, s_res):
        sx, sc, scls = dets.xyxy, dets.confidence, dets.class_id
        n_flat += int(((sx[:, 2] <= sx[:, 0]) | (sx[:, 3] <= sx[:, 1])).sum())
        pairs = _match(ux, ucls, sx, scls)
        n_u, n_s, n_m = n_u + len(ux), n_s + len(sx), n_m + len(pairs)
        for i, j, v in pairs:
            dconf.append(abs(float(uc[i]) - float(sc[j])))
            dbox.append(float(np.abs(ux[i].astype(np.float64) - sx[j].astype(np.float64)).max()))
            if v < 1.0 or (ux[i, 2] > ux[i, 0] and ux[i, 3] > ux[i, 1]):
                ious.append(v)
        mu = set(range(len(ux))) - {p[0] for p in pairs}
        ms = set(range(len(sx))) - {p[1] for p in pairs}
        unmatched_conf += [float(uc[i]) for i in mu] + [float(sc[j]) for j in ms]
    return {"ultralytics_boxes": n_u, "sdk_boxes": n_s, "matched": n_m,
            "match_rate": n_m / max(n_u, n_s) if max(n_u, n_s) else 1.0, "sdk_zero_area_boxes": n_flat,
            "min_iou": min(ious) if ious else None, "max_conf_diff": max(dconf) if dconf else None,
            "max_box_diff_px": max(dbox) if dbox else None,
            "unmatched_conf_min": min(unmatched_conf) if unmatched_conf else None,
            "unmatched_conf_max": max(unmatched_conf) if unmatched_conf else None}


def _use_threads(yolo: Any, path: Path, threads: int, spin: bool) -> None:
    """Replace Ultralytics' ONNX Runtime session (default options) by one with ``threads`` intra-op threads
    (and, when ``spin`` is False, ``session.intra_op.allow_spinning=0``, as given to the SDK's)."""
    import onnxruntime as ort

    backend = getattr(yolo.predictor.model, "backend", None)
    if backend is None or not hasattr(backend, "session"):
        raise RuntimeError("this Ultralytics version keeps its ONNX session elsewhere; cannot set its threads")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    backend.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imgsz", type=int, default=320, choices=(320, 640))
    parser.add_argument("--rounds", type=int, default=200, help="timed frames per side")
    parser.add_argument("--frames", type=int, default=32, help="distinct frames (compared, then cycled)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads, both sides")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="torch threads for Ultralytics' pre/post (default: its own choice, cpu_count - 1)")
    parser.add_argument("--no-spin", action="store_true",
                        help="both sessions: session.intra_op.allow_spinning=0 (helps on an oversubscribed CPU)")
    parser.add_argument("--frame-size", default="1280x720", help="WxH of the synthetic frames")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--iou", type=float, default=0.7)
    parser.add_argument("--max-det", type=int, default=300)
    parser.add_argument("--candidates", type=int, default=200,
                        help="anchors per frame above --conf the head bias is calibrated for")
    parser.add_argument("--model", type=Path, help="use this Ultralytics ONNX export instead of building one")
    parser.add_argument("--device", default="auto",
                        help="also time sdk.load(onnx, device=CFG), the SDK's own backend choice for this host "
                             "(default: the device config matching this host; 'none' to skip)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--verbose", action="store_true", help="let Ultralytics log")
    args = parser.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="vs_ultralytics_")
    work = Path(tmp.name)
    YOLO = _offline_ultralytics(work / "ultralytics_config", args.verbose)
    if YOLO is None:
        print(INSTALL_HINT)
        tmp.cleanup()
        return 0

    import onnxruntime as ort
    import torch
    import ultralytics

    import sdk

    try:
        from tqdm import tqdm
    except ImportError:  # a benchmark: run without the bar
        def tqdm(x, **_: Any) -> Any:
            return x

    frames = _frames(args.frames + 8, args.frame_size)
    frames, calib = frames[:args.frames], frames[args.frames:]
    if args.model is not None:
        path, shift = args.model.resolve(), None
    else:
        print(f"building YOLOv8n from yolov8n.yaml (random init, seed {args.seed}) and exporting to ONNX at "
              f"{args.imgsz} with Ultralytics {ultralytics.__version__}")
        path, shift = _build_and_export(YOLO, work, imgsz=args.imgsz, seed=args.seed, conf=args.conf,
                                        candidates=args.candidates, calib=calib)

    ukw = dict(imgsz=args.imgsz, conf=args.conf, iou=args.iou, max_det=args.max_det, device="cpu", verbose=False)
    skw = dict(conf_threshold=args.conf, iou_threshold=args.iou, max_det=args.max_det)
    yolo = YOLO(str(path), task="detect")
    yolo.predict(frames[0], **ukw)                               # sets up the predictor and its session
    _use_threads(yolo, path, args.threads, spin=not args.no_spin)
    if args.torch_threads:                  # else Ultralytics' own choice: select_device() sets cpu_count - 1
        torch.set_num_threads(args.torch_threads)
    sopts: Dict[str, Any] = {"intra_op_num_threads": args.threads}
    if args.no_spin:
        sopts["session_config"] = {"session.intra_op.allow_spinning": "0"}
    model = sdk.load(path, backend="onnxruntime", backend_options=sopts)
    device = _device_config(args.device)
    dmodel = sdk.load(path, device=device) if device is not None else None
    u_threads = yolo.predictor.model.backend.session.get_session_options().intra_op_num_threads
    s_threads = model.backend.describe().get("intra_op_num_threads") if hasattr(model.backend, "describe") else "?"
    for i in range(args.warmup):
        yolo.predict(frames[i % len(frames)], **ukw)
        model(frames[i % len(frames)], **skw)
        if dmodel is not None:
            dmodel(frames[i % len(frames)], **skw)

    t_u, t_s, t_d = [], [], []
    u_stages: Dict[str, List[float]] = {"preprocess": [], "inference": [], "postprocess": []}
    s_stages: Dict[str, List[float]] = {"preprocess_ms": [], "infer_ms": [], "postprocess_ms": []}
    d_stages: Dict[str, List[float]] = {k: [] for k in s_stages}
    u_res: List[Any] = [None] * len(frames)
    s_res: List[Any] = [None] * len(frames)
    d_res: List[Any] = [None] * len(frames)

    def run_u(i: int) -> None:
        frame = frames[i % len(frames)]
        t0 = time.perf_counter()
        r = yolo.predict(frame, **ukw)[0]
        t_u.append(time.perf_counter() - t0)
        for k in u_stages:
            u_stages[k].append(r.speed[k])
        if u_res[i % len(frames)] is None:
            b = r.boxes
            u_res[i % len(frames)] = (b.xyxy.numpy(), b.conf.numpy(), b.cls.numpy().astype(np.int64))

    def sdk_side(m: Any, times: List[float], stages: Dict[str, List[float]], results: List[Any]) -> Any:
        def run(i: int) -> None:
            frame = frames[i % len(frames)]
            t0 = time.perf_counter()
            dets = m(frame, **skw)
            times.append(time.perf_counter() - t0)
            for k in stages:
                stages[k].append(m.last_timings[k])
            if results[i % len(frames)] is None:
                results[i % len(frames)] = dets
        return run

    run_s = sdk_side(model, t_s, s_stages, s_res)
    run_d = sdk_side(dmodel, t_d, d_stages, d_res) if dmodel is not None else None

    sides = [run_u, run_s] + ([run_d] if dmodel is not None else [])
    for i in tqdm(range(max(args.rounds, len(frames))), desc="interleaved rounds", unit="round",
                  disable=not sys.stderr.isatty()):
        for k in range(len(sides)):                 # rotate the order every round
            sides[(i + k) % len(sides)](i)

    cmp = _compare(u_res, s_res)
    dcmp = _compare(u_res, d_res) if dmodel is not None else None
    u_ms, s_ms = float(np.median(t_u) * 1e3), float(np.median(t_s) * 1e3)
    ratio = s_ms / u_ms
    print(f"\nUltralytics {ultralytics.__version__} (torch {torch.__version__}), onnxruntime {ort.__version__}, "
          f"model {path.name} at {args.imgsz}" + (f" (random init, class-bias shift {shift:+.2f})" if shift is not None
                                                 else ""))
    print(f"CPU, intra-op threads: ultralytics {u_threads}, sdk {s_threads}; torch threads {torch.get_num_threads()}; "
          f"{'no' if args.no_spin else 'default'} spinning; frames {args.frame_size} synthetic://shapes, conf {args.conf} iou {args.iou} max_det {args.max_det}")
    print(f"\nsame detections over {len(frames)} frames: ultralytics {cmp['ultralytics_boxes']} boxes, sdk "
          f"{cmp['sdk_boxes']} ({cmp['sdk_boxes'] / len(frames):.1f} per frame), matched (same class, IoU >= {IOU_MATCH}) {cmp['matched']}: "
          f"match rate {cmp['match_rate'] * 100:.2f} %")
    if cmp["matched"] and cmp["min_iou"] is not None:
        print(f"  matched pairs: min IoU {cmp['min_iou']:.5f}, max |dconf| {cmp['max_conf_diff']:.2e}, "
              f"max |dbox| {cmp['max_box_diff_px']:.3f} px")
    if cmp["sdk_zero_area_boxes"]:
        print(f"  {cmp['sdk_zero_area_boxes']} boxes ({cmp['sdk_zero_area_boxes'] / max(cmp['sdk_boxes'], 1) * 100:.1f} %) "
              f"have zero area (anchors in the letterbox padding, clipped to the frame edge): both sides keep "
              f"them; matched by corners (<= {DEGENERATE_TOL} px) since they have no IoU")
    if cmp["unmatched_conf_min"] is not None:
        print(f"  unmatched boxes have conf {cmp['unmatched_conf_min']:.4f}..{cmp['unmatched_conf_max']:.4f} "
              f"(near {args.conf} means a threshold tie; near-equal boxes an NMS tie)")
    print(f"\nper frame end to end (pre + infer + post), {len(t_u)} interleaved rounds, medians")
    print(f"  ultralytics YOLO.predict(frame)     {u_ms:8.3f} ms   (its speed dict: pre "
          f"{np.median(u_stages['preprocess']):.3f}, infer {np.median(u_stages['inference']):.3f}, post "
          f"{np.median(u_stages['postprocess']):.3f} ms)")
    print(f"  sdk model(frame)                    {s_ms:8.3f} ms   (pre {np.median(s_stages['preprocess_ms']):.3f}, "
          f"infer {np.median(s_stages['infer_ms']):.3f}, post {np.median(s_stages['postprocess_ms']):.3f} ms)")
    print(f"  ratio sdk / ultralytics             {ratio:8.3f}      target <= {TARGET}: "
          f"{'ok' if ratio <= TARGET else 'MISSED'}   (same runtime both sides: only pre/post differ)")
    d_ms = d_ratio = None
    if dmodel is not None:
        d_ms = float(np.median(t_d) * 1e3)
        d_ratio = d_ms / u_ms
        info = dmodel.backend.describe()
        what = f"{info.get('runtime')} {info.get('runtime_version', '')}".strip()
        print(f"\nthe SDK's own backend choice for this host: sdk.load(onnx, device={device.name!r}) -> {what}"
              + (f", inference precision {info['inference_precision_hint']}" if "inference_precision_hint" in info
                 else ""))
        print(f"  same detections as ultralytics: {dcmp['matched']} of {dcmp['ultralytics_boxes']} boxes matched "
              f"(same class, IoU >= {IOU_MATCH}): match rate {dcmp['match_rate'] * 100:.2f} %")
        print(f"  sdk model(frame), device config     {d_ms:8.3f} ms   (pre {np.median(d_stages['preprocess_ms']):.3f}, "
              f"infer {np.median(d_stages['infer_ms']):.3f}, post {np.median(d_stages['postprocess_ms']):.3f} ms)")
        print(f"  ratio sdk(device) / ultralytics     {d_ratio:8.3f}      target <= {TARGET}: "
              f"{'ok' if d_ratio <= TARGET else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps({
            "ultralytics_version": ultralytics.__version__, "onnxruntime_version": ort.__version__,
            "imgsz": args.imgsz, "threads": args.threads, "rounds": len(t_u), "bias_shift": shift,
            "compare": cmp, "ultralytics_ms": u_ms, "sdk_ms": s_ms, "ratio": ratio, "target": TARGET,
            "ultralytics_stages_ms": {k: float(np.median(v)) for k, v in u_stages.items()},
            "sdk_stages_ms": {k: float(np.median(v)) for k, v in s_stages.items()},
            "device": None if device is None else device.name, "device_ms": d_ms, "device_ratio": d_ratio,
            "device_compare": dcmp,
            "device_stages_ms": {k: float(np.median(v)) for k, v in d_stages.items()} if d_ms else None}, indent=2))
    if dmodel is not None:
        dmodel.close()
    model.close()
    tmp.cleanup()
    return 0


def _device_config(name: str) -> Any:
    """The device config to time the SDK's own backend choice with: ``auto`` = the one matching this host."""
    from sdk.device import list_device_configs, load_device_config, matches_host

    if name == "none":
        return None
    if name != "auto":
        return load_device_config(name)
    for cfg_name in sorted(list_device_configs()):
        cfg = load_device_config(cfg_name)
        if matches_host(cfg):
            return cfg
    return None


if __name__ == "__main__":
    sys.exit(main())
