"""CS182 question 4's hand-designed filters: our NumPy convolution against torch's conv2d, the
kernels' frequency responses against their closed forms, and what each filter does to edges."""
import numpy as np
import pytest

from pipeline import filters as FI


def _images(n=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_numpy_filters_equal_torch_conv2d():
    diffs = FI.check(_images())
    assert set(diffs) == {"original", "blur", "sobel_x", "sobel_y", "magnitude"}
    assert max(diffs.values()) < FI.TOLERANCE


def test_a_changed_kernel_is_caught_by_the_torch_check(monkeypatch):
    ours = FI.apply_filters(_images(1))
    monkeypatch.setattr(FI, "SOBEL_X", FI.SOBEL_X * 1.001)
    assert np.abs(FI.apply_filters(_images(1))["sobel_x"] - ours["sobel_x"]).max() > 1e-6


def test_kernel_sums_blur_keeps_flat_regions_sobel_removes_them():
    assert FI.BLUR.sum() == pytest.approx(1.0)
    assert FI.SOBEL_X.sum() == FI.SOBEL_Y.sum() == 0
    flat = np.full((1, 32, 32, 3), 128, dtype=np.uint8)
    out = FI.apply_filters(flat)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))  # away from the zero padding
    np.testing.assert_allclose(out["blur"][inner], 128 / 255)
    assert np.abs(out["sobel_x"][inner]).max() == 0 and np.abs(out["sobel_y"][inner]).max() == 0


def test_sobel_x_sees_vertical_edges_and_sobel_y_horizontal_ones():
    img = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    img[:, :, 16:] = 255                      # a vertical edge between columns 15 and 16
    out = FI.apply_filters(img)
    gx, gy = out["sobel_x"][0, 0, 1:-1], out["sobel_y"][0, 0, 1:-1, 1:-1]
    assert np.abs(gy).max() == pytest.approx(0, abs=1e-12)
    cols = np.flatnonzero(np.abs(gx).max(axis=0) > 1e-9)
    assert set(cols) >= {15, 16} and set(cols) <= {15, 16, 31}  # 31: the zero-padded border
    assert gx[:, 15].min() == pytest.approx(4 * FI.to_grey(img)[0, 0, 0, 16])  # 1 + 2 + 1 rows
    out_t = FI.apply_filters(img.transpose(0, 2, 1, 3).copy())  # the same edge, horizontal
    np.testing.assert_allclose(out_t["sobel_y"][0, 0], out["sobel_x"][0, 0].T, atol=1e-12)


def test_frequency_responses_match_their_closed_forms():
    size = 64
    f = np.fft.fftshift(np.fft.fftfreq(size))
    v, u = np.meshgrid(f, f, indexing="ij")
    # [1 2 1] / 4 has |DFT| cos^2(pi f); [-1 0 1] has |DFT| 2 |sin(2 pi f)|
    np.testing.assert_allclose(FI.frequency_response(FI.BLUR, size),
                               np.cos(np.pi * u) ** 2 * np.cos(np.pi * v) ** 2, atol=1e-12)
    np.testing.assert_allclose(FI.frequency_response(FI.SOBEL_X, size),
                               4 * np.cos(np.pi * v) ** 2 * 2 * np.abs(np.sin(2 * np.pi * u)), atol=1e-12)
    r = FI.frequency_response(FI.BLUR, size)
    assert r[size // 2, size // 2] == pytest.approx(1.0) and r[0, 0] == pytest.approx(0, abs=1e-12)


def test_blur_removes_high_frequencies_and_edges_keep_them():
    noise = _images(4, seed=1)
    out = FI.apply_filters(noise)
    blur = FI.energy_kept(out["original"], out["blur"])
    edges = FI.energy_kept(FI.to_grey(noise), out["magnitude"])
    assert blur["high_after"] < 0.5 * blur["high_before"]
    assert edges["high_after"] > 0  # the magnitude is not a low-pass image


def test_bad_image_shape_names_the_expected_one():
    with pytest.raises(ValueError, match=r"expected images \(N, H, W, 3\)"):
        FI.to_grey(np.zeros((2, 3, 32, 32)))
