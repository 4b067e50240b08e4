"""Med-SA in PyTorch: SAM-style ViT encoder with Space/MLP/Depth adapters and SD-Trans, SAM prompt encoder
(plus rendered click/box maps on the dense path), SAM mask decoder with HyP-Adpt and decoder adapters.

Our own code, written from the Med-SA paper (eqs. 1-2 for HyP-Adpt) and SAM's published architecture.
Module and parameter names follow SAM / the official Med-SA code where those exist
(image_encoder.blocks.{i}.attn.qkv, ...MLP_Adapter.D_fc1, prompt_encoder.point_embeddings.{k}, mask_decoder.
transformer.layers.{i}.cross_attn_token_to_image.q_proj, ...), so official checkpoints load by name.
"""
import math
from dataclasses import dataclass, field, asdict
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    img_size: int = 256
    patch: int = 8
    enc_dim: int = 128
    enc_depth: int = 4
    enc_heads: int = 4
    mlp_ratio: float = 4.0
    window: int = 8
    global_blocks: Tuple[int, ...] = (1, 3)
    use_rel_pos: bool = False
    use_abs_pos: bool = True
    pos_embed_grid: int = 0  # 0 = token grid; SAM stores 64 (1024/16) and interpolates
    embed_dim: int = 128  # neck output = prompt/decoder dim
    adapters: bool = True
    adapter_ratio: float = 0.25
    mlp_adapter_scale: float = 0.05
    depth_max: int = 8
    dec_depth: int = 2
    dec_heads: int = 4
    dec_mlp_dim: int = 512
    num_mask_tokens: int = 3  # SAM: 4 (token 0 single-mask + 3 multimask)
    output_tokens: Tuple[int, ...] = (0, 1, 2)  # which mask tokens the ONNX decoder returns
    iou_head_hidden: int = 128
    mask_in_chans: int = 16
    dec_adapters: bool = True  # HyP-Adpt + decoder MLP/cross adapters
    hyp_hidden: int = 16
    hyp_mlp: int = 64
    hyp_layers: int = 3
    click_maps: bool = True  # render click/box maps onto the dense prompt path
    decoder_variant: str = "sam"  # "sam" or "efficientsam" (Med-SA since 2024-01)
    # High-resolution detail path (0 = off, as SAM): a small conv stem computes `hires` channels at the low-res
    # mask grid (img/2 with stride 2 -> 4x the token grid); they travel inside image_embeddings as extra
    # channels (space-to-depth by 4), so the SAM decoder contract is unchanged, and the decoder fuses them with
    # its upscaled, prompt-conditioned features before the hypernetwork product. Without it a from-scratch
    # model's masks are prompt-shaped blobs that ignore image edges (diagnosed on the real MR/CT sets).
    hires: int = 0
    # "vit" (ours and the official SAM/Med-SA layouts) or "tinyvit" (LiteMedSAM's encoder, medsa/tinyvit.py:
    # a pretrained medical base; 64x64 tokens at 256 px, so patch = 4)
    encoder: str = "vit"

    @property
    def grid(self):
        return self.img_size // self.patch

    @property
    def low_res(self):
        return self.grid * 4

    @property
    def emb_channels(self):
        """Channels of image_embeddings: embed_dim semantic + hires * 16 packed detail channels."""
        return self.embed_dim + self.hires * 16

    def to_dict(self):
        d = asdict(self)
        d["global_blocks"] = list(self.global_blocks)
        d["output_tokens"] = list(self.output_tokens)
        return d

    @staticmethod
    def from_dict(d):
        d = dict(d)
        d["global_blocks"] = tuple(d["global_blocks"])
        d["output_tokens"] = tuple(d["output_tokens"])
        return Config(**d)


class LayerNorm2d(nn.Module):
    def __init__(self, c, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class MLPBlock(nn.Module):
    def __init__(self, dim, hidden, act=nn.GELU):
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, dim)
        self.act = act()

    def forward(self, x):
        return self.lin2(self.act(self.lin1(x)))


