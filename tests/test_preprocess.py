"""Preprocessing modes: rescale, per-image normalize, per-channel; statistics from train only."""
import numpy as np
import pytest

from pipeline.errors import UserError
from pipeline.preprocess import MODES, preprocess


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    test = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    return train, test


def test_rescale(images):
    (tr, te), stats = preprocess(*images, mode="rescale")
    assert tr.shape == (20, 3, 32, 32) and tr.dtype == np.float32 and stats == {}
    # NCHW: channel c of image i at (h, w) is pixel [i, h, w, c] / 255
    assert tr[3, 2, 4, 5] == pytest.approx(images[0][3, 4, 5, 2] / 255)
    assert 0 <= tr.min() and tr.max() <= 1


def test_normalize_is_per_image(images):
    (tr, te), _ = preprocess(*images, mode="normalize")
    for x in (tr, te):
        flat = x.reshape(len(x), -1).astype(np.float64)
        np.testing.assert_allclose(flat.mean(1), 0, atol=1e-5)
        np.testing.assert_allclose(flat.std(1), 1, atol=1e-4)
    # each image on its own: the result does not depend on the other images
    (alone,), _ = preprocess(images[1][:1], mode="normalize")
    np.testing.assert_allclose(alone[0], te[0], atol=1e-6)


def test_normalize_constant_image_is_zero():
    (x,), _ = preprocess(np.full((1, 32, 32, 3), 7, np.uint8), mode="normalize")
    assert np.all(x == 0)


def test_per_channel_uses_train_statistics(images):
    (tr, te), stats = preprocess(*images, mode="per_channel")
    chan = tr.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    np.testing.assert_allclose(chan.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(chan.std(1), 1, atol=1e-4)
    raw = images[0].astype(np.float64) / 255
    np.testing.assert_allclose(stats["channel_mean"], raw.mean((0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(stats["channel_std"], raw.std((0, 1, 2)), rtol=1e-5)
    expected = (images[1][0, 7, 9, 1] / 255 - stats["channel_mean"][1]) / stats["channel_std"][1]
    assert te[0, 1, 7, 9] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_all_modes_return_float32(images, mode):
    (tr, te), _ = preprocess(*images, mode=mode)
    assert tr.dtype == te.dtype == np.float32 and te.shape == (5, 3, 32, 32)


def test_unknown_mode(images):
    with pytest.raises(UserError, match="unknown preprocessing mode 'zscore'"):
        preprocess(*images, mode="zscore")


def test_wrong_dtype_or_shape():
    with pytest.raises(UserError, match="uint8"):
        preprocess(np.zeros((2, 32, 32, 3), np.float32), mode="rescale")
    with pytest.raises(UserError, match="uint8"):
        preprocess(np.zeros((32, 32, 3), np.uint8), mode="rescale")
