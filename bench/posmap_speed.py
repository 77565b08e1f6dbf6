"""Position maps per second for the full face mesh on ONE core (goal: 100/s), and the rasterizer's speed.

    python -m prnet.bench.posmap_speed [--repeats 30] [--batch 16]

Methods, timed interleaved in one process (medians; the machine is shared, so compare ratios):
    cached      prnet.geometry.posmap.position_map: the UV raster is built once, each map is a sparse gather
    cached xB   the same, a batch of B meshes per call (per-map time reported)
    rasterize   numba rasterizer in UV space + barycentric interpolation, from scratch for every map
    image       image-space render of the whole mesh (256x256, z-buffer), what the synthetic renderer does
    numpy       the pure-numpy oracle rasterizer (timed once: it is slow)
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: before numpy / scipy / numba load their thread pools

import argparse  # noqa: E402

import numpy as np  # noqa: E402

from prnet.timing import time_interleaved  # noqa: E402


def _posed(mesh, rng: np.random.Generator) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    from prnet.geometry.posmap import weak_perspective

    angles = rng.uniform([-80, -30, -20], [80, 30, 20])
    rotation = Rotation.from_euler("yxz", angles, degrees=True).as_matrix()
    return weak_perspective(mesh.vertices, rotation, rng.uniform(0.7, 1.0), rng.uniform(100, 156, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()

    from prnet.geometry.layout import default_layout, uv_pixels
    from prnet.geometry.mesh import load_face_mesh
    from prnet.geometry.posmap import position_map
    from prnet.geometry.raster import interpolate, rasterize, rasterize_reference, render

    mesh = load_face_mesh()
    layout = default_layout()
    size = layout.size
    uv_tris = mesh.triangles[mesh.layout_triangles]
    uv_px = uv_pixels(mesh.uv, size)
    rng = np.random.default_rng(0)
    meshes = [_posed(mesh, rng) for _ in range(args.batch)]
    batch = np.stack(meshes)

    def cached():
        position_map(meshes[0])

    def cached_batch():
        position_map(batch)

    def from_scratch():
        interpolate(rasterize(uv_px, uv_tris, size, size), uv_tris, meshes[0])

    def image_space():
        v = meshes[1]
        render(v[:, :2], mesh.triangles, mesh.colors, size, size, depth=v[:, 2])

    methods = {"cached": (cached, 1), f"cached x{args.batch}": (cached_batch, args.batch),
               "rasterize": (from_scratch, 1), "image": (image_space, 1)}
    # one warm-up call each (numba compile / load cache, sampler build), then round-robin rounds
    raw = time_interleaved({name: fn for name, (fn, _) in methods.items()}, args.repeats, args.repeats, warmup=1)
    times = {name: [t / methods[name][1] for t in values] for name, values in raw.items()}
    numpy_s = time_interleaved({"numpy": lambda: rasterize_reference(uv_px, uv_tris, size, size)}, 1, 1, 0)["numpy"][0]

    # correctness next to speed: round trip of the 68 landmarks on every benchmark pose
    from prnet.geometry.posmap import landmarks_from_posmap

    maps = position_map(batch)
    errors = np.linalg.norm(landmarks_from_posmap(maps)[..., :2] - batch[:, mesh.landmark_ids, :2], axis=-1)

    print(f"full mesh: {mesh.num_vertices} vertices, {len(mesh.triangles)} triangles "
          f"({len(uv_tris)} in the UV map), {size}x{size} maps, 1 thread, {args.repeats} interleaved repeats")
    print(f"{'method':<14}{'median ms':>10}{'maps/s':>9}{'vs cached':>10}")
    reference = np.median(times["cached"])
    for name, values in times.items():
        median = float(np.median(values))
        print(f"{name:<14}{median * 1e3:>10.2f}{1 / median:>9.0f}{median / reference:>9.2f}x")
    print(f"{'numpy oracle':<14}{numpy_s * 1e3:>10.0f}{1 / numpy_s:>9.1f}{numpy_s / reference:>9.0f}x  (rasterize only, once)")
    print(f"landmark round trip on {len(batch)} random poses: mean {errors.mean():.3f} px, max {errors.max():.3f} px")
    print(f"face pixels {int(layout.face_mask.sum())} of {size * size}")


if __name__ == "__main__":
    main()
