"""The face mesh asset: mean shape, disk topology, 68 landmark vertices, region labels and UV coordinates.

`prnet/assets/face_mesh.npz` is built by `scripts/assets/build_face_asset.py` from menpo3d 0.8.6's `template.ply`
and `template.ljson` (BSD-3, see `prnet/assets/LICENSE-menpo3d.txt`; the template appears to derive from
the Basel Face Model, whose own terms users must check). The build closes the mouth opening with a fan
around one added vertex (the last vertex, `mouth_fill_vertex`), so the mesh is a topological disk.

Frame and units of `FaceMesh.vertices`: millimetres, x to the subject's left (image right for a frontal
view), y up, z towards the viewer; the nose tip is near (0, 13, 127).

Region labels (`FaceMesh.regions`, one uint8 per vertex; the PRNet loss weight of each in brackets):
    REGION_OUTSIDE          0  neck, ears, scalp, throat: not part of the face (weight 0)
    REGION_FACE             1  rest of the face: jaw line up to the forehead (weight 3)
    REGION_EYES_NOSE_MOUTH  2  eyes, nose and mouth (weight 4)
    REGION_LANDMARK         3  the 68 landmark vertices themselves (weight 16)
`FaceMesh.face_vertex_mask` (regions >= REGION_FACE) is the face-region vertex mask; the face region is
the area inside a surface path through the jaw-line landmarks 0-16, closed over the forehead on a level
line 30 mm above the highest brow point, grown by 4 mm (geodesic) so the jaw landmarks lie inside it.

UV coordinates (`FaceMesh.uv`, (N, 2) float32 in [0, 1], u to the right, v down, NaN for vertices that
are not in the UV map) come from the Tutte embedding in `prnet.geometry.tutte`; `layout_triangles` marks
the triangles that are in the map (the face plus a geodesic margin).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prnet.io import PrnetInputError, existing_file

REGION_OUTSIDE, REGION_FACE, REGION_EYES_NOSE_MOUTH, REGION_LANDMARK = 0, 1, 2, 3
REGION_NAMES = ("outside", "face", "eyes_nose_mouth", "landmark")

ASSET_PATH = Path(__file__).resolve().parent.parent / "assets" / "face_mesh.npz"
ASSET_FORMAT = "prnet-face-mesh-v1"
_REBUILD_HINT = "reinstall prnet or rebuild it with `python -m scripts.assets.build_face_asset`"


@dataclass(frozen=True, eq=False)
class FaceMesh:
    vertices: np.ndarray  # (N, 3) float32 mean shape, mm, x right / y up / z to the viewer
    triangles: np.ndarray  # (T, 3) int32, counter-clockwise seen from the front; a topological disk
    landmark_ids: np.ndarray  # (68,) int32 vertex ids of the iBUG landmarks, in iBUG order
    regions: np.ndarray  # (N,) uint8 REGION_* labels
    uv: np.ndarray  # (N, 2) float32 in [0, 1] (u right, v down); NaN where the vertex is not in the map
    layout_triangles: np.ndarray  # (T,) bool, triangles that are in the UV map
    colors: np.ndarray  # (N, 3) float32 RGB in [0, 1], a plain skin albedo (lips redder)
    mouth_fill_vertex: int  # the vertex added to close the mouth opening (its triangles fill the mouth)

    @property
    def face_vertex_mask(self) -> np.ndarray:
        """(N,) bool: vertices of the face region (everything that gets a non-zero loss weight)."""
        return self.regions >= REGION_FACE

    @property
    def num_vertices(self) -> int:
        return len(self.vertices)


def is_member(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """np.isin for int64 keys via sort + searchsorted (numpy's hash-based isin/unique are slow here)."""
    pool = np.sort(pool)
    if len(pool) == 0:
        return np.zeros(len(values), bool)
    idx = np.minimum(np.searchsorted(pool, values), len(pool) - 1)
    return pool[idx] == values


def count_distinct(keys: np.ndarray) -> int:
    keys = np.sort(keys)
    return int(len(keys) and 1 + np.count_nonzero(keys[1:] != keys[:-1]))


def boundary_loops(triangles: np.ndarray) -> list[np.ndarray]:
    """Boundary loops of a triangle mesh as ordered vertex-id arrays (each loop follows the triangles'
    orientation). Raises PrnetInputError on non-manifold edges or vertices where a loop branches."""
    triangles = np.asarray(triangles, dtype=np.int64)
    directed = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    n = int(triangles.max()) + 1 if len(triangles) else 0
    key = directed[:, 0] * n + directed[:, 1]
    if count_distinct(key) != len(key):
        raise PrnetInputError("mesh is not an oriented manifold: an edge is used twice in the same direction")
    boundary = directed[~is_member(key, directed[:, 1] * n + directed[:, 0])]
    successor: dict[int, int] = {}
    for a, b in boundary.tolist():
        if a in successor:
            raise PrnetInputError(f"mesh is not a manifold: boundary branches at vertex {a}")
        successor[a] = b
    loops = []
    while successor:
        start = min(successor)
        loop = [start]
        nxt = successor.pop(start)
        while nxt != start:
            loop.append(nxt)
            nxt = successor.pop(nxt)
        loops.append(np.array(loop, dtype=np.int64))
    return loops


def euler_characteristic(triangles: np.ndarray) -> int:
    triangles = np.asarray(triangles, dtype=np.int64)
    edges = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    n = int(triangles.max()) + 1
    num_edges = count_distinct(edges[:, 0] * n + edges[:, 1])
    return int(np.count_nonzero(np.bincount(triangles.ravel(), minlength=n))) - num_edges + len(triangles)


def check_disk(triangles: np.ndarray, what: str = "mesh") -> np.ndarray:
    """Raise PrnetInputError unless the triangles form a topological disk; return its boundary loop."""
    loops = boundary_loops(triangles)
    chi = euler_characteristic(triangles)
    if len(loops) != 1 or chi != 1:
        raise PrnetInputError(
            f"{what} is not a topological disk: {len(loops)} boundary loops (need 1), Euler characteristic "
            f"{chi} (need 1); close its holes before flattening it"
        )
    return loops[0]


def validate_face_mesh(mesh: FaceMesh, source: str = "face mesh") -> None:
    n = len(mesh.vertices)
    checks = [
        (mesh.vertices.ndim == 2 and mesh.vertices.shape[1] == 3, f"vertices shape {mesh.vertices.shape}"),
        (bool(np.isfinite(mesh.vertices).all()), "vertices contain NaN/inf"),
        (mesh.triangles.ndim == 2 and mesh.triangles.shape[1] == 3, f"triangles shape {mesh.triangles.shape}"),
        (mesh.triangles.size > 0 and 0 <= mesh.triangles.min() and mesh.triangles.max() < n, "triangle ids"),
        (mesh.landmark_ids.shape == (68,) and bool((mesh.landmark_ids < n).all()), "landmark_ids"),
        (mesh.regions.shape == (n,) and int(mesh.regions.max()) <= REGION_LANDMARK, "regions"),
        (mesh.uv.shape == (n, 2), f"uv shape {mesh.uv.shape}"),
        (mesh.layout_triangles.shape == (len(mesh.triangles),), "layout_triangles"),
        (mesh.colors.shape == (n, 3), f"colors shape {mesh.colors.shape}"),
    ]
    for ok, message in checks:
        if not ok:
            raise PrnetInputError(f"{source}: invalid face mesh ({message}); {_REBUILD_HINT}")
    check_disk(mesh.triangles, what=source)
    uv = mesh.uv[np.bincount(mesh.triangles[mesh.layout_triangles].ravel(), minlength=n) > 0]
    if not (np.isfinite(uv).all() and uv.min() >= 0.0 and uv.max() <= 1.0):
        raise PrnetInputError(f"{source}: UV coordinates of mapped vertices are not in [0, 1]; {_REBUILD_HINT}")


def read_face_mesh(path: str | Path) -> FaceMesh:
    """Read and validate a face mesh asset file (see module docstring)."""
    path = existing_file(path, "face mesh asset", _REBUILD_HINT)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as err:  # zipfile/zlib/ValueError: any unreadable file is a corrupt asset
        raise PrnetInputError(f"{path}: corrupt face mesh asset ({err}); {_REBUILD_HINT}") from err
    if str(arrays.get("format", "")) != ASSET_FORMAT:
        raise PrnetInputError(f"{path}: not a '{ASSET_FORMAT}' face mesh asset; {_REBUILD_HINT}")
    try:
        mesh = FaceMesh(
            vertices=arrays["vertices"].astype(np.float32),
            triangles=arrays["triangles"].astype(np.int32),
            landmark_ids=arrays["landmark_ids"].astype(np.int32),
            regions=arrays["regions"].astype(np.uint8),
            uv=arrays["uv"].astype(np.float32),
            layout_triangles=arrays["layout_triangles"].astype(bool),
            colors=arrays["colors"].astype(np.float32),
            mouth_fill_vertex=int(arrays["mouth_fill_vertex"]),
        )
    except KeyError as err:
        raise PrnetInputError(f"{path}: face mesh asset lacks array {err}; {_REBUILD_HINT}") from err
    validate_face_mesh(mesh, source=str(path))
    return mesh


def face_mesh_arrays(mesh: FaceMesh) -> dict[str, np.ndarray]:
    """The arrays stored in the asset file (inverse of read_face_mesh)."""
    return {
        "format": np.array(ASSET_FORMAT),
        "vertices": mesh.vertices.astype(np.float32),
        "triangles": mesh.triangles.astype(np.int32),
        "landmark_ids": mesh.landmark_ids.astype(np.int32),
        "regions": mesh.regions.astype(np.uint8),
        "uv": mesh.uv.astype(np.float32),
        "layout_triangles": mesh.layout_triangles.astype(bool),
        "colors": mesh.colors.astype(np.float32),
        "mouth_fill_vertex": np.array(mesh.mouth_fill_vertex),
    }


@functools.lru_cache(maxsize=4)
def _load_cached(path: str) -> FaceMesh:
    mesh = read_face_mesh(path)
    for array in (mesh.vertices, mesh.triangles, mesh.landmark_ids, mesh.regions, mesh.uv,
                  mesh.layout_triangles, mesh.colors):
        array.setflags(write=False)  # shared by every caller: copy before modifying
    return mesh


def load_face_mesh(path: str | Path | None = None) -> FaceMesh:
    """The packaged face mesh (cached; treat its arrays as read-only)."""
    return _load_cached(str(ASSET_PATH if path is None else Path(path).resolve()))
