from __future__ import annotations

import numpy as np
import pytest

from sdk.results import Classification, Detections, Embedding


def make(n: int = 3) -> Detections:
    xyxy = np.array([[0, 0, 10, 10], [5, 5, 20, 25], [1, 2, 3, 4]][:n], np.float64)
    return Detections(xyxy, [0.9, 0.5, 0.2][:n], [0, 1, 0][:n], labels=["cat", "dog"])


def test_detections_casts_dtypes_and_shapes():
    d = make()
    assert d.xyxy.dtype == np.float32 and d.xyxy.shape == (3, 4)
    assert d.confidence.dtype == np.float32 and d.class_id.dtype == np.int64
    assert len(d) == 3 and d.label == ["cat", "dog", "cat"]
    np.testing.assert_allclose(d.area, [100, 300, 4])


def test_detections_mask_index_slice():
    d = make()
    sub = d[d.confidence > 0.4]
    assert len(sub) == 2 and sub.labels == d.labels
    assert len(d[1]) == 1 and d[1].class_id[0] == 1
    assert len(d[[2, 0]]) == 2 and d[[2, 0]].confidence[0] == pytest.approx(0.2)
    assert len(d[:0]) == 0
    with pytest.raises(IndexError, match=r"expected shape \(3,\)"):
        d[np.array([True, False])]


def test_detections_empty_and_iteration():
    e = Detections.empty(labels=["a"])
    assert len(e) == 0 and e.xyxy.shape == (0, 4) and e.is_empty()
    assert Detections(np.zeros((0,)), [], []).xyxy.shape == (0, 4)
    assert [len(x) for x in make()] == [1, 1, 1]


@pytest.mark.parametrize("kwargs, msg", [
    (dict(xyxy=np.zeros((3, 5)), confidence=np.zeros(3), class_id=np.zeros(3)), r"expected shape \(N, 4\), got \(3, 5\)"),
    (dict(xyxy=np.zeros((3, 4)), confidence=np.zeros(2), class_id=np.zeros(3)), r"confidence: expected shape \(3,\)"),
    (dict(xyxy=np.zeros((3, 4)), confidence=np.zeros(3), class_id=np.zeros(4)), r"class_id: expected shape \(3,\)"),
    (dict(xyxy=np.zeros((2, 4)), confidence=np.zeros(2), class_id=np.zeros(2), tracker_id=[1]), r"tracker_id"),
    (dict(xyxy="abc", confidence=np.zeros(2), class_id=np.zeros(2)), r"xyxy: expected an array"),
])
def test_detections_validation_messages(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        Detections(**kwargs)


def test_detections_to_dicts_and_unknown_label():
    d = Detections([[0, 0, 1, 1]], [0.5], [7], labels=["a"], tracker_id=[3])
    assert d.to_dicts() == [{"xyxy": [0.0, 0.0, 1.0, 1.0], "confidence": 0.5, "class_id": 7, "label": "7",
                             "tracker_id": 3}]


def test_classification():
    c = Classification([2, 0], [0.7, 0.2], labels=["a", "b", "c"])
    assert c.top1 == 2 and c.label == ["c", "a"] and len(c) == 2
    with pytest.raises(ValueError, match="same shape"):
        Classification([1, 2], [0.5])


def test_embedding_normalised_and_errors():
    e = Embedding([3.0, 4.0])
    np.testing.assert_allclose(e.vector, [0.6, 0.8], rtol=1e-6)
    assert np.asarray(e).shape == (2,)
    with pytest.raises(ValueError, match="non-zero"):
        Embedding([0.0, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        Embedding([np.nan, 1.0])
    with pytest.raises(ValueError, match="non-empty"):
        Embedding([])
