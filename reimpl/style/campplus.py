"""CAMPPlus (s2mel/modules/campplus/DTDNN.py, layers.py) as infer_v2.py:204 builds it: feat 80, embedding 192.

FCM head: Conv2d 3x3 -> BN -> ReLU, two stages of two BasicResBlocks (stride 2 in frequency on the first of
each), Conv2d stride (2, 1) -> BN -> ReLU, reshaped to [B, 32 x 10, T]. TDNN: Conv1d k5 stride 2 pad 2 ->
BN -> ReLU. Three CAM dense blocks (12, 24, 16 layers, growth 32, dilation 1, 2, 2): each layer
BN-ReLU-Conv1x1(128)-BN-ReLU-CAM adds 32 channels to its input; each block is followed by a transit
(BN-ReLU-Conv1x1 halving the channels). BN-ReLU; statistics pooling (mean and unbiased std over time);
Conv1x1 to 192 and a BN without affine. Every BN in eval mode, eps 1e-5. The CAM layer: y = conv(x) (no
bias), context = mean over time + the mean of the 100-frame segment each frame falls in (a short last
segment averages the frames it has), gate = sigmoid(linear2(relu(linear1(context)))), out = y x gate.
Parameters are upstream's names under `campplus.`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from reimpl import faults

CAMP = "style/campplus"
P = "campplus."
Params = dict[str, torch.Tensor]


def _bn(p: Params, name: str, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Eval-mode batch norm over axis 1 (no affine where the checkpoint has none)."""
    return F.batch_norm(x, p[f"{P}{name}.running_mean"], p[f"{P}{name}.running_var"], p.get(f"{P}{name}.weight"),
                        p.get(f"{P}{name}.bias"), training=False, eps=eps)


def _w(p: Params, name: str) -> torch.Tensor:
    return p[f"{P}{name}.weight"]


def _res_block(p: Params, name: str, x: torch.Tensor, stride: int, eps: float) -> torch.Tensor:
    """conv3x3 (stride in frequency) -> BN -> ReLU -> conv3x3 -> BN, plus the shortcut, ReLU."""
    out = F.relu(_bn(p, f"{name}.bn1", F.conv2d(x, _w(p, f"{name}.conv1"), stride=(stride, 1), padding=1), eps))
    out = _bn(p, f"{name}.bn2", F.conv2d(out, _w(p, f"{name}.conv2"), padding=1), eps)
    if f"{P}{name}.shortcut.0.weight" in p:
        x = _bn(p, f"{name}.shortcut.1", F.conv2d(x, _w(p, f"{name}.shortcut.0"), stride=(stride, 1)), eps)
    return F.relu(out + x)


def fcm_head(p: Params, cfg, feat: torch.Tensor, tap) -> torch.Tensor:
    """[B, T, 80] -> [B, 32 x 10, T]: a 2-D conv net over (frequency, time)."""
    eps = cfg.bn_eps
    x = tap(CAMP + "/head/stem", _bn(p, "head.bn1", F.conv2d(feat.transpose(1, 2)[:, None], _w(p, "head.conv1"),
                                                            padding=1), eps))
    x, index = F.relu(x), 0
    for stage, n_blocks in enumerate(cfg.head_blocks, start=1):
        for b in range(n_blocks):
            x = tap(f"{CAMP}/head/res_block_{index}", _res_block(p, f"head.layer{stage}.{b}", x, 2 if b == 0 else 1, eps))
            index += 1
    x = tap(CAMP + "/head/conv2", _bn(p, "head.bn2", F.conv2d(x, _w(p, "head.conv2"), stride=(2, 1), padding=1), eps))
    b, c, f, t = x.shape
    return tap(CAMP + "/head/out", F.relu(x).reshape(b, c * f, t))


def _segment_mean(x: torch.Tensor, seg_len: int) -> torch.Tensor:
    seg = F.avg_pool1d(x, kernel_size=seg_len, stride=seg_len, ceil_mode=True)
    return seg.repeat_interleave(seg_len, dim=-1)[..., : x.shape[-1]]


def cam_layer(p: Params, name: str, x: torch.Tensor, dilation: int, kernel: int, seg_len: int) -> torch.Tensor:
    """Context-aware masking: a local dilated conv gated by a sigmoid of global + segment context."""
    y = F.conv1d(x, _w(p, f"{name}.linear_local"), padding=(kernel - 1) // 2 * dilation, dilation=dilation)
    context = x.mean(-1, keepdim=True)
    if not faults.active("style.campplus.no_seg_pooling"):  # the bug: the global mean alone
        context = context + _segment_mean(x, seg_len)
    hidden = F.relu(F.conv1d(context, _w(p, f"{name}.linear1"), p[f"{P}{name}.linear1.bias"]))
    return y * torch.sigmoid(F.conv1d(hidden, _w(p, f"{name}.linear2"), p[f"{P}{name}.linear2.bias"]))


def dense_block(p: Params, cfg, index: int, x: torch.Tensor, tap) -> torch.Tensor:
    """Every layer sees all earlier outputs (concatenated) and adds `growth_rate` channels."""
    eps = cfg.bn_eps
    for layer in range(cfg.dense_layers[index]):
        name = f"xvector.block{index + 1}.tdnnd{layer + 1}"
        h = F.conv1d(F.relu(_bn(p, f"{name}.nonlinear1.batchnorm", x, eps)), _w(p, f"{name}.linear1"))
        h = F.relu(_bn(p, f"{name}.nonlinear2.batchnorm", h, eps))
        new = cam_layer(p, f"{name}.cam_layer", h, cfg.dense_dilation[index], cfg.dense_kernel[index], cfg.seg_len)
        x = torch.cat([x, tap(f"{CAMP}/block_{index:02d}/layer_{layer}", new)], dim=1)
    return tap(f"{CAMP}/block_{index:02d}/out", x)


def stats_pool(x: torch.Tensor) -> torch.Tensor:
    """[B, C, T] -> [B, 2C]: mean and unbiased std over time (the bug: numpy's biased default)."""
    correction = 0 if faults.active("style.campplus.biased_std") else 1
    return torch.cat([x.mean(dim=-1), x.std(dim=-1, correction=correction)], dim=-1)


def campplus(p: Params, cfg, feat: torch.Tensor, tap) -> torch.Tensor:
    """Centred fbank [B, T, 80] -> style [B, 192]."""
    eps = cfg.bn_eps
    x = F.conv1d(fcm_head(p, cfg, feat, tap), _w(p, "xvector.tdnn.linear"), stride=2, padding=2)
    x = tap(CAMP + "/tdnn", F.relu(_bn(p, "xvector.tdnn.nonlinear.batchnorm", x, eps)))
    for index in range(len(cfg.dense_layers)):
        x = F.relu(_bn(p, f"xvector.transit{index + 1}.nonlinear.batchnorm", dense_block(p, cfg, index, x, tap), eps))
        x = tap(f"{CAMP}/transit_{index:02d}", F.conv1d(x, _w(p, f"xvector.transit{index + 1}.linear")))
    x = tap(CAMP + "/out_nonlinear", F.relu(_bn(p, "xvector.out_nonlinear.batchnorm", x, eps)))
    stats = tap(CAMP + "/stats", stats_pool(x))
    dense = tap(CAMP + "/dense", F.conv1d(stats[:, :, None], _w(p, "xvector.dense.linear"))[:, :, 0])
    return tap("style/style", _bn(p, "xvector.dense.nonlinear.batchnorm", dense, eps))
