"""A parametric face shape model on the mesh asset: identity and expression as smooth landmark-anchored fields.

There is no morphable-model (PCA) basis in the package registries, so the model is built by hand:

- every *handle* moves a few anchors (iBUG landmarks or a few extra surface points) by a displacement in mm,
  pins the other anchors nearby, and spreads the motion over the surface with compactly supported Wendland
  RBFs (smooth, local, exact at the anchors). One unit of a parameter is roughly one standard deviation of
  the human range; samplers draw them from N(0, 1) clipped to +-2.5 (identity) or from sparse mixtures
  (expressions), so faces stay plausible.
- the jaw opens by rotating everything below the lip seam about a hinge near the ears (a linear field cannot
  open a mouth); global width / height / depth scale last.

Mesh frame: mm, x to the subject's left (image right when frontal), y up, z towards the viewer.
All handles are evaluated once per process into a (K, N, 3) basis, so a face costs one tensordot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# iBUG-68 left/right partner of every landmark (midline points map to themselves).
MIRROR_68 = np.array(
    [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    + [26, 25, 24, 23, 22, 21, 20, 19, 18, 17]
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)
# Extra anchors beyond the 68 landmarks: name -> index into the extended anchor list (68 + k).
EXTRA_ANCHORS = ("cheek_r", "cheek_l", "forehead", "temple_r", "temple_l", "under_chin")
_A = {name: 68 + i for i, name in enumerate(EXTRA_ANCHORS)}
_MIRROR_EXTRA = {"cheek_r": "cheek_l", "cheek_l": "cheek_r", "temple_r": "temple_l", "temple_l": "temple_r"}


@dataclass(frozen=True)
class Handle:
    """Anchors (index -> (dx, dy, dz) mm per unit), support radius in mm; `mirror` adds the partner side."""

    name: str
    moves: dict[int, tuple[float, float, float]]
    radius: float
    mirror: bool = False  # True: symmetric handle (both sides move, x mirrored)


def _r(*ids: int, d: tuple[float, float, float]) -> dict[int, tuple[float, float, float]]:
    return {i: d for i in ids}


# Identity: one unit ~ one standard deviation. Right-side (x < 0) anchors listed; mirror=True adds the left.
IDENTITY_HANDLES = (
    Handle("nose_length", {30: (0, -1.0, 3.0), 29: (0, -0.4, 1.5), 33: (0, -0.6, 1.2)}, 24),
    Handle("nose_width", {31: (-1.8, 0, -0.3), 32: (-0.8, 0, 0)}, 16, mirror=True),
    Handle("nose_bridge", {27: (0, 0, 1.5), 28: (0, 0, 2.0), 29: (0, 0, 1.2)}, 22),
    Handle("nose_tip_up", {30: (0, 1.5, -0.3), 33: (0, 1.0, 0)}, 14),
    Handle("nose_hook", {29: (0, 0, 1.5), 30: (0, -1.2, 0)}, 16),
    Handle("jaw_width", {3: (-3.5, 0, 0), 4: (-3.5, 0, 0.5), 5: (-2.5, 0, 1.0)}, 34, mirror=True),
    Handle("jaw_angle", {3: (-1.5, -2.5, 0), 2: (-1.0, -1.0, 0)}, 28, mirror=True),
    Handle("chin_forward", {8: (0, -0.8, 3.0), 7: (0, -0.3, 1.5), 9: (0, -0.3, 1.5)}, 28),
    Handle("chin_length", {8: (0, -3.5, 0.3), 7: (0, -3.0, 0), 9: (0, -3.0, 0), _A["under_chin"]: (0, -3.0, 0)}, 38),
    Handle("chin_width", {7: (-2.2, 0, 0), 6: (-1.5, 0, 0)}, 24, mirror=True),
    Handle("cheek_fullness", {_A["cheek_r"]: (-2.0, 0, 2.2)}, 46, mirror=True),
    Handle("cheekbones", {1: (-2.5, 0.5, 1.0), 2: (-1.5, 0, 0.5)}, 26, mirror=True),
    Handle("brow_ridge", {17: (0, 0, 1.2), 18: (0, 0, 2.0), 19: (0, 0, 2.2), 20: (0, 0, 2.0), 21: (0, 0, 1.5)}, 24,
           mirror=True),
    Handle("brow_height", _r(17, 18, 19, 20, 21, d=(0, 1.6, 0)), 16, mirror=True),
    Handle("eye_distance", _r(36, 37, 38, 39, 40, 41, d=(-1.5, 0, 0)), 16, mirror=True),
    Handle("eye_size", {37: (0, 0.8, 0.2), 38: (0, 0.8, 0.2), 40: (0, -0.5, 0), 41: (0, -0.5, 0),
                        36: (-0.6, 0, 0), 39: (0.6, 0, 0)}, 11, mirror=True),
    Handle("eye_tilt", {36: (0, 1.0, 0), 39: (0, -0.7, 0)}, 12, mirror=True),
    Handle("eye_depth", _r(36, 37, 38, 39, 40, 41, d=(0, 0, -1.5)), 20, mirror=True),
    Handle("mouth_width", {48: (-2.2, 0, 0), 60: (-1.6, 0, 0), 49: (-0.8, 0, 0), 59: (-0.8, 0, 0)}, 16, mirror=True),
    Handle("upper_lip", {50: (0, 0.9, 0.7), 51: (0, 1.0, 0.8), 52: (0, 0.9, 0.7)}, 11),
    Handle("lower_lip", {56: (0, -1.0, 0.8), 57: (0, -1.1, 0.9), 58: (0, -1.0, 0.8)}, 11),
    Handle("mouth_height", {i: (0, 1.5, 0) for i in range(48, 68)}, 24),
    Handle("forehead_slope", {_A["forehead"]: (0, 0, -4.0)}, 48),
    Handle("temples", {_A["temple_r"]: (-2.5, 0, 0)}, 28, mirror=True),
)
# Expressions: one unit = a strong but natural expression; sided ones get _r/_l variants (asymmetry).
EXPRESSION_HANDLES = (
    Handle("smile", {48: (-2.0, 3.5, -2.0), 60: (-1.5, 2.5, -1.5), 49: (-0.8, 1.5, -1.0), 59: (-0.8, 1.2, -1.0),
                     _A["cheek_r"]: (-1.0, 2.5, 1.5)}, 22),
    Handle("mouth_corner_down", {48: (0.5, -3.0, -0.3), 60: (0.3, -2.0, -0.2)}, 18),
    Handle("brow_raise", {17: (0, 3.0, 0), 18: (0, 4.0, 0.3), 19: (0, 4.5, 0.5), 20: (0, 4.0, 0.5),
                          21: (0, 3.0, 0.5)}, 24),
    Handle("cheek_puff", {_A["cheek_r"]: (-2.5, 0, 2.5)}, 40),
    Handle("squint", {40: (0, 1.5, 0), 41: (0, 1.5, 0), _A["cheek_r"]: (0, 1.5, 0.5)}, 10),
)
SYMMETRIC_EXPRESSIONS = (
    Handle("pucker", {48: (4.0, 0, 3.0), 60: (3.5, 0, 2.5), 49: (2.0, 0, 3.0), 59: (2.0, 0, 3.0),
                      50: (0.5, -0.5, 4.0), 51: (0, -0.5, 4.0), 58: (0.5, 0.5, 4.0), 57: (0, 0.5, 4.0),
                      61: (1.0, 0, 3.0), 62: (0, 0, 3.0), 67: (1.0, 0, 3.0), 66: (0, 0, 3.0)}, 22, mirror=True),
    Handle("frown", {21: (2.5, -3.0, 0.5), 20: (1.0, -2.0, 0.3), 19: (0.3, -1.0, 0)}, 18, mirror=True),
    Handle("lips_press", {50: (0, 0, -1.5), 51: (0, 0, -1.8), 57: (0, 0, -1.8), 56: (0, 0, -1.5)}, 10, mirror=True),
)
JAW_MAX_DEGREES = 24.0  # jaw_open = 1 opens this far (a wide-open mouth)


def _mirror_index(i: int) -> int:
    if i < 68:
        return int(MIRROR_68[i])
    name = EXTRA_ANCHORS[i - 68]
    return _A[_MIRROR_EXTRA.get(name, name)]


def _mirrored(moves: dict[int, tuple[float, float, float]]) -> dict[int, tuple[float, float, float]]:
    return {_mirror_index(i): (-d[0], d[1], d[2]) for i, d in moves.items()}


def _wendland(r: np.ndarray) -> np.ndarray:
    """Wendland C2 kernel on r = distance / radius: smooth, positive definite in 3D, zero for r >= 1."""
    r = np.minimum(r, 1.0)
    return (1.0 - r) ** 4 * (4.0 * r + 1.0)


def _surface_point(vertices: np.ndarray, target_xy: np.ndarray) -> np.ndarray:
    """The front-most vertex near (x, y): where a ray from the viewer through target_xy meets the mesh."""
    d = np.linalg.norm(vertices[:, :2] - target_xy, axis=1)
    near = d < d.min() + 3.0
    return vertices[np.flatnonzero(near)[np.argmax(vertices[near, 2])]]


def extended_anchors(vertices: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """68 landmarks + the EXTRA_ANCHORS surface points, (68 + 6, 3)."""
    lm = landmarks
    targets = {
        "cheek_r": (lm[2, :2] + lm[31, :2] + lm[41, :2]) / 3.0,
        "cheek_l": (lm[14, :2] + lm[35, :2] + lm[46, :2]) / 3.0,
        "forehead": lm[27, :2] + np.array([0.0, 55.0]),
        "temple_r": (lm[0, :2] + lm[17, :2]) / 2.0 + np.array([3.0, 22.0]),
        "temple_l": (lm[16, :2] + lm[26, :2]) / 2.0 + np.array([-3.0, 22.0]),
        "under_chin": lm[8, :2] + np.array([0.0, -12.0]),
    }
    extra = [_surface_point(vertices, targets[name]) for name in EXTRA_ANCHORS]
    return np.concatenate([landmarks, np.array(extra)], axis=0)


def rbf_field(vertices: np.ndarray, anchors: np.ndarray, moves: dict[int, tuple], radius: float) -> np.ndarray:
    """(N, 3) displacement: anchors in `moves` move by their vectors, all other anchors within reach stay."""
    moving = np.array(sorted(moves))
    reach = np.linalg.norm(anchors[:, None] - anchors[moving][None], axis=2).min(axis=1) < radius
    pinned = np.array([i for i in np.flatnonzero(reach) if i not in moves], dtype=int)
    ids = np.concatenate([moving, pinned])
    targets = np.zeros((len(ids), 3))
    targets[: len(moving)] = [moves[i] for i in moving]
    centres = anchors[ids]
    gram = _wendland(np.linalg.norm(centres[:, None] - centres[None], axis=2) / radius)
    coef = np.linalg.solve(gram + 1e-8 * np.eye(len(ids)), targets)  # (A, 3)
    lo, hi = centres.min(axis=0) - radius, centres.max(axis=0) + radius
    near = np.flatnonzero(((vertices >= lo) & (vertices <= hi)).all(axis=1))  # compact support: skip the rest
    kernel = _wendland(np.linalg.norm(vertices[near, None] - centres[None], axis=2) / radius)  # (n, A)
    field = np.zeros((len(vertices), 3))
    field[near] = kernel @ coef
    return field


def blink_field(vertices: np.ndarray, lm: np.ndarray, eye: tuple[int, ...]) -> np.ndarray:
    """(N, 3) displacement closing one eye: the upper lid slides down onto the lower lid (a little forward,
    over the eyeball); points in the aperture follow in proportion to their height, skin above the lid
    follows over ~8 mm, the corners stay. Built directly from the lid curves (an RBF through 4 anchors
    waves between them)."""
    outer, up1, up2, inner, low1, low2 = eye
    upper = lm[[outer, up1, up2, inner]]
    lower = lm[[outer, low2, low1, inner]]
    x = vertices[:, 0]
    order = np.argsort(upper[:, 0])
    upper_y = np.interp(x, upper[order, 0], upper[order, 1])
    order = np.argsort(lower[:, 0])
    lower_y = np.interp(x, lower[order, 0], lower[order, 1])
    gap = np.maximum(upper_y - lower_y, 0.5)
    x0, x1 = sorted((lm[outer, 0], lm[inner, 0]))
    s = np.clip((x - x0) / (x1 - x0), 0.0, 1.0)
    window = np.sin(np.pi * s) ** 0.3 * ((x > x0) & (x < x1))
    t = (vertices[:, 1] - lower_y) / gap
    follow = np.where(t <= 1.0, np.clip(t, 0.0, 1.0), 1.0 - _smoothstep((t - 1.0) * gap / 8.0))
    front = np.abs(vertices[:, 2] - lm[[up1, up2], 2].mean()) < 12.0
    amount = follow * window * front
    field = np.zeros_like(vertices)
    field[:, 1] = -0.97 * gap * amount
    field[:, 2] = 0.8 * amount
    return field


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def lower_jaw_weight(vertices: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(N,) in [0, 1]: how much each vertex follows the mandible (1 below the lip seam, 0 above; the neck
    half-follows). The seam runs along the inner-lip midline and from the mouth corners up to the jaw hinge."""
    lm = landmarks
    inner_mid = [(lm[60] + lm[60]) / 2, (lm[61] + lm[67]) / 2, (lm[62] + lm[66]) / 2, (lm[63] + lm[65]) / 2, lm[64]]
    hinge_y = (lm[0, 1] + lm[16, 1]) / 2.0 - 12.0
    seam = np.array(
        [[lm[0, 0] - 20, hinge_y], [lm[2, 0], hinge_y], [lm[48, 0], lm[48, 1]]]
        + [[p[0], p[1]] for p in inner_mid]
        + [[lm[54, 0], lm[54, 1]], [lm[14, 0], hinge_y], [lm[16, 0] + 20, hinge_y]]
    )
    x = vertices[:, 0]
    seam_y = np.interp(x, seam[:, 0], seam[:, 1])
    mouth_half = (lm[54, 0] - lm[48, 0]) / 2.0
    # sharp inside the mouth (lips separate), soft towards the cheeks (skin stretches)
    width = 1.0 + 0.8 * np.clip(np.abs(x - lm[51, 0]) - 0.9 * mouth_half, 0.0, None)
    below = _smoothstep((seam_y - vertices[:, 1]) / width + 0.5)
    neck = 1.0 - 0.6 * _smoothstep((lm[8, 1] - 5.0 - vertices[:, 1]) / 30.0)  # throat skin stretches
    back = _smoothstep((vertices[:, 2] - (lm[0, 2] + lm[16, 2]) / 2.0 + 5.0) / 25.0)  # behind the jaw: still
    return (below * neck * back).astype(np.float32)


