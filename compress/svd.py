"""Low-rank (truncated SVD) factorization of convolutions: `apply(model, SvdConfig(...)) -> SvdResult`.

A conv's weight, unfolded to a matrix, is replaced by its best rank-r approximation (Eckart-Young), which
runs as two convolutions. Two unfoldings are tried per layer and the cheaper one (in MACs, at the rank the
config asks for) is kept:

  Conv2d (Cout, Cin, k, k)
    "spatial_first":   (Cout) x (Cin k k)  -> k x k conv Cin -> r (stride, padding)  then 1x1 conv r -> Cout
    "pointwise_first": (Cout k k) x (Cin)  -> 1x1 conv Cin -> r  then k x k conv r -> Cout (stride, padding)
  ConvTranspose2d (Cin, Cout, k, k)
    "spatial_first":   (Cin k k) x (Cout)  -> k x k deconv Cin -> r  then 1x1 conv r -> Cout (output resolution)
    "pointwise_first": (Cin) x (Cout k k)  -> 1x1 conv Cin -> r (input resolution) then k x k deconv r -> Cout

Both are exact at full rank: a bias-free 1x1 conv commutes with zero padding and with cropping. The rank
per layer comes from an energy threshold (share of the sum of squared singular values kept) or from a
global target (share of the model's MACs or parameters), found by bisection on one common energy. Layers
where the factorized pair would not save at least `min_saving` of the layer's MACs stay as they are
(PRNet's 3-channel tail convs, for instance, can only get slower).

`fit="weights"` (the default) is data-free. `fit="responses"` factorizes what the layer computes on real
inputs instead of its weights: the output channels' covariance over calibration images (forward hooks, one
pass) gives the principal directions U_r, and the layer becomes U_r (U_r^T W x) + b' (spatial_first only).
For those images this is the best rank-r affine approximation of the layer's output (Eckart-Young on the
centred responses, b' keeping their mean), so it is never worse there than the weight SVD, and its spectrum
(response variance per direction) is far more concentrated than a weight's, so one energy threshold keeps
more of what matters (Zhang et al., "Accelerating very deep convolutional networks", TPAMI 2016, without
their nonlinear step). `prnet.compress.distill.finetune` recovers the rest. In the
pipeline it runs on the deployment form (BN folded, transposed convs already plain convs), so what is
factorized is exactly what runs and the result needs no further rewriting.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from prnet.compress.macs import LayerCost, layer_costs
from prnet.io import PrnetInputError

SCHEMES = ("spatial_first", "pointwise_first")
FITS = ("weights", "responses")


@dataclass
class SvdConfig:
    """Pick ONE of `energy` or (`target` + `target_ratio`)."""

    energy: float | None = 0.9  # keep the smallest rank holding this share of sum(s^2) in every layer
    target: str | None = None  # "macs" | "params": hit a global share of the model's MACs / parameters
    target_ratio: float | None = None  # e.g. 0.25 = keep 25% of the (factorizable) model's MACs
    min_saving: float = 0.1  # factorize only when it saves at least this share of the layer's MACs
    rank_multiple: int = 8  # round ranks up to SIMD-friendly multiples (8 floats per AVX2 register)
    skip: tuple[str, ...] = ()  # fnmatch patterns of layer names that keep full rank
    input_size: int = 256
    fit: str = "weights"  # "weights": SVD of each weight (data-free); "responses": PCA of each output (needs images)
    calibration_count: int = 256  # images whose responses `fit="responses"` uses (the pipeline's training split)

    def __post_init__(self) -> None:
        if self.fit not in FITS:
            raise PrnetInputError(f"SVD fit must be one of {', '.join(FITS)}, got {self.fit!r}")
        if self.target is None:
            if self.energy is None or not 0.0 < self.energy <= 1.0:
                raise PrnetInputError(f"SVD energy must be in (0, 1], got {self.energy}")
        else:
            if self.target not in ("macs", "params"):
                raise PrnetInputError(f"SVD target must be 'macs' or 'params', got {self.target!r}")
            if self.target_ratio is None or not 0.0 < self.target_ratio <= 1.0:
                raise PrnetInputError(f"SVD {self.target} ratio must be in (0, 1], got {self.target_ratio}")

    def describe(self) -> str:
        what = f"energy {self.energy}" if self.target is None else f"{self.target} {self.target_ratio}"
        what = what if self.fit == "weights" else f"{what}, fit to responses"
        return what + (f", whole: {' '.join(self.skip)}" if self.skip else "")


def parse_svd_spec(spec: str, **overrides) -> SvdConfig:
    """'0.9' (energy), 'energy:0.9', 'macs:0.25' or 'params:0.3' -> SvdConfig."""
    kind, _, value = spec.rpartition(":")
    kind = kind or "energy"
    try:
        number = float(value)
    except ValueError:
        raise PrnetInputError(f"--svd {spec!r}: use a number (energy, e.g. 0.9) or macs:R / params:R / energy:E") from None
    if kind == "energy":
        return SvdConfig(energy=number, **overrides)
    return SvdConfig(energy=None, target=kind, target_ratio=number, **overrides)


@dataclass
class LayerPlan:
    """What happens to one layer; `rank` 0 means it stays as it is."""

    name: str
    kind: str
    shape: tuple[int, ...]
    full_rank: int
    rank: int = 0
    scheme: str = ""
    energy_kept: float = 1.0
    macs_before: int = 0
    macs_after: int = 0
    params_before: int = 0
    params_after: int = 0
    status: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SvdResult:
    model: nn.Module
    layers: list[LayerPlan]
    config: SvdConfig
    energy_used: float | None = None  # the common energy found for a global target
    notes: list[str] = field(default_factory=list)

    @property
    def plan(self) -> list[dict]:
        """What `apply_plan` needs to rebuild the structure (name, scheme, rank) of factorized layers."""
        return [{"name": p.name, "scheme": p.scheme, "rank": p.rank} for p in self.layers if p.rank]


class LowRankConv(nn.Sequential):
    """Two convolutions that replace one: `reduce` (to `rank` channels) then `expand`."""

    def __init__(self, reduce: nn.Module, expand: nn.Module, scheme: str):
        super().__init__()
        self.reduce, self.expand, self.scheme = reduce, expand, scheme

    @property
    def rank(self) -> int:
        return self.reduce.out_channels


# --- the matrix view of a conv weight, per scheme ---------------------------------------------------
def weight_matrix(layer: nn.Module, scheme: str) -> torch.Tensor:
    w = layer.weight.detach().double()
    if isinstance(layer, nn.ConvTranspose2d):  # (Cin, Cout, kh, kw)
        cin, cout, kh, kw = w.shape
        if scheme == "spatial_first":
            return w.permute(0, 2, 3, 1).reshape(cin * kh * kw, cout)
        return w.reshape(cin, cout * kh * kw)
    cout, cin, kh, kw = w.shape  # Conv2d
    if scheme == "spatial_first":
        return w.reshape(cout, cin * kh * kw)
    return w.permute(0, 2, 3, 1).reshape(cout * kh * kw, cin)


def _conv_like(layer: nn.Module, cin: int, cout: int, bias: bool) -> nn.Module:
    """A conv with `layer`'s geometry (kernel, stride, padding...) but other channel counts."""
    kw = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, bias=bias)
    if isinstance(layer, nn.ConvTranspose2d):
        return nn.ConvTranspose2d(cin, cout, layer.kernel_size, output_padding=layer.output_padding, **kw)
    return nn.Conv2d(cin, cout, layer.kernel_size, padding_mode=layer.padding_mode, **kw)


