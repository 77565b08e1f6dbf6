"""Rebuild the UV layout from the face mesh and draw it (what `prnet data uv` writes).

Files written to the output directory:
    layout.npz        the rebuilt UVLayout (UVLayout.load reads it)
    uv_wireframe.png  the flattened mesh's edges (1024 px), coloured by region, landmarks in red
    uv_xyz.png        the map coloured by the mean shape's x, y, z (mapped to R, G, B over their range)
    face_mask.png     white = face pixels (the dense output mesh)
    weight_mask.png   loss weights 16 / 4 / 3 / 0 as grey levels 255 / 150 / 100 / 0
    landmarks.png     the face mask (grey), the 68 landmarks' 2x2 sampling pixels (orange) and exact
                      positions (red), 4x enlarged
    summary.json      face pixels, flipped triangles, coverage, symmetry and agreement with the asset
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prnet.geometry.layout import LAYOUT_NAME, build_layout, uv_pixels
from prnet.geometry.mesh import REGION_EYES_NOSE_MOUTH, REGION_FACE, FaceMesh, load_face_mesh
from prnet.geometry.posmap import UVSampler
from prnet.geometry.tutte import DEFAULT_MARGIN_MM, count_flips, flatten_face
from prnet.io import write_image_atomic, write_json_atomic
from prnet.layout import UVLayout

SYMMETRIC_LANDMARK_PAIRS = [(i, 16 - i) for i in range(8)] + [(17 + i, 26 - i) for i in range(5)] + [
    (31, 35), (32, 34), (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),
    (48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67),
]


def rebuild_uv(mesh: FaceMesh, margin_mm: float = DEFAULT_MARGIN_MM) -> tuple[np.ndarray, np.ndarray]:
    """Recompute the Tutte embedding of the asset's mesh (the same recipe the build script ran)."""
    center_x = float(mesh.vertices[mesh.landmark_ids, 0].astype(np.float64).mean())  # as the build script
    return flatten_face(mesh.vertices, mesh.triangles, mesh.face_vertex_mask, center_x, margin_mm)


def _with_layout(mesh: FaceMesh, uv: np.ndarray, in_map: np.ndarray) -> FaceMesh:
    import dataclasses

    return dataclasses.replace(mesh, uv=uv, layout_triangles=in_map)


def symmetry_error(landmark_uv: np.ndarray, size: int) -> float:
    """Mean pixel distance between each landmark and the mirror image (u -> S-1-u) of its partner."""
    a, b = landmark_uv[[i for i, _ in SYMMETRIC_LANDMARK_PAIRS]], landmark_uv[[j for _, j in SYMMETRIC_LANDMARK_PAIRS]]
    mirrored = np.stack([(size - 1) - b[:, 0], b[:, 1]], axis=1)
    return float(np.linalg.norm(a - mirrored, axis=1).mean())


def _wireframe(mesh: FaceMesh, uv: np.ndarray, triangles: np.ndarray, landmark_uv01: np.ndarray, px: int) -> np.ndarray:
    import cv2

    image = np.full((px, px, 3), 255, np.uint8)
    points = np.round(np.nan_to_num(uv) * (px - 1) * 16).astype(np.int32)  # 4 fractional bits for cv2's subpixel lines
    weakest = mesh.regions[triangles].min(axis=1)
    colours = {0: (170, 170, 170), REGION_FACE: (40, 110, 200), REGION_EYES_NOSE_MOUTH: (30, 150, 60)}
    for region, colour in colours.items():
        selected = triangles[weakest == region] if region < REGION_EYES_NOSE_MOUTH else triangles[weakest >= region]
        polygons = list(points[selected])
        cv2.polylines(image, polygons, True, colour, 1, cv2.LINE_AA, shift=4)
    for u, v in np.round(landmark_uv01 * (px - 1)).astype(int):
        cv2.circle(image, (int(u), int(v)), 5, (220, 20, 20), -1, cv2.LINE_AA)
    return image