def mouth_cavity(landmarks: np.ndarray, columns: int = 9, rows: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A curved grid behind the lips (mouth interior + teeth), mean-shape mm.

    Returns vertices (rows * columns, 3), triangles (counter-clockwise from the front), and each vertex's
    row fraction (0 = top, follows the skull; 1 = bottom, follows the jaw)."""
    lm = landmarks
    left, right = lm[60, 0] - 3.0, lm[64, 0] + 3.0
    top, bottom = lm[62, 1] + 3.0, lm[66, 1] - 3.0
    z0 = min(lm[62, 2], lm[66, 2]) - 4.0
    xs = np.linspace(left, right, columns)
    fr = np.linspace(0.0, 1.0, rows)
    gx, gf = np.meshgrid(xs, fr)
    half = (right - left) / 2.0
    cx = (right + left) / 2.0
    gz = z0 - 6.0 * ((gx - cx) / half) ** 2
    verts = np.stack([gx, top + (bottom - top) * gf, gz], axis=-1).reshape(-1, 3)
    ids = np.arange(rows * columns).reshape(rows, columns)
    a, b, c, d = ids[:-1, :-1], ids[:-1, 1:], ids[1:, :-1], ids[1:, 1:]
    tris = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    return verts, tris.astype(np.int32), gf.reshape(-1)


def split_lips_weight(vertices: np.ndarray, triangles: np.ndarray, fill_vertex: int, seam_weight: np.ndarray
                      ) -> np.ndarray:
    """Jaw weight near the mouth from surface (graph) distances to the upper / lower halves of the mouth rim.

    A weight from heights alone tears the inner lip surfaces (they curl into the mouth); over the surface,
    with the fill fan removed, the upper and lower lips only meet at the corners, so the ratio of the two
    graph distances separates them cleanly. Far from the mouth (> ~25 mm) the height-based weight takes over.
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra

    tris = np.asarray(triangles)
    fan = (tris == fill_vertex).any(axis=1)
    rim = np.unique(tris[fan])
    rim = rim[rim != fill_vertex]
    kept = tris[~fan]
    edges = np.concatenate([kept[:, [0, 1]], kept[:, [1, 2]], kept[:, [2, 0]]])
    lengths = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1)
    graph = sp.coo_matrix((lengths, (edges[:, 0], edges[:, 1])), shape=(len(vertices),) * 2).tocsr()
    left, right = vertices[rim, 0].min(), vertices[rim, 0].max()
    centre_y = np.interp(vertices[rim, 0], [left, (left + right) / 2, right],
                         [vertices[rim[np.argmin(vertices[rim, 0])], 1], vertices[rim, 1].mean(),
                          vertices[rim[np.argmax(vertices[rim, 0])], 1]])
    upper, lower = rim[vertices[rim, 1] >= centre_y], rim[vertices[rim, 1] < centre_y]
    d_up = dijkstra(graph, directed=False, indices=upper, min_only=True, limit=40.0)
    d_low = dijkstra(graph, directed=False, indices=lower, min_only=True, limit=40.0)
    near = np.isfinite(d_up) & np.isfinite(d_low)
    ratio = np.where(near, np.nan_to_num(d_up, posinf=0) / np.maximum(np.nan_to_num(d_up + d_low, posinf=1), 1e-6), 0.5)
    lip_weight = _smoothstep((ratio - 0.5) * 3.0 + 0.5)
    blend = _smoothstep((np.minimum(np.nan_to_num(d_up, posinf=99), np.nan_to_num(d_low, posinf=99)) - 8.0) / 17.0)
    weight = np.where(near, (1 - blend) * lip_weight + blend * seam_weight, seam_weight)
    weight[fill_vertex] = 0.5
    return weight.astype(np.float32)