def factorized_pair(layer: nn.Module, scheme: str, rank: int) -> LowRankConv:
    """The (reduce, expand) pair for `layer` at `rank`, with UNINITIALIZED-by-SVD weights (structure only)."""
    cin, cout = layer.in_channels, layer.out_channels
    has_bias = layer.bias is not None
    if scheme == "spatial_first":  # k x k to r first, then 1x1 at the output resolution
        reduce, expand = _conv_like(layer, cin, rank, False), nn.Conv2d(rank, cout, 1, bias=has_bias)
    elif scheme == "pointwise_first":  # 1x1 at the input resolution first, then k x k from r
        reduce, expand = nn.Conv2d(cin, rank, 1, bias=False), _conv_like(layer, rank, cout, has_bias)
    else:
        raise ValueError(f"unknown scheme {scheme!r}; use one of {SCHEMES}")
    return LowRankConv(reduce, expand, scheme).to(layer.weight.device, layer.weight.dtype)


@dataclass
class Responses:
    """Mean and covariance of one layer's bias-free output channels over calibration images (float64)."""

    mean: torch.Tensor  # (Cout,)
    cov: torch.Tensor  # (Cout, Cout)
    count: int  # output pixels seen

    def principal(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(spectrum, directions): sqrt of the covariance's eigenvalues, descending (the singular values of
        the centred responses / sqrt(count)), and the matching eigenvectors as columns (Cout, Cout)."""
        values, vectors = torch.linalg.eigh(self.cov)
        return values.flip(0).clamp_min(0).sqrt(), vectors.flip(1)


@torch.no_grad()
def collect_responses(model: nn.Module, forward_loop: Callable[[nn.Module], None],
                      names: list[str]) -> dict[str, Responses]:
    """Run `forward_loop(model)` once with hooks on the named convs; their output statistics, bias removed."""
    modules = dict(model.named_modules())
    sums: dict[str, list] = {}

    def record(name: str):
        def hook(layer: nn.Module, inputs, output: torch.Tensor) -> None:
            y = output.detach().double()
            if layer.bias is not None:
                y = y - layer.bias.detach().double().view(1, -1, 1, 1)
            y = y.transpose(0, 1).reshape(y.shape[1], -1)  # (Cout, N*H*W)
            total = sums.setdefault(name, [0.0, 0.0, 0])
            total[0], total[1], total[2] = total[0] + y.sum(1), total[1] + y @ y.T, total[2] + y.shape[1]
        return hook

    handles = [modules[name].register_forward_hook(record(name)) for name in names]
    try:
        forward_loop(model)
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name in names if name not in sums]
    if missing:
        raise PrnetInputError(f"SVD fit 'responses': the calibration pass never ran {missing[:3]}; pass images")
    stats = {}
    for name, (total, outer, count) in sums.items():
        mean = total / count
        stats[name] = Responses(mean, outer / count - torch.outer(mean, mean), count)
    return stats


def _factors(layer: nn.Module, scheme: str, rank: int, responses: Responses | None):
    """(left, right) with weight_matrix ~ left @ right; and the output-side projection (Cout, r) or None."""
    matrix = weight_matrix(layer, scheme)
    if responses is None:  # Eckart-Young on the weight; sqrt(S) split evenly between the two factors
        u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
        root = s[:rank].sqrt()
        return u[:, :rank] * root, root[:, None] * vh[:rank], None
    if scheme != "spatial_first":
        raise ValueError("a response fit projects the output channels: scheme 'spatial_first' only")
    basis = responses.principal()[1][:, :rank]  # (Cout, r)
    if isinstance(layer, nn.ConvTranspose2d):  # matrix (Cin k k, Cout): output channels are its columns
        return matrix @ basis, basis.T, basis
    return basis, basis.T @ matrix, basis  # Conv2d: matrix (Cout, Cin k k), output channels are its rows


@torch.no_grad()
def factorize(layer: nn.Module, scheme: str, rank: int, responses: Responses | None = None) -> LowRankConv:
    """Best rank-`rank` approximation of `layer`: of its weight, or (with `responses`) of its output."""
    left, right, basis = _factors(layer, scheme, rank, responses)
    pair = factorized_pair(layer, scheme, rank)
    w = layer.weight
    if isinstance(layer, nn.ConvTranspose2d):
        cin, cout, kh, kw = w.shape
        if scheme == "spatial_first":  # rows (cin, kh, kw) -> deconv (cin, r, kh, kw); cols cout -> 1x1 (cout, r)
            pair.reduce.weight.copy_(left.reshape(cin, kh, kw, rank).permute(0, 3, 1, 2))
            pair.expand.weight.copy_(right.t().reshape(cout, rank, 1, 1))
        else:  # rows cin -> 1x1 (r, cin); cols (cout, kh, kw) -> deconv (r, cout, kh, kw)
            pair.reduce.weight.copy_(left.t().reshape(rank, cin, 1, 1))
            pair.expand.weight.copy_(right.reshape(rank, cout, kh, kw))
    else:
        cout, cin, kh, kw = w.shape
        if scheme == "spatial_first":  # rows cout -> 1x1 (cout, r); cols (cin, kh, kw) -> conv (r, cin, kh, kw)
            pair.reduce.weight.copy_(right.reshape(rank, cin, kh, kw))
            pair.expand.weight.copy_(left.reshape(cout, rank, 1, 1))
        else:  # rows (cout, kh, kw) -> conv (cout, r, kh, kw); cols cin -> 1x1 (r, cin)
            pair.reduce.weight.copy_(right.reshape(rank, cin, 1, 1))
            pair.expand.weight.copy_(left.reshape(cout, kh, kw, rank).permute(0, 3, 1, 2))
    if layer.bias is not None:  # a response fit keeps the responses' mean: b' = b + (I - U U^T) mean
        shift = 0.0 if basis is None else responses.mean - basis @ (basis.T @ responses.mean)
        pair.expand.bias.copy_(layer.bias + shift)
    return pair


def pair_cost(cost: LayerCost, scheme: str, rank: int) -> tuple[int, int]:
    """(MACs, params) of the factorized pair for one image, from the layer's measured geometry."""
    kk = cost.kernel[0] * cost.kernel[1]
    in_px, out_px = cost.input_hw[0] * cost.input_hw[1], cost.output_hw[0] * cost.output_hw[1]
    cin, cout = cost.in_channels, cost.out_channels
    params = rank * (cin * kk + cout) if scheme == "spatial_first" else rank * (cin + cout * kk)
    if cost.kind == "deconv":
        macs = in_px * cin * rank * kk + out_px * rank * cout if scheme == "spatial_first" else in_px * rank * (cin + cout * kk)
    else:
        macs = out_px * rank * (cin * kk + cout) if scheme == "spatial_first" else in_px * cin * rank + out_px * rank * cout * kk
    return macs, params


