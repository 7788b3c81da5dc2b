from __future__ import annotations

import numpy as np
import pytest

from sdk.results import Embedding
from sdk.verify import Gallery, cosine_distance, euclidean_distance


def test_distances_match_definitions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 8)), rng.normal(size=(3, 8))
    an, bn = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    np.testing.assert_allclose(cosine_distance(a, b), 1 - an @ bn.T, atol=1e-6)
    ref = np.linalg.norm(an[:, None] - bn[None], axis=2)
    np.testing.assert_allclose(euclidean_distance(a, b), ref, atol=1e-5)
    # euclidean^2 = 2 * cosine for unit vectors
    np.testing.assert_allclose(euclidean_distance(a, b) ** 2, 2 * cosine_distance(a, b), atol=1e-5)
    assert cosine_distance(a[0], a[0]).shape == () and float(cosine_distance(a[0], a[0])) == pytest.approx(0, abs=1e-6)


def test_distance_errors():
    with pytest.raises(ValueError, match="same dimension"):
        cosine_distance(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="non-zero"):
        euclidean_distance(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(D,\)"):
        cosine_distance(np.ones((2, 2, 2)), np.ones(2))


def test_gallery_enroll_match_verify_remove():
    rng = np.random.default_rng(1)
    alice, bob = rng.normal(size=16), rng.normal(size=16)
    g = Gallery(metric="cosine", threshold=0.2)
    g.enroll("alice", Embedding(alice))
    g.enroll("bob", np.stack([bob, bob + 0.01 * rng.normal(size=16)]))
    assert len(g) == 2 and g.names == ["alice", "bob"]
    m = g.match(alice + 0.05 * rng.normal(size=16))
    assert m.name == "alice" and m.accepted and m.distance < 0.2
    stranger = g.match(rng.normal(size=16))
    assert not stranger.accepted
    assert g.verify("bob", bob).accepted and not g.verify("bob", alice).accepted
    g.remove("alice")
    assert g.names == ["bob"]
    with pytest.raises(KeyError, match="not enrolled"):
        g.verify("alice", alice)
    with pytest.raises(ValueError, match="dimension 16"):
        g.enroll("carol", np.ones(8))


def test_gallery_empty_and_bad_args():
    assert Gallery().match(np.ones(4)).name is None
    with pytest.raises(ValueError, match="metric"):
        Gallery(metric="manhattan")
    with pytest.raises(ValueError, match="threshold"):
        Gallery(threshold=-1)
