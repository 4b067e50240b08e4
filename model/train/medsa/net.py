"""Med-SA 2.0 ("medsa-conv"): a Medical SAM Adapter built to learn from scratch.

Why a new design (issue 10, calibration.md): a small ViT SAM trained with no teacher did not generalise; what
does train from scratch are convolutional networks that receive the prompts as dense maps aligned with the
image (RITM, ScribblePrompt, nnInteractive). So:

- Image encoder (once per slice): convolutional stages at strides 2/4/8, attention blocks only at stride 16
  (as TinyViT/MobileSAM), where the Med-SA adapters live: Space_Adapter after attention, MLP_Adapter parallel
  to the MLP (x s), and SD-Trans's depth branch (the block's attention across the D slices of a chunk, a
  learned depth position, Depth_Adapter). An FPN brings stride 16/8 back to stride 4. The embedding is
  [1, emb_dim + 4*fine, S/4, S/4]: emb_dim semantic channels at stride 4 plus `fine` stride-2 channels packed
  space-to-depth, so SAM's decoder contract (one `image_embeddings` tensor) is kept.
- Prompts early and dense: clicks as soft discs (radius `click_radius` px) and wide Gaussians, the box as a
  filled map, the previous logits (mask_input) and has_mask_input, rendered inside the decoder graph from SAM's
  inputs and fused with the stride-4 features at the start of the decoder. SAM's sparse prompt tokens (random
  Fourier PE + label embeddings) give the prompt embedding that conditions HyP-Adpt.
- Mask decoder: stride 8 context stage of dilated residual convs with a global-context term, HyP-Adpt (paper
  eqs. 1-2: prompt embedding -> generated h x h weights on down-projected features, ReLU(LayerNorm(e W)),
  3 layers) between them; back up to stride 4, then to stride 2 guided by the packed fine features; 3 mask
  candidates + IoU head; low-res logits at the full canvas size S (bilinear x2 from stride 2).

Every size derives from the tensors, so the same weights run at 128 px (training) and 256 px (the app).
Our own code, written from the papers named above.
"""
import math
from dataclasses import asdict, dataclass
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import Adapter, MLPBlock, PositionEmbeddingRandom, apply_hyper, hyper_layers

ARCH = "conv2"


@dataclass
class Config:
    arch: str = ARCH
    img_size: int = 256
    widths: Tuple[int, ...] = (24, 48, 96, 160)  # strides 2, 4, 8, 16
    blocks: Tuple[int, ...] = (1, 2, 2)  # residual blocks at strides 2, 4, 8
    attn_depth: int = 2
    attn_heads: int = 4
    mlp_ratio: float = 3.0
    emb_dim: int = 64  # semantic channels at stride 4
    fine: int = 8  # stride-2 channels, packed into 4*fine embedding channels
    adapters: bool = True
    adapter_ratio: float = 0.25
    mlp_adapter_scale: float = 0.05
    depth_max: int = 8
    dec_dim: int = 40  # decoder width (stride 4)
    dilations: Tuple[int, ...] = (1, 2, 4, 8, 16, 1)
    prompt_dim: int = 64
    hyp_hidden: int = 16
    hyp_mlp: int = 64
    hyp_layers: int = 3
    num_masks: int = 3
    output_tokens: Tuple[int, ...] = (0, 1, 2)
    click_radius: float = 5.0  # px of the model canvas (RITM / nnInteractive: discs of radius 3-5 px)
    click_sigma: float = 24.0  # wide Gaussian of each click (context)
    head_dim: int = 16  # channels at stride 2
    # Prompt-image similarity: the mean of projected stride-4 features under the positive clicks / inside the
    # box (and under the negative clicks) is a prototype; its cosine similarity with every position is fed to
    # the decoder. A multiplicative cue that additive fusion of prompt maps and features learns only slowly
    # (a from-scratch run without it stayed at prompt-shaped discs for 1 000 steps; REPORT.md).
    proto_dim: int = 32
    # A mask-aware IoU head: each candidate's score from the decoder features pooled inside and outside that
    # candidate and its area, instead of from global features alone (which cannot tell the candidates apart and
    # learnt to favour the largest; REPORT.md "which candidate a click gets"). Off in checkpoints before it.
    iou_masked: bool = False

    @property
    def grid(self):
        return self.img_size // 4

    @property
    def low_res(self):
        return self.img_size

    @property
    def emb_channels(self):
        return self.emb_dim + 4 * self.fine

    def to_dict(self):
        d = asdict(self)
        for k in ("widths", "blocks", "dilations", "output_tokens"):
            d[k] = list(d[k])
        return d

    @staticmethod
    def from_dict(d):
        d = dict(d)
        for k in ("widths", "blocks", "dilations", "output_tokens"):
            if k in d:
                d[k] = tuple(d[k])
        return Config(**d)


