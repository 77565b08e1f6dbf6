"""Flatten the face mesh into the unit square: the recipe of the project's UV layout ("prnet-tutte-v1").

Recipe (deterministic; measured on the menpo3d template, see issue 2):
1. Cut: keep the face region (`FaceMesh.face_vertex_mask`) plus every vertex within `margin_mm` geodesic
   distance of it (Dijkstra along mesh edges), only whole triangles; keep the component of the face, fill
   enclosed holes, and repair the cut until it is a disk: add the triangles around pinch vertices (where
   the boundary touches itself) and drop "ears" (triangles with two boundary edges). Embedding the whole
   mesh leaves the face only ~24-33k of the 65,536 pixels of a 256 map (neck, ears and scalp take the
   rest); the cut gives the face ~45k, about PRNet's own layout (43,867). The margin is in the map with loss
   weight 0 (like the neck in 300W-LP) and keeps the square's corner distortion away from the face.
2. Boundary: the cut's boundary loop goes onto the square's border. Two anchors split it into halves: the
   points where the boundary crosses the symmetry plane (x = the landmark vertices' mean x) at the top of
   the forehead and under the chin. Each half is parametrized by arc length onto its half of the square
   (top-middle -> corner -> side -> corner -> bottom-middle) and the vertex nearest each corner is snapped to
   it, so the layout is left-right symmetric as far as the mesh's own asymmetry allows. Triangles whose
   three corners would lie on one side (zero area) are removed before solving.
3. Interior: Tutte / harmonic embedding with Floater's mean-value weights, a sparse linear solve. With
   positive weights and a convex boundary Tutte's theorem guarantees no flipped triangle; cotangent weights
   are negative on this mesh's obtuse triangles (17% of them) and flip 11 triangles, uniform weights
   ignore the geometry and distort more.
UV: u = column (to the subject's left, image right), v = row (down), both in [0, 1]; the face is upright.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.sparse.linalg import spsolve

from prnet.geometry.mesh import boundary_loops, check_disk, is_member
from prnet.io import PrnetInputError

DEFAULT_MARGIN_MM = 20.0


def _edges(triangles: np.ndarray) -> np.ndarray:
    """Unique undirected edges (E, 2)."""
    e = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    e = e.astype(np.int64)
    key = np.sort(e[:, 0] * (int(e.max()) + 1) + e[:, 1])
    key = key[np.concatenate([[True], key[1:] != key[:-1]])]
    return np.stack(np.divmod(key, int(e.max()) + 1), axis=1)


def geodesic_distance(vertices: np.ndarray, triangles: np.ndarray, sources: np.ndarray, limit: float) -> np.ndarray:
    """Edge-graph geodesic distance (mm) from the nearest source vertex; inf beyond `limit`."""
    e = _edges(triangles)
    length = np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1)
    n = len(vertices)
    graph = sp.coo_matrix((length, (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    return dijkstra(graph, directed=False, indices=np.flatnonzero(sources), min_only=True, limit=limit)


def _triangle_adjacency(triangles: np.ndarray) -> sp.csr_matrix:
    """(T, T) matrix linking triangles that share an edge."""
    t = len(triangles)
    e = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    e = e.astype(np.int64)
    tri = np.tile(np.arange(t), 3)
    edge_key = e[:, 0] * (int(e.max()) + 1) + e[:, 1]
    order = np.argsort(edge_key, kind="stable")
    sid, stri = edge_key[order], tri[order]
    pair = sid[1:] == sid[:-1]
    a, b = stri[:-1][pair], stri[1:][pair]
    return sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(t, t)).tocsr()


def _boundary_edge_count(triangles: np.ndarray, keep: np.ndarray, n: int) -> np.ndarray:
    """Number of boundary edges at each vertex of the kept triangles (2 on a clean disk boundary)."""
    kept = triangles[keep]
    d = np.concatenate([kept[:, [0, 1]], kept[:, [1, 2]], kept[:, [2, 0]]]).astype(np.int64)
    key, rkey = d[:, 0] * n + d[:, 1], d[:, 1] * n + d[:, 0]
    b = d[~is_member(key, rkey)]
    return np.bincount(b.ravel(), minlength=n)


def cut_to_disk(vertices: np.ndarray, triangles: np.ndarray, face: np.ndarray, margin_mm: float) -> np.ndarray:
    """(T,) bool: the triangles of the face region plus a geodesic margin, repaired into a disk."""
    n = len(vertices)
    dist = geodesic_distance(vertices, triangles, face, limit=margin_mm)
    keep = (dist[triangles] <= margin_mm).all(axis=1)
    adjacency = _triangle_adjacency(triangles)
    mesh_boundary = np.zeros(n, bool)
    for loop in boundary_loops(triangles):
        mesh_boundary[loop] = True
    for _ in range(100):
        # keep the component that holds the face
        _, label = connected_components(adjacency[keep][:, keep], directed=False)
        face_tris = np.flatnonzero(keep)[face[triangles[keep]].all(axis=1)]
        main = np.bincount(label[np.searchsorted(np.flatnonzero(keep), face_tris)]).argmax()
        keep[np.flatnonzero(keep)[label != main]] = False
        # fill holes: left-out components that do not reach the mesh's own boundary are enclosed
        out = np.flatnonzero(~keep)
        _, label = connected_components(adjacency[out][:, out], directed=False)
        reaches_border = np.zeros(label.max() + 1, bool)
        reaches_border[label[mesh_boundary[triangles[out]].any(axis=1)]] = True
        keep[out[~reaches_border[label]]] = True
        # pinch vertices: take all their triangles; ears: drop them
        count = _boundary_edge_count(triangles, keep, n)
        pinch = count > 2
        changed = bool(pinch.any())
        keep |= pinch[triangles].any(axis=1)
        count = _boundary_edge_count(triangles, keep, n)
        tri_boundary_edges = _triangle_boundary_edges(triangles, keep, n)
        ears = keep & (tri_boundary_edges >= 2)
        if ears.any():
            keep &= ~ears
            changed = True
        if not changed:
            check_disk(triangles[keep], what="the cut face region")
            return keep
    raise PrnetInputError("could not cut the face region into a disk (check the region labels of the mesh)")


def _triangle_boundary_edges(triangles: np.ndarray, keep: np.ndarray, n: int) -> np.ndarray:
    """(T,) number of each kept triangle's edges that lie on the boundary of the kept set."""
    t = triangles.astype(np.int64)
    kept = t[keep]
    d = np.concatenate([kept[:, [0, 1]], kept[:, [1, 2]], kept[:, [2, 0]]])
    present = d[:, 0] * n + d[:, 1]
    result = np.zeros(len(t), np.int64)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        reverse = t[:, b] * n + t[:, a]
        result += ~is_member(reverse, present)
    return np.where(keep, result, 0)


