import math

import numpy as np
import torch

from neuedit.nn import losses
from neuedit.nn.nets import Discriminator
from neuedit.runtime.sketch import dist as dist_np


def test_adversarial_losses_by_hand():
    real, fake = torch.tensor([math.log(3.0)]), torch.tensor([0.0])  # D(x) = 0.75, D(G) = 0.5
    assert losses.d_adv_loss(real, fake).item() == torch.tensor(-math.log(0.75) - math.log(0.5)).item()
    assert abs(losses.g_adv_loss(torch.tensor([math.log(1 / 3)])).item() - (-math.log(0.25))) < 1e-6


def test_cls_loss_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)]])
    c = torch.tensor([[1.0, 0.0]])
    expected = (-math.log(0.5) - math.log(0.25)) / 2
    assert abs(losses.cls_loss(logits, c).item() - expected) < 1e-6
    assert losses.cls_loss(torch.zeros(2, 0), torch.zeros(2, 0)).item() == 0.0


def test_gradient_penalty_by_hand():
    w = torch.tensor([3.0, 4.0])  # D(x) = w . x has gradient w, norm 5
    x = torch.randn(6, 2, requires_grad=True)
    assert abs(losses.gradient_penalty(x @ w, x).item() - 16.0) < 1e-5


def test_dragan_perturbation():
    x = torch.tensor([[[[0.0, 2.0]]]])  # std (unbiased) = sqrt(2)
    alpha = torch.tensor(0.5).view(1, 1, 1, 1)
    assert torch.allclose(losses.dragan_perturb(x, alpha), x + 0.25 * math.sqrt(2))


def test_l2_reg():
    assert losses.l2_reg([torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])]).item() == 14.0


def test_gradient_penalty_reaches_d_parameters():
    torch.manual_seed(0)
    D = Discriminator(c_dim=2, resolution=16, ch=4, n_res=1)
    x_hat = torch.randn(3, 3, 16, 16).requires_grad_(True)
    logit, _ = D(x_hat)
    losses.gradient_penalty(logit, x_hat).backward()
    convs = [m.weight for m in D.features.modules() if isinstance(m, torch.nn.Conv2d)]
    # A penalty cut off from D's graph (no create_graph) would leave these without gradient.
    assert convs and all(w.grad is not None and w.grad.abs().sum() > 0 for w in convs)
    assert D.head_adv.weight.grad.abs().sum() > 0


def test_edit_distance_by_hand_including_a_black_stroke():
    image = torch.zeros(1, 3, 2, 2)          # mid-grey in [-1, 1]
    sketch = torch.full((1, 3, 2, 2), -1.0)  # black
    mask = torch.zeros(1, 1, 2, 2)
    mask[0, 0, 0, 0] = 1.0                   # one black stroke pixel
    # |0 - (-1)| * 3 channels / (1 + 1 stroke pixel)
    assert losses.edit_distance(image, sketch, mask).item() == 1.5
    mask[0, 0, 1, 1] = 1.0
    image[0, :, 1, 1] = -1.0                 # second stroke pixel already black
    assert losses.edit_distance(image, sketch, mask).item() == 1.0
    assert np.allclose(dist_np(image.numpy(), sketch.numpy(), mask.numpy()), [1.0])


def test_masked_l1():
    a, b = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    keep = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert losses.masked_l1(a, b, keep).item() == 1.0
    b[0, :, 0, 0] = 0.0
    assert losses.masked_l1(a, b, keep).item() == 0.0


def test_group_cls_loss_by_hand():
    import torch.nn.functional as F
    logits = torch.tensor([[2.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, -1.0]])
    # group A: attributes 0-2 (exclusive), group B: attribute 3 (free)
    c = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])  # row 2 has no A attribute
    groups = [(slice(0, 3), True), (slice(3, 4), False)]
    expected = F.cross_entropy(logits[:1, :3], torch.tensor([0])) + F.binary_cross_entropy_with_logits(logits[:, 3:], c[:, 3:])
    assert abs(losses.group_cls_loss(logits, c, groups).item() - expected.item()) < 1e-6
    assert losses.group_cls_loss(torch.zeros(2, 0), torch.zeros(2, 0), []).item() == 0.0


def test_feature_matching_by_hand_and_no_gradient_to_the_real_side():
    from neuedit.nn.losses import feature_matching
    f = [torch.zeros(1, 2, 2, 2, requires_grad=True), torch.ones(1, 1, 1, 1, requires_grad=True)]
    r = [torch.full((1, 2, 2, 2), 0.5, requires_grad=True), torch.full((1, 1, 1, 1), 3.0, requires_grad=True)]
    L = feature_matching(f, r)
    assert torch.isclose(L, torch.tensor((0.5 + 2.0) / 2))
    L.backward()
    assert r[0].grad is None and f[0].grad is not None


def test_patch_discriminator_sees_the_strokes():
    from neuedit.nn.nets import PatchDiscriminator
    torch.manual_seed(0)
    D = PatchDiscriminator(resolution=16, chans=(8, 16)).eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    sk = torch.rand(2, 3, 16, 16) * 2 - 1
    mk = (torch.rand(2, 1, 16, 16) > 0.7).float()
    a, feats = D(x, sk, mk)
    b, _ = D(x, sk, torch.zeros_like(mk))
    assert a.shape == (2, 1, 4, 4) and len(feats) == 2
    assert not torch.allclose(a, b)


def test_image_gradients_by_hand_and_gradient_l1_wants_the_same_sharp_edge():
    step = torch.full((1, 3, 5, 6), -1.0)
    step[..., 3:] = 1.0                      # a vertical edge between columns 2 and 3
    g = losses.image_gradients(step)
    assert g.shape == (1, 2, 5, 6)
    # Sobel / 8 is the central difference (x[i+1] - x[i-1]) / 2, smoothed across: a jump of 2
    # reads 1 in the two columns beside it, nothing along it or at the (replicated) border
    assert torch.allclose(g[0, 0, 2], torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0, 0.0]))
    assert g[0, 1].abs().max() == 0
    keep = torch.ones(1, 1, 5, 6)
    assert losses.gradient_l1(step + 0.3, step, keep).item() < 1e-6       # brightness is not an edge
    moved = torch.roll(step, 1, dims=3)
    moved[..., 0] = -1.0
    blurred = torch.nn.functional.avg_pool2d(step, 3, 1, 1, count_include_pad=False)
    assert losses.gradient_l1(moved, step, keep).item() > 0.1            # the edge one pixel off
    assert losses.gradient_l1(blurred, step, keep).item() > 0.05         # the edge smeared
    assert losses.gradient_l1(moved, step, torch.zeros_like(keep)).item() == 0.0
