"""LeNet: shapes, parameter counts against a hand count, the two variants, bad input."""
import pytest
import torch
from torch import nn

from pipeline.errors import UserError
from pipeline.model import VARIANTS, LeNet, build_model, conv_output_size, get_variant, params_by_layer


def conv_params(c_in, c_out, k):
    return c_out * (c_in * k * k) + c_out  # one k x k x c_in filter + one bias per output map


def fc_params(n_in, n_out):
    return n_out * n_in + n_out


def bn_params(c):
    return 2 * c  # gamma and beta per channel; running stats are buffers, not parameters


# The hand count, layer by layer (question 4(c)): 32 -conv5-> 28 -pool-> 14 -conv5-> 10 -pool-> 5.
HAND = {"conv1": conv_params(3, 6, 5), "conv2": conv_params(6, 16, 5),
        "fc1": fc_params(16 * 5 * 5, 120), "fc2": fc_params(120, 84), "fc3": fc_params(84, 10)}
HAND_BN = {"bn1": bn_params(6), "bn2": bn_params(16), "bn3": bn_params(120), "bn4": bn_params(84)}


def test_plain_params_match_hand_count():
    counts = params_by_layer(build_model("lenet_plain"))
    assert counts == HAND
    assert sum(counts.values()) == 62006 == sum(HAND.values())


def test_bn_params_match_hand_count():
    counts = params_by_layer(build_model("lenet_bn_dropout"))
    assert counts == {**HAND, **HAND_BN}
    assert sum(counts.values()) == sum(p.numel() for p in build_model("lenet_bn_dropout").parameters())


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forward_shapes(variant):
    model = build_model(variant).eval()
    assert model.flat_features == 16 * 5 * 5
    out = model(torch.randn(7, 3, 32, 32))
    assert out.shape == (7, 10)


def test_layers_follow_the_homework_sequence():
    m = build_model("lenet_bn_dropout")
    assert isinstance(m.bn1, nn.BatchNorm2d) and isinstance(m.bn3, nn.BatchNorm1d)
    assert isinstance(m.dropout, nn.Dropout) and m.dropout.p == 0.5
    p = build_model("lenet_plain")
    assert all(isinstance(getattr(p, n), nn.Identity) for n in ("bn1", "bn2", "bn3", "bn4", "dropout"))


def test_variants_pair_the_homework_preprocessing():
    assert get_variant("lenet_bn_dropout").preprocess == "normalize"
    assert get_variant("lenet_plain").preprocess == "rescale"


def test_conv_output_size_matches_torch():
    for size, k, s, p in [(32, 5, 1, 0), (28, 2, 2, 0), (15, 3, 1, 1), (64, 3, 2, 1)]:
        x = torch.zeros(1, 1, size, size)
        assert nn.Conv2d(1, 1, k, s, p)(x).shape[-1] == conv_output_size(size, k, s, p)


def test_other_image_sizes_derive_the_flat_size():
    m = LeNet(image_size=36).eval()
    assert m(torch.randn(2, 3, 36, 36)).shape == (2, 10)


def test_dropout_is_off_in_eval_mode():
    m = build_model("lenet_bn_dropout").eval()
    x = torch.randn(4, 3, 32, 32)
    assert torch.equal(m(x), m(x))


def test_unknown_variant_is_a_user_error():
    with pytest.raises(UserError, match="unknown variant 'lenet9'"):
        build_model("lenet9")


def test_bad_dropout():
    with pytest.raises(ValueError):
        LeNet(dropout=1.0)
