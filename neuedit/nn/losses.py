"""Loss functions of docs/method.md §1-2, each a small pure function of tensors.

D(x) returns (logit [N], c_logits [N, C]); `c` is multi-hot [N, C].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from neuedit.nn.colour import lab
from neuedit.runtime.sketch import dist as edit_distance  # noqa: F401  Dist: one definition for numpy and torch


def d_adv_loss(real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """L_adv(D) = -E[log D(x)] - E[log(1 - D(G(z, c)))], D = sigmoid(logit)."""
    return F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()


def g_adv_loss(fake_logit: torch.Tensor) -> torch.Tensor:
    """L_adv(G) = -E[log D(G(z, c))] (non-saturating)."""
    return F.softplus(-fake_logit).mean()


def cls_loss(c_logits: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """ACGAN condition loss: per-attribute binary cross-entropy (each attribute its own
    logistic, as in Jin et al.), averaged over attributes and batch so its scale does not
    grow with the schema. Zero when the schema is empty."""
    if c.shape[1] == 0:
        return c_logits.new_zeros(())
    return F.binary_cross_entropy_with_logits(c_logits, c)


def group_cls_loss(c_logits: torch.Tensor, c: torch.Tensor, groups: list[tuple[slice, bool]]) -> torch.Tensor:
    """Condition loss that follows the schema's groups, summed over groups: for an exclusive
    group, softmax cross-entropy over the rows that have one of its attributes (a row with none
    says nothing about the group); for a free group, binary cross-entropy. `groups` is
    [(slice into c, exclusive)]. c_logits, c [N, C]. Zero when there is nothing to classify.

    Unlike `cls_loss`, its size does not shrink with the number of attributes: a 12-way hair
    colour weighs as much as a 2-way hair length, which is what makes G obey `c` in short runs."""
    terms = []
    for s, exclusive in groups:
        if exclusive:
            labelled = c[:, s].sum(1) > 0
            if labelled.any():
                terms.append(F.cross_entropy(c_logits[labelled, s], c[labelled, s].argmax(1)))
        else:
            terms.append(F.binary_cross_entropy_with_logits(c_logits[:, s], c[:, s]))
    return torch.stack(terms).sum() if terms else c_logits.new_zeros(())


def dragan_perturb(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """x~ = x + 0.5 * alpha * std(x), alpha ~ U(0, 1) of x's shape [N, 3, H, W] (DRAGAN's
    per-pixel noise); std over the whole batch."""
    return x + 0.5 * alpha * x.std()


def gradient_penalty(logit: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """L_gp = E[(||grad_x~ D(x~)||_2 - 1)^2]. `x_hat` must require grad and `logit = D(x_hat)`;
    create_graph keeps the penalty differentiable w.r.t. D's parameters."""
    (grad,) = torch.autograd.grad(logit.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


def l2_reg(params) -> torch.Tensor:
    """L2(theta) = sum of squared weights."""
    return sum((p.float() ** 2).sum() for p in params)


def masked_l1(a: torch.Tensor, b: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean |a - b| over pixels where keep [N, 1, H, W] is 1 (the preservation loss). Returns [N]."""
    num = ((a - b).abs() * keep).flatten(1).sum(1)
    return num / (keep.flatten(1).sum(1) * a.shape[1]).clamp_min(1.0)


def image_gradients(x: torch.Tensor) -> torch.Tensor:
    """Sobel gradients of x's luminance (the channel mean): [N, C, H, W] -> [N, 2, H, W] (d/dx, d/dy),
    replicate-padded so that the border does not read as an edge."""
    k = x.new_tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
    gray = F.pad(x.mean(1, keepdim=True), (1, 1, 1, 1), mode="replicate")
    return F.conv2d(gray, torch.stack([k, k.t()])[:, None])


def gradient_l1(a: torch.Tensor, b: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean |grad a - grad b| (`image_gradients`) over pixels where keep [N, 1, H, W] is 1: an edge
    of b must be an edge of a at the same place and as sharp (a blur or a thick line costs).
    Returns [N]."""
    return masked_l1(image_gradients(a), image_gradients(b), keep)


def d_hinge_loss(real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """L_adv(D) = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z, c)))] (Lim & Ye 2017)."""
    return F.relu(1.0 - real_logit).mean() + F.relu(1.0 + fake_logit).mean()


def g_hinge_loss(fake_logit: torch.Tensor) -> torch.Tensor:
    """L_adv(G) = -E[D(G(z, c))]."""
    return -fake_logit.mean()


def r1_penalty(real_logit: torch.Tensor, x_real: torch.Tensor) -> torch.Tensor:
    """R1 = E[||grad_x D(x)||^2] on real images (Mescheder et al. 2018); `x_real` must require
    grad and `real_logit = D(x_real)`."""
    (grad,) = torch.autograd.grad(real_logit.sum(), x_real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


ADV_LOSSES = {"logistic": (d_adv_loss, g_adv_loss), "hinge": (d_hinge_loss, g_hinge_loss)}


def feature_matching(fake_feats: list[torch.Tensor], real_feats: list[torch.Tensor]) -> torch.Tensor:
    """Mean over layers of L1(D_l(fake), D_l(real)) between a discriminator's features of an
    output and of its target (pix2pixHD's feature matching; the real side carries no gradient)."""
    return sum((f - r.detach()).abs().mean() for f, r in zip(fake_feats, real_feats)) / len(fake_feats)


def object_colour_loss(x: torch.Tensor, c: torch.Tensor, palette_lab: torch.Tensor,
                       white: float = 90.0, chroma: float = 10.0, tolerance: float = 12.0) -> torch.Tensor:
    """How far the object of each sample x [N, 3, R, R] is from the colour its c [N, K] (one-hot over
    the palette, or all zero: no colour asked) names: the Lab distance between the mean of its
    object pixels (all but the near-white background: L above `white`, chroma below `chroma`, as
    `neuedit.synth.pairs.object_region` finds it) and `palette_lab` [K, 3], beyond `tolerance`, / 100,
    averaged over the rows that ask for a colour. Its gradient moves every object pixel alike, so
    the whole object takes the colour (a classifier's gradient paints patches); the tolerance stops
    the pull once the mean is near the colour, so a sole or a strap may keep its own."""
    L = lab(x)
    with torch.no_grad():
        obj = ~((L[:, 0] > white) & (torch.hypot(L[:, 1], L[:, 2]) < chroma))  # [N, R, R]
        obj = obj.to(x.dtype)
    mean = (L * obj[:, None]).sum((2, 3)) / obj.sum((1, 2)).clamp(min=1)[:, None]
    asks = (c.sum(1) > 0.5).to(x.dtype)
    d = ((mean - c @ palette_lab).norm(dim=1) - tolerance).clamp(min=0) / 100
    return (d * asks).sum() / asks.sum().clamp(min=1)
