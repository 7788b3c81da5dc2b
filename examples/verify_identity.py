"""Enrol identities with a Siamese embedding model, then verify what a source shows against them.

    python examples/verify_identity.py --model siamese.onnx --enroll alice=alice/ --enroll bob=bob.jpg --source 0
    python examples/verify_identity.py --model siamese.onnx --frames 30           # synthetic identities

Enrolment: ``--enroll NAME=PATH`` (an image or a folder of images), repeated; without it the script enrols
``--identities`` held-out synthetic identities (``sdk.synthetic.make_identity_sample``) and first checks the
threshold on fresh samples of them (genuine pairs should be accepted, impostors rejected).

Verification: each frame of the source is embedded and matched against the gallery. When the frame has
ground-truth boxes (``synthetic://shapes``) the crops inside the boxes are matched instead, the way a
detector's crops would be.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import sdk
from sdk.sources.uri import IMAGE_EXTENSIONS


def images_of(path: Path) -> list:
    import cv2

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) if path.is_dir() else [path]
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in files]
    return [im for im in images if im is not None]


def crops(frame, min_side: int = 8) -> list:
    if frame.boxes is None:
        return [frame.image]
    h, w = frame.image.shape[:2]
    out = []
    for x1, y1, x2, y2 in frame.boxes.astype(int):
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        if x2 - x1 >= min_side and y2 - y1 >= min_side:
            out.append(frame.image[y1:y2, x1:x2])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="embedding model (task 'embed')")
    parser.add_argument("--source", default="synthetic://shapes", help="camera/stream/file URI to verify")
    parser.add_argument("--frames", type=int, default=30, help="frames to verify")
    parser.add_argument("--enroll", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--identities", type=int, default=5, help="synthetic identities to enrol without --enroll")
    parser.add_argument("--threshold", type=float, default=0.35, help="accept when cosine distance <= this")
    parser.add_argument("--device", help="device config name or YAML path")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.identities < 1:
        parser.error("--frames and --identities must be >= 1")

    model = sdk.load(args.model, device=args.device)
    if model.task != "embed":
        print(f"expected an embedding (Siamese) model, got task {model.task!r} ({args.model})", file=sys.stderr)
        return 2
    gallery = sdk.Gallery(metric="cosine", threshold=args.threshold)
    if args.enroll:
        for item in args.enroll:
            name, sep, path = item.partition("=")
            if not sep or not name or not Path(path).exists():
                parser.error(f"--enroll: expected NAME=PATH to an existing image or folder, got {item!r}")
            images = images_of(Path(path))
            if not images:
                parser.error(f"--enroll {item}: no readable images")
            gallery.enroll(name, [model(im) for im in images])
    else:
        from sdk.synthetic import HELDOUT_IDENTITY_START, make_identity_sample

        ids = range(HELDOUT_IDENTITY_START, HELDOUT_IDENTITY_START + args.identities)
        for ident in ids:
            gallery.enroll(f"id{ident}", [model(make_identity_sample(ident, seed)) for seed in range(3)])
        genuine = [gallery.verify(f"id{i}", model(make_identity_sample(i, 1000 + i))) for i in ids]
        impostor = [gallery.verify(f"id{i}", model(make_identity_sample(j, 2000 + i)))
                    for i in ids for j in ids if j != i]
        ga = np.mean([m.accepted for m in genuine])
        fa = np.mean([m.accepted for m in impostor]) if impostor else 0.0
        print(f"enrolled {len(gallery)} synthetic identities; on fresh samples: genuine accepted {ga:.0%}, "
              f"impostors accepted {fa:.0%} (threshold {args.threshold})")
    print(f"gallery: {', '.join(gallery.names)}")

    accepted = queries = 0
    with sdk.open_source(args.source) as source:
        for frame in source:
            for crop in crops(frame):
                match = gallery.match(model(crop))
                queries += 1
                accepted += bool(match.accepted)
                if queries <= 10:
                    print(f"frame {frame.index}: {match.name if match.accepted else 'unknown'} "
                          f"(nearest {match.name}, distance {match.distance:.3f})")
            if frame.index + 1 >= args.frames:
                break
    print(f"verified {queries} crops from {args.source} (backend {source.backend}): {accepted} matched an "
          f"enrolled identity, {queries - accepted} unknown")
    model.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
