"""Synthetic data speed and storage: samples/s of `prnet data synth` (goal: >= 20/s with 2 workers) and bytes
per sample for each position-map encoding, with the landmark error each encoding costs.

    python -m prnet.bench.synth_speed [--n 40] [--rounds 2] [--stages 12]

1. stages: one process, medians over `--stages` samples: render (shape, pose, shading, raster, background,
   occluders, degradations, position map) and write (fixed-point encode, landmarks from the stored map,
   JPEG + compressed .npz, atomic renames).
2. end to end: generate_dataset into a fresh temporary directory with 1 and with 2 workers, alternating for
   `--rounds` rounds (the machine is shared: compare the medians side by side, not with other runs).
3. storage: the same maps encoded as uint16-delta (default), uint16-fixed and float32; mean KiB per sample
   and the max / mean landmark error (px, 256x256 crop) of reading landmarks from the stored map.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _stages(count: int) -> dict[str, float]:
    from prnet.data.synth.generate import limit_blas_threads, synth_manifest, write_synth_sample
    from prnet.data.synth.render import SynthConfig, load_assets, render_sample

    limit_blas_threads()
    assets = load_assets()
    render_sample(0, 0, SynthConfig(), assets)  # compile / warm caches
    render_ms, total_ms, cpu_ms = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        from prnet.data.format import create_dataset

        manifest = create_dataset(tmp, assets.layout, synth_manifest(0, SynthConfig(), assets.layout.layout_id))
        for i in range(count):
            t0 = time.perf_counter()
            render_sample(i, 0, SynthConfig(), assets)
            t1 = time.perf_counter()
            c1 = time.process_time()
            write_synth_sample(Path(tmp), manifest, i, 0, SynthConfig())  # renders again, then writes
            t2 = time.perf_counter()
            cpu_ms.append((time.process_time() - c1) * 1e3)
            render_ms.append((t1 - t0) * 1e3)
            total_ms.append((t2 - t1) * 1e3)
    render = statistics.median(render_ms)
    return {"render_ms": render, "write_ms": statistics.median(total_ms) - render,
            "render+write_ms": statistics.median(total_ms), "render+write_cpu_ms": statistics.median(cpu_ms)}


def _end_to_end(n: int, rounds: int) -> tuple[dict[int, list[float]], float]:
    from prnet.data.synth.generate import generate_dataset

    rates: dict[int, list[float]] = {1: [], 2: []}
    sizes = []
    for _ in range(rounds):
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                report = generate_dataset(Path(tmp) / "ds", n, seed=1, workers=workers)
                wall = time.perf_counter() - start
                rates[workers].append(report.written / wall)
                sizes.append(report.bytes_per_sample)
    return rates, float(np.mean(sizes))


def _storage(count: int) -> list[tuple[str, float, float, float, float]]:
    from prnet.data.format import Manifest, decode_posmap, encode_posmap
    from prnet.data.synth.render import SynthConfig, load_assets, render_sample
    from prnet.geometry.posmap import landmarks_from_posmap

    assets = load_assets()
    samples = [render_sample(i, 2, SynthConfig(), assets) for i in range(count)]
    rows = []
    for encoding in ("uint16-delta", "uint16-fixed", "float32"):
        manifest = Manifest(256, assets.layout.layout_id, map_encoding=encoding)
        sizes, errors = [], []
        for s in samples:
            stored = encode_posmap(s.posmap, manifest)
            buffer = io.BytesIO()
            np.savez_compressed(buffer, posmap=stored, landmarks=s.landmarks, params=np.array("{}"))
            sizes.append(buffer.tell())
            decoded = landmarks_from_posmap(decode_posmap(stored, manifest), assets.layout)
            errors.append(np.abs(decoded[:, :2] - s.landmarks[:, :2]).max())
        rows.append((encoding, float(np.mean(sizes)) / 1024, 0.0, float(np.max(errors)), float(np.mean(errors))))
    import cv2

    jpeg = np.mean([len(cv2.imencode(".jpg", s.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1]) for s in samples])
    return [(name, kib, jpeg / 1024, worst, mean) for name, kib, _, worst, mean in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40, help="samples per end-to-end run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating 1-worker / 2-worker rounds")
    parser.add_argument("--stages", type=int, default=12, help="samples for the per-stage medians")
    args = parser.parse_args()

    stages = _stages(args.stages)
    print("per sample, one process (median):  " + ",  ".join(f"{k} {v:.0f}" for k, v in stages.items()))
    print(f"  -> CPU-bound estimate on 2 idle cores: {2000 / stages['render+write_cpu_ms']:.1f} samples/s")
    rates, disk_bytes = _end_to_end(args.n, args.rounds)
    for workers, values in rates.items():
        print(f"end to end, {workers} worker(s): median {statistics.median(values):.1f} samples/s "
              f"(runs: {', '.join(f'{v:.1f}' for v in values)}; {args.n} samples each, incl. pool start)")
    print(f"2 workers / 1 worker: {statistics.median(rates[2]) / statistics.median(rates[1]):.2f}x")
    print(f"on disk as written (uint16-delta, zlib level 1, JPEG q95): {disk_bytes / 1024:.1f} KiB per sample "
          f"(100k samples: {disk_bytes * 1e5 / 1024**3:.1f} GiB)")
    print("map encodings compared with np.savez_compressed (zlib level 6); landmark error of the stored map "
          "(max over the 68 points; worst / mean over samples):")
    for name, kib, jpeg, worst, mean in _storage(args.stages):
        print(f"  {name:>13}: .npz {kib:6.1f} KiB + JPEG {jpeg:5.1f} KiB = {kib + jpeg:6.1f} KiB "
              f"(100k samples: {(kib + jpeg) * 1e5 / 1024**2:5.1f} GiB); landmark error max {worst:.4f} px, "
              f"mean {mean:.4f} px")


if __name__ == "__main__":
    main()
