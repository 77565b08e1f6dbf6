"""Build prnet/assets/face_mesh.npz from the menpo3d 0.8.6 template (run once by maintainers; never at run time).

    python -m scripts.assets.build_face_asset                       # downloads the menpo3d sdist with pip
    python -m scripts.assets.build_face_asset --sdist menpo3d-0.8.6.tar.gz

Steps: read `menpo3d/data/template.ply` (binary little-endian PLY, ~micrometres) and `template.ljson`
(68 iBUG landmark points) out of the sdist with tarfile; convert to mm; close the 75-edge mouth opening
with a fan around one added vertex so the mesh is a disk; take the nearest vertex of each landmark point
(checked: all distinct, all within 2 mm); label regions (see prnet.geometry.mesh); flatten it with the
recipe in prnet.geometry.tutte; write one compressed .npz. The template's vertex colours are an error
heat map, not skin, so the asset carries a plain skin albedo instead.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.path import Path as Polygon
from scipy.spatial import cKDTree


from prnet.geometry import mesh as M
from prnet.geometry.tutte import DEFAULT_MARGIN_MM, count_flips, flatten_face, geodesic_distance
from prnet.io import write_npz_atomic

SDIST = "menpo3d==0.8.6"
PLY_MEMBER, LJSON_MEMBER = "menpo3d-0.8.6/menpo3d/data/template.ply", "menpo3d-0.8.6/menpo3d/data/template.ljson"
UNITS_TO_MM = 1e-3  # the template is in BFM-like units of about a micrometre
MAX_LANDMARK_DISTANCE_MM = 2.0
FOREHEAD_ABOVE_BROWS_MM = 30.0  # the face region ends on a level line this far above the highest brow point
FACE_GROW_MM = 4.0  # geodesic growth of the outline region, so the jaw-line landmarks lie inside the face
FEATURE_DILATION_MM = {"eyes": 6.0, "nose": 5.0, "mouth": 6.0}
SKIN_RGB, LIP_RGB = (0.80, 0.62, 0.52), (0.70, 0.40, 0.40)


def fetch_sdist(directory: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation", SDIST, "-d", str(directory)]
    subprocess.run(cmd, check=True)
    return next(directory.glob("menpo3d-0.8.6.tar.gz"))


def read_ply(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Binary little-endian PLY with float xyz + uchar rgba vertices and uchar-count int triangles."""
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise ValueError("template.ply is not binary little-endian")
    counts = {line.split()[1]: int(line.split()[2]) for line in header if line.startswith("element")}
    vertex_type = np.dtype([("xyz", "<f4", 3), ("rgba", "u1", 4)])
    face_type = np.dtype([("n", "u1"), ("ids", "<i4", 3)])
    vertices = np.frombuffer(data, vertex_type, counts["vertex"], offset=end)
    faces = np.frombuffer(data, face_type, counts["face"], offset=end + vertices.nbytes)
    if not (faces["n"] == 3).all() or end + vertices.nbytes + faces.nbytes != len(data):
        raise ValueError("template.ply: unexpected face list or trailing bytes")
    return vertices["xyz"].astype(np.float64), faces["ids"].astype(np.int64)