def conv_bn(ci, co, k=3, s=1, d=1, act=True):
    layers = [nn.Conv2d(ci, co, k, s, padding=d * (k // 2), dilation=d, bias=False), nn.BatchNorm2d(co)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """conv-BN-GELU-conv-BN + skip, GELU (the second BN starts at zero: the block starts as identity)."""

    def __init__(self, c, d=1):
        super().__init__()
        self.a = conv_bn(c, c, 3, 1, d)
        self.b = conv_bn(c, c, 3, 1, d, act=False)
        nn.init.zeros_(self.b[1].weight)

    def forward(self, x):
        return F.relu(x + self.b(self.a(x)))


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):  # [B, N, C]
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.heads))
        o = a.softmax(-1) @ v
        return self.proj(o.transpose(1, 2).reshape(B, N, C))


class Block(nn.Module):
    """Transformer block at stride 16 with Med-SA's adapters and SD-Trans's depth branch (see model.Block)."""

    def __init__(self, cfg: Config, dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, cfg.attn_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, int(dim * cfg.mlp_ratio))
        self.adapters = cfg.adapters
        self.s = cfg.mlp_adapter_scale
        if cfg.adapters:
            self.Space_Adapter = Adapter(dim, cfg.adapter_ratio, skip=True)
            self.MLP_Adapter = Adapter(dim, cfg.adapter_ratio, skip=False)
            self.Depth_Adapter = Adapter(dim, cfg.adapter_ratio, skip=False)
            self.depth_pos_embed = nn.Parameter(torch.randn(cfg.depth_max, dim) * 0.02)

    def forward(self, x, depth: bool = False):  # x [B, N, C]
        shortcut = x
        x = self.norm1(x.float())
        xd = None
        if depth and self.adapters and x.shape[0] > 1:
            D, N, C = x.shape
            t = x.transpose(0, 1) + self.depth_pos_embed[:D].view(1, D, C)  # [N, D, C]
            xd = self.Depth_Adapter(self.attn(t)).transpose(0, 1)
        x = self.attn(x)
        if self.adapters:
            x = self.Space_Adapter(x)
        if xd is not None:
            x = x + xd
        x = shortcut + x
        n = self.norm2(x.float())
        if self.adapters:
            return x + self.mlp(n) + self.s * self.MLP_Adapter(n)
        return x + self.mlp(n)


