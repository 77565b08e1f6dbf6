"""GPU check for prnet.runner.TorchRunner, `prnet eval` and `prnet predict` on CUDA: run from the repo root,
`python -m scripts.gpu.gpu_check_predict` (random full PRNet; compares CPU vs CUDA maps, times batch 1 and 16)."""
import subprocess, sys, time, os
print(subprocess.run("nvidia-smi --query-gpu=name,memory.total --format=csv || true", shell=True, capture_output=True, text=True).stdout)
import numpy as np, torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available())
from prnet.checkpoint import LoadedModel, save_checkpoint
from prnet.model import create_model
from prnet.runner import TorchRunner
from tests.predict_fixtures import disk_layout, make_eval_dataset
torch.manual_seed(0)
model = create_model("prnet", input_size=256).eval()
loaded = LoadedModel(model=model, config=model.config, layout=disk_layout(256))
images = np.random.default_rng(0).uniform(0, 1, (5, 256, 256, 3)).astype(np.float32)
cpu = TorchRunner(loaded, device="cpu")(images)
gpu_runner = TorchRunner(loaded, device="auto", batch_size=4)
print("runner", gpu_runner.name)
gpu = gpu_runner(images)
print("max |cpu - cuda| px:", float(np.abs(cpu - gpu).max()), "of range", float(cpu.max()))
for b in (1, 16):
    x = np.random.default_rng(1).uniform(0, 1, (b, 256, 256, 3)).astype(np.float32)
    gpu_runner.batch_size = b
    for _ in range(3): gpu_runner(x)
    ts = []
    for _ in range(20):
        t = time.perf_counter(); gpu_runner(x); ts.append(time.perf_counter() - t)
    print(f"prnet fp32 batch {b}: median {1000*np.median(ts):.2f} ms/call ({b/np.median(ts):.0f} img/s, includes H2D/D2H)")
os.makedirs("/tmp/g", exist_ok=True)
save_checkpoint("/tmp/g/full.pt", model, disk_layout(256))
make_eval_dataset("/tmp/g/data", n=20, size=256)
import cv2
cv2.imwrite("/tmp/g/img.png", np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8))
for cmd in (["eval", "-m", "/tmp/g/full.pt", "--data", "/tmp/g/data", "-o", "/tmp/g/eval", "--device", "cuda"],
            ["predict", "/tmp/g/img.png", "-m", "/tmp/g/full.pt", "-o", "/tmp/g/pred", "--bbox", "200,100,400,350", "--device", "cuda"]):
    r = subprocess.run([sys.executable, "-m", "prnet", *cmd], capture_output=True, text=True)
    print(" ".join(cmd[:1]), "exit", r.returncode, r.stdout[-800:], r.stderr[-800:])
