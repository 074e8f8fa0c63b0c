"""Networks: the stage-one generator `G(z, c)`, the discriminator `D(x) -> (logit, c_logits)`,
and the stage-two editor `G2(image, sketch, mask)`.

After Jin et al. 2017 (docs/method.md §1): G is a dense layer to a small feature map, a
stack of residual blocks, sub-pixel (PixelShuffle) upsampling and a tanh output; D uses
residual blocks with LeakyReLU, no BatchNorm, and two heads (real/fake and ACGAN classes).
Networks know nothing of losses. Architectures are rebuilt from a bundle's
`{"name": ..., "kwargs": ...}` through `build`.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F
from neuedit.errors import UsageError
from neuedit.nn.colour import blur, lab


class GResBlock(nn.Module):
    """conv-BN-ReLU-conv-BN + skip (SRResNet block)."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch))

    def forward(self, x):
        return x + self.body(x)


class Upsample(nn.Module):
    """conv to 4*out channels, PixelShuffle(2), BN, ReLU: sub-pixel convolution (Shi et al.)."""

    def __init__(self, ch_in: int, ch_out: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch_in, 4 * ch_out, 3, 1, 1, bias=False), nn.PixelShuffle(2),
                                  nn.BatchNorm2d(ch_out), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.body(x)


def _level_channels(ch: int, levels: int, ch_min: int) -> list[int]:
    """Channels per upsampling level, halving from `ch` but never below `ch_min`."""
    return [max(ch_min, ch // (2 ** (i + 1))) if ch_min < ch else ch for i in range(levels)]


class Generator(nn.Module):
    """G(z [N, z_dim], c [N, c_dim]) -> image [N, 3, R, R] in (-1, 1)."""

    def __init__(self, z_dim: int = 128, c_dim: int = 34, resolution: int = 128, ch: int = 64,
                 n_res: int = 16, base: int = 16, ch_min: int = 64, out_kernel: int = 9):
        super().__init__()
        levels = int(round(math.log2(resolution / base)))
        if base * 2 ** levels != resolution or levels < 0:
            raise UsageError(f"resolution {resolution} must be base {base} times a power of two")
        self.z_dim, self.c_dim, self.resolution, self.base, self.ch = z_dim, c_dim, resolution, base, ch
        self.fc = nn.Linear(z_dim + c_dim, ch * base * base, bias=False)
        self.fc_bn = nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU(inplace=True))
        self.res = nn.Sequential(*[GResBlock(ch) for _ in range(n_res)])
        self.res_out = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True))
        chans = [ch] + _level_channels(ch, levels, ch_min)
        self.up = nn.Sequential(*[Upsample(chans[i], chans[i + 1]) for i in range(levels)])
        k = out_kernel if resolution >= 64 else 3  # Jin et al.'s 9x9 output conv; small for tiny nets
        self.out = nn.Conv2d(chans[-1], 3, k, 1, k // 2)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.tail(self.head(z, c, 0), 0)  # [N, 3, R, R]

    def detail_shape(self, size: int) -> tuple[int, int]:
        """(level, channels) of the feature map of `size` x `size` pixels (base * 2**level; level 0
        is the residual stack's output)."""
        level = int(round(math.log2(size / self.base)))
        if self.base * 2 ** level != size or not 0 <= level < len(self.up):
            raise UsageError(f"G1 has no {size}x{size} feature map below its output")
        return level, self.up[level - 1].body[2].num_features if level else self.ch

    def head(self, z: torch.Tensor, c: torch.Tensor, level: int) -> torch.Tensor:
        """(z, c) -> the feature map after the residual stack and `level` upsamplings."""
        assert z.dim() == 2 and z.shape[1] == self.z_dim, f"z must be [N, {self.z_dim}], got {tuple(z.shape)}"
        assert c.dim() == 2 and c.shape[1] == self.c_dim, f"c must be [N, {self.c_dim}], got {tuple(c.shape)}"
        h = self.fc(torch.cat([z, c], 1)).view(-1, self.ch, self.base, self.base)
        h = self.fc_bn(h)
        h = h + self.res_out(self.res(h))
        return self.up[:level](h)

    def tail(self, h: torch.Tensor, level: int) -> torch.Tensor:
        """The feature map after `level` upsamplings -> image [N, 3, R, R] in (-1, 1)."""
        return torch.tanh(self.out(self.up[level:](h)))


class DResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(ch, ch, 3, 1, 1))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x):
        return self.act(x + self.body(x))