def rank_for_energy(singular_values: torch.Tensor, energy: float, multiple: int) -> int:
    share = torch.cumsum(singular_values**2, 0) / (singular_values**2).sum().clamp_min(1e-30)
    rank = int(torch.searchsorted(share, torch.tensor(energy - 1e-12, dtype=share.dtype)).item()) + 1
    rank = -(-rank // multiple) * multiple if multiple > 1 else rank
    return min(rank, len(singular_values))


# --- planning -------------------------------------------------------------------------------------------
def _factorizable(model: nn.Module, input_size: int) -> list[tuple[nn.Module, LayerCost]]:
    modules = dict(model.named_modules())
    return [(modules[cost.name], cost) for cost in layer_costs(model, input_size)
            if isinstance(modules[cost.name], (nn.Conv2d, nn.ConvTranspose2d))]


def _candidates(model: nn.Module, config: SvdConfig, responses: dict[str, Responses] | None = None,
                ) -> list[tuple[nn.Module, LayerCost, dict[str, torch.Tensor]]]:
    found = []
    for layer, cost in _factorizable(model, config.input_size):
        if responses is None:
            spectra = {s: torch.linalg.svdvals(weight_matrix(layer, s)) for s in SCHEMES}
        else:  # the output's spectrum, capped at the weight's rank (beyond it the variance is rounding)
            spectrum = responses[cost.name].principal()[0]
            spectra = {"spatial_first": spectrum[: min(weight_matrix(layer, "spatial_first").shape)]}
        found.append((layer, cost, spectra))
    return found


def _plan_layer(layer: nn.Module, cost: LayerCost, spectra: dict, config: SvdConfig, energy: float) -> LayerPlan:
    shape = tuple(layer.weight.shape)
    plan = LayerPlan(cost.name, cost.kind, shape, min(len(v) for v in spectra.values()),
                     macs_before=cost.macs, params_before=cost.params, macs_after=cost.macs, params_after=cost.params)
    if any(fnmatch.fnmatchcase(cost.name, pattern) for pattern in config.skip):
        plan.status = "kept: matches a skip pattern"
        return plan
    if getattr(layer, "groups", 1) != 1:
        plan.status = "kept: grouped conv"
        return plan
    best = None
    for scheme, s in spectra.items():
        rank = rank_for_energy(s, energy, config.rank_multiple)
        macs, params = pair_cost(cost, scheme, rank)
        kept = float((s[:rank] ** 2).sum() / (s**2).sum().clamp_min(1e-30))
        if best is None or macs < best[1]:
            best = (scheme, macs, params, rank, kept)
    scheme, macs, params, rank, kept = best
    plan.full_rank = len(spectra[scheme])
    if macs > (1.0 - config.min_saving) * cost.macs:
        plan.status = f"kept: rank {rank} of {plan.full_rank} would save {1 - macs / cost.macs:.0%} of its MACs"
        return plan
    bias = 0 if layer.bias is None else layer.bias.numel()
    plan.rank, plan.scheme, plan.energy_kept = rank, scheme, kept
    plan.macs_after, plan.params_after = macs, params + bias
    plan.status = "factorized"
    return plan


def plan_ranks(model: nn.Module, config: SvdConfig, responses: dict[str, Responses] | None = None,
               ) -> tuple[list[LayerPlan], float]:
    """Per-layer plan, and the energy it used (bisected for a global target)."""
    candidates = _candidates(model, config, responses)

    def plans_at(energy: float) -> list[LayerPlan]:
        return [_plan_layer(layer, cost, spectra, config, energy) for layer, cost, spectra in candidates]

    if config.target is None:
        return plans_at(config.energy), config.energy
    key = "macs" if config.target == "macs" else "params"
    full = sum(getattr(p, f"{key}_before") for p in plans_at(1.0))
    goal = config.target_ratio * full
    low, high = 0.0, 1.0  # the total is monotone in the energy: bisect for the largest energy within the goal
    for _ in range(40):
        middle = (low + high) / 2
        if sum(getattr(p, f"{key}_after") for p in plans_at(middle)) <= goal:
            low = middle
        else:
            high = middle
    return plans_at(low), low


def apply_plan(model: nn.Module, plan: list[dict], from_weights: bool = True,
               responses: dict[str, Responses] | None = None) -> nn.Module:
    """Replace the named layers in place by (reduce, expand) pairs: by SVD of their weights (or of their
    `responses`), or as empty structure (`from_weights=False`) to load a saved factorized state dict into."""
    modules = dict(model.named_modules())
    for entry in plan:
        name = entry["name"]
        if name not in modules:
            raise PrnetInputError(f"SVD plan names layer {name!r}, which this model does not have")
        layer = modules[name]
        fit = None if responses is None else responses[name]
        pair = factorize(layer, entry["scheme"], entry["rank"], fit) if from_weights else factorized_pair(
            layer, entry["scheme"], entry["rank"])
        parent_name, _, child = name.rpartition(".")
        setattr(modules[parent_name] if parent_name else model, child, pair)
    return model


def apply(model: nn.Module, config: SvdConfig, forward_loop: Callable[[nn.Module], None] | None = None) -> SvdResult:
    """Factorize a COPY of `model` (the input is left untouched). `fit="responses"` needs `forward_loop(model)`
    (prnet.compress.data.calibration_loop) to run the calibration images once."""
    responses = None
    if config.fit == "responses":
        if forward_loop is None:
            raise PrnetInputError("SVD fit 'responses' needs calibration images: pass forward_loop")
        names = [cost.name for _, cost in _factorizable(model, config.input_size)]
        responses = collect_responses(model, forward_loop, names)
    layers, energy = plan_ranks(model, config, responses)
    result = SvdResult(model=None, layers=layers, config=config, energy_used=energy)
    result.model = apply_plan(copy.deepcopy(model), result.plan, responses=responses)
    if not result.plan:
        result.notes.append("no layer was worth factorizing at these settings")
    if config.target is not None:
        key = "macs" if config.target == "macs" else "params"
        reached = sum(getattr(p, f"{key}_after") for p in layers) / max(1, sum(getattr(p, f"{key}_before") for p in layers))
        if reached > config.target_ratio + 0.01:
            result.notes.append(f"{key} target {config.target_ratio:.2f} not reachable: {reached:.2f} at the lowest "
                                f"ranks (min_saving {config.min_saving}, rank multiple {config.rank_multiple})")
    return result