def _plane_crossings(p: np.ndarray, cum: np.ndarray, center_x: float) -> tuple[float, float]:
    """Arc-length positions where the closed boundary polyline crosses x = center_x at its top and bottom."""
    x, nxt = p[:, 0] - center_x, np.roll(np.arange(len(p)), -1)
    crossing = np.flatnonzero((x <= 0) != (x[nxt] <= 0))
    if len(crossing) < 2:
        raise PrnetInputError("the cut boundary does not cross the symmetry plane twice; check the landmarks")
    t = x[crossing] / (x[crossing] - x[nxt[crossing]])
    y = p[crossing, 1] + t * (p[nxt[crossing], 1] - p[crossing, 1])
    seg = np.linalg.norm(p[nxt] - p, axis=1)
    s = cum[crossing] + t * seg[crossing]
    return float(s[np.argmax(y)]), float(s[np.argmin(y)])


def square_boundary(vertices: np.ndarray, loop: np.ndarray, center_x: float) -> np.ndarray:
    """(L, 2) positions of the boundary loop on the unit square's border (see the module docstring)."""
    p = vertices[loop].astype(np.float64)
    seg = np.linalg.norm(np.roll(p, -1, axis=0) - p, axis=1)
    cum, total = np.concatenate([[0.0], np.cumsum(seg)[:-1]]), float(seg.sum())
    s_top, s_bottom = _plane_crossings(p, cum, center_x)
    forward = (cum - s_top) % total  # arc length from the top crossing, along the loop
    f_bottom = (s_bottom - s_top) % total
    in_first = forward < f_bottom
    t = np.where(in_first, forward / f_bottom, (total - forward) / (total - f_bottom))  # 0 top .. 1 bottom
    s = 2.0 * t  # along the half perimeter: top-middle -> corner (0.5) -> side -> corner (1.5) -> bottom
    for half in (in_first, ~in_first):
        for corner in (0.5, 1.5):  # snap the nearest vertex of each half onto each corner
            k = np.flatnonzero(half)[np.argmin(np.abs(s[half] - corner))]
            s[k] = corner
    u = 0.5 + np.minimum(s, 0.5) - np.clip(s - 1.5, 0.0, 0.5)
    v = np.clip(s - 0.5, 0.0, 1.0)
    first_goes_right = np.median(p[in_first, 0]) > center_x
    right = in_first if first_goes_right else ~in_first
    return np.stack([np.where(right, u, 1.0 - u), v], axis=1)


