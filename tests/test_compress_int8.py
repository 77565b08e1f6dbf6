import numpy as np
import onnx
import pytest
import torch
from torch import nn

from prnet.compress import fp16, int8, qat
from prnet.compress.data import Batch
from prnet.compress.distill import DistillConfig, finetune
from prnet.compress.int8 import Int8Config
from prnet.compress.measure import smooth_images
from tests.compress_fixtures import awake_model
from prnet.export.deploy import to_deployment
from prnet.export.parity import FLOAT16_EPS, check_parity, quantization_tolerance, rounding_tolerance
from prnet.io import PrnetInputError

SIZE = 64


@pytest.fixture(scope="module")
def deployed():
    return to_deployment(awake_model(SIZE))


@pytest.fixture(scope="module")
def images():
    return smooth_images(6, SIZE, seed=4)


def loop_over(images):
    def forward_loop(model):
        for chunk in images.split(3):
            model(chunk)
    return forward_loop


def ort(path):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"image": x})[0]


@pytest.mark.parametrize("activations", ["u8", "s8"])
def test_int8_qdq_keeps_input_and_thin_convs_float(deployed, images, tmp_path, activations):
    result = int8.apply(deployed, Int8Config(calibration_count=6, activations=activations), loop_over(images),
                        tmp_path / "m.int8.onnx")
    assert result.calibration_images == 6
    assert "/stem/stem.1/Conv" in result.float_convs
    assert any("decoder.16" in name for name in result.float_convs)
    assert len(result.quantized_convs) > 50 and len(result.float_convs) == 4
    graph = onnx.load(str(result.path)).graph
    assert sum(n.op_type == "QuantizeLinear" for n in graph.node) > 50
    producer = {out: n.op_type for n in graph.node for out in n.output}
    assert producer["posmap"] == "Mul"  # the pixel output head stays float (u8 would be 1.1 px steps)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    zero_points = [inits[n.input[2]] for n in graph.node if n.op_type == "QuantizeLinear" and n.input[2] in inits]
    dtypes = {z.dtype for z in zero_points}
    assert dtypes == ({np.dtype(np.uint8)} if activations == "u8" else {np.dtype(np.int8)})
    if activations == "s8":  # TensorRT: symmetric activations
        assert all(int(z.max()) == 0 and int(z.min()) == 0 for z in zero_points)
    out = ort(result.path)(images[:2].numpy())  # a random PRNet is chaotic (0.1% noise moves it by pixels):
    assert out.shape == (2, 3, SIZE, SIZE) and np.isfinite(out).all()  # accuracy is tested on a tame net below
    assert not np.array_equal(out, deployed(images[:2]).numpy())


