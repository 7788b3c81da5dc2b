"""Tests of converters.data: readers (and their errors), synthetic splits, writers round-trip, torch collation.

Imports nothing heavy at module level (no torch): torch tests import it inside and skip without it.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from converters.data import (SPLIT_SEEDS, SPLITS, TASKS, CocoDetectionDataset, DatasetError, IdentityFolderDataset,
                             ImageFolderDataset, YoloDetectionDataset, make_split, split_identities, split_seed,
                             write_coco_json, write_yolo_dataset)
from tests.conftest import has_module


def _png(path: Path, h: int = 20, w: int = 40, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((h, w, 3), value, np.uint8)
    image[0, 0] = (1, 2, 3)
    assert cv2.imwrite(str(path), image)
    return path


def _corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    return path


def _where(exc: pytest.ExceptionInfo, path: Path, line: int | None = None) -> None:
    """The error names the file (and the line)."""
    msg = str(exc.value)
    assert str(path) in msg, msg
    if line is not None:
        assert f"{path}:{line}:" in msg, msg
        assert exc.value.line == line


# ----------------------------------------------------------------------------------------------- ImageFolder


def test_image_folder_reads_sorted_classes(tmp_path: Path) -> None:
    for cls, n in (("zebra", 2), ("ant", 1), ("moth", 3)):
        for i in range(n):
            _png(tmp_path / cls / f"{i}.png", value=10 * i)
    (tmp_path / ".hidden").mkdir()
    _png(tmp_path / ".hidden" / "x.png")
    (tmp_path / "moth" / "notes.txt").write_text("not an image")
    ds = ImageFolderDataset(tmp_path)
    assert ds.class_names == ("ant", "moth", "zebra")
    assert ds.num_classes == 3 and len(ds) == 6
    assert ds.labels.tolist() == [0, 1, 1, 1, 2, 2]
    image, label = ds[1]
    assert image.dtype == np.uint8 and image.shape == (20, 40, 3) and label == 1
    assert tuple(image[0, 0]) == (1, 2, 3)  # BGR, as written
    assert ds[-1][1] == 2 and ds.image_path(0).name == "0.png"
    with pytest.raises(IndexError):
        ds[6]


def test_image_folder_empty_and_missing(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    with pytest.raises(DatasetError, match=r"expected image files \(\*\.jpg, \*\.jpeg, \*\.png, \.\.\.\) in .*found none") as exc:
        ImageFolderDataset(tmp_path)
    _where(exc, tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        ImageFolderDataset(tmp_path / "nope")
    _png(tmp_path / "loose.png")
    with pytest.raises(DatasetError, match="lie directly in"):
        ImageFolderDataset(tmp_path)


def test_image_folder_corrupt_image_names_file(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "good.png")
    bad = _corrupt(tmp_path / "b" / "bad.png")
    ds = ImageFolderDataset(tmp_path)
    assert ds[0][1] == 0
    with pytest.raises(DatasetError, match="unreadable image") as exc:
        ds[1]
    _where(exc, bad)
    with pytest.raises(DatasetError):
        ds.verify_images()


def test_identity_folder(tmp_path: Path) -> None:
    for ident in ("bob", "alice"):
        for i in range(2):
            _png(tmp_path / ident / f"{i}.jpg", value=50 * i)
    ds = IdentityFolderDataset(tmp_path)
    assert ds.identity_names == ("alice", "bob") and ds.num_identities == 2
    assert [ds[i][1] for i in range(len(ds))] == [0, 0, 1, 1]
    assert ds[0][0].shape == (20, 40, 3)


# ------------------------------------------------------------------------------------------------------ YOLO


def _yolo(tmp_path: Path, labels: dict, *, images: tuple = ("a", "b"), names=("cat", "dog")) -> Path:
    root = tmp_path / "ds"
    for stem in images:
        _png(root / "images" / "train" / f"{stem}.png", h=20, w=40)
    for stem, text in labels.items():
        p = root / "labels" / "train" / f"{stem}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_yolo_reads_boxes_in_pixels(tmp_path: Path) -> None:
    root = _yolo(tmp_path, {"a": "0 0.5 0.5 0.5 0.5\n\n1 0.25 0.75 0.5 0.5\n"})
    ds = YoloDetectionDataset(root / "images" / "train", names=["cat", "dog"])
    assert ds.labels_dir == root / "labels" / "train"  # Ultralytics images/ -> labels/ convention
    assert len(ds) == 2 and ds.class_names == ("cat", "dog")
    image, boxes, cls = ds[0]
    assert image.shape == (20, 40, 3)
    assert boxes.dtype == np.float32 and cls.dtype == np.int64
    np.testing.assert_allclose(boxes, [[10, 5, 30, 15], [0, 10, 20, 20]])
    assert cls.tolist() == [0, 1]
    image, boxes, cls = ds[1]  # no label file: background image
    assert boxes.shape == (0, 4) and cls.shape == (0,)


def test_yolo_names_forms_and_data_yaml(tmp_path: Path) -> None:
    root = _yolo(tmp_path, {"a": "1 0.5 0.5 0.2 0.2\n"})
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/train\nnames: {0: cat, 1: dog}\n")
    images = root / "images" / "train"
    assert YoloDetectionDataset(images, names={1: "dog", 0: "cat"}).class_names == ("cat", "dog")
    assert YoloDetectionDataset(images, names=root / "data.yaml").class_names == ("cat", "dog")
    assert YoloDetectionDataset(images).class_names == ("0", "1")  # inferred from the largest id
    ds = YoloDetectionDataset.from_yaml(root / "data.yaml", split="val")
    assert ds.class_names == ("cat", "dog") and len(ds) == 2
    with pytest.raises(ValueError, match="0..1"):
        YoloDetectionDataset(images, names={0: "cat", 2: "dog"})


BAD_YOLO = [
    ("0 0.5 0.5 0.2\n", "expected 5 columns"),
    ("0 0.5 0.5 0.2 0.2 0.9\n", "expected 5 columns"),
    ("0 0.5 0.5 0.2 0.2 0.3 0.3 0.1 0.1\n", "segmentation polygon"),
    ("0 0.5 abc 0.2 0.2\n", "non-numeric value 'abc'"),
    ("0 0.5 0.5 nan 0.2\n", "finite"),
    ("0 1.2 0.5 0.2 0.2\n", "box out of range"),
    ("0 0.95 0.5 0.2 0.2\n", "box out of range"),            # right edge at 1.05
    ("0 20 10 8 4\n", "pixel coordinates"),
    ("0 0.5 0.5 0.0 0.2\n", "positive width and height"),
    ("0 0.5 0.5 0.2 -0.1\n", "positive width and height"),
    ("2 0.5 0.5 0.2 0.2\n", "unknown class id 2"),
    ("-1 0.5 0.5 0.2 0.2\n", "integer >= 0"),
    ("1.5 0.5 0.5 0.2 0.2\n", "integer >= 0"),
]


@pytest.mark.parametrize("bad_line, message", BAD_YOLO)
def test_yolo_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str, message: str) -> None:
    root = _yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n", "b": "1 0.5 0.5 0.4 0.4\n\n" + bad_line})
    with pytest.raises(DatasetError, match=re.escape(message)) as exc:
        YoloDetectionDataset(root / "images" / "train", names=["cat", "dog"])
    _where(exc, root / "labels" / "train" / "b.txt", line=3)


def test_yolo_small_tolerance_is_accepted_and_clipped(tmp_path: Path) -> None:
    root = _yolo(tmp_path, {"a": "0 0.502 0.5 1.0 0.5\n"})   # right edge 1.002, within the 0.01 tolerance
    _, boxes, _ = YoloDetectionDataset(root / "images" / "train", names=["cat", "dog"])[0]
    assert boxes[0, 2] == 40.0 and boxes[0, 0] == pytest.approx(0.08, abs=1e-4)


def test_yolo_missing_image_empty_and_corrupt(tmp_path: Path) -> None:
    root = _yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n", "ghost": "0 0.5 0.5 0.2 0.2\n"})
    with pytest.raises(DatasetError, match="missing image") as exc:
        YoloDetectionDataset(root / "images" / "train")
    _where(exc, root / "labels" / "train" / "ghost.txt")

    empty = tmp_path / "empty" / "images"
    empty.mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"expected image files \(\*\.jpg, .*\) in .*found none") as exc:
        YoloDetectionDataset(empty)
    _where(exc, empty)

    root2 = _yolo(tmp_path / "two", {"a": "0 0.5 0.5 0.2 0.2\n"})
    bad = _corrupt(root2 / "images" / "train" / "c.png")
    ds = YoloDetectionDataset(root2 / "images" / "train")
    with pytest.raises(DatasetError, match="unreadable image") as exc:
        ds[2]
    _where(exc, bad)

    nolabels = tmp_path / "nolabels"
    _png(nolabels / "x.png")
    with pytest.raises(DatasetError, match=r"expected YOLO label files \(\*\.txt\)"):
        YoloDetectionDataset(nolabels)


# ------------------------------------------------------------------------------------------------------ COCO


def _coco(tmp_path: Path, **overrides) -> tuple:
    images_dir = tmp_path / "imgs"
    _png(images_dir / "one.png", h=20, w=40)
    _png(images_dir / "two.png", h=20, w=40)
    data = {
        "images": [{"id": 10, "file_name": "one.png", "width": 40, "height": 20},
                   {"id": 11, "file_name": "two.png", "width": 40, "height": 20}],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 7, "bbox": [10, 5, 20, 10], "area": 200, "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 3, "bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 0},
            {"id": 3, "image_id": 10, "category_id": 3, "bbox": [0, 0, 40, 20], "area": 800, "iscrowd": 1},
        ],
        "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
    }
    for key, value in overrides.items():
        data[key] = value
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data, indent=1))
    return images_dir, path, data


def test_coco_reads_and_remaps_categories(tmp_path: Path) -> None:
    images_dir, path, _ = _coco(tmp_path)
    ds = CocoDetectionDataset(images_dir, path)
    assert ds.class_names == ("cat", "dog") and ds.category_ids == (3, 7)
    assert ds.category_index == {3: 0, 7: 1}
    assert len(ds) == 2 and ds.n_crowd_skipped == 1 and ds.image_id(0) == 10
    image, boxes, cls = ds[0]
    assert image.shape == (20, 40, 3)
    np.testing.assert_allclose(boxes, [[10, 5, 30, 15], [0, 0, 4, 4]])
    assert cls.tolist() == [1, 0] and cls.dtype == np.int64 and boxes.dtype == np.float32
    assert ds[1][1].shape == (0, 4)


def _ann(**kw) -> dict:
    ann = {"id": 1, "image_id": 10, "category_id": 7, "bbox": [10, 5, 20, 10], "area": 200, "iscrowd": 0}
    ann.update(kw)
    return ann


BAD_COCO = [
    ({"annotations": [_ann(category_id=99)]}, "annotations[0] (id 1): unknown category_id 99"),
    ({"annotations": [_ann(image_id=5)]}, "annotations[0] (id 1): unknown image_id 5"),
    ({"annotations": [_ann(bbox=[10, 5, 0, 10])]}, "positive width and height"),
    ({"annotations": [_ann(bbox=[10, 5, 20])]}, "expected bbox [x, y, w, h] of 4 finite numbers"),
    ({"annotations": [_ann(bbox=[10, "5", 20, 10])]}, "expected bbox [x, y, w, h] of 4 finite numbers"),
    ({"annotations": [_ann(), _ann(id=2, bbox=[30, 5, 20, 10])]}, "annotations[1] (id 2): box out of range"),
    ({"images": [{"id": 10, "file_name": "missing.png", "width": 40, "height": 20}]}, "images[0] (id 10): missing image"),
    ({"images": [{"id": 10, "file_name": "one.png"}, {"id": 10, "file_name": "two.png"}]}, "duplicate image id 10"),
    ({"categories": [{"id": 7, "name": "dog"}, {"id": 7, "name": "cat"}]}, "duplicate category id 7"),
    ({"annotations": None}, "expected key 'annotations' holding a list"),
]


@pytest.mark.parametrize("override, message", BAD_COCO)
def test_coco_malformed_names_file_and_element(tmp_path: Path, override: dict, message: str) -> None:
    images_dir, path, _ = _coco(tmp_path, **override)
    with pytest.raises(DatasetError, match=re.escape(message)) as exc:
        CocoDetectionDataset(images_dir, path)
    _where(exc, path)


def test_coco_invalid_json_names_line(tmp_path: Path) -> None:
    images_dir, path, _ = _coco(tmp_path)
    lines = path.read_text().splitlines()
    lines[4] = lines[4] + " oops"
    path.write_text("\n".join(lines))
    with pytest.raises(DatasetError, match="invalid JSON") as exc:
        CocoDetectionDataset(images_dir, path)
    _where(exc, path, line=5)


def test_coco_image_size_mismatch_and_corrupt(tmp_path: Path) -> None:
    images_dir, path, _ = _coco(tmp_path, images=[{"id": 10, "file_name": "one.png", "width": 64, "height": 20},
                                                  {"id": 11, "file_name": "bad.png"}])
    bad = _corrupt(images_dir / "bad.png")
    ds = CocoDetectionDataset(images_dir, path)
    with pytest.raises(DatasetError, match="expected an image of 64 x 20 pixels") as exc:
        ds[0]
    _where(exc, images_dir / "one.png")
    with pytest.raises(DatasetError, match="unreadable image") as exc:
        ds[1]
    _where(exc, bad)


# ------------------------------------------------------------------------------------------ synthetic splits


def test_split_seeds_are_disjoint() -> None:
    seeds = {(s, t): split_seed(s, t) for s in SPLITS for t in TASKS}
    assert len(set(seeds.values())) == len(seeds)
    assert split_seed("train", "detect") == SPLIT_SEEDS["train"] == 1000
    assert split_seed("val", "classify") == 2001 and split_seed("test", "pairs") == 3003
    ids = {s: set(split_identities(s, 300)) for s in SPLITS}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    assert min(ids["test"]) == 100000 and min(ids["val"]) == 150000
    with pytest.raises(ValueError, match="split"):
        split_seed("holdout")
    with pytest.raises(ValueError, match="seed"):
        make_split("train", "detect", 2, seed=3)


def test_make_split_datasets_and_no_shared_images() -> None:
    det = make_split("val", "detect", 2, size_hw=(96, 96), max_size=48)
    image, boxes, cls = det[0]
    assert det.split == "val" and det.seed == 2000 and det.class_names[0] == "circle"
    assert image.shape == (96, 96, 3) and boxes.dtype == np.float32 and cls.dtype == np.int64
    hashes = {}
    for split in SPLITS:
        ds = make_split(split, "classify", 16, size=24)
        hashes[split] = {ds[i][0].tobytes() for i in range(len(ds))}
        assert ds.seed == split_seed(split, "classify") and len(hashes[split]) == 16
    assert not (hashes["train"] & hashes["val"]) and not (hashes["val"] & hashes["test"])
    pairs = make_split("test", "pairs", 2, size=32)
    assert pairs.identities == range(100000, 100200) and len(pairs[0]) == 3
    ident = make_split("train", "identity", 3, size=32, identities=5)
    assert ident.identities == range(5) and ident[1][1] == 1


# -------------------------------------------------------------------------------------------------- writers


def test_yolo_writer_round_trip(tmp_path: Path) -> None:
    ds = make_split("val", "detect", 4, size_hw=(120, 160), max_size=60)
    data_yaml = write_yolo_dataset(ds, tmp_path / "yolo", split="val", progress_bar=False)
    back = YoloDetectionDataset.from_yaml(data_yaml, split="val")
    assert back.class_names == ds.class_names and len(back) == len(ds)
    n = 0
    for i in range(len(ds)):
        image, boxes, cls = ds[i]
        image2, boxes2, cls2 = back[i]
        np.testing.assert_array_equal(image2, image)       # PNG is lossless
        assert cls2.tolist() == cls.tolist()
        assert np.abs(boxes2 - boxes).max() < 0.5
        n += len(cls)
    assert n > 0
    # A second split goes into its own folders and the same data.yaml.
    write_yolo_dataset(make_split("test", "detect", 1, size_hw=(64, 64), max_size=32), tmp_path / "yolo",
                       split="test", progress_bar=False)
    assert len(YoloDetectionDataset.from_yaml(data_yaml, split="test")) == 1
    assert len(YoloDetectionDataset.from_yaml(data_yaml, split="val")) == 4
    with pytest.raises(ValueError, match="existing class names"):
        write_yolo_dataset(ds, tmp_path / "yolo", split="x", class_names=list("abcdefgh"), progress_bar=False)
    with pytest.raises(ValueError, match="already holds a YOLO dataset"):
        write_yolo_dataset(ds, tmp_path / "yolo", progress_bar=False)


def test_yolo_writer_flat_layout(tmp_path: Path) -> None:
    ds = make_split("val", "detect", 2, size_hw=(64, 64), max_size=32)
    data_yaml = write_yolo_dataset(ds, tmp_path, class_names=[str(k) for k in range(8)], image_format="jpg",
                                   progress_bar=False)
    assert (tmp_path / "images" / "000001.jpg").is_file() and (tmp_path / "labels" / "000001.txt").is_file()
    back = YoloDetectionDataset.from_yaml(data_yaml, split="train")
    assert back.class_names == tuple("01234567") and len(back) == 2
    assert np.abs(back[1][1] - ds[1][1]).max() < 0.5


def test_coco_writer_round_trip(tmp_path: Path) -> None:
    ds = make_split("val", "detect", 3, size_hw=(100, 90), max_size=50)
    out = write_coco_json(ds, tmp_path / "coco" / "val.json", progress_bar=False)
    data = json.loads(out.read_text())
    assert [c["id"] for c in data["categories"]] == list(range(1, 9))
    assert all(a["area"] == pytest.approx(a["bbox"][2] * a["bbox"][3], rel=1e-4) for a in data["annotations"])
    back = CocoDetectionDataset(tmp_path / "coco" / "images", out)
    assert back.class_names == ds.class_names
    for i in range(len(ds)):
        _, boxes, cls = ds[i]
        _, boxes2, cls2 = back[i]
        assert cls2.tolist() == cls.tolist() and np.abs(boxes2 - boxes).max() < 1e-3
    # Re-exporting a COCO dataset keeps its original category ids.
    again = write_coco_json(back, tmp_path / "again.json", progress_bar=False)
    assert [c["id"] for c in json.loads(again.read_text())["categories"]] == list(range(1, 9))


# ---------------------------------------------------------------------------------------------------- torch


def test_torch_collate() -> None:
    torch = pytest.importorskip("torch")
    from converters.data import classification_collate, detection_collate, to_torch_detection_batch

    det = make_split("train", "detect", 2, size_hw=(64, 80), max_size=32)
    images, targets = detection_collate([det[0], det[1]])
    assert images[0].shape == (3, 64, 80) and images[0].dtype == torch.float32 and float(images[0].max()) <= 1.0
    assert torch.equal(targets[0]["boxes"], torch.from_numpy(det[0][1]))
    _, targets = to_torch_detection_batch([det[0]], label_offset=1)
    assert targets[0]["labels"].tolist() == (det[0][2] + 1).tolist()
    cls = make_split("train", "classify", 3, size=32)
    x, y = classification_collate([cls[i] for i in range(3)])
    assert x.shape == (3, 3, 32, 32) and y.tolist() == [cls[i][1] for i in range(3)]
    # RGB order: channel 0 is the image's last (red) BGR channel.
    assert torch.allclose(x[0, 0], torch.from_numpy(cls[0][0][:, :, 2].astype(np.float32) / 255))


def test_packages_import_without_torch() -> None:
    code = ("import sys, converters.data, converters.evaluation; "
            "bad = [m for m in ('torch', 'matplotlib', 'pycocotools', 'faster_coco_eval') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


@pytest.mark.skipif(not has_module("yaml"), reason="PyYAML missing")
def test_yaml_errors_name_line(tmp_path: Path) -> None:
    root = _yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n"})
    bad = root / "data.yaml"
    bad.write_text("names: [a, b\nother: 1\n")
    with pytest.raises(DatasetError, match="invalid YAML") as exc:
        YoloDetectionDataset(root / "images" / "train", names=bad)
    _where(exc, bad)