@dataclass
class ShapeModel:
    """Mean shape + (K, N, 3) linear basis + jaw rotation + global scale. Build with from_mesh().

    The first `n_mesh` vertices are the face mesh; the rest are the mouth cavity (`cavity_triangles`)."""

    mean: np.ndarray  # (N, 3) float32 mm
    landmarks: np.ndarray  # (68, 3) mean-shape landmark positions
    names: tuple[str, ...]  # basis names: identity first, then expressions
    n_identity: int
    basis: np.ndarray  # (K, N, 3) float32
    jaw_weight: np.ndarray  # (N,) float32
    jaw_hinge: np.ndarray  # (3,) mm
    centre: np.ndarray  # (3,) centre for global scaling and pose rotation
    n_mesh: int
    cavity_triangles: np.ndarray  # (C, 3) int32 into the cavity vertices (add n_mesh for the full array)
    cavity_rows: np.ndarray  # (M,) row fraction of each cavity vertex (0 top .. 1 bottom)

    @classmethod
    def from_mesh(cls, vertices: np.ndarray, landmark_ids: np.ndarray, triangles: np.ndarray | None = None,
                  mouth_fill_vertex: int | None = None) -> "ShapeModel":
        mesh_v = np.asarray(vertices, dtype=np.float64)
        lm = mesh_v[np.asarray(landmark_ids)]
        cavity_v, cavity_t, cavity_rows = mouth_cavity(lm)
        v = np.concatenate([mesh_v, cavity_v])
        anchors = extended_anchors(mesh_v, lm)
        names, fields = [], []
        for handle in IDENTITY_HANDLES + SYMMETRIC_EXPRESSIONS:
            moves = dict(handle.moves)
            if handle.mirror:
                moves.update(_mirrored(handle.moves))
            names.append(handle.name)
            fields.append(rbf_field(v, anchors, moves, handle.radius))
        for handle in EXPRESSION_HANDLES:  # sided: subject's right (x < 0) and left
            for side, moves in (("r", handle.moves), ("l", _mirrored(handle.moves))):
                names.append(f"{handle.name}_{side}")
                fields.append(rbf_field(v, anchors, moves, handle.radius))
        for side, eye in (("r", (36, 37, 38, 39, 40, 41)), ("l", (42, 43, 44, 45, 46, 47))):
            names.append(f"blink_{side}")
            fields.append(blink_field(v, lm, eye))
        jaw = lower_jaw_weight(mesh_v, lm)
        if triangles is not None and mouth_fill_vertex is not None:
            jaw = split_lips_weight(mesh_v, triangles, mouth_fill_vertex, jaw)
        order = [n for n in names if n in {h.name for h in IDENTITY_HANDLES}]
        n_identity = len(order)
        order += [n for n in names if n not in order]
        basis = np.stack([fields[names.index(n)] for n in order]).astype(np.float32)
        hinge = np.array([0.0, (lm[0, 1] + lm[16, 1]) / 2.0 - 8.0, (lm[0, 2] + lm[16, 2]) / 2.0 - 5.0])
        return cls(
            mean=v.astype(np.float32),
            landmarks=lm.astype(np.float32),
            names=tuple(order),
            n_identity=n_identity,
            basis=basis,
            jaw_weight=np.concatenate([jaw, cavity_rows]).astype(np.float32),
            jaw_hinge=hinge,
            centre=lm.mean(axis=0).astype(np.float32),
            n_mesh=len(mesh_v),
            cavity_triangles=cavity_t,
            cavity_rows=cavity_rows.astype(np.float32),
        )

    @property
    def identity_names(self) -> tuple[str, ...]:
        return self.names[: self.n_identity]

    @property
    def expression_names(self) -> tuple[str, ...]:
        return self.names[self.n_identity :]

    def deform(self, params: dict[str, Any]) -> np.ndarray:
        """(N, 3) float32 vertices for params {basis name: weight, 'jaw_open', 'jaw_shift', 'scale': [sx,sy,sz]}."""
        weights = np.array([float(params.get(n, 0.0)) for n in self.names], dtype=np.float32)
        v = self.mean + (weights @ self.basis.reshape(len(weights), -1)).reshape(self.mean.shape)
        jaw = float(params.get("jaw_open", 0.0))
        shift = float(params.get("jaw_shift", 0.0))
        if jaw or shift:
            v = self._open_jaw(v, jaw * np.radians(JAW_MAX_DEGREES), shift)
        scale = np.asarray(params.get("scale", (1.0, 1.0, 1.0)), dtype=np.float32)
        return ((v - self.centre) * scale + self.centre).astype(np.float32)

    def _open_jaw(self, v: np.ndarray, angle: float, shift_mm: float) -> np.ndarray:
        """Rotate the mandible about the hinge's x axis by angle * weight; slide it sideways by shift_mm."""
        w = self.jaw_weight
        a = angle * w
        rel = v - self.jaw_hinge
        cos, sin = np.cos(a), np.sin(a)
        out = v.copy()
        out[:, 1] = self.jaw_hinge[1] + rel[:, 1] * cos - rel[:, 2] * sin
        out[:, 2] = self.jaw_hinge[2] + rel[:, 1] * sin + rel[:, 2] * cos
        out[:, 0] += shift_mm * w
        return out