class Adapter(nn.Module):
    """Bottleneck D -> D*ratio -> D with GELU (as the official code); optional skip. The up-projection starts
    at zero so adding adapters to a trained base leaves it unchanged at step 0."""

    def __init__(self, dim, ratio=0.25, skip=True):
        super().__init__()
        h = max(1, int(dim * ratio))
        self.skip = skip
        self.act = nn.GELU()
        self.D_fc1 = nn.Linear(dim, h)
        self.D_fc2 = nn.Linear(h, dim)
        nn.init.zeros_(self.D_fc2.weight)
        nn.init.zeros_(self.D_fc2.bias)

    def forward(self, x):
        h = self.D_fc2(self.act(self.D_fc1(x)))
        return x + h if self.skip else h


# ---------------------------------------------------------------------------------------------- encoder

def get_rel_pos(q_size, k_size, rel_pos):
    max_rel = int(2 * max(q_size, k_size) - 1)
    if rel_pos.shape[0] != max_rel:
        r = F.interpolate(rel_pos.reshape(1, rel_pos.shape[0], -1).permute(0, 2, 1), size=max_rel, mode="linear")
        rel_pos = r.reshape(-1, max_rel).permute(1, 0)
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * max(q_size / k_size, 1.0)
    rel = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return rel_pos[rel.long()]


class EncAttention(nn.Module):
    def __init__(self, dim, heads, use_rel_pos=False, input_size=None):
        super().__init__()
        self.num_heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            hd = dim // heads
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, hd))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, hd))

    def forward(self, x, rel=True):
        B, H, W, _ = x.shape
        qkv = self.qkv(x).reshape(B, H * W, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.reshape(3, B * self.num_heads, H * W, -1).unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        if self.use_rel_pos and rel:
            Rh = get_rel_pos(H, H, self.rel_pos_h)
            Rw = get_rel_pos(W, W, self.rel_pos_w)
            r_q = q.reshape(B * self.num_heads, H, W, -1)
            rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, Rh)
            rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, Rw)
            attn = (attn.view(-1, H, W, H, W) + rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).view(-1, H * W, H * W)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).view(B, self.num_heads, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1)
        return self.proj(x)


