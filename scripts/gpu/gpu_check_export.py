"""GPU checks for `prnet export` (run from the repo root on a machine with an NVIDIA GPU; see gpu_check_export.sh).

1. the deployment form on CUDA: max |deploy - PRNet| in px with TF32 off (must be < 1e-3) and on (cuDNN's default);
2. PyTorch latency on the GPU, PRNet vs deployment form, batch 1 and 16, side by side;
3. ONNX Runtime's CUDA provider on the deployment-form ONNX, when that onnxruntime has it;
4. `prnet export tensorrt` FP16 and FP32 (parity + latency) when tensorrt is installed; else it must exit 3 with
   a message naming what is missing, which this script prints.
Writes a JSON summary to $OUT/gpu_check_export.json (or /tmp)."""
import json, os, subprocess, sys, time

import numpy as np
import torch

from prnet.export.deploy import to_deployment
from tests.export_fixtures import make_checkpoint, randomize_batchnorm
from prnet.model import create_model

summary = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
print(subprocess.run("nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv", shell=True,
                     capture_output=True, text=True).stdout, flush=True)
print(summary, flush=True)
if not torch.cuda.is_available():
    sys.exit("no CUDA GPU visible to torch: nothing to check")
out_dir = os.environ.get("OUT", "/tmp")
work = "/tmp/prnet_export_gpu"
os.makedirs(work, exist_ok=True)


def timed(fn, runs=30):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start = time.perf_counter(); fn(); torch.cuda.synchronize(); times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


# 1-2. deployment form on CUDA (full-size PRNet, non-trivial BN statistics)
torch.manual_seed(0)
model = randomize_batchnorm(create_model("prnet"), torch.rand(2, 3, 256, 256), damping=2.0).cuda()
images = torch.rand(4, 3, 256, 256, device="cuda")
for tf32 in (False, True):
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
    deployed = to_deployment(model)
    with torch.no_grad():
        diff = (deployed(images) - model(images) * model.config.output_scale).abs()
    summary[f"deploy_vs_prnet_cuda_px_tf32_{tf32}"] = [float(diff.max()), float(diff.mean())]
    print(f"deploy vs PRNet on CUDA (TF32 {tf32}): max {float(diff.max()):.2e} px, mean {float(diff.mean()):.2e}",
          flush=True)
torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
for batch in (1, 16):
    x = torch.rand(batch, 3, 256, 256, device="cuda")
    with torch.no_grad():
        t_orig = timed(lambda: model(x)); t_dep = timed(lambda: deployed(x))
        t_orig2 = timed(lambda: model(x))  # again, interleaved, to see drift
    summary[f"torch_fp32_ms_batch{batch}"] = {"prnet": [t_orig, t_orig2], "deployed": t_dep}
    print(f"torch FP32 batch {batch}: PRNet {t_orig:.2f}/{t_orig2:.2f} ms, deployment form {t_dep:.2f} ms", flush=True)

# 3. ONNX Runtime CUDA provider
ckpt = make_checkpoint(__import__("pathlib").Path(work) / "full.pt", name="prnet", input_size=256)
import onnxruntime as ort

summary["ort_providers"] = ort.get_available_providers()
print("onnxruntime", ort.__version__, ort.get_available_providers(), flush=True)
if "CUDAExecutionProvider" in ort.get_available_providers():
    from prnet.export.api import export_model

    result = export_model("onnx", ckpt, f"{work}/full.onnx", runner_options={
        "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}, tolerance_px=(0.5, 0.05))
    summary["ort_cuda"] = [result.max_deviation_px, result.mean_deviation_px, result.latency_ms]
    print("ORT CUDA:", result, flush=True)

# 4. TensorRT through the CLI (exit 3 with a clear message where tensorrt is missing)
for precision in ("fp16", "fp32"):
    cmd = [sys.executable, "-m", "prnet", "export", "tensorrt", "-m", str(ckpt), "-p", precision, "--batch", "1,4,16",
           "-o", f"{work}/full-{precision}.engine"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    summary[f"tensorrt_{precision}"] = {"exit": run.returncode, "output": (run.stdout + run.stderr)[-1500:]}
    print(" ".join(cmd[3:]), "-> exit", run.returncode, "\n", run.stdout[-1500:], run.stderr[-1500:], flush=True)
    if run.returncode == 3:
        break
with open(os.path.join(out_dir, "gpu_check_export.json"), "w") as f:
    json.dump(summary, f, indent=2)