def sample_shape_params(rng: np.random.Generator, model: ShapeModel, expression_rate: float = 0.7) -> dict[str, Any]:
    """Identity ~ N(0, 1.25^2) clipped, plus correlated weight / face-length traits; expressions: a sparse
    random mix (some faces neutral), with asymmetry."""
    params: dict[str, Any] = {n: float(np.clip(rng.normal(0, 1.25), -3.0, 3.0)) for n in model.identity_names}
    # correlated traits: body weight widens jaw, chin and cheeks together; a long face is also narrower
    weight, length = rng.normal(), rng.normal()
    for name, amount in (("cheek_fullness", 0.9), ("jaw_width", 0.7), ("chin_width", 0.5), ("temples", 0.3)):
        params[name] = float(np.clip(params[name] + amount * weight, -3.5, 3.5))
    params["chin_length"] = float(np.clip(params["chin_length"] + 0.8 * length, -3.5, 3.5))
    scale = [rng.normal(1.0, s) + c for s, c in ((0.05, 0.025 * weight - 0.015 * length), (0.05, 0.025 * length),
                                                  (0.07, 0.0))]
    params["scale"] = [float(np.clip(v, 0.82, 1.18)) for v in scale]
    expressive = rng.random() < expression_rate
    if expressive:
        base = {  # symmetric intensity of each family, then per-side jitter for asymmetry
            "smile": rng.random() * 1.2 if rng.random() < 0.4 else 0.0,
            "mouth_corner_down": rng.random() if rng.random() < 0.15 else 0.0,
            "brow_raise": rng.random() * 1.1 if rng.random() < 0.3 else 0.0,
            "cheek_puff": rng.random() if rng.random() < 0.08 else 0.0,
            "squint": rng.random() if rng.random() < 0.2 else 0.0,
            "blink": (1.0 if rng.random() < 0.5 else rng.random()) if rng.random() < 0.15 else 0.0,
        }
        for family, value in base.items():
            weak_side = ("r", "l")[rng.integers(2)] if rng.random() < 0.25 else None  # asymmetric variant
            for side in ("r", "l"):
                factor = rng.uniform(0.0, 0.5) if side == weak_side else 1.0
                params[f"{family}_{side}"] = float(value * factor * rng.uniform(0.85, 1.15))
        params["pucker"] = float(rng.random()) if rng.random() < 0.12 else 0.0
        params["frown"] = float(rng.random()) if rng.random() < 0.15 else 0.0
        params["lips_press"] = float(rng.random()) if rng.random() < 0.1 else 0.0
        params["jaw_open"] = float(rng.random() ** 1.5) if rng.random() < 0.45 else 0.0
        params["jaw_shift"] = float(rng.normal(0, 1.5)) if rng.random() < 0.2 else 0.0
    return params