def mean_value_weights(vertices: np.ndarray, triangles: np.ndarray) -> sp.csr_matrix:
    """Floater's mean-value weights w_ij = (tan(a/2) + tan(b/2)) / |v_j - v_i| with a, b the angles at i
    next to edge ij. Always positive (unlike cotangent weights), not symmetric."""
    n = len(vertices)
    rows, cols, vals = [], [], []
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):  # corner i of each triangle, neighbours j and k
        a, b, c = vertices[triangles[:, i]], vertices[triangles[:, j]], vertices[triangles[:, k]]
        e1, e2 = b - a, c - a
        l1, l2 = np.linalg.norm(e1, axis=1), np.linalg.norm(e2, axis=1)
        cross = np.linalg.norm(np.cross(e1, e2), axis=1)
        tan_half = cross / (l1 * l2 + np.einsum("ij,ij->i", e1, e2))  # tan(angle/2) = sin / (1 + cos)
        rows += [triangles[:, i], triangles[:, i]]
        cols += [triangles[:, j], triangles[:, k]]
        vals += [tan_half / l1, tan_half / l2]
    return sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()


def tutte_embedding(
    vertices: np.ndarray, triangles: np.ndarray, boundary: np.ndarray, boundary_uv: np.ndarray
) -> np.ndarray:
    """(N, 2) positions: boundary vertices fixed, each interior vertex the mean-value-weighted average of its
    neighbours. Vertices not in `triangles` get NaN."""
    n = len(vertices)
    weights = mean_value_weights(vertices.astype(np.float64), triangles)
    laplacian = (sp.diags(np.asarray(weights.sum(axis=1)).ravel()) - weights).tocsr()
    used = np.zeros(n, bool)
    used[triangles.ravel()] = True
    is_boundary = np.zeros(n, bool)
    is_boundary[boundary] = True
    interior = np.flatnonzero(used & ~is_boundary)
    uv = np.full((n, 2), np.nan)
    uv[boundary] = boundary_uv
    a = laplacian[interior][:, interior].tocsc()
    rhs = -laplacian[interior][:, boundary] @ boundary_uv
    uv[interior] = spsolve(a, rhs).reshape(len(interior), 2)
    return uv


def signed_areas(uv: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = uv[triangles[:, 0]], uv[triangles[:, 1]], uv[triangles[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def count_flips(uv: np.ndarray, triangles: np.ndarray) -> int:
    """Triangles whose UV orientation disagrees with the majority, or that collapsed to zero area."""
    area = signed_areas(uv, triangles)
    majority = np.sign(np.sum(np.sign(area)))
    return int(np.sum(area * majority <= 1e-12))


def _drop_flat_triangles(triangles: np.ndarray, on_side: np.ndarray) -> np.ndarray:
    """Drop triangles whose three corners lie on the same side of the square (they would have zero area)."""
    flat = np.zeros(len(triangles), bool)
    for side in range(on_side.shape[1]):
        flat |= on_side[triangles, side].all(axis=1)
    return ~flat


def flatten_face(
    vertices: np.ndarray, triangles: np.ndarray, face: np.ndarray, center_x: float, margin_mm: float = DEFAULT_MARGIN_MM
) -> tuple[np.ndarray, np.ndarray]:
    """The whole recipe: returns uv (N, 2) float64 in [0, 1] (NaN outside the map) and the (T,) bool mask of
    the triangles in the map."""
    vertices = np.asarray(vertices, dtype=np.float64)
    triangles = np.asarray(triangles, dtype=np.int64)
    check_disk(triangles)
    keep = cut_to_disk(vertices, triangles, face, margin_mm)
    for _ in range(20):
        loop = check_disk(triangles[keep], what="the cut face region")
        boundary_uv = square_boundary(vertices, loop, center_x)
        on_side = np.zeros((len(vertices), 4), bool)
        for side, (axis, value) in enumerate(((0, 0.0), (0, 1.0), (1, 0.0), (1, 1.0))):
            on_side[loop, side] = np.abs(boundary_uv[:, axis] - value) < 1e-12
        ok = _drop_flat_triangles(triangles, on_side)
        if (ok | ~keep).all():
            break
        keep &= ok
    uv = tutte_embedding(vertices, triangles[keep], loop, boundary_uv)
    return uv, keep
