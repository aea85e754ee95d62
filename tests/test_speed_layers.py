"""The hand-written autograd functions of pipeline.model against torch's own layers, in float64:
forward outputs and every gradient must agree, and the fast LeNet must equal the stock one."""
import pytest
import torch
import torch.nn.functional as F

from pipeline.model import Conv2dFn, LeNet, MaxPool2x2ReLU, build_model

TOLERANCE = 1e-10  # float64: only summation order differs from torch


def windows_with_ties(seed):
    """(4, 3, 12, 16) float64 with whole-window ties, half ties and all-negative windows."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(4, 3, 12, 16, dtype=torch.float64, generator=g)
    a[0, 0, 0:2, 0:2] = 1.5          # four-way tie: the gradient goes to the first element
    a[0, 1, 2, 4:6] = 2.0            # tie along a row
    a[1, 0, 4:6, 6] = 3.0            # tie along a column
    a[1, 2, :4, :4] = -1.0           # negative windows: ReLU gives 0 and no gradient
    a[2, 1, 6:8, 8:10] = 0.0         # zeros: ReLU's gradient at 0 is 0
    return a


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_maxpool_relu_matches_torch(seed):
    a = windows_with_ties(seed)
    ours_in, ref_in = a.clone().requires_grad_(), a.clone().requires_grad_()
    ours = MaxPool2x2ReLU.apply(ours_in)
    ref = F.max_pool2d(F.relu(ref_in), 2, 2)   # the homework's order: ReLU, then pool
    dout = torch.randn_like(ref)
    ours.backward(dout)
    ref.backward(dout)
    assert torch.equal(ours, ref)
    assert torch.equal(ours_in.grad, ref_in.grad)


def test_maxpool_relu_gradcheck():
    a = torch.randn(2, 2, 4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(MaxPool2x2ReLU.apply, (a,))


@pytest.mark.parametrize("input_grad", [True, False])
def test_conv_matches_torch(input_grad):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 6, 14, 14, dtype=torch.float64, generator=g)
    w = torch.randn(16, 6, 5, 5, dtype=torch.float64, generator=g)
    b = torch.randn(16, dtype=torch.float64, generator=g)
    ours_args = [t.clone().requires_grad_(t is not x or input_grad) for t in (x, w, b)]
    ref_args = [t.clone().requires_grad_(t is not x or input_grad) for t in (x, w, b)]
    ours, ref = Conv2dFn.apply(*ours_args), F.conv2d(*ref_args)
    dout = torch.randn_like(ref)
    ours.backward(dout)
    ref.backward(dout)
    assert (ours - ref).abs().max() < TOLERANCE
    for o, r in zip(ours_args, ref_args):
        if r.requires_grad:
            assert (o.grad - r.grad).abs().max() < TOLERANCE
        else:
            assert o.grad is None


def test_conv_gradcheck():
    args = [torch.randn(*s, dtype=torch.float64, requires_grad=True)
            for s in ((2, 3, 7, 6), (4, 3, 3, 3), (4,))]
    assert torch.autograd.gradcheck(Conv2dFn.apply, args)


@pytest.mark.parametrize("variant", ["lenet_bn_dropout", "lenet_plain"])
def test_fast_lenet_equals_stock_lenet(variant):
    """Same parameters, same outputs, same gradients, same BN running statistics."""
    torch.manual_seed(0)
    fast, stock = build_model(variant).double(), build_model(variant, fast=False).double()
    assert fast.fast and not stock.fast
    stock.load_state_dict(fast.state_dict())
    x = torch.randn(16, 3, 32, 32, dtype=torch.float64)
    y = torch.randint(0, 10, (16,))
    losses = []
    for model in (fast, stock):
        torch.manual_seed(1)  # the same dropout mask
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        losses.append(loss)
    assert abs(losses[0].item() - losses[1].item()) < TOLERANCE
    for (name, p), q in zip(fast.named_parameters(), stock.parameters()):
        assert (p.grad - q.grad).abs().max() < TOLERANCE, name
    for (name, s), t in zip(fast.state_dict().items(), stock.state_dict().values()):
        assert torch.allclose(s.double(), t.double(), rtol=0, atol=TOLERANCE), name


def test_odd_planes_fall_back_to_stock_layers():
    model = LeNet(image_size=34).eval()   # 34 -> 30 -> 15 -> 11: odd plane before pool 2
    assert not model.fast
    assert model(torch.randn(2, 3, 34, 34)).shape == (2, 10)