def space_to_depth2(x):
    B, C, H, W = x.shape
    return x.reshape(B, C, H // 2, 2, W // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(B, C * 4, H // 2, W // 2)


def depth_to_space2(x):
    B, C4, h, w = x.shape
    C = C4 // 4
    return x.reshape(B, C, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(B, C, h * 2, w * 2)


def up2(x):
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class ImageEncoder(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        w0, w1, w2, w3 = cfg.widths
        e = cfg.emb_dim
        self.stem = nn.Sequential(conv_bn(3, w0, 3, 2), *[ResBlock(w0) for _ in range(cfg.blocks[0])])
        self.stage4 = nn.Sequential(conv_bn(w0, w1, 3, 2), *[ResBlock(w1) for _ in range(cfg.blocks[1])])
        self.stage8 = nn.Sequential(conv_bn(w1, w2, 3, 2), *[ResBlock(w2) for _ in range(cfg.blocks[2])])
        self.down16 = conv_bn(w2, w3, 3, 2)
        self.pos = nn.Conv2d(w3, w3, 3, 1, 1, groups=w3)  # conditional position (depthwise), size-free
        self.blocks = nn.ModuleList([Block(cfg, w3) for _ in range(cfg.attn_depth)])
        self.norm16 = nn.LayerNorm(w3, eps=1e-6)
        self.lat16 = nn.Conv2d(w3, e, 1)
        self.lat8 = nn.Conv2d(w2, e, 1)
        self.lat4 = nn.Conv2d(w1, e, 1)
        self.smooth8 = conv_bn(e, e, 3)
        self.smooth4 = conv_bn(e, e, 3)
        self.fine = nn.Conv2d(w0, cfg.fine, 1)

    def forward(self, x, depth: bool = False):
        f2 = self.stem(x)
        f4 = self.stage4(f2)
        f8 = self.stage8(f4)
        t = self.down16(f8)
        t = t + self.pos(t)
        B, C, h, w = t.shape
        s = t.flatten(2).transpose(1, 2)
        for b in self.blocks:
            s = b(s, depth)
        t = self.norm16(s.float()).transpose(1, 2).reshape(B, C, h, w)
        p = self.lat16(t)
        p = self.smooth8(self.lat8(f8) + up2(p))
        p = self.smooth4(self.lat4(f4) + up2(p))
        return torch.cat([p, space_to_depth2(self.fine(f2))], 1)


class HyPAdapter(nn.Module):
    """HyP-Adpt (paper eqs. 1-2) on feature maps: e = GELU(D_fc1(x)) per pixel; for each layer an MLP maps the
    prompt embedding to W in R^{h x h}; e <- ReLU(LayerNorm(e W)); D_fc2 back, with skip. Each generated W
    starts at the identity and D_fc2 at zero, so the block starts as identity."""

    def __init__(self, dim, prompt_dim, hidden=16, mlp_hidden=64, layers=3):
        super().__init__()
        self.h = hidden
        self.D_fc1 = nn.Conv2d(dim, hidden, 1)
        self.D_fc2 = nn.Conv2d(hidden, dim, 1)
        nn.init.zeros_(self.D_fc2.weight)
        nn.init.zeros_(self.D_fc2.bias)
        self.hyper, self.norms = hyper_layers(prompt_dim, hidden, mlp_hidden, layers)

    def forward(self, x, e_prompt):
        B, _, H, W = x.shape
        e = F.relu(self.D_fc1(x)).flatten(2).transpose(1, 2)  # [B, HW, h]
        e = apply_hyper(e, e_prompt, self.hyper, self.norms, self.h)
        return x + self.D_fc2(e.transpose(1, 2).reshape(B, self.h, H, W))


class PromptEncoder(nn.Module):
    """SAM's sparse point embedding (for HyP-Adpt's prompt embedding) + dense prompt maps at stride 4."""

    N_MAPS = 7

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        d = cfg.prompt_dim
        self.pe_layer = PositionEmbeddingRandom(d // 2)
        self.point_embeddings = nn.ModuleList([nn.Embedding(1, d) for _ in range(4)])
        self.not_a_point_embed = nn.Embedding(1, d)
        self.no_mask_embed = nn.Embedding(1, d)
        self.mask_embed = nn.Embedding(1, d)

    def embed(self, coords, labels, has_mask_input, S: float):
        """Prompt embedding [B, d]: mean of SAM's point tokens over real points (+ a mask-input token)."""
        c = (coords + 0.5) / S
        pe = self.pe_layer._pe_encoding(c)
        lab = labels.unsqueeze(-1)
        pe = pe * (lab != -1)
        for i in range(4):
            pe = pe + self.point_embeddings[i].weight * (lab == i)
        real = (labels != -1).float().unsqueeze(-1)
        hm = has_mask_input.reshape(-1, 1)
        tok = hm * self.mask_embed.weight + (1 - hm) * self.no_mask_embed.weight
        return ((pe * real).sum(1) + tok) / (real.sum(1) + 1.0)

    def maps(self, coords, labels, mask_input, has_mask_input, G: int, S: float):
        """[B, 7, G, G]: + disc, - disc, + Gaussian, - Gaussian, box, previous logits (scaled), has-mask."""
        cfg = self.cfg
        f = S / G
        cell = (torch.arange(G, dtype=torch.float32, device=coords.device) + 0.5) * f
        gx = cell.view(1, 1, 1, G)
        gy = cell.view(1, 1, G, 1)
        px = coords[..., 0].unsqueeze(-1).unsqueeze(-1)
        py = coords[..., 1].unsqueeze(-1).unsqueeze(-1)
        d2 = (gx - px) ** 2 + (gy - py) ** 2  # [B, N, G, G]
        lab = labels.unsqueeze(-1).unsqueeze(-1)
        pos = (lab == 1).float()
        neg = (lab == 0).float()
        disc = torch.sigmoid((cfg.click_radius - torch.sqrt(d2 + 1e-6)) / (0.5 * f))
        gau = torch.exp(d2 * (-0.5 / (cfg.click_sigma ** 2)))
        tl = (labels == 2).float().unsqueeze(-1)
        br = (labels == 3).float().unsqueeze(-1)
        has_box = (labels == 2).float().sum(dim=1).clamp(max=1.0).view(-1, 1, 1)
        p0 = (coords * tl).sum(dim=1)
        p1 = (coords * br).sum(dim=1)
        t = 0.5 * f
        bx = torch.sigmoid((gx[0] - p0[:, 0].view(-1, 1, 1)) / t) * torch.sigmoid((p1[:, 0].view(-1, 1, 1) - gx[0]) / t)
        by = torch.sigmoid((gy[0] - p0[:, 1].view(-1, 1, 1)) / t) * torch.sigmoid((p1[:, 1].view(-1, 1, 1) - gy[0]) / t)
        box = bx * by * has_box
        hm = has_mask_input.reshape(-1, 1, 1, 1)
        k = int(mask_input.shape[-1]) // int(G)
        prev = F.avg_pool2d(mask_input, k, k) if k > 1 else mask_input
        prev = torch.tanh(prev * 0.25) * hm
        return torch.cat([(disc * pos).amax(1, keepdim=True), (disc * neg).amax(1, keepdim=True),
                          (gau * pos).amax(1, keepdim=True), (gau * neg).amax(1, keepdim=True),
                          box[:, None], prev, hm.expand(-1, 1, G, G)], 1)


class MaskDecoder(nn.Module):
    """All reasoning at stride 4 (64 x 64 at 256 px): prompt maps, features and similarity fused by a 1x1
    conv, then residual dilated 3x3 convs (receptive field about the whole canvas) with a global-context term
    and HyP-Adpt, then the stride-2 head with the fine channels. (A first layout reasoned at stride 8 and
    stayed at prompt-shaped discs for 1 000 steps; REPORT.md.)"""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        e, dd, hd = cfg.emb_dim, cfg.dec_dim, cfg.head_dim
        n = PromptEncoder.N_MAPS
        self.map_conv = nn.Sequential(nn.Conv2d(n, 16, 3, 1, 1), nn.ReLU(inplace=True))
        np_ = 2 if cfg.proto_dim else 0
        if cfg.proto_dim:
            self.proto_proj = nn.Conv2d(e, cfg.proto_dim, 1)
        self.fuse = conv_bn(e + 16 + n + np_, dd, 1)
        self.ctx = nn.ModuleList([conv_bn(dd, dd, 3, 1, d) for d in cfg.dilations])
        self.glob = nn.Linear(dd, dd)
        nn.init.zeros_(self.glob.weight)
        nn.init.zeros_(self.glob.bias)
        self.hyp_at = (1, len(cfg.dilations) - 2)
        self.hyp = nn.ModuleList([HyPAdapter(dd, cfg.prompt_dim, cfg.hyp_hidden, cfg.hyp_mlp, cfg.hyp_layers)
                                  for _ in range(2)])
        self.to_head = conv_bn(dd, hd, 1)
        self.head = nn.Sequential(conv_bn(hd + cfg.fine, hd, 3), nn.Conv2d(hd, cfg.num_masks, 1))
        self.iou_head = nn.Sequential(nn.Linear(2 * dd + cfg.prompt_dim, 128), nn.GELU(), nn.Linear(128, cfg.num_masks))
        if cfg.iou_masked:
            self.iou_mask_head = nn.Sequential(nn.Linear(3 * dd + 3 + cfg.prompt_dim, 96), nn.GELU(),
                                               nn.Linear(96, 96), nn.GELU(), nn.Linear(96, 1))

    def forward(self, emb, maps, e_prompt):
        cfg = self.cfg
        sem, fine = emb[:, :cfg.emb_dim], emb[:, cfg.emb_dim:]
        parts = [sem, self.map_conv(maps), maps]
        if cfg.proto_dim:
            parts.append(self.similarity(sem, maps))
        x = self.fuse(torch.cat(parts, 1))  # stride 4
        for i, c in enumerate(self.ctx):
            x = x + c(x)
            if i == 0:
                x = x + self.glob(x.mean((2, 3))).unsqueeze(-1).unsqueeze(-1)
            if i in self.hyp_at:
                x = self.hyp[self.hyp_at.index(i)](x, e_prompt)
        pooled = torch.cat([x.mean((2, 3)), x.amax((2, 3)), e_prompt], 1)
        iou = self.iou_head(pooled)
        h = up2(self.to_head(x))  # stride 2
        m = self.head(torch.cat([h, depth_to_space2(fine)], 1))
        if cfg.iou_masked:
            iou = self.masked_iou(x, m, e_prompt)
        return up2(m), iou  # full canvas

    def masked_iou(self, x, m, e_prompt):
        """[B, M] scores: per candidate, the features' mean inside and outside its soft mask (at stride 4), their
        difference, its area (fraction and log) and its stability (the share of the soft mask that is firm)."""
        B, C = x.shape[:2]
        M = m.shape[1]
        p = torch.sigmoid(F.avg_pool2d(m, 2))  # [B, M, G, G], stride 4
        xf = x.flatten(2)  # [B, C, N]
        pf = p.flatten(2)  # [B, M, N]
        area = pf.sum(2, keepdim=True)  # [B, M, 1]
        n = float(pf.shape[2])
        inside = torch.bmm(pf, xf.transpose(1, 2)) / (area + 1.0)  # [B, M, C]
        outside = torch.bmm(1 - pf, xf.transpose(1, 2)) / (n - area + 1.0)
        frac = area / n
        firm = (torch.sigmoid(F.avg_pool2d(m, 2) - 1.0).flatten(2).sum(2, keepdim=True) + 1.0) / \
            (torch.sigmoid(F.avg_pool2d(m, 2) + 1.0).flatten(2).sum(2, keepdim=True) + 1.0)
        feats = torch.cat([inside, outside, inside - outside, frac, torch.log(frac + 1e-3), firm,
                           e_prompt[:, None].expand(B, M, e_prompt.shape[1])], 2)
        return self.iou_mask_head(feats)[..., 0]

    def similarity(self, sem, maps):
        """[B,2,G,G]: cosine similarity of each position's projected features with the positive prototype
        (features under + discs, or inside the box) and the negative one (under - discs); 0 without them."""
        f = self.proto_proj(sem)
        f = f / (f.norm(dim=1, keepdim=True) + 1e-6)
        out = []
        for w in (torch.maximum(maps[:, 0:1], maps[:, 4:5]), maps[:, 1:2]):
            mass = w.sum((2, 3))  # [B,1]
            p = (f * w).sum((2, 3)) / (mass + 1e-6)  # [B,C]
            p = p / (p.norm(dim=1, keepdim=True) + 1e-6)
            sim = (f * p[:, :, None, None]).sum(1, keepdim=True)
            out.append(sim * (mass > 1e-3).float()[:, :, None, None])
        return torch.cat(out, 1)


class MedSA2(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.image_encoder = ImageEncoder(cfg)
        self.prompt_encoder = PromptEncoder(cfg)
        self.mask_decoder = MaskDecoder(cfg)

    def decode(self, emb, coords, labels, mask_input, has_mask_input):
        """SAM's decoder inputs -> (low-res logits [B, M, 4G, 4G], predicted IoU [B, M]); the canvas size is
        4x the embedding grid."""
        G = int(emb.shape[-1])
        S = float(4 * G)
        e = self.prompt_encoder.embed(coords, labels, has_mask_input, S)
        maps = self.prompt_encoder.maps(coords, labels, mask_input, has_mask_input, G, S)
        masks, iou = self.mask_decoder(emb, maps, e)
        sel = list(self.cfg.output_tokens)
        if sel != list(range(masks.shape[1])):
            masks, iou = masks[:, sel], iou[:, sel]
        return masks, iou


def adapter_param(name):
    """Med-SA's specialisation parameters: encoder adapters, depth positions, HyP-Adpt."""
    return any(k in name for k in ("_Adapter.", "depth_pos_embed", "mask_decoder.hyp."))


def set_phase(model, phase, extra_trainable=(), frozen=()):
    """'base': everything but the adapters; 'adapt': base frozen (BatchNorm statistics too), adapters and
    HyP-Adpt (+ extra prefixes) trained; 'joint': everything; 'iou': only the mask-aware IoU head; 'distill':
    only the image encoder (train2.py's distillation from a teacher, no decoder loss).
    frozen: parameter-name prefixes kept frozen whatever the phase (e.g. image_encoder. for a decoder-only run)."""
    for n, p in model.named_parameters():
        if frozen and n.startswith(tuple(frozen)):
            p.requires_grad = False
        elif phase == "iou":
            p.requires_grad = "iou_mask_head" in n
        elif phase == "distill":
            p.requires_grad = n.startswith("image_encoder.")
        elif phase == "base":
            p.requires_grad = not adapter_param(n)
        elif phase == "adapt":
            p.requires_grad = adapter_param(n) or any(n.startswith(e) for e in extra_trainable)
        else:
            p.requires_grad = True


def freeze_bn(model, extra_trainable=()):
    """Frozen base in phase 'adapt': BatchNorm layers keep their running statistics."""
    for n, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d) and not any(n.startswith(e) for e in extra_trainable):
            m.eval()
