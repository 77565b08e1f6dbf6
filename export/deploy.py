"""The deployment form of PRNet: the same function, written only with plain convolutions.

`to_deployment(model)` returns an eval-only `DeployedPRNet` that computes `model(x) * output_scale` (position
maps in PIXELS of the input crop) with

  * every BatchNorm folded into the convolution in front of it (conv weights scaled, a bias added);
  * the BatchNorm after a ResBlock's residual sum folded into both branches (an identity shortcut becomes a
    depthwise 1x1 conv that carries the BN scale);
  * every transposed convolution rewritten as ordinary convolution:
      - stride 1 (k=4, TF 'SAME' crop 1/2): a conv with the kernel flipped and in/out swapped, padded
        2 before and 1 after (TF 'SAME' of the transposed op mirrored);
      - stride 2 (k=4, crop 1/1): sub-pixel form. Output row 2m+a only sees input rows {m-1, m} (a=0, taps
        W[3], W[1]) or {m, m+1} (a=1, taps W[2], W[0]), so each of the 4 output phases (a, b) is a 2x2 conv;
        the phases are interleaved back to full resolution.

Why: the decoder's 17 ConvTranspose ops take ~76% of ONNX Runtime's FP32 time and quantizers/runtimes run them
poorly (ORT's CPU provider keeps them in float); plain Conv(+ReLU) is what every runtime and INT8 quantizer
handles well. Measured here: exact to FP32 rounding, ORT FP32 1.2-1.3x faster.

Stride-2 variants (`DeployConfig.upsample`), all numerically equal:
  "phases"      four 2x2 convs -> Reshape/Transpose interleave. Same MACs as the transposed conv. Default;
                safe in OpenVINO after INT8 quantization (its DepthToSpace fails after a quantized Concat).
  "phases_d2s"  four 2x2 convs -> stack -> DepthToSpace (pixel_shuffle, ONNX DepthToSpace CRD).
  "conv3x3"     one 3x3 conv (pad 1) to 4*Cout channels (zero taps where a phase does not reach)
                -> DepthToSpace. One conv per layer (2.25x the MACs), simplest graph for quantizers/SVD.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from prnet.model import PRNet, PRNetConfig, ResBlock, TransposedConvBN

UPSAMPLE_MODES = ("phases", "phases_d2s", "conv3x3")


@dataclass(frozen=True)
class DeployConfig:
    upsample: str = "phases"  # how a stride-2 transposed conv is rewritten; one of UPSAMPLE_MODES

    def __post_init__(self) -> None:
        if self.upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {self.upsample!r}")


# --- BatchNorm folding (pure functions on tensors) ----------------------------------------------------------
def bn_scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """BN in eval mode as y = x * scale + shift (per channel), computed in float64 for exact folding."""
    var, mean = bn.running_var.double(), bn.running_mean.double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)
    return scale, beta - mean * scale


def make_conv(weight: torch.Tensor, bias: torch.Tensor | None, stride: int = 1, padding: int = 0,
              groups: int = 1) -> nn.Conv2d:
    """A float64 nn.Conv2d holding the given weight (Cout, Cin/groups, kh, kw) and bias (cast once at the end)."""
    cout, cin_g, kh, kw = weight.shape
    conv = nn.Conv2d(cin_g * groups, cout, (kh, kw), stride, padding, groups=groups, bias=bias is not None,
                     dtype=torch.float64)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
    return conv


# --- deployment modules --------------------------------------------------------------------------------------
class PadConv(nn.Sequential):
    """[ZeroPad2d when asymmetric] -> Conv2d (with bias) -> [ReLU]: the only layer kind of the deployment form."""

    def __init__(self, conv: nn.Conv2d, pads: tuple[int, int, int, int] | None = None, relu: bool = True):
        layers: list[nn.Module] = [nn.ZeroPad2d(pads)] if pads is not None and any(pads) else []
        layers += [conv, nn.ReLU(inplace=True) if relu else nn.Identity()]
        super().__init__(*layers)


class DeployedResBlock(nn.Module):
    """relu(conv3(conv2(conv1(x))) + shortcut(x)) with every BN folded into a conv."""

    def __init__(self, conv1: PadConv, conv2: PadConv, conv3: nn.Conv2d, shortcut: nn.Conv2d):
        super().__init__()
        self.conv1, self.conv2, self.conv3, self.shortcut = conv1, conv2, conv3, shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))


def interleave_phases(phases: list[torch.Tensor]) -> torch.Tensor:
    """4 x (B, C, H, W) phases ordered (a, b) = (0,0), (0,1), (1,0), (1,1) -> (B, C, 2H, 2W), out[2h+a, 2w+b].

    Written as Reshape/Transpose (no DepthToSpace op in the exported graph)."""
    _, c, h, w = phases[0].shape  # -1 for the batch: no batch arithmetic in exported graphs (dynamic batch)
    x = torch.cat(phases, dim=1).reshape(-1, 2, 2, c, h, w)  # (B, a, b, C, H, W)
    return x.permute(0, 3, 4, 1, 5, 2).reshape(-1, c, 2 * h, 2 * w)  # (B, C, H, a, W, b)


class SubPixelPhases(nn.Module):
    """Stride-2 transposed conv as four 2x2 convs (one per output phase) + interleave."""

    def __init__(self, phases: list[PadConv], depth_to_space: bool):
        super().__init__()
        self.phases = nn.ModuleList(phases)
        self.depth_to_space = depth_to_space

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [phase(x) for phase in self.phases]
        if self.depth_to_space:  # (B, C, 4, H, W) -> (B, 4C, H, W) channel c*4 + phase: pixel_shuffle's order
            return F.pixel_shuffle(torch.stack(outs, dim=2).flatten(1, 2), 2)
        return interleave_phases(outs)


class SubPixelConv3x3(nn.Module):
    """Stride-2 transposed conv as one 3x3 conv to 4*Cout channels (order c*4 + phase) + DepthToSpace."""

    def __init__(self, conv: PadConv):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.conv(x), 2)


class PixelOutput(nn.Module):
    """sigmoid(x) * output_scale: position maps in crop pixels."""

    def __init__(self, output_scale: float):
        super().__init__()
        self.output_scale = float(output_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * self.output_scale


class DeployedPRNet(nn.Module):
    """(B, 3, S, S) RGB in [0, 1] -> (B, 3, S, S) position map in crop pixels (x, y, z)."""

    def __init__(self, stem: nn.Module, encoder: nn.Sequential, decoder: nn.Sequential, output: PixelOutput,
                 config: PRNetConfig, deploy_config: DeployConfig):
        super().__init__()
        self.stem, self.encoder, self.decoder, self.output = stem, encoder, decoder, output
        self.config, self.deploy_config = config, deploy_config

    @property
    def output_scale(self) -> float:
        return self.output.output_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.decoder(self.encoder(self.stem(x))))


# --- conversion ----------------------------------------------------------------------------------------------
def _conv_weight_folded(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor]:
    weight = conv.weight.double()
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(weight[:, 0, 0, 0])
    if bn is None:
        return weight, bias
    scale, shift = bn_scale_shift(bn)
    return weight * scale[:, None, None, None], bias * scale + shift


def convert_conv_bn_relu(seq: nn.Sequential) -> PadConv:
    """prnet.model.ConvBNReLU ([ZeroPad2d] Conv2d [BN] [ReLU]) -> PadConv."""
    pad = next((m for m in seq if isinstance(m, nn.ZeroPad2d)), None)
    conv = next(m for m in seq if isinstance(m, nn.Conv2d))
    bn = next((m for m in seq if isinstance(m, nn.BatchNorm2d)), None)
    relu = any(isinstance(m, nn.ReLU) for m in seq)
    weight, bias = _conv_weight_folded(conv, bn)
    folded = make_conv(weight, bias, conv.stride[0], conv.padding[0])
    return PadConv(folded, tuple(pad.padding) if pad is not None else None, relu)


def convert_resblock(block: ResBlock) -> DeployedResBlock:
    scale, shift = bn_scale_shift(block.bn)  # bn(conv3(h) + s(x)) = conv3'(h) + s'(x) with the BN split over both
    w3 = block.conv3.weight.double() * scale[:, None, None, None]
    conv3 = make_conv(w3, shift)
    if isinstance(block.shortcut, nn.Conv2d):
        ws = block.shortcut.weight.double() * scale[:, None, None, None]
        shortcut = make_conv(ws, None, block.shortcut.stride[0])
    else:  # identity shortcut: the BN scale becomes a depthwise 1x1 conv
        shortcut = make_conv(scale[:, None, None, None], None, groups=scale.numel())
    return DeployedResBlock(convert_conv_bn_relu(block.conv1), convert_conv_bn_relu(block.conv2), conv3, shortcut)


def folded_transposed_weight(layer: TransposedConvBN) -> tuple[torch.Tensor, torch.Tensor]:
    """ConvTranspose2d weight (Cin, Cout, k, k) with the BN scale folded, and the BN shift as a bias (float64)."""
    scale, shift = bn_scale_shift(layer.bn)
    weight = layer.deconv.weight.double() * scale[None, :, None, None]
    bias = shift if layer.deconv.bias is None else layer.deconv.bias.double() * scale + shift
    return weight, bias


def _check_transposed(layer: TransposedConvBN) -> tuple[int, int]:
    deconv = layer.deconv
    k, stride = deconv.kernel_size[0], deconv.stride[0]
    expected_crop = ((k - stride) // 2, (k - stride) - (k - stride) // 2)
    if (k, stride) not in ((4, 1), (4, 2)) or tuple(layer.crop) != expected_crop or deconv.padding[0] != 0:
        raise NotImplementedError(f"deployment rewrite covers 4x4 transposed convs with stride 1 or 2 and "
                                  f"TF-SAME crops; got kernel {k}, stride {stride}, crop {layer.crop}")
    return k, stride


def convert_transposed_stride1(layer: TransposedConvBN, relu: bool) -> PadConv:
    """y[p] = sum_t x[p - 2 + t] * W[3 - t]: a conv with the flipped kernel, pads (before 2, after 1)."""
    weight, bias = folded_transposed_weight(layer)
    conv_weight = weight.flip(2, 3).transpose(0, 1)  # (Cout, Cin, k, k)
    return PadConv(make_conv(conv_weight, bias), (2, 1, 2, 1), relu)  # ZeroPad2d: (left, right, top, bottom)


# taps of the 4-tap kernel axis seen by output phase a (0: rows m-1, m; 1: rows m, m+1), in input order
PHASE_TAPS = {0: (3, 1), 1: (2, 0)}
PHASE_PADS = {0: (1, 0), 1: (0, 1)}  # (before, after) on that axis


def phase_weight(weight: torch.Tensor, a: int, b: int) -> torch.Tensor:
    """2x2 conv weight (Cout, Cin, 2, 2) for output phase (row a, col b) from a transposed weight (Cin, Cout, 4, 4)."""
    rows, cols = list(PHASE_TAPS[a]), list(PHASE_TAPS[b])
    return weight[:, :, rows][:, :, :, cols].transpose(0, 1)


def convert_transposed_stride2(layer: TransposedConvBN, relu: bool, upsample: str) -> nn.Module:
    weight, bias = folded_transposed_weight(layer)
    phases = [(a, b) for a in (0, 1) for b in (0, 1)]
    if upsample == "conv3x3":
        cin, cout = weight.shape[:2]
        w3 = weight.new_zeros(cout, 4, cin, 3, 3)  # channel c*4 + phase
        for index, (a, b) in enumerate(phases):
            r0, c0 = a, b  # phase a uses window rows a..a+1 of the 3x3 window over rows m-1..m+1
            w3[:, index, :, r0 : r0 + 2, c0 : c0 + 2] = phase_weight(weight, a, b)
        conv = make_conv(w3.reshape(cout * 4, cin, 3, 3), bias.repeat_interleave(4), padding=1)
        return SubPixelConv3x3(PadConv(conv, None, relu))
    convs = []
    for a, b in phases:
        (top, bottom), (left, right) = PHASE_PADS[a], PHASE_PADS[b]
        convs.append(PadConv(make_conv(phase_weight(weight, a, b), bias), (left, right, top, bottom), relu))
    return SubPixelPhases(convs, depth_to_space=upsample == "phases_d2s")


def convert_transposed(layer: TransposedConvBN, upsample: str) -> nn.Module:
    _, stride = _check_transposed(layer)
    if layer.activation not in (F.relu, torch.sigmoid):
        raise NotImplementedError(f"unsupported decoder activation {layer.activation!r}")
    relu = layer.activation is F.relu  # the sigmoid is the model's last op, done by PixelOutput
    if stride == 1:
        return convert_transposed_stride1(layer, relu)
    return convert_transposed_stride2(layer, relu, upsample)


@torch.no_grad()
def to_deployment(model: PRNet, config: DeployConfig | None = None, upsample: str | None = None) -> DeployedPRNet:
    """A numerically equal, eval-only PRNet of plain convs that outputs position maps in pixels.

    `model` is read in eval mode (running BN statistics) and left unchanged; folding happens in float64 and the
    result takes the model's dtype (a float64 model gives a float64 deployment: exact to ~1e-10 px).
    `upsample` is a shortcut for `DeployConfig(upsample=...)`.
    """
    config = config or DeployConfig(**({"upsample": upsample} if upsample else {}))
    model_config: PRNetConfig = model.config
    stem = convert_conv_bn_relu(model.stem)
    encoder = nn.Sequential(*[convert_resblock(block) for block in model.encoder])
    last = len(model.decoder) - 1
    if model.decoder[last].activation is not torch.sigmoid:
        raise NotImplementedError("the PRNet decoder must end with a sigmoid")
    decoder = nn.Sequential(*[convert_transposed(layer, config.upsample) for layer in model.decoder])
    deployed = DeployedPRNet(stem, encoder, decoder, PixelOutput(model_config.output_scale), model_config, config)
    reference = next(model.parameters())  # folded in float64, rounded once to the model's dtype and device
    return deployed.to(device=reference.device, dtype=reference.dtype).eval().requires_grad_(False)


@torch.no_grad()
def deployment_deviation(model: PRNet, deployed: nn.Module, images: torch.Tensor) -> tuple[float, float]:
    """(max, mean) |deployed(x) - model(x) * output_scale| in pixels, both run in eval mode."""
    was_training = model.training
    model.eval()
    try:
        reference = model(images).double() * model.config.output_scale
    finally:
        model.train(was_training)
    diff = (deployed(images).double() - reference).abs()
    return float(diff.max()), float(diff.mean())
