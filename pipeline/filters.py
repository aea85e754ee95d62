"""CS182 HW3 question 4: two convolution filters designed by hand, applied to CIFAR-10 images.

- Blurring: the 3x3 binomial kernel [1 2 1]^T [1 2 1] / 16, a small Gaussian. Its weights are
  positive and sum to 1, so flat regions keep their value and fine detail (high frequencies) is
  averaged away: a low-pass filter.
- Edge detection: the Sobel pair. SOBEL_X = [1 2 1]^T [-1 0 1] differentiates across columns
  (responds to vertical edges) while smoothing along them; SOBEL_Y is its transpose (responds to
  horizontal edges); the edge magnitude is sqrt(gx^2 + gy^2). Each kernel sums to 0, so a flat
  region gives 0: the filters pass changes only (band-pass, zero at the origin of the spectrum).

The filters run through our NumPy convolution (pipeline.numpy_layers.conv_forward_im2col, a
cross-correlation as in every deep-learning library) and the result is checked against
torch.nn.functional.conv2d on the same images. The frequency response of a kernel is the
magnitude of its 2-D DFT on a fine grid (the kernel zero-padded), as filter design states it.
"""
import numpy as np

from pipeline import numpy_layers as L

BLUR = np.outer([1, 2, 1], [1, 2, 1]).astype(np.float64) / 16          # (3, 3), sums to 1
SOBEL_X = np.outer([1, 2, 1], [-1, 0, 1]).astype(np.float64)           # d/dx: vertical edges
SOBEL_Y = SOBEL_X.T.copy()                                             # d/dy: horizontal edges
KERNELS = {"blur": BLUR, "sobel_x": SOBEL_X, "sobel_y": SOBEL_Y}
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 weights: RGB -> grey for edge detection
TOLERANCE = 1e-12  # float64: our im2col convolution and torch's agree to rounding
CUTOFF = 0.25      # cycles per pixel: "high frequency" is above half of the Nyquist limit 0.5


def to_grey(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) uint8 -> (N, 1, 32, 32) float64 in [0, 1]."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected images (N, H, W, 3), got shape {images.shape}")
    return (images.astype(np.float64) / 255 @ LUMA)[:, None]


def depthwise(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The same (k, k) kernel on every channel separately, 'same' size (zero padding k // 2),
    with our NumPy convolution. x: (N, C, H, W) -> (N, C, H, W)."""
    n, c, h, w = x.shape
    k = kernel.shape[0]
    out, _ = L.conv_forward_im2col(x.reshape(n * c, 1, h, w), kernel[None, None].astype(x.dtype),
                                   np.zeros(1, x.dtype), stride=1, pad=k // 2)
    return out.reshape(n, c, h, w)


def apply_filters(images: np.ndarray) -> dict:
    """Every filter on images (N, 32, 32, 3) uint8.

    Returns {"original" (N, 3, H, W) in [0, 1], "blur" (N, 3, H, W) (each colour channel
    blurred), "sobel_x", "sobel_y", "magnitude" (N, 1, H, W) on the grey image}.
    """
    rgb = images.astype(np.float64).transpose(0, 3, 1, 2) / 255
    grey = to_grey(images)
    gx, gy = depthwise(grey, SOBEL_X), depthwise(grey, SOBEL_Y)
    return {"original": rgb, "blur": depthwise(rgb, BLUR), "sobel_x": gx, "sobel_y": gy,
            "magnitude": np.sqrt(gx ** 2 + gy ** 2)}


def torch_reference(images: np.ndarray) -> dict:
    """The same outputs computed with torch.nn.functional.conv2d (grouped convolution), the
    independent check of apply_filters."""
    import torch
    import torch.nn.functional as F
    rgb = torch.as_tensor(images, dtype=torch.float64).permute(0, 3, 1, 2) / 255
    grey = torch.as_tensor(to_grey(images))

    def conv(x, kernel):
        c = x.shape[1]
        w = torch.as_tensor(kernel)[None, None].expand(c, 1, *kernel.shape)
        return F.conv2d(x, w, padding=kernel.shape[0] // 2, groups=c)
    gx, gy = conv(grey, SOBEL_X), conv(grey, SOBEL_Y)
    return {k: v.numpy() for k, v in {"original": rgb, "blur": conv(rgb, BLUR), "sobel_x": gx,
                                      "sobel_y": gy, "magnitude": torch.sqrt(gx ** 2 + gy ** 2)}.items()}


def frequency_response(kernel: np.ndarray, size: int = 64) -> np.ndarray:
    """|H(u, v)| of a kernel: its 2-D DFT on a size x size grid, zero frequency centred.
    (size, size); at the centre it equals the kernel's sum."""
    padded = np.zeros((size, size))
    k = kernel.shape[0]
    padded[:k, :k] = kernel
    return np.abs(np.fft.fftshift(np.fft.fft2(padded)))


def response_summary(responses: dict) -> dict:
    """Samples of each kernel's frequency response (frequency_response, zero frequency at the
    centre): at zero frequency (= the kernel's sum), its largest value, and at the corner, the
    (Nyquist, Nyquist) frequency where a blur should be 0 and an edge filter large."""
    return {"response_at_zero": {k: float(r[r.shape[0] // 2, r.shape[1] // 2]) for k, r in responses.items()},
            "response_max": {k: float(r.max()) for k, r in responses.items()},
            "response_at_nyquist": {k: float(r[0, 0]) for k, r in responses.items()}}


def energy_kept(x: np.ndarray, y: np.ndarray, cutoff: float = 0.25) -> dict:
    """How a filter changed the spectrum of images: the fraction of spectral energy above
    `cutoff` (cycles per pixel, radius) before and after. x, y: (N, C, H, W)."""
    h, w = x.shape[-2:]
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    high = np.hypot(fy, fx) > cutoff

    def share(a):
        p = np.abs(np.fft.fft2(a - a.mean(axis=(-2, -1), keepdims=True))) ** 2
        return float(p[..., high].sum() / p.sum())
    return {"high_before": share(x), "high_after": share(y)}


def check(images: np.ndarray) -> dict:
    """Largest absolute difference between our NumPy filters and torch's, per output."""
    ours, ref = apply_filters(images), torch_reference(images)
    return {k: float(np.abs(ours[k] - ref[k]).max()) for k in ours}