class MinibatchStd(nn.Module):
    """Appends the mean std over groups of `group` *consecutive* samples as one feature map
    (Karras et al. 2018): D sees how varied a batch is, so G cannot collapse to one image.
    Consecutive groups keep real and fake samples apart when they are concatenated."""

    def __init__(self, group: int):
        super().__init__()
        self.group = group

    def forward(self, x):
        n, c, h, w = x.shape
        g = min(self.group, n)
        while n % g:
            g -= 1
        y = x.reshape(n // g, g, c, h, w)
        y = (y.var(1, unbiased=False) + 1e-8).sqrt().mean((1, 2, 3))  # [n // g]
        y = y.repeat_interleave(g).view(n, 1, 1, 1).expand(n, 1, h, w)
        return torch.cat([x, y], 1)


class Discriminator(nn.Module):
    """D(x [N, 3, R, R]) -> (logit [N], c_logits [N, c_dim]). No BatchNorm (DRAGAN's penalty is per sample)."""

    def __init__(self, c_dim: int = 34, resolution: int = 128, ch: int = 32, n_res: int = 2,
                 ch_max: int = 1024, final: int = 4, mbstd_group: int = 0):
        super().__init__()
        self.c_dim, self.resolution = c_dim, resolution
        stages = int(round(math.log2(resolution / final)))
        layers, c_in, c_out = [], 3, ch
        for i in range(stages):
            layers += [nn.Conv2d(c_in, c_out, 4 if i == 0 else 3, 2, 1), nn.LeakyReLU(0.2)]
            layers += [DResBlock(c_out) for _ in range(n_res)]
            c_in, c_out = c_out, min(ch_max, c_out * 2)
        extra = [MinibatchStd(mbstd_group)] if mbstd_group else []
        self.features = nn.Sequential(*layers, *extra, nn.Conv2d(c_in + len(extra), c_out, 3, 1, 1), nn.LeakyReLU(0.2))
        self.head_adv = nn.Linear(c_out * final * final, 1)
        self.head_cls = nn.Linear(c_out * final * final, c_dim) if c_dim else None

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`c` is accepted for a common call signature with `SNDiscriminator` and unused."""
        assert x.dim() == 4 and x.shape[1:] == (3, self.resolution, self.resolution), \
            f"x must be [N, 3, {self.resolution}, {self.resolution}], got {tuple(x.shape)}"
        h = self.features(x).flatten(1)
        logit = self.head_adv(h).squeeze(1)
        c_logits = self.head_cls(h) if self.head_cls is not None else h.new_zeros(h.shape[0], 0)
        return logit, c_logits


class UpBlock(nn.Module):
    """Nearest-neighbour x2, 3x3 conv, BN, ReLU: resize-convolution, which cannot draw the
    checkerboard a strided/sub-pixel upsampler draws early in training (Odena et al. 2016)."""

    def __init__(self, ch_in: int, ch_out: int):
        super().__init__()
        self.body = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                  nn.Conv2d(ch_in, ch_out, 3, 1, 1, bias=False), nn.BatchNorm2d(ch_out),
                                  nn.ReLU(inplace=True))

    def forward(self, x):
        return self.body(x)


class UpGenerator(nn.Module):
    """The CPU-budget G(z [N, z_dim], c [N, c_dim]) -> image [N, 3, R, R] in (-1, 1).

    A dense layer to a 4x4 map of `chans[0]` channels, then one `UpBlock` per doubling with
    `chans[i]` channels at 4 * 2**i pixels, and a 3x3 conv + tanh. `chans` has log2(R/4) + 1
    entries; no residual stack, so nearly all compute is spent where the pixels are.
    """

    def __init__(self, z_dim: int = 128, c_dim: int = 25, resolution: int = 64,
                 chans: tuple = (256, 256, 128, 64, 32)):
        super().__init__()
        levels = int(round(math.log2(resolution / 4)))
        if 4 * 2 ** levels != resolution or len(chans) != levels + 1:
            raise UsageError(f"resolution {resolution} needs {levels + 1} channel counts, got {len(chans)}")
        self.z_dim, self.c_dim, self.resolution, self.ch, self.base = z_dim, c_dim, resolution, chans[0], 4
        self.fc = nn.Linear(z_dim + c_dim, chans[0] * 16, bias=False)
        self.fc_bn = nn.Sequential(nn.BatchNorm2d(chans[0]), nn.ReLU(inplace=True))
        self.up = nn.Sequential(*[UpBlock(chans[i], chans[i + 1]) for i in range(levels)])
        self.out = nn.Conv2d(chans[-1], 3, 3, 1, 1)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.tail(self.head(z, c, 0), 0)  # [N, 3, R, R]

    def detail_shape(self, size: int) -> tuple[int, int]:
        """(level, channels) of the feature map of `size` x `size` pixels (4 * 2**level)."""
        level = int(round(math.log2(size / 4)))
        if 4 * 2 ** level != size or not 0 <= level < len(self.up):
            raise UsageError(f"G1 has no {size}x{size} feature map below its output")
        return level, self.up[level - 1].body[1].out_channels if level else self.ch

    def head(self, z: torch.Tensor, c: torch.Tensor, level: int) -> torch.Tensor:
        """(z, c) -> the feature map after `level` upsamplings [N, ch_level, 4 * 2**level, same]."""
        assert z.dim() == 2 and z.shape[1] == self.z_dim, f"z must be [N, {self.z_dim}], got {tuple(z.shape)}"
        assert c.dim() == 2 and c.shape[1] == self.c_dim, f"c must be [N, {self.c_dim}], got {tuple(c.shape)}"
        h = self.fc_bn(self.fc(torch.cat([z, c], 1)).view(-1, self.ch, self.base, self.base))
        return self.up[:level](h)

    def tail(self, h: torch.Tensor, level: int) -> torch.Tensor:
        """The feature map after `level` upsamplings -> image [N, 3, R, R] in (-1, 1)."""
        return torch.tanh(self.out(self.up[level:](h)))


class DetailG1(nn.Module):
    """G1 with a photo's detail: (z [N, Z], c [N, C], r [N, ch, S, S]) -> image [N, 3, R, R], where
    `r` is added to G1's S x S feature map (docs/method.md, "Photos"). r = 0 is G1 itself; a
    photo encoder's r carries what (z, c) cannot draw, so an edit of (z, c) keeps the photo's detail."""

    def __init__(self, G: "UpGenerator | Generator", size: int):
        super().__init__()
        self.G = G
        self.level, self.channels = G.detail_shape(size)
        self.size = size

    def forward(self, z: torch.Tensor, c: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        assert r.shape[1:] == (self.channels, self.size, self.size), \
            f"r must be [N, {self.channels}, {self.size}, {self.size}], got {tuple(r.shape)}"
        return self.G.tail(self.G.head(z, c, self.level) + r, self.level)


class SNDiscriminator(nn.Module):
    """D(x [N, 3, R, R], c [N, C] or None) -> (logit [N], c_logits [N, C]) with spectral norm
    on every layer (Miyato et al. 2018): a Lipschitz-bounded D that stays useful in short runs.

    One 4x4 stride-2 conv per halving down to 4x4 (`chans[i]` channels after halving i), each
    optionally preceded by a 3x3 conv (`extra`). Heads: real/fake, the ACGAN classes, and,
    with `projection`, the projection term <embed(c), h> (Miyato & Koyama 2018) added to the
    logit when `c` is given.
    """

    def __init__(self, c_dim: int = 25, resolution: int = 64, chans: tuple = (64, 128, 256, 512),
                 extra: bool = False, projection: bool = False):
        super().__init__()
        from torch.nn.utils.parametrizations import spectral_norm as sn
        stages = int(round(math.log2(resolution / 4)))
        if len(chans) != stages:
            raise UsageError(f"resolution {resolution} needs {stages} channel counts, got {len(chans)}")
        self.c_dim, self.resolution = c_dim, resolution
        layers, c_in = [], 3
        for c_out in chans:
            if extra:
                layers += [sn(nn.Conv2d(c_in, c_in if c_in > 3 else c_out, 3, 1, 1)), nn.LeakyReLU(0.2)]
                c_in = c_in if c_in > 3 else c_out
            layers += [sn(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        feat = c_in * 16
        self.head_adv = sn(nn.Linear(feat, 1))
        self.head_cls = nn.Linear(feat, c_dim) if c_dim else None
        self.embed = sn(nn.Linear(c_dim, feat, bias=False)) if (projection and c_dim) else None

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        assert x.dim() == 4 and x.shape[1:] == (3, self.resolution, self.resolution), \
            f"x must be [N, 3, {self.resolution}, {self.resolution}], got {tuple(x.shape)}"
        h = self.features(x).flatten(1)
        logit = self.head_adv(h).squeeze(1)
        if self.embed is not None and c is not None:
            logit = logit + (self.embed(c) * h).sum(1)
        c_logits = self.head_cls(h) if self.head_cls is not None else h.new_zeros(h.shape[0], 0)
        return logit, c_logits


class EditGenerator(nn.Module):
    """G2(image [N,3,R,R], sketch [N,3,R,R], mask [N,1,R,R]) -> image [N,3,R,R] in (-1, 1).

    Encoder (strided convs) - residual blocks - decoder (PixelShuffle), with skip
    connections so unedited detail can pass straight through. With `residual`, the
    network predicts a change over the input image (in pre-tanh space).
    """

    def __init__(self, resolution: int = 64, ch: int = 32, n_down: int = 2, n_res: int = 4,
                 ch_max: int = 256, residual: bool = True):
        super().__init__()
        self.resolution, self.residual = resolution, residual
        self.inp = nn.Sequential(nn.Conv2d(7, ch, 3, 1, 1), nn.ReLU(inplace=True))
        downs, chans, c = [], [ch], ch
        for _ in range(n_down):
            c2 = min(ch_max, c * 2)
            downs.append(nn.Sequential(nn.Conv2d(c, c2, 4, 2, 1), nn.BatchNorm2d(c2), nn.ReLU(inplace=True)))
            chans.append(c2)
            c = c2
        self.down = nn.ModuleList(downs)
        self.res = nn.Sequential(*[GResBlock(c) for _ in range(n_res)])
        ups = []
        for i in range(n_down):
            c_skip = chans[-(i + 2)]
            ups.append(Upsample(c, c_skip))
            c = 2 * c_skip  # concatenated with the skip
            ups.append(nn.Sequential(nn.Conv2d(c, c_skip, 3, 1, 1), nn.ReLU(inplace=True)))
            c = c_skip
        self.up = nn.ModuleList(ups)
        self.out = nn.Conv2d(c, 3, 3, 1, 1)
        nn.init.zeros_(self.out.weight)  # start as the identity edit when residual
        nn.init.zeros_(self.out.bias)

    def forward(self, image: torch.Tensor, sketch: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        r = self.resolution
        assert image.shape[1:] == (3, r, r) and sketch.shape[1:] == (3, r, r) and mask.shape[1:] == (1, r, r), \
            f"G2 expects image, sketch [N,3,{r},{r}] and mask [N,1,{r},{r}]"
        h = self.inp(torch.cat([image, sketch * mask, mask], 1))
        skips = [h]
        for d in self.down:
            h = d(h)
            skips.append(h)
        h = h + self.res(h)
        for i in range(0, len(self.up), 2):
            h = self.up[i](h)
            h = self.up[i + 1](torch.cat([h, skips[-(i // 2 + 2)]], 1))
        delta = self.out(h)
        if self.residual:
            # atanh of the input keeps the identity exact when delta = 0
            return torch.tanh(torch.atanh(image.clamp(-0.999, 0.999)) + delta)
        return torch.tanh(delta)


class EditUNet(nn.Module):
    """G2(image [N,3,R,R], sketch [N,3,R,R], mask [N,1,R,R]) -> image [N,3,R,R] in (-1, 1).

    A U-Net shaped for strokes (docs/method.md, "Stage two"): the mask is its own input
    channel; two 3x3 convolutions at full resolution come before any striding (a stride-2
    first layer would erase 1-px lines); strided convolutions down to R/2^len(chans[1:]),
    residual blocks there (a receptive field over the whole image, so a stroke can move a
    whole region), nearest-neighbour upsampling + 3x3 convolution with skips on the way up
    (no checkerboard), and the strokes reinjected beside the last full-resolution features.
    With `residual`, the output is a per-pixel blend of the input and a new colour,
    `I2 = I1 + g * (tanh(rgb) - I1)` with a gate `g = sigmoid(.)`: a stroke can turn a white
    region black without the huge pre-tanh offsets (and rainbow artefacts) an additive residual
    needs near +-1, and the gate starts nearly shut (g ~ 0.007), so an untrained G2 barely edits.
    With `keep` > 0 (CIE76 ΔE), `keep_unchanged` gives back the input's own pixels wherever the
    output moved them by less than about `keep`: the faint tint G2 lays over skin and background
    goes, the region it recolours stays (docs/comparison.md, "Edits that do what the strokes ask").
    """

    def __init__(self, resolution: int = 64, chans: tuple = (32, 64, 128, 256), n_res: int = 2,
                 residual: bool = True, keep: float = 0.0):
        super().__init__()
        if not keep >= 0:
            raise UsageError("keep must be a non-negative ΔE")
        self.resolution, self.residual, self.keep = resolution, residual, float(keep)
        c0 = chans[0]
        self.stem = nn.Sequential(nn.Conv2d(7, c0, 3, 1, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(c0, c0, 3, 1, 1, bias=False), nn.BatchNorm2d(c0), nn.ReLU(inplace=True))
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True))
            for a, b in zip(chans[:-1], chans[1:]))
        self.res = nn.Sequential(*[GResBlock(chans[-1]) for _ in range(n_res)])
        self.up = nn.ModuleList(  # after nearest x2 and the skip's concatenation
            nn.Sequential(nn.Conv2d(a + b, b, 3, 1, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True))
            for a, b in zip(chans[:0:-1], chans[-2::-1]))
        self.head = nn.Sequential(nn.Conv2d(c0 + 4, c0, 3, 1, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(c0, 4 if residual else 3, 3, 1, 1))
        nn.init.zeros_(self.out.weight)  # start (nearly) as the identity edit when residual
        nn.init.zeros_(self.out.bias)
        if residual:
            nn.init.constant_(self.out.bias[3:], -5.0)  # the gate, sigmoid(-5) ~ 0.007

    @property
    def out(self) -> nn.Conv2d:
        """The output convolution (as `EditGenerator.out`)."""
        return self.head[-1]

    def forward(self, image: torch.Tensor, sketch: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        r = self.resolution
        assert image.shape[1:] == (3, r, r) and sketch.shape[1:] == (3, r, r) and mask.shape[1:] == (1, r, r), \
            f"G2 expects image, sketch [N,3,{r},{r}] and mask [N,1,{r},{r}]"
        strokes = torch.cat([sketch * mask, mask], 1)
        h = self.stem(torch.cat([image, strokes], 1))
        skips = [h]
        for d in self.down:
            h = d(h)
            skips.append(h)
        h = self.res(h)
        for up, skip in zip(self.up, skips[-2::-1]):
            h = up(torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), skip], 1))
        out = self.head(torch.cat([h, strokes], 1))
        if self.residual:
            gate = torch.sigmoid(out[:, 3:])
            out = image + gate * (torch.tanh(out[:, :3]) - image)
        else:
            out = torch.tanh(out)
        return keep_unchanged(image, out, mask, self.keep) if self.keep > 0 else out


def keep_unchanged(image: torch.Tensor, out: torch.Tensor, mask: torch.Tensor, keep: float) -> torch.Tensor:
    """`image` [N, 3, R, R] where `out` moved a pixel by less than keep / 2 (CIE76 ΔE), `out` where
    by more than 3 keep / 2, a linear ramp between, the weight blurred by ~1 px; the stroke pixels
    (mask [N, 1, R, R] > 0) always take `out` (what was asked there) -> [N, 3, R, R]."""
    de = ((lab(out) - lab(image)) ** 2).sum(1, keepdim=True).add(1e-6).sqrt()  # eps: a finite gradient at 0
    w = blur(((de - 0.5 * keep) / keep).clamp(0, 1))
    w = torch.maximum(w, (mask > 0).to(w.dtype))
    return image + w * (out - image)


class PatchDiscriminator(nn.Module):
    """D2(image [N,3,R,R], sketch, mask) -> (patch logits [N,1,R/8,R/8], features per layer).

    A conditional PatchGAN with spectral norm: it sees the strokes beside the image, and its
    real examples always agree with their strokes, so an edit that ignores them is fake.
    The features feed the feature-matching loss.
    """

    def __init__(self, resolution: int = 64, chans: tuple = (32, 64, 128)):
        super().__init__()
        sn = nn.utils.spectral_norm
        layers, c = [], 7
        for c2 in chans:
            layers.append(nn.Sequential(sn(nn.Conv2d(c, c2, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)))
            c = c2
        self.body = nn.ModuleList(layers)
        self.out = sn(nn.Conv2d(c, 1, 3, 1, 1))

    def forward(self, image: torch.Tensor, sketch: torch.Tensor, mask: torch.Tensor):
        h = torch.cat([image, sketch * mask, mask], 1)
        feats = []
        for layer in self.body:
            h = layer(h)
            feats.append(h)
        return self.out(h), feats


class Encoder(nn.Module):
    """E(image [N, 3, R, R]) -> (z_t [N, z_dim], c_t [N, c_dim]) or, with `detail` = (ch, S),
    (z_t, c_t, r [N, ch, S, S]): a photo's starting point for the latent editor, in its own
    parameterisation (z = tanh(z_t), c = the group softmax of c_t, docs/method.md §3), and the
    detail `DetailG1` adds to G1's S x S feature map so that the photo is drawn, not a lookalike.

    A 3x3 conv, then one 4x4 stride-2 conv per halving down to 4x4 (`chans[i]` channels after
    halving i), BatchNorm and LeakyReLU, a dense layer of `hidden` units and the two heads. The
    detail head reads the S x S features and the upsampled S/2 ones (three 3x3 convs of
    `detail_ch`); its last conv starts at zero, so r starts as "no detail".
    """

    def __init__(self, z_dim: int = 128, c_dim: int = 25, resolution: int = 64,
                 chans: tuple = (32, 64, 128, 256), hidden: int = 512, detail: tuple = (), detail_ch: int = 128):
        super().__init__()
        stages = int(round(math.log2(resolution / 4)))
        if len(chans) != stages:
            raise UsageError(f"resolution {resolution} needs {stages} channel counts, got {len(chans)}")
        self.z_dim, self.c_dim, self.resolution = z_dim, c_dim, resolution
        self.detail = tuple(detail)
        layers, c_in = [nn.Conv2d(3, chans[0], 3, 1, 1), nn.LeakyReLU(0.2)], chans[0]
        for c_out in chans:
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(c_in * 16, hidden), nn.LeakyReLU(0.2))
        self.head_z = nn.Linear(hidden, z_dim)
        self.head_c = nn.Linear(hidden, c_dim) if c_dim else None
        if self.detail:
            ch, size = self.detail
            k = int(round(math.log2(resolution / size)))  # halvings down to S
            if size * 2 ** k != resolution or not 1 <= k < stages:
                raise UsageError(f"detail size {size} must be the resolution {resolution} halved 1..{stages - 1} times")
            self._taps = (2 + 3 * k, 2 + 3 * (k + 1))  # features' outputs at S and S/2
            self.detail_head = nn.Sequential(
                nn.Conv2d(chans[k - 1] + chans[k], detail_ch, 3, 1, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(detail_ch, detail_ch, 3, 1, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(detail_ch, ch, 3, 1, 1))
            nn.init.zeros_(self.detail_head[-1].weight)
            nn.init.zeros_(self.detail_head[-1].bias)

    def forward(self, x: torch.Tensor):
        assert x.dim() == 4 and x.shape[1:] == (3, self.resolution, self.resolution), \
            f"x must be [N, 3, {self.resolution}, {self.resolution}], got {tuple(x.shape)}"
        taps, h = {}, x
        for i, layer in enumerate(self.features, 1):
            h = layer(h)
            taps[i] = h
        h = self.fc(h.flatten(1))
        c_t = self.head_c(h) if self.head_c is not None else h[:, :0]
        if not self.detail:
            return self.head_z(h), c_t
        at_s, below = taps[self._taps[0]], taps[self._taps[1]]
        r = self.detail_head(torch.cat([at_s, F.interpolate(below, scale_factor=2.0, mode="nearest")], 1))
        return self.head_z(h), c_t, r


ARCHS = {"resnet_g": Generator, "resnet_d": Discriminator, "up_g": UpGenerator, "sn_d": SNDiscriminator,
         "edit_g2": EditGenerator, "edit_unet": EditUNet, "patch_d": PatchDiscriminator, "conv_e": Encoder}


def build(spec: dict) -> nn.Module:
    """{"name": "resnet_g", "kwargs": {...}} -> module (weights uninitialised)."""
    name = spec.get("name")
    if name not in ARCHS:
        raise UsageError(f"unknown architecture {name!r}; known: {', '.join(ARCHS)}")
    return ARCHS[name](**spec.get("kwargs", {}))


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