def window_partition(x, ws):
    B, H, W, C = x.shape
    ph, pw = (ws - H % ws) % ws, (ws - W % ws) % ws
    if ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph))
    Hp, Wp = H + ph, W + pw
    x = x.view(B, Hp // ws, ws, Wp // ws, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws, ws, C)
    return x, (Hp, Wp)


def window_unpartition(x, ws, pad_hw, hw):
    Hp, Wp = pad_hw
    H, W = hw
    B = x.shape[0] // (Hp * Wp // ws // ws)
    x = x.view(B, Hp // ws, Wp // ws, ws, ws, -1).permute(0, 1, 3, 2, 4, 5).reshape(B, Hp, Wp, -1)
    return x[:, :H, :W, :].contiguous() if (Hp > H or Wp > W) else x


class Block(nn.Module):
    """SAM ViT block + Med-SA adapters + SD-Trans depth branch.

    Depth branch (paper §3.3, done right): tokens at the same (h, w) in the D slices form a sequence of length
    D, a learned depth position embedding is added, the block's own attention runs over it (also in windowed
    blocks, since the branch is built from the un-windowed grid), Depth_Adapter maps the result, which is added
    to the spatial branch before the residual. A single image (D = 1) skips the branch."""

    def __init__(self, cfg: Config, window: int):
        super().__init__()
        dim = cfg.enc_dim
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = EncAttention(dim, cfg.enc_heads, cfg.use_rel_pos,
                                 (window, window) if window > 0 else (cfg.grid, cfg.grid))
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, int(dim * cfg.mlp_ratio))
        self.window = window
        self.adapters = cfg.adapters
        self.s = cfg.mlp_adapter_scale
        if cfg.adapters:
            self.Space_Adapter = Adapter(dim, cfg.adapter_ratio, skip=True)
            self.MLP_Adapter = Adapter(dim, cfg.adapter_ratio, skip=False)
            self.Depth_Adapter = Adapter(dim, cfg.adapter_ratio, skip=False)
            self.depth_pos_embed = nn.Parameter(torch.randn(cfg.depth_max, dim) * 0.02)

    def forward(self, x, depth: bool = False):
        shortcut = x
        x = self.norm1(x)
        xd = None
        if depth and self.adapters and x.shape[0] > 1:
            D, H, W, C = x.shape
            t = x.permute(1, 2, 0, 3).reshape(H * W, 1, D, C) + self.depth_pos_embed[:D].view(1, 1, D, C)
            t = self.attn(t, rel=False)
            xd = self.Depth_Adapter(t.view(H, W, D, C).permute(2, 0, 1, 3))
        H, W = x.shape[1], x.shape[2]
        if self.window > 0:
            x, pad_hw = window_partition(x, self.window)
        x = self.attn(x)
        if self.adapters:
            x = self.Space_Adapter(x)
        if self.window > 0:
            x = window_unpartition(x, self.window, pad_hw, (H, W))
        if xd is not None:
            x = x + xd
        x = shortcut + x
        n = self.norm2(x)
        if self.adapters:
            return x + self.mlp(n) + self.s * self.MLP_Adapter(n)
        return x + self.mlp(n)


def space_to_depth4(x):
    """[B,C,4h,4w] -> [B,C*16,h,w] with reshape/permute only (exports as plain ONNX ops)."""
    b, c, H, W = x.shape
    x = x.reshape(b, c, H // 4, 4, W // 4, 4).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 16, H // 4, W // 4)


def depth_to_space4(x):
    """Inverse of space_to_depth4."""
    b, c, h, w = x.shape
    x = x.reshape(b, c // 16, 4, 4, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c // 16, h * 4, w * 4)


class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).permute(0, 2, 3, 1)


class ImageEncoder(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.patch_embed = PatchEmbed(cfg.patch, cfg.enc_dim)
        g = cfg.pos_embed_grid or cfg.grid
        self.pos_embed = nn.Parameter(torch.zeros(1, g, g, cfg.enc_dim)) if cfg.use_abs_pos else None
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(
            [Block(cfg, 0 if i in cfg.global_blocks else cfg.window) for i in range(cfg.enc_depth)])
        e = cfg.embed_dim
        self.neck = nn.Sequential(nn.Conv2d(cfg.enc_dim, e, 1, bias=False), LayerNorm2d(e),
                                  nn.Conv2d(e, e, 3, padding=1, bias=False), LayerNorm2d(e))
        self.hires_stem = None
        if cfg.hires:
            assert cfg.img_size // 2 == cfg.low_res, "hires stem needs low_res = img_size / 2"
            self.hires_stem = nn.Sequential(
                nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.GELU(),
                nn.Conv2d(16, 16, 3, padding=1), nn.GELU(),
                nn.Conv2d(16, cfg.hires, 3, padding=1), LayerNorm2d(cfg.hires))

    def forward(self, x, depth: bool = False):
        if self.hires_stem is not None:
            return torch.cat([self._semantic(x, depth), space_to_depth4(self.hires_stem(x))], dim=1)
        return self._semantic(x, depth)

    def _semantic(self, x, depth: bool):
        x = self.patch_embed(x)
        if self.pos_embed is not None:
            pe = self.pos_embed
            if pe.shape[1] != x.shape[1]:  # official checkpoints: 64x64 table, bicubic to the token grid
                pe = F.interpolate(pe.permute(0, 3, 1, 2), size=(x.shape[1], x.shape[2]), mode="bicubic",
                                   align_corners=False).permute(0, 2, 3, 1)
            x = x + pe
        for b in self.blocks:
            x = b(x, depth=depth)
        return self.neck(x.permute(0, 3, 1, 2))


# ---------------------------------------------------------------------------------------------- prompts

class PositionEmbeddingRandom(nn.Module):
    def __init__(self, num_pos_feats=64, scale=1.0):
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats)))

    def _pe_encoding(self, coords):
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size):
        h, w = size
        grid = torch.ones((h, w), dtype=torch.float32, device=self.positional_encoding_gaussian_matrix.device)
        y = (grid.cumsum(0) - 0.5) / h
        x = (grid.cumsum(1) - 0.5) / w
        return self._pe_encoding(torch.stack([x, y], dim=-1)).permute(2, 0, 1)


