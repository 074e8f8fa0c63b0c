"""The adversarial objective of Jin et al. 2017 (DRAGAN + ACGAN, docs/method.md §1) and its CPU
variants (hinge, R1, projection conditioning, DiffAugment): L(D) and L(G) as functions of
the networks and a batch. Stage one trains with both; stage two's `strokes` objective
trains its D with `d_loss_terms`."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from neuedit.nn.augment import diff_augment, parse_policy
from neuedit.errors import UsageError
from neuedit.nn.losses import (ADV_LOSSES, cls_loss, dragan_perturb, group_cls_loss, gradient_penalty, l2_reg,
                               object_colour_loss, r1_penalty)


@dataclass(frozen=True)
class LossConfig:
    """Defaults are Jin et al. 2017's recipe (DRAGAN + ACGAN); the CPU demos use hinge + DiffAugment."""
    adv: str = "logistic"        # adversarial loss: "logistic" (Jin et al.'s, non-saturating G) or "hinge"
    penalty: str = "dragan"      # D penalty: "dragan" (Jin et al.'s), "r1" on real images, or "none"
    l_adv: float = 2.0           # weight of the adversarial terms (Jin et al.: 2)
    l_gp: float = 1.0            # weight of the penalty (Jin et al.: 1 for DRAGAN; R1 uses gamma / 2 = l_gp)
    l_reg: float = 1e-4          # weight of the L2 weight regulariser (Jin et al.: 1e-4)
    l_cls: float = 1.0           # weight of the ACGAN condition terms in L(D) and L(G)
    cls_on_fake: bool = True     # also train D's condition head on (G(z,c), c), as Jin et al. do
    cond: str = "acgan"          # conditioning in D: "acgan" (classifier head), or "projection" + ACGAN
    cls: str = "bce"             # condition loss: "bce" per attribute, averaged (Jin et al.'s), or
                                 # "group_ce": cross-entropy per exclusive group, summed over groups
    augment: str = ""            # DiffAugment policy applied to all D inputs, e.g. "color,translation,cutout"
    l_colour: float = 0.0        # a colour condition from the pixels (schema object_colour): weight of the
                                 # distance of G's object colour to the colour c names (losses.object_colour_loss)

    def __post_init__(self):
        if self.adv not in ADV_LOSSES:
            raise UsageError(f"adv loss must be one of {', '.join(ADV_LOSSES)}, not {self.adv!r}")
        if self.penalty not in ("dragan", "r1", "none"):
            raise UsageError(f"penalty must be dragan, r1 or none, not {self.penalty!r}")
        if self.cls not in ("bce", "group_ce"):
            raise UsageError(f"cls must be bce or group_ce, not {self.cls!r}")
        if self.cond not in ("acgan", "projection"):
            raise UsageError(f"cond must be acgan or projection, not {self.cond!r}")
        parse_policy(self.augment)



def d_loss_terms(D, x_real: torch.Tensor, x_fake: torch.Tensor, c_real: torch.Tensor, c_fake: torch.Tensor,
                 alpha: torch.Tensor, cfg: LossConfig, g: torch.Generator | None = None,
                 groups: list | None = None) -> dict:
    """L(D) and its terms (both stages use it). Real, fake and (for DRAGAN) perturbed images go
    through D in ONE forward, which keeps DDP to one forward per backward; D has no BatchNorm,
    so this equals separate calls. x_real, x_fake [N, 3, R, R] (x_fake detached); c_* [N, C];
    `alpha` is DRAGAN's noise; `g` draws the augmentation (needed when cfg.augment is set);
    `groups` [(slice, exclusive)] are the schema's groups (needed when cfg.cls is "group_ce")."""
    n = len(x_real)
    d_adv, _ = ADV_LOSSES[cfg.adv]
    x_real = x_real.detach().requires_grad_(cfg.penalty == "r1")
    parts, cs = [x_real, x_fake], [c_real, c_fake]
    if cfg.penalty == "dragan":
        x_hat = dragan_perturb(x_real.detach(), alpha).detach().requires_grad_(True)
        parts.append(x_hat)
        cs.append(c_real)
    x = torch.cat(parts)
    if cfg.augment:
        x = diff_augment(x, cfg.augment, g)
    logit, c_logits = D(x, torch.cat(cs) if cfg.cond == "projection" else None)
    real_logit, fake_logit = logit[:n], logit[n:2 * n]
    L_adv = d_adv(real_logit, fake_logit)
    cls = _cls_fn(cfg, groups)
    L_cls = cls(c_logits[:n], c_real)
    if cfg.cls_on_fake:
        L_cls = L_cls + cls(c_logits[n:2 * n], c_fake)
    if cfg.penalty == "dragan":
        L_gp = gradient_penalty(logit[2 * n:], x_hat)
    elif cfg.penalty == "r1":
        L_gp = r1_penalty(real_logit, x_real)
    else:
        L_gp = logit.new_zeros(())
    L_reg = l2_reg(D.parameters()) if cfg.l_reg else logit.new_zeros(())
    L_D = cfg.l_cls * L_cls + cfg.l_adv * L_adv + cfg.l_gp * L_gp + cfg.l_reg * L_reg
    return {"L_D": L_D, "L_adv_D": L_adv, "L_cls_D": L_cls, "L_gp": L_gp}


def _cls_fn(cfg: LossConfig, groups: list | None):
    if cfg.cls == "group_ce":
        if groups is None:
            raise UsageError("cls 'group_ce' needs the schema's groups")
        return lambda logits, c: group_cls_loss(logits, c, groups)
    return cls_loss


def g_loss_terms(G, D_eval, z: torch.Tensor, c_fake: torch.Tensor, cfg: LossConfig,
                 g: torch.Generator | None = None, groups: list | None = None,
                 palette_lab: torch.Tensor | None = None) -> dict:
    """L(G) = l_adv L_adv(G) + l_cls L_cls(G) + l_reg L2(G) (+ l_colour L_colour) on G(z [N, Z], c_fake [N, C]).
    `D_eval` is D without any DDP wrapper; G's samples get the same augmentation D was trained on;
    `palette_lab` [C, 3] the colours c names (needed when cfg.l_colour is set)."""
    _, g_adv = ADV_LOSSES[cfg.adv]
    x_fake = G(z, c_fake)
    x_d = diff_augment(x_fake, cfg.augment, g) if cfg.augment else x_fake
    fake_logit, c_logits = D_eval(x_d, c_fake if cfg.cond == "projection" else None)
    L_adv = g_adv(fake_logit)
    L_cls = _cls_fn(cfg, groups)(c_logits, c_fake)
    L_reg = l2_reg(G.parameters()) if cfg.l_reg else fake_logit.new_zeros(())
    L_G = cfg.l_adv * L_adv + cfg.l_cls * L_cls + cfg.l_reg * L_reg
    terms = {"L_adv_G": L_adv, "L_cls_G": L_cls}
    if cfg.l_colour:
        if palette_lab is None:
            raise UsageError("l_colour needs the palette of a colour schema (object_colour)")
        terms["L_colour"] = object_colour_loss(x_fake, c_fake, palette_lab)
        L_G = L_G + cfg.l_colour * terms["L_colour"]
    return {"L_G": L_G, **terms}
