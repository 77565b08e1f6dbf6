"""PRNet (Feng et al., ECCV 2018) in PyTorch, faithful to the official TensorFlow code.

Input: (B, 3, S, S) RGB in [0, 1]. Output: (B, 3, S, S) position map in [0, 1]; multiply by
`config.output_scale` (S * 1.1 = 281.6 for S = 256) for pixels of the input crop (x, y) and depth (z).

TensorFlow 'SAME' padding with even kernels pads asymmetrically (one more pixel after than before);
it is reproduced exactly so every tensor shape, and the weights' meaning, match the original. No
convolution has a bias (the official code sets biases_initializer=None everywhere); BatchNorm has scale
and offset. The full model has 13,353,618 trainable parameters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

ENCODER_BLOCKS = ((2, 2), (2, 1), (4, 2), (4, 1), (8, 2), (8, 1), (16, 2), (16, 1), (32, 2), (32, 1))  # (x base, stride)
DECODER_LAYERS = ((32, 1), (16, 2), (16, 1), (16, 1), (8, 2), (8, 1), (8, 1), (4, 2), (4, 1), (4, 1), (2, 2), (2, 1), (1, 2), (1, 1))
OUTPUT_LAYERS = 3  # three final 3-channel transposed convs, the last with a sigmoid


@dataclass(frozen=True)
class PRNetConfig:
    """Every architectural choice. The defaults are the paper's network."""

    input_size: int = 256
    width: float = 1.0  # multiplies the channel counts (base 16); 1.0 is the paper's
    kernel_size: int = 4
    output_scale_factor: float = 1.1  # pixels = sigmoid output * input_size * factor
    in_channels: int = 3
    out_channels: int = 3
    bn_momentum: float = 0.003  # tf.contrib batch_norm decay 0.999 (PyTorch momentum = 1 - decay)
    bn_eps: float = 0.001
    name: str = "prnet"

    @property
    def base_channels(self) -> int:
        return max(2, int(round(16 * self.width)))

    @property
    def output_scale(self) -> float:
        return self.input_size * self.output_scale_factor

    def to_dict(self) -> dict:
        return asdict(self)


def same_pads(kernel_size: int, stride: int) -> tuple[int, int]:
    """TF 'SAME' padding (before, after) for inputs divisible by the stride."""
    total = max(kernel_size - stride, 0)
    return total // 2, total - total // 2


class ConvBNReLU(nn.Sequential):
    """TF-SAME conv (no bias) -> BN -> ReLU (the official tcl.conv2d under its arg_scope)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, cfg: PRNetConfig, bn: bool = True, relu: bool = True):
        before, after = same_pads(k, stride)
        layers: list[nn.Module] = []
        if before != after:
            layers.append(nn.ZeroPad2d((before, after, before, after)))
            before = 0
        layers.append(nn.Conv2d(cin, cout, k, stride, padding=before, bias=False))
        if bn:
            layers.append(nn.BatchNorm2d(cout, eps=cfg.bn_eps, momentum=cfg.bn_momentum))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """1x1 to C/2 (BN, ReLU) -> kxk stride s to C/2 (BN, ReLU) -> 1x1 to C; + shortcut; BN; ReLU."""

    def __init__(self, cin: int, cout: int, stride: int, cfg: PRNetConfig):
        super().__init__()
        k = cfg.kernel_size
        self.shortcut = (
            nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else nn.Identity()
        )
        self.conv1 = ConvBNReLU(cin, cout // 2, 1, 1, cfg)
        self.conv2 = ConvBNReLU(cout // 2, cout // 2, k, stride, cfg)
        self.conv3 = nn.Conv2d(cout // 2, cout, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=cfg.bn_eps, momentum=cfg.bn_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x)))


class TransposedConvBN(nn.Module):
    """TF-SAME transposed conv (no bias) -> BN -> activation. Output size = input size * stride."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, cfg: PRNetConfig, activation: Callable | None):
        super().__init__()
        # TF's transposed conv is the gradient of a SAME conv: crop `before` pixels in front and `after` behind
        # the full (padding 0) output.
        self.crop = same_pads(k, stride)
        self.deconv = nn.ConvTranspose2d(cin, cout, k, stride, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=cfg.bn_eps, momentum=cfg.bn_momentum)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        before, after = self.crop
        y = self.deconv(x)
        y = y[:, :, before : y.shape[2] - after, before : y.shape[3] - after]
        y = self.bn(y)
        return self.activation(y) if self.activation is not None else y


class PRNet(nn.Module):
    def __init__(self, config: PRNetConfig | None = None):
        super().__init__()
        cfg = self.config = config or PRNetConfig()
        k, c = cfg.kernel_size, cfg.base_channels
        self.stem = ConvBNReLU(cfg.in_channels, c, k, 1, cfg)  # (B, 16, 256, 256)
        blocks, cin = [], c
        for mult, stride in ENCODER_BLOCKS:  # ... -> (B, 512, 8, 8)
            blocks.append(ResBlock(cin, c * mult, stride, cfg))
            cin = c * mult
        self.encoder = nn.Sequential(*blocks)
        layers = []
        for mult, stride in DECODER_LAYERS:  # (B, 512, 8, 8) -> (B, 16, 256, 256)
            layers.append(TransposedConvBN(cin, c * mult, k, stride, cfg, F.relu))
            cin = c * mult
        for i in range(OUTPUT_LAYERS):  # (B, 3, 256, 256), sigmoid last
            last = i == OUTPUT_LAYERS - 1
            layers.append(TransposedConvBN(cin, cfg.out_channels, k, 1, cfg, torch.sigmoid if last else F.relu))
            cin = cfg.out_channels
        self.decoder = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():  # tf.contrib default: Glorot uniform weights, BN gamma 1 beta 0
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.decoder[:-OUTPUT_LAYERS](self.encoder(self.stem(x)))  # (B, 16, S, S)
        head = self.decoder[-OUTPUT_LAYERS:]
        if torch.is_autocast_enabled(y.device.type):
            # bf16 has an 8-bit mantissa: a bf16 sigmoid output moves in steps of ~1 px near the top of the range,
            # so the three cheap 3-channel layers run in fp32 under mixed precision (not traced by exporters).
            with torch.autocast(y.device.type, enabled=False):
                return head(y.float())
        return head(y)  # (B, 3, S, S) in [0, 1]


# --- registry (timm-style): name -> config factory -------------------------------------------------
MODEL_CONFIGS: dict[str, PRNetConfig] = {
    "prnet": PRNetConfig(),  # the paper's network, 13.35M parameters
    "prnet-half": PRNetConfig(width=0.5, name="prnet-half"),  # 3.3M, CPU experiments
    "prnet-quarter": PRNetConfig(width=0.25, name="prnet-quarter"),  # 0.84M, CPU smoke runs and tests
}


def list_models() -> list[str]:
    return sorted(MODEL_CONFIGS)


def create_model(name: str = "prnet", **overrides) -> PRNet:
    """Build a registered model; keyword arguments override config fields (e.g. input_size=128)."""
    if name not in MODEL_CONFIGS:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    base = MODEL_CONFIGS[name]
    return PRNet(PRNetConfig(**{**asdict(base), **overrides}))


def model_from_config(config: dict) -> PRNet:
    """Rebuild a model from `PRNetConfig.to_dict()` (as stored in checkpoints)."""
    known = set(PRNetConfig.__dataclass_fields__)
    return PRNet(PRNetConfig(**{k: v for k, v in config.items() if k in known}))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