def close_mouth(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Fan the inner (shorter) boundary loop around a new vertex at its centroid."""
    loops = sorted(M.boundary_loops(triangles), key=len)
    if len(loops) != 2:
        raise ValueError(f"expected 2 boundary loops (outer + mouth), found {len(loops)}")
    mouth = loops[0]
    centre = len(vertices)
    # boundary edges run a->b inside their triangle, so the filling triangle runs b->a
    fan = np.stack([np.roll(mouth, -1), mouth, np.full_like(mouth, centre)], axis=1)
    vertices = np.vstack([vertices, vertices[mouth].mean(axis=0)])
    return vertices, np.vstack([triangles, fan]), centre


def _inside(points: np.ndarray, polygon: np.ndarray, dilate: float = 0.0) -> np.ndarray:
    """Points (xy) inside the polygon or within `dilate` of its border."""
    inside = Polygon(polygon).contains_points(points)
    if dilate > 0:
        a, b = polygon, np.roll(polygon, -1, axis=0)
        ab = b - a
        t = np.clip(np.einsum("pkj,kj->pk", points[:, None] - a, ab) / np.einsum("kj,kj->k", ab, ab), 0, 1)
        nearest = a + t[..., None] * ab
        inside |= np.linalg.norm(points[:, None] - nearest, axis=2).min(axis=1) <= dilate
    return inside


def _convex_hull(points: np.ndarray) -> np.ndarray:
    from scipy.spatial import ConvexHull

    return points[ConvexHull(points).vertices]


def _surface_outline(vertices: np.ndarray, triangles: np.ndarray, landmarks: np.ndarray, landmark_ids: np.ndarray):
    """Vertex ids of a closed edge path: jaw landmarks 0-16, then back over the forehead on a level line
    FOREHEAD_ABOVE_BROWS_MM above the highest brow point (the front-most vertex under each brow point's x),
    linked by shortest edge paths."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra

    brows = landmarks[26:16:-1, :2].copy()  # right to left, moved up onto one level line (no dip mid-forehead)
    brows[:, 1] = landmarks[17:27, 1].max() + FOREHEAD_ABOVE_BROWS_MM
    forehead = []
    for point in brows:
        near = np.flatnonzero(np.linalg.norm(vertices[:, :2] - point, axis=1) < 3.0)
        forehead.append(near[np.argmax(vertices[near, 2])])
    stops = np.concatenate([landmark_ids[0:17], forehead, landmark_ids[:1]])
    e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    n = len(vertices)
    length = np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1)
    graph = sp.coo_matrix((length, (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    path = []
    for a, b in zip(stops[:-1], stops[1:]):
        _, previous = dijkstra(graph, directed=False, indices=a, return_predecessors=True)
        node = b
        while node != a:
            path.append(node)
            node = previous[node]
    return np.array(path)


def label_regions(vertices: np.ndarray, triangles: np.ndarray, landmarks: np.ndarray, landmark_ids: np.ndarray):
    """REGION_* per vertex. Face: inside a closed surface path through the jaw-line landmarks and over the
    forehead, grown FACE_GROW_MM (geodesic). Eyes, nose, mouth: dilated landmark hulls in the frontal
    (x, y) projection, within the face."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    n = len(vertices)
    outline = np.zeros(n, bool)
    outline[_surface_outline(vertices, triangles, landmarks, landmark_ids)] = True
    e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    e = e[~outline[e].any(axis=1)]
    _, comp = connected_components(sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)), directed=False)
    face = (comp == comp[landmark_ids[30]]) | outline
    face = geodesic_distance(vertices, triangles, face, limit=FACE_GROW_MM) <= FACE_GROW_MM
    regions = np.where(face, M.REGION_FACE, M.REGION_OUTSIDE).astype(np.uint8)
    xy, lxy = vertices[:, :2], landmarks[:, :2]
    features = [
        (_convex_hull(lxy[36:42]), FEATURE_DILATION_MM["eyes"]),
        (_convex_hull(lxy[42:48]), FEATURE_DILATION_MM["eyes"]),
        (_convex_hull(lxy[27:36]), FEATURE_DILATION_MM["nose"]),
        (_convex_hull(lxy[48:60]), FEATURE_DILATION_MM["mouth"]),
    ]
    for hull, dilate in features:
        regions[face & _inside(xy, hull, dilate)] = M.REGION_EYES_NOSE_MOUTH
    regions[landmark_ids] = M.REGION_LANDMARK
    return regions


def build(sdist: Path, margin_mm: float) -> M.FaceMesh:
    with tarfile.open(sdist) as tar:
        ply = tar.extractfile(PLY_MEMBER).read()
        ljson = json.loads(tar.extractfile(LJSON_MEMBER).read())
    vertices, triangles = read_ply(ply)
    vertices *= UNITS_TO_MM
    landmarks = np.asarray(ljson["groups"]["LJSON"]["landmarks"]["points"], dtype=np.float64) * UNITS_TO_MM
    if landmarks.shape != (68, 3):
        raise ValueError(f"template.ljson: expected 68 3D landmarks, got {landmarks.shape}")
    vertices, triangles, mouth_vertex = close_mouth(vertices, triangles)
    vertices = vertices.astype(np.float32).astype(np.float64)  # as stored, so `prnet data uv` rebuilds it exactly
    M.check_disk(triangles, what="closed template")
    distance, landmark_ids = cKDTree(vertices[:mouth_vertex]).query(landmarks)
    if distance.max() > MAX_LANDMARK_DISTANCE_MM or len(set(landmark_ids.tolist())) != 68:
        raise ValueError(f"landmark vertices: max distance {distance.max():.2f} mm, {len(set(landmark_ids))} distinct")
    print(f"landmark vertex distance: {distance.min():.2f}-{distance.max():.2f} mm (mean {distance.mean():.2f})")
    regions = label_regions(vertices, triangles, landmarks, landmark_ids)
    center_x = float(vertices[landmark_ids, 0].mean())  # what `prnet data uv` uses to rebuild the layout
    uv, layout = flatten_face(vertices, triangles, regions >= M.REGION_FACE, center_x, margin_mm)
    print(f"layout: {layout.sum()} of {len(triangles)} triangles, flips {count_flips(uv, triangles[layout])}")
    colors = np.tile(np.float32(SKIN_RGB), (len(vertices), 1))
    lips = _inside(vertices[:, :2], _convex_hull(landmarks[48:60, :2]), 1.0) & (regions > 0)
    colors[lips] = LIP_RGB
    mesh = M.FaceMesh(
        vertices=vertices.astype(np.float32),
        triangles=triangles.astype(np.int32),
        landmark_ids=landmark_ids.astype(np.int32),
        regions=regions,
        uv=uv.astype(np.float32),
        layout_triangles=layout,
        colors=colors,
        mouth_fill_vertex=mouth_vertex,
    )
    M.validate_face_mesh(mesh, source="built mesh")
    return mesh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sdist", type=Path, help="menpo3d-0.8.6.tar.gz (downloaded with pip when omitted)")
    parser.add_argument("--out", type=Path, default=M.ASSET_PATH)
    parser.add_argument("--margin-mm", type=float, default=DEFAULT_MARGIN_MM)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.sdist or fetch_sdist(Path(tmp))
        mesh = build(sdist, args.margin_mm)
    write_npz_atomic(args.out, **M.face_mesh_arrays(mesh))
    counts = np.bincount(mesh.regions, minlength=4)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): {mesh.num_vertices} vertices, "
          f"{len(mesh.triangles)} triangles, regions {dict(zip(M.REGION_NAMES, counts.tolist()))}")


if __name__ == "__main__":
    main()