class TameNet(nn.Module):
    """A shallow conv net (not chaotic like a random deep one), named like PRNet's deployment form."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 16, 1), nn.ReLU())
        self.tail = nn.Conv2d(16, 3, 3, padding=1)

    def forward(self, x):
        return self.tail(self.body(self.stem(x)))


def test_int8_is_close_to_float_on_a_tame_network(images, tmp_path):
    model = TameNet().eval()
    result = int8.apply(model, Int8Config(calibration_count=6), loop_over(images), tmp_path / "tame.onnx")
    assert len(result.quantized_convs) == 2 and len(result.float_convs) == 2
    reference = model(images[:2]).detach().numpy()
    quantized = [name.split("/")[-2] for name in result.quantized_convs]  # ONNX "/body/body.0/Conv" -> "body.0"
    tolerance = quantization_tolerance(model, images[:2], images, quantized)  # u8 / s8 steps from the calibration
    _, error = check_parity(ort(result.path)(images[:2].numpy()), reference, tolerance, "ORT INT8")
    assert error > 0


def test_int8_keep_float_by_name_and_bad_config(deployed, images, tmp_path):
    config = Int8Config(calibration_count=3, keep_float=("stem.*", "decoder.13.*"), calibration="percentile")
    result = int8.apply(deployed, config, loop_over(images), tmp_path / "m.onnx")
    assert any("decoder.13" in n for n in result.float_convs) and len(result.float_convs) == 5
    with pytest.raises(PrnetInputError):
        Int8Config(calibration="kl")
    with pytest.raises(PrnetInputError):
        int8.apply(deployed, Int8Config(), lambda model: None, tmp_path / "none.onnx")


def test_qat_wraps_what_int8_quantizes_and_trains(images):
    student = to_deployment(awake_model(SIZE))
    teacher = to_deployment(awake_model(SIZE))
    config = qat.QatConfig(steps=2)
    qat.apply(student, config, loop_over(images))
    wrapped = [n for n, m in student.named_modules() if isinstance(m, qat.FakeQuantConv)]
    assert "stem.1" not in wrapped and not any(n.startswith("decoder.16") for n in wrapped)
    assert len(wrapped) == sum(isinstance(m, nn.Conv2d) and m.groups == 1 for m in teacher.modules()) - 4
    fake = student(images[:2])
    assert not torch.equal(fake, teacher(images[:2]))
    batches = iter([Batch(images[:2], torch.zeros(2, 3, SIZE, SIZE), np.zeros((2, 68, 3), np.float32))] * 2)
    history = finetune(student, teacher, batches, np.ones((SIZE, SIZE), np.float32), 70.4,
                       DistillConfig(steps=2, batch_size=2, lr=1e-5, log_every=1))
    assert len(history) == 2 and all(np.isfinite(h["loss"]) for h in history)
    qat.strip(student)
    assert not any(isinstance(m, qat.FakeQuantConv) for m in student.modules())
    assert student(images[:1]).shape == (1, 3, SIZE, SIZE)


@pytest.mark.parametrize("network", ["prnet", "tame"])
def test_fp16_onnx_runs_with_float32_io(deployed, images, tmp_path, network):
    module = deployed if network == "prnet" else TameNet().eval()
    path = fp16.apply(module, fp16.Fp16Config(), tmp_path / "m.fp16.onnx", SIZE)
    model = onnx.load(str(path))
    weights = [i for i in model.graph.initializer if len(i.dims) == 4]
    assert weights and all(i.data_type == onnx.TensorProto.FLOAT16 for i in weights)
    out = ort(path)(images[:2].numpy())
    reference = module(images[:2]).detach().numpy()
    assert out.dtype == np.float32 and out.shape == reference.shape
    if network == "tame":  # the random PRNet is chaotic: FP16 rounding moves it by pixels
        check_parity(out, reference, rounding_tolerance(module, images[:2], eps=FLOAT16_EPS), "ORT fp16")


@pytest.mark.parametrize("backend", [pytest.param("xnnpack", marks=pytest.mark.slow), "x86"])  # executorch import: ~15 s
def test_pt2e_quantizes_all_but_the_float_layers(images, backend):
    from prnet.compress import pt2e

    model = TameNet().eval()
    quantized = pt2e.apply(model, pt2e.Pt2eConfig(backend=backend), loop_over(images), input_size=SIZE)
    assert pt2e.float_module_names(model, pt2e.Pt2eConfig()) == ["stem.0", "tail"]
    ops = [str(n.target) for n in quantized.graph.nodes if n.op == "call_function"]
    assert any("quantize_per_tensor" in op for op in ops) and any("dequantize_per_channel" in op for op in ops)
    with torch.no_grad():
        reference, out = model(images[:2]), quantized(images[:2])
    float_layers = pt2e.float_module_names(model, pt2e.Pt2eConfig())
    int8_layers = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and n not in float_layers]
    # asymmetric 8-bit activations (u8 on x86, s8 with a zero point on XNNPACK): the same step, range / 255
    tolerance = quantization_tolerance(model, images[:2], images, int8_layers)
    _, error = check_parity(out, reference, tolerance, f"PT2E INT8 ({backend})")
    assert error > 0
    with pytest.raises(PrnetInputError):
        pt2e.Pt2eConfig(backend="coreml")


def test_sensitivity_ranks_every_quantized_block():
    from prnet.compress.data import Batch
    from prnet.compress.sensitivity import block_of, int8_sensitivity
    from tests.train_fixtures import tiny_layout

    model = to_deployment(awake_model(32))
    images = smooth_images(4, 32, seed=6)
    batches = [Batch(images, torch.zeros(4, 3, 32, 32), np.zeros((4, 68, 3), np.float32))]
    rows = int8_sensitivity(model, loop_over(images), batches, tiny_layout(32))
    groups = [row["group"] for row in rows]
    assert block_of("decoder.12.phases.3.1") == "decoder.12" and block_of("stem.1") == "stem"
    assert "stem" not in groups and "encoder.0" in groups and "decoder.16" not in groups
    deviations = [row["landmark_deviation_px"] for row in rows]
    assert deviations == sorted(deviations, reverse=True) and deviations[0] > 0