def _xyz_picture(mesh: FaceMesh, sampler: UVSampler, covered: np.ndarray) -> np.ndarray:
    v = mesh.vertices.astype(np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    colours = (v - lo) / (hi - lo)
    picture = sampler.render(colours.astype(np.float32))
    picture[~covered] = 0
    return np.round(np.clip(picture, 0, 1) * 255).astype(np.uint8)


def _landmark_picture(layout: UVLayout, factor: int) -> np.ndarray:
    """Face mask in grey; per landmark the 2x2 pixels bilinear sampling reads in orange, the exact UV position
    as a red dot; enlarged `factor` times."""
    import cv2

    from prnet.geometry.layout import landmark_support

    marks = np.repeat((layout.face_mask.astype(np.uint8) * 90 + 40)[..., None], 3, axis=2)
    marks[landmark_support(layout.landmark_uv, layout.size)] = (255, 170, 60)
    marks = np.ascontiguousarray(_enlarge(marks, factor))
    for u, v in layout.landmark_uv:  # pixel centre (u, v) is at factor * (u + 0.5) - 0.5 once enlarged
        centre = (int(round((factor * (u + 0.5) - 0.5) * 16)), int(round((factor * (v + 0.5) - 0.5) * 16)))
        cv2.circle(marks, centre, 2 * 16, (220, 0, 0), -1, cv2.LINE_AA, shift=4)
    return marks


def _enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def write_uv_pictures(out: str | Path, size: int = 256, margin_mm: float = DEFAULT_MARGIN_MM) -> dict:
    """Rebuild the layout, write layout.npz, the pictures and summary.json into `out`; return the summary."""
    out = Path(out)
    mesh = load_face_mesh()
    uv, in_map = rebuild_uv(mesh, margin_mm)
    uv = uv.astype(np.float32)  # stored precision, so an unchanged recipe reproduces the packaged layout
    triangles = mesh.triangles[in_map]
    # another margin is another layout: a different name, so position_map never mixes it with the packaged one
    name = LAYOUT_NAME if margin_mm == DEFAULT_MARGIN_MM else f"{LAYOUT_NAME}-margin{margin_mm:g}mm"
    layout: UVLayout = build_layout(_with_layout(mesh, uv, in_map), size, name=name)
    sampler = UVSampler.from_uv(uv_pixels(uv, size), triangles, size)
    covered = np.zeros((size, size), bool)
    covered[sampler.rows, sampler.cols] = True
    same_triangles = np.array_equal(in_map, mesh.layout_triangles)
    asset_difference = float(np.nanmax(np.abs(uv - mesh.uv))) if same_triangles else None
    summary = {
        "layout": layout.layout_id,
        "size": size,
        "margin_mm": margin_mm,
        "face_pixels": int(layout.face_mask.sum()),
        "covered_pixels": int(covered.sum()),
        "flipped_triangles": count_flips(uv, triangles),
        "triangles_in_map": int(len(triangles)),
        "landmark_symmetry_px": round(symmetry_error(layout.landmark_uv, size), 3),
        "max_uv_difference_from_asset": asset_difference,
    }
    layout.save(out / "layout.npz")
    write_image_atomic(out / "uv_wireframe.png", _wireframe(mesh, uv, triangles, layout.landmark_uv / (size - 1), 1024))
    write_image_atomic(out / "uv_xyz.png", _enlarge(_xyz_picture(mesh, sampler, covered), 2))
    write_image_atomic(out / "face_mask.png", _enlarge(layout.face_mask.astype(np.uint8) * 255, 2))
    grey = {16.0: 255, 4.0: 150, 3.0: 100, 0.0: 0}
    weights = np.zeros((size, size), np.uint8)
    for weight, level in grey.items():
        weights[layout.weight_mask == weight] = level
    write_image_atomic(out / "weight_mask.png", _enlarge(weights, 2))
    write_image_atomic(out / "landmarks.png", _landmark_picture(layout, 4))
    write_json_atomic(out / "summary.json", summary)
    return summary