class PromptEncoder(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        e = cfg.embed_dim
        self.cfg = cfg
        self.embed_dim = e
        self.pe_layer = PositionEmbeddingRandom(e // 2)
        self.point_embeddings = nn.ModuleList([nn.Embedding(1, e) for _ in range(4)])
        self.not_a_point_embed = nn.Embedding(1, e)
        mc = cfg.mask_in_chans
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mc // 4, 2, 2), LayerNorm2d(mc // 4), nn.GELU(),
            nn.Conv2d(mc // 4, mc, 2, 2), LayerNorm2d(mc), nn.GELU(), nn.Conv2d(mc, e, 1))
        self.no_mask_embed = nn.Embedding(1, e)
        if cfg.click_maps:
            # calibration lesson 1: click/box maps on the dense path so a from-scratch model follows prompts.
            self.prompt_map_downscaling = nn.Sequential(
                nn.Conv2d(5, mc // 2, 2, 2), LayerNorm2d(mc // 2), nn.GELU(),
                nn.Conv2d(mc // 2, mc * 2, 2, 2), LayerNorm2d(mc * 2), nn.GELU(), nn.Conv2d(mc * 2, e, 1))

    def get_dense_pe(self):
        g = self.cfg.grid
        return self.pe_layer((g, g)).unsqueeze(0)

    def embed_points(self, coords, labels):
        """SAM's ONNX point embedding: coords [B,N,2] (x,y) model pixels, labels [B,N] float."""
        c = (coords + 0.5) / self.cfg.img_size
        pe = self.pe_layer._pe_encoding(c)
        lab = labels.unsqueeze(-1).expand_as(pe)
        pe = pe * (lab != -1)
        pe = pe + self.not_a_point_embed.weight * (lab == -1)
        for i in range(4):
            pe = pe + self.point_embeddings[i].weight * (lab == i)
        return pe

    def embed_masks(self, mask_input, has_mask_input):
        hm = has_mask_input.reshape(-1, 1, 1, 1)
        return self.mask_downscaling(mask_input) * hm + (1 - hm) * self.no_mask_embed.weight.reshape(1, -1, 1, 1)

    def prompt_maps(self, coords, labels):
        """[B,5,L,L] maps on the low-res grid: positive clicks (sigma 4 and 16 px), negative clicks (same),
        box interior (soft edges). Pure tensor ops so it exports with a dynamic number of points."""
        S = self.cfg.img_size
        L = self.cfg.low_res
        cell = (torch.arange(L, dtype=torch.float32, device=coords.device) + 0.5) * (S / L)
        gx = cell.view(1, 1, 1, L)
        gy = cell.view(1, 1, L, 1)
        px = coords[..., 0].unsqueeze(-1).unsqueeze(-1)  # [B,N,1,1]
        py = coords[..., 1].unsqueeze(-1).unsqueeze(-1)
        d2 = (gx - px) ** 2 + (gy - py) ** 2  # [B,N,L,L]
        lab = labels.unsqueeze(-1).unsqueeze(-1)
        pos = (lab == 1).float()
        neg = (lab == 0).float()
        maps = []
        for sig in (4.0, 16.0):
            g = torch.exp(d2 * (-0.5 / (sig * sig)))
            maps.append((g * pos).amax(dim=1))
            maps.append((g * neg).amax(dim=1))
        tl = (labels == 2).float().unsqueeze(-1)
        br = (labels == 3).float().unsqueeze(-1)
        has_box = (labels == 2).float().sum(dim=1).clamp(max=1.0).view(-1, 1, 1)
        p0 = (coords * tl).sum(dim=1)  # [B,2]
        p1 = (coords * br).sum(dim=1)
        t = 2.0
        bx = torch.sigmoid((gx[0] - p0[:, 0].view(-1, 1, 1)) / t) * torch.sigmoid((p1[:, 0].view(-1, 1, 1) - gx[0]) / t)
        by = torch.sigmoid((gy[0] - p0[:, 1].view(-1, 1, 1)) / t) * torch.sigmoid((p1[:, 1].view(-1, 1, 1) - gy[0]) / t)
        box = bx * by * has_box
        return torch.stack([maps[0], maps[2], maps[1], maps[3], box], dim=1)

    def forward(self, coords, labels, mask_input, has_mask_input):
        sparse = self.embed_points(coords, labels)
        dense = self.embed_masks(mask_input, has_mask_input)
        if self.cfg.click_maps:
            dense = dense + self.prompt_map_downscaling(self.prompt_maps(coords, labels))
        return sparse, dense


# ---------------------------------------------------------------------------------------------- decoder

class DecAttention(nn.Module):
    def __init__(self, dim, heads, downsample_rate=1):
        super().__init__()
        self.internal_dim = dim // downsample_rate
        self.num_heads = heads
        self.q_proj = nn.Linear(dim, self.internal_dim)
        self.k_proj = nn.Linear(dim, self.internal_dim)
        self.v_proj = nn.Linear(dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, dim)

    def _sep(self, x):
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, q, k, v):
        q = self._sep(self.q_proj(q))
        k = self._sep(self.k_proj(k))
        v = self._sep(self.v_proj(v))
        attn = (q @ k.permute(0, 1, 3, 2)) / math.sqrt(q.shape[-1])
        out = attn.softmax(dim=-1) @ v
        b, h, n, c = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, h * c))


class HyPAdapter(nn.Module):
    """HyP-Adpt (paper eqs. 1-2): e_down = D_fc1(x); for each of `layers` steps a separate MLP maps the prompt
    embedding to a weight matrix W in R^{h x h} (reshape), e <- ReLU(LayerNorm(e @ W)); D_fc2 maps back; skip.
    Each hyper MLP starts out producing the identity matrix."""

    def __init__(self, dim, prompt_dim, hidden=16, mlp_hidden=64, layers=3):
        super().__init__()
        self.h = hidden
        self.act = nn.GELU()
        self.D_fc1 = nn.Linear(dim, hidden)
        self.D_fc2 = nn.Linear(hidden, dim)
        nn.init.zeros_(self.D_fc2.weight)
        nn.init.zeros_(self.D_fc2.bias)
        self.hyper, self.norms = hyper_layers(prompt_dim, hidden, mlp_hidden, layers)

    def forward(self, x, e_prompt):
        return x + self.D_fc2(apply_hyper(self.act(self.D_fc1(x)), e_prompt, self.hyper, self.norms, self.h))


def hyper_layers(prompt_dim, hidden, mlp_hidden, layers):
    """HyP-Adpt's hypernetwork: per layer an MLP from the prompt embedding to an h x h weight (starting at the
    identity) and a LayerNorm. Shared by the 1.x decoder and Med-SA 2.0 (net.HyPAdapter)."""
    hyper, norms = nn.ModuleList(), nn.ModuleList()
    for _ in range(layers):
        m = nn.Sequential(nn.Linear(prompt_dim, mlp_hidden), nn.ReLU(), nn.Linear(mlp_hidden, hidden * hidden))
        nn.init.normal_(m[2].weight, std=1e-3)
        with torch.no_grad():
            m[2].bias.copy_(torch.eye(hidden).flatten())
        hyper.append(m)
        norms.append(nn.LayerNorm(hidden))
    return hyper, norms


def apply_hyper(e, e_prompt, hyper, norms, h):
    """e [B, N, h] down-projected features; for each layer e <- ReLU(LayerNorm(e @ W(e_prompt))) (paper eq. 2).
    The product is cast to float32 before the norm (bf16 autocast)."""
    B = e.shape[0]
    for m, n in zip(hyper, norms):
        e = F.relu(n((e @ m(e_prompt).view(B, h, h)).float()))
    return e


class TwoWayAttentionBlock(nn.Module):
    def __init__(self, cfg: Config, skip_first_layer_pe: bool, efficient=False):
        super().__init__()
        d, h = cfg.embed_dim, cfg.dec_heads
        self.self_attn = DecAttention(d, h)
        self.norm1 = nn.LayerNorm(d)
        self.cross_attn_token_to_image = DecAttention(d, h, 2)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = MLPBlock(d, cfg.dec_mlp_dim, nn.ReLU)
        self.norm3 = nn.LayerNorm(d)
        self.norm4 = nn.LayerNorm(d)
        self.cross_attn_image_to_token = DecAttention(d, h, 2)
        self.skip_first_layer_pe = skip_first_layer_pe
        self.efficient = efficient
        self.dec_adapters = cfg.dec_adapters
        self.s = cfg.mlp_adapter_scale
        if cfg.dec_adapters:
            self.HyP_Adapter = HyPAdapter(d, d, cfg.hyp_hidden, cfg.hyp_mlp, cfg.hyp_layers)
            self.MLP_Adapter = Adapter(d, cfg.adapter_ratio, skip=False)
            self.Cross_Adapter = Adapter(d, cfg.adapter_ratio, skip=True)

    def forward(self, queries, keys, query_pe, key_pe, e_prompt=None):
        if self.dec_adapters:
            keys = self.HyP_Adapter(keys, e_prompt)  # prompt-conditioned adaptation of the image stream
        if self.skip_first_layer_pe:
            if self.efficient:  # EfficientSAM variant: residual self-attention also in layer 0
                queries = queries + self.self_attn(queries, queries, queries)
            else:
                queries = self.self_attn(queries, queries, queries)
        elif self.efficient:  # EfficientSAM variant: the PE is added to the stream itself
            queries = queries + query_pe
            queries = queries + self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)
        q = queries + query_pe
        k = keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))
        n = queries
        out = self.mlp(n)
        if self.dec_adapters:
            out = out + self.s * self.MLP_Adapter(n)
        queries = self.norm3(queries + out)
        q = queries + query_pe
        k = keys + key_pe
        keys = keys + self.cross_attn_image_to_token(k, q, queries)
        if self.dec_adapters:
            keys = self.Cross_Adapter(keys)
        keys = self.norm4(keys)
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        eff = cfg.decoder_variant == "efficientsam"
        self.layers = nn.ModuleList([TwoWayAttentionBlock(cfg, i == 0, eff) for i in range(cfg.dec_depth)])
        self.final_attn_token_to_image = DecAttention(cfg.embed_dim, cfg.dec_heads, 2)
        self.norm_final_attn = nn.LayerNorm(cfg.embed_dim)

    def forward(self, image_embedding, image_pe, point_embedding, e_prompt=None):
        keys = image_embedding.flatten(2).permute(0, 2, 1)
        key_pe = image_pe.flatten(2).permute(0, 2, 1)
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries, keys, point_embedding, key_pe, e_prompt)
        q = queries + point_embedding
        k = keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys


