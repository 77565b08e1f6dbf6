"""Quality of the UV mirror correspondence (prnet.geometry.mirror) on the packaged template, per map size.

    python -m scripts.measure.mirror_quality --sizes 128 256

Prints, over the layout's face pixels: the build time, the involution error |m(m(p)) - p| in pixels, and the 3D
label error |R T(m(p)) - T(p)| in mesh units (~mm; T the template map, R the reflection in the symmetry plane)
of the mirror map and of the plain u-flip u -> S-1-u. Writes nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from prnet.geometry.layout import default_layout
from prnet.geometry.mesh import load_face_mesh
from prnet.geometry.mirror import mirror_map, reflect, symmetry_plane, template_map
from prnet.geometry.posmap import bilinear_sample


def stats(values: np.ndarray) -> str:
    median, p90, top = np.percentile(values, [50, 90, 100])
    return f"median {median:.3f}  p90 {p90:.3f}  max {top:.3f}"


def measure(size: int) -> None:
    mesh = load_face_mesh()
    tick = time.perf_counter()
    mirror = mirror_map(mesh, size)
    build_s = time.perf_counter() - tick
    plane = symmetry_plane(mesh)
    template, _ = template_map(mesh, size)
    rows, cols = np.nonzero(default_layout(size).face_mask)
    pixels = np.stack([cols, rows], axis=1).astype(np.float64)
    partners = mirror[rows, cols].astype(np.float64)
    involution = np.linalg.norm(bilinear_sample(mirror, partners) - pixels, axis=1)
    u_flip = np.stack([size - 1 - cols, rows], axis=1).astype(np.float64)

    def label_error(points: np.ndarray) -> np.ndarray:
        return np.linalg.norm(reflect(bilinear_sample(template, points), plane) - template[rows, cols], axis=1)

    print(f"{size} px: plane x = {plane:.3f}, built in {build_s:.2f} s, {len(pixels)} face pixels, "
          f"{np.mean(involution > 0.5):.2%} with involution error > 0.5 px")
    print(f"  involution error (px)    {stats(involution)}")
    print(f"  label error, mirror map  {stats(label_error(partners))}")
    print(f"  label error, plain u-flip {stats(label_error(u_flip))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    for size in parser.parse_args().sizes:
        measure(size)


if __name__ == "__main__":
    main()
