"""Tests of sdk.synthetic: determinism, exact boxes, the visibility rule, datasets, identities, the scene."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from sdk.synthetic import (CLASSES, HELDOUT_IDENTITY_START, ClassificationDataset, DetectionDataset,
                           IdentityDataset, IdentityPairDataset, IdentityTripletDataset, ShapesScene, Style,
                           compose_detection, identity_ids, identity_template, make_classification_sample,
                           make_detection_sample, make_identity_sample)


def tight_box(mask: np.ndarray) -> tuple:
    ys, xs = np.nonzero(mask)
    return (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def same_sample(a: tuple, b: tuple) -> bool:
    return all(np.array_equal(x, y) and np.asarray(x).dtype == np.asarray(y).dtype for x, y in zip(a, b))


# ----------------------------------------------------------------------------------------------- detection

def test_classes_are_named_and_unique():
    assert isinstance(CLASSES, tuple) and len(CLASSES) >= 6 and len(set(CLASSES)) == len(CLASSES)
    assert CLASSES[:3] == ("circle", "square", "triangle")  # the order is part of the data contract


def test_detection_sample_is_deterministic_and_seed_dependent():
    a = make_detection_sample(7)
    assert same_sample(a, make_detection_sample(7))
    assert same_sample(a, make_detection_sample(np.random.default_rng(7)))
    assert same_sample(a, make_detection_sample(np.random.SeedSequence(7)))
    assert not np.array_equal(a[0], make_detection_sample(8)[0])


def test_detection_sample_types_ranges_and_counts():
    for seed in range(20):
        image, boxes, class_ids = make_detection_sample(seed, (240, 320), min_objects=2, max_objects=6)
        assert image.dtype == np.uint8 and image.shape == (240, 320, 3)
        assert boxes.dtype == np.float32 and boxes.shape[1] == 4
        assert class_ids.dtype == np.int64 and class_ids.shape == (len(boxes),)
        assert 2 <= len(boxes) <= 6
        assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= 320) and np.all(boxes[:, 3] <= 240)
        assert np.all(boxes[:, 2:] > boxes[:, :2]) and np.all(boxes == np.round(boxes))
        assert np.all((class_ids >= 0) & (class_ids < len(CLASSES)))
    assert len(make_detection_sample(0, min_objects=0, max_objects=0)[1]) == 0


@pytest.mark.parametrize("class_id", range(len(CLASSES)))
def test_single_object_box_is_exact_on_flat_background(class_id):
    for seed in range(4):
        image, boxes, ids = make_detection_sample(seed, (96, 128), min_objects=1, max_objects=1, min_size=12,
                                                  max_size=56, classes=[class_id], style=Style.clean())
        assert ids.tolist() == [class_id] and boxes.shape == (1, 4)
        colours, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
        assert len(colours) == 2  # flat background + solid object, nothing else drawn
        background = colours[counts.argmax()]
        drawn = np.any(image != background, axis=2)
        assert tuple(boxes[0]) == tight_box(drawn)


def test_boxes_are_tight_to_visible_pixels_under_occlusion():
    overlapped = 0
    for seed in range(12):
        comp = compose_detection(seed, (160, 160), min_objects=5, max_objects=8, min_size=30, max_size=90,
                                 style=Style.clean())
        image, label_map = comp.image, comp.label_map
        background = image[label_map == -1]
        assert len(np.unique(background, axis=0)) == 1  # the label map tells the truth about the pixels
        for k in range(len(comp.class_ids_all)):
            pixels = image[label_map == k]
            assert len(np.unique(pixels, axis=0)) == 1
            assert tuple(comp.visible_boxes[k]) == tight_box(label_map == k)
        np.testing.assert_array_equal(comp.boxes, comp.visible_boxes)  # every drawn object is labelled
        overlapped += int(np.sum(comp.visible_fraction < 1))
    assert overlapped > 5  # occlusion (or truncation) really happens


def test_visibility_rule_in_samples():
    for seed in range(15):
        for min_visible in (0.4, 0.8):
            comp = compose_detection(seed, min_visible=min_visible)
            assert np.all(comp.visible_fraction >= min_visible)  # no unlabelled fragments are left
            assert comp.keep.all() and len(comp.ignore_boxes) == 0
            assert len(comp.boxes) == len(comp.class_ids_all)


def test_sizes_are_honoured_and_clamped_to_the_image():
    for seed in range(10):
        comp = compose_detection(seed, min_objects=3, max_objects=8, min_size=20, max_size=40)
        sides = (comp.full_boxes[:, 2:] - comp.full_boxes[:, :2]).max(1)
        assert np.all((sides >= 20) & (sides <= 40)), sides
        comp = compose_detection(seed, (48, 200), min_objects=1, max_objects=3, min_size=30, max_size=200)
        sides = (comp.full_boxes[:, 2:] - comp.full_boxes[:, :2]).max(1)
        assert np.all((sides >= 30) & (sides <= 48)), sides


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(size_hw=(8, 320)), ValueError, r"expected \(height, width\) ints both >= 16, got \(8, 320\)"),
    (dict(size_hw=(320,)), ValueError, r"size_hw: expected \(height, width\)"),
    (dict(min_size=50, max_size=20), ValueError, r"max_size: expected >= min_size \(50\), got 20"),
    (dict(min_objects=-1), ValueError, r"min_objects: expected an int >= 0, got -1"),
    (dict(max_objects=-2, min_objects=0), ValueError, r"max_objects: expected an int >= 0, got -2"),
    (dict(min_objects=3, max_objects=2), ValueError, r"max_objects: expected >= min_objects \(3\), got 2"),
    (dict(size_hw=(32, 32), min_size=40), ValueError, r"min_size: expected <= the image's shorter side \(32 px\)"),
    (dict(min_size=2), ValueError, r"min_size: expected an int >= 4, got 2"),
    (dict(min_objects=100, max_objects=100, min_size=40), ValueError, r"do not fit"),
    (dict(min_visible=0.0), ValueError, r"min_visible: expected a fraction in \(0, 1\], got 0.0"),
    (dict(classes=[len(CLASSES)]), ValueError, r"classes: expected a non-empty sequence of class ids"),
    (dict(max_objects=2.5), TypeError, r"max_objects: expected an int, got float"),
    (dict(style="hard"), TypeError, r"style: expected sdk.synthetic.Style"),
])
def test_detection_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_detection_sample(0, **kwargs)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match=r"seed: expected an int >= 0, got -1"):
        make_detection_sample(-1)
    with pytest.raises(TypeError, match=r"rng_or_seed: expected"):
        make_detection_sample("seed")
    with pytest.raises(ValueError, match=r"size: expected an int >= 16, got 8"):
        make_classification_sample(0, 8)
    with pytest.raises(ValueError, match=r"identity_id: expected an int >= 0, got -3"):
        make_identity_sample(-3, 0)
    with pytest.raises(ValueError, match=r"split: expected 'train', 'test' or 'heldout', got 'val'"):
        identity_ids("val", 10)
    with pytest.raises(ValueError, match=r"length: expected an int >= 0, got -1"):
        DetectionDataset(0, -1)
    with pytest.raises(ValueError, match=r"max_size: expected >= min_size \(30\), got 10"):
        DetectionDataset(0, 10, min_size=30, max_size=10)  # validated at construction, not at first access
    with pytest.raises(ValueError, match=r"Style.p_blur: expected a probability in \[0, 1\], got 1.5"):
        Style(p_blur=1.5)
    with pytest.raises(ValueError, match=r"max_size: expected >= min_size \(50\), got 20"):
        ShapesScene((240, 320), min_size=50, max_size=20)
    with pytest.raises(ValueError, match=r"n_objects: expected an int >= 0, got -1"):
        ShapesScene((240, 320), n_objects=-1)
    with pytest.raises(ValueError, match=r"t: expected a finite time >= 0"):
        ShapesScene((240, 320)).render(-1.0)


# ----------------------------------------------------------------------------------------------- classification

def test_classification_sample():
    image, class_id = make_classification_sample(3, 64)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8 and 0 <= class_id < len(CLASSES)
    again = make_classification_sample(3, 64)
    assert np.array_equal(image, again[0]) and class_id == again[1]
    assert make_classification_sample(3, 96, class_id=5)[1] == 5
    assert make_classification_sample(4, 64, classes=[2])[1] == 2


# ----------------------------------------------------------------------------------------------- datasets

def test_datasets_are_independent_of_access_order():
    ds = DetectionDataset(seed=11, length=5, size_hw=(128, 160), max_size=80)
    forward = [ds[i] for i in range(5)]
    backward = [ds[i] for i in reversed(range(5))][::-1]
    assert all(same_sample(a, b) for a, b in zip(forward, backward))
    assert same_sample(ds[-1], forward[4]) and same_sample(list(ds)[2], forward[2])
    assert not np.array_equal(ds[0][0], DetectionDataset(seed=12, length=5, size_hw=(128, 160))[0][0])
    with pytest.raises(IndexError, match=r"expected -5 <= index < 5, got 5"):
        ds[5]

    cls = ClassificationDataset(seed=1, length=20, size=48)
    assert [cls[i][1] for i in range(len(CLASSES) * 2)] == list(range(len(CLASSES))) * 2  # balanced
    assert np.array_equal(cls[9][0], cls[9][0]) and not np.array_equal(cls[9][0], cls[9 + len(CLASSES)][0])


def test_identity_datasets():
    ds = IdentityDataset(seed=0, length=6, identities=3, size=48)
    assert [ds[i][1] for i in range(6)] == [0, 1, 2, 0, 1, 2]
    assert np.array_equal(ds[4][0], ds[4][0]) and ds[4][0].shape == (48, 48, 3)
    pairs = IdentityPairDataset(seed=0, length=8, identities=identity_ids("test", 5), size=48)
    assert [pairs[i][2] for i in range(8)] == [1, 0] * 4
    a, b, same = pairs[0]
    assert a.shape == b.shape == (48, 48, 3) and not np.array_equal(a, b)
    triplets = IdentityTripletDataset(seed=0, length=4, identities=[7, 8], size=48)
    assert all(x.shape == (48, 48, 3) for x in triplets[3])
    with pytest.raises(ValueError, match=r"expected >= 2 distinct identity ids"):
        IdentityDataset(0, 4, identities=[5, 5])


# ----------------------------------------------------------------------------------------------- identities

def test_identity_splits_are_disjoint_and_looks_depend_only_on_the_id():
    train, test = identity_ids("train", 1000), identity_ids("test", 1000)
    assert set(train).isdisjoint(test) and min(test) == HELDOUT_IDENTITY_START == 100_000
    bgr, alpha = identity_template(HELDOUT_IDENTITY_START + 3)
    assert bgr.shape[:2] == alpha.shape and not bgr.flags.writeable
    assert np.array_equal(make_identity_sample(5, 1, 64), make_identity_sample(5, 1, 64))
    assert not np.array_equal(make_identity_sample(5, 1, 64), make_identity_sample(5, 2, 64))


def _centre_hist(img: np.ndarray) -> np.ndarray:
    s = img.shape[0]
    hsv = cv2.cvtColor(np.ascontiguousarray(img[s // 4:3 * s // 4, s // 4:3 * s // 4]), cv2.COLOR_BGR2HSV)
    h = cv2.calcHist([hsv], [0, 1], None, [12, 4], [0, 180, 0, 256]).ravel()
    return np.sqrt(h / h.sum())


def test_renders_of_one_identity_are_closer_than_renders_of_different_ones():
    ids, renders = range(HELDOUT_IDENTITY_START, HELDOUT_IDENTITY_START + 10), 3
    feats = np.array([[_centre_hist(make_identity_sample(i, 97 * i + r, 64)) for r in range(renders)] for i in ids])
    flat = feats.reshape(len(ids) * renders, -1)
    dist = np.linalg.norm(flat[:, None] - flat[None], axis=2)
    who = np.repeat(np.arange(len(ids)), renders)
    same = (who[:, None] == who[None]) & ~np.eye(len(who), dtype=bool)
    different = who[:, None] != who[None]
    assert dist[same].mean() < 0.95 * dist[different].mean()


# ----------------------------------------------------------------------------------------------- scene

def test_scene_is_deterministic_and_random_access():
    a, b = ShapesScene((180, 320), seed=4, n_objects=6), ShapesScene((180, 320), seed=4, n_objects=6)
    late = a.frame(90, fps=30)
    early = a.frame(3, fps=30)
    assert same_sample(early, b.frame(3, fps=30)) and same_sample(late, b.render(3.0))
    assert not np.array_equal(early[0], ShapesScene((180, 320), seed=5, n_objects=6).frame(3)[0])
    image, boxes, class_ids, tracks = a.render(1.0, return_track_ids=True)
    assert image.shape == (180, 320, 3) and boxes.dtype == np.float32 and tracks.shape == class_ids.shape


def test_scene_motion_is_smooth_and_objects_come_and_go():
    scene = ShapesScene((240, 320), seed=2, n_objects=8, min_size=16, max_size=60, speed=(40.0, 200.0))
    fps = 30.0
    bound = (200.0 + 1.5 * 30 * 1.3 + 0.15 * 1.5 * 30) / fps + 2  # translation + spin + pulse, + rounding
    prev, moved, tracks_seen = None, 0.0, []
    for i in range(45):
        comp = scene.render_composition(i / fps)
        centres = {int(t): (b[:2] + b[2:]) / 2 for t, b in zip(comp.object_ids, comp.full_boxes)}
        if prev is not None:
            for t in centres.keys() & prev.keys():
                step = float(np.hypot(*(centres[t] - prev[t])))
                assert step <= bound, (i, t, step)
                moved += step
        prev = centres
    assert moved > 100  # things do move
    for t in np.arange(0, 40, 0.5):
        tracks_seen.append(frozenset(scene.render_composition(float(t)).object_ids.tolist()))
    assert len(set(tracks_seen)) > 3 and len(frozenset().union(*tracks_seen)) > 8  # objects enter and leave


def test_scene_applies_the_visibility_rule():
    scene = ShapesScene((120, 160), seed=1, n_objects=25, min_size=20, max_size=50, noise=False)
    dropped = 0
    for t in np.arange(0, 6, 0.25):
        comp = scene.render_composition(float(t))
        for k in range(len(comp.class_ids_all)):
            visible = comp.label_map == k
            if visible.any():
                assert tuple(comp.visible_boxes[k]) == tight_box(visible)
        keep = comp.visible_fraction >= 0.4
        np.testing.assert_array_equal(comp.keep, keep)
        np.testing.assert_array_equal(comp.boxes, comp.visible_boxes[keep])
        dropped += len(comp.ignore_boxes)
    assert dropped > 0  # heavily occluded objects lose their boxes


# ----------------------------------------------------------------------------------------------- hygiene

def test_import_has_no_torch_and_no_side_effects():
    code = ("import sys, cv2; n = cv2.getNumThreads(); import sdk.synthetic as s; "
            "assert 'torch' not in sys.modules; assert cv2.getNumThreads() == n; print(len(s.CLASSES))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