class MLP(nn.Module):
    def __init__(self, i, h, o, n):
        super().__init__()
        dims = [i] + [h] * (n - 1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, [h] * (n - 1) + [o]))

    def forward(self, x):
        for j, l in enumerate(self.layers):
            x = F.relu(l(x)) if j < len(self.layers) - 1 else l(x)
        return x


class MaskDecoder(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        d = cfg.embed_dim
        self.cfg = cfg
        self.transformer = TwoWayTransformer(cfg)
        self.num_mask_tokens = cfg.num_mask_tokens
        self.iou_token = nn.Embedding(1, d)
        self.mask_tokens = nn.Embedding(cfg.num_mask_tokens, d)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(d, d // 4, 2, 2), LayerNorm2d(d // 4), nn.GELU(),
            nn.ConvTranspose2d(d // 4, d // 8, 2, 2), nn.GELU())
        self.output_hypernetworks_mlps = nn.ModuleList([MLP(d, d, d // 8, 3) for _ in range(cfg.num_mask_tokens)])
        self.iou_prediction_head = MLP(d, cfg.iou_head_hidden, cfg.num_mask_tokens, 3)
        self.hires_fuse = None
        if cfg.hires:
            self.hires_fuse = nn.Sequential(nn.Conv2d(d // 8 + cfg.hires, d // 8, 3, padding=1), nn.GELU(),
                                            nn.Conv2d(d // 8, d // 8, 1))

    def forward(self, image_embeddings, image_pe, sparse, dense):
        B = sparse.shape[0]
        out_tok = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0).unsqueeze(0).expand(B, -1, -1)
        tokens = torch.cat([out_tok, sparse], dim=1)
        e_prompt = sparse.mean(dim=1) if self.cfg.dec_adapters else None
        detail = None
        if self.hires_fuse is not None:
            d = self.cfg.embed_dim
            detail = depth_to_space4(image_embeddings[:, d:])
            image_embeddings = image_embeddings[:, :d]
        src = image_embeddings.expand(B, -1, -1, -1) + dense if image_embeddings.shape[0] == 1 else image_embeddings + dense
        pos = image_pe.expand(B, -1, -1, -1)
        b, c, h, w = src.shape
        hs, src = self.transformer(src, pos, tokens, e_prompt)
        iou_out = hs[:, 0, :]
        mask_out = hs[:, 1:1 + self.num_mask_tokens, :]
        up = self.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
        if detail is not None:
            detail = detail.expand(up.shape[0], -1, -1, -1) if detail.shape[0] == 1 else detail
            up = up + self.hires_fuse(torch.cat([up, detail], dim=1))
        b, c, h, w = up.shape
        hyper = torch.stack([m(mask_out[:, i, :]) for i, m in enumerate(self.output_hypernetworks_mlps)], dim=1)
        masks = (hyper @ up.view(b, c, h * w)).view(b, -1, h, w)
        return masks, self.iou_prediction_head(iou_out)


class MedSA(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        if cfg.encoder == "tinyvit":
            from .tinyvit import TinyViT
            self.image_encoder = TinyViT(cfg.embed_dim)
        else:
            self.image_encoder = ImageEncoder(cfg)
        self.prompt_encoder = PromptEncoder(cfg)
        self.mask_decoder = MaskDecoder(cfg)

    def decode(self, emb, coords, labels, mask_input, has_mask_input):
        sparse, dense = self.prompt_encoder(coords, labels, mask_input, has_mask_input)
        masks, iou = self.mask_decoder(emb, self.prompt_encoder.get_dense_pe(), sparse, dense)
        sel = list(self.cfg.output_tokens)
        if sel != list(range(masks.shape[1])):
            masks, iou = masks[:, sel], iou[:, sel]
        return masks, iou


# ---------------------------------------------------------------------------------------------- parameters

def base_param_names(model: MedSA):
    """Parameters of the base ("SAM") model: everything except adapters, HyP-Adpt and depth embeddings."""
    out = []
    for n, _ in model.named_parameters():
        if any(k in n for k in ("_Adapter.", "depth_pos_embed")):
            continue
        out.append(n)
    return out


def set_phase(model: MedSA, phase: str, extra_trainable=()):
    """phase 'base': train everything but adapters; 'adapt': freeze the base, train adapters + extra prefixes."""
    base = set(base_param_names(model))
    for n, p in model.named_parameters():
        if phase == "base":
            p.requires_grad = n in base
        else:
            p.requires_grad = (n not in base) or any(n.startswith(e) for e in extra_trainable)


def count_params(model):
    tot = sum(p.numel() for p in model.parameters())
    tr = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return tot, tr
