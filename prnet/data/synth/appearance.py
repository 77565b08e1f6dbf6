"""Per-vertex appearance: skin albedo with facial features painted from the landmarks, and lighting.

Features are located once per process on the mean shape (so they move with every deformation):
lips inside the outer-lip polygon, eyes (sclera, iris, pupil, lash line) inside the eye polygons, brows along
the brow landmarks, a hairline over the forehead and the scalp, a beard zone, nostrils, eye sockets.
Per sample, `sample_appearance` draws colours and densities; `albedo` paints them (linear RGB in [0, 1]);
`shade` lights them: ambient + directional Lambertian + Blinn-Phong specular (+ an optional fill light).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Skin tones (linear RGB albedo) from very light to very dark; a sample interpolates between neighbours.
SKIN_TONES = np.array(
    [[0.80, 0.60, 0.50], [0.72, 0.50, 0.38], [0.62, 0.42, 0.30], [0.50, 0.32, 0.22], [0.36, 0.22, 0.14],
     [0.22, 0.13, 0.08], [0.13, 0.08, 0.05]]
)
HAIR_COLOURS = np.array(
    [[0.02, 0.015, 0.01], [0.06, 0.035, 0.02], [0.15, 0.08, 0.04], [0.35, 0.22, 0.10], [0.60, 0.45, 0.25],
     [0.35, 0.10, 0.04], [0.45, 0.45, 0.45], [0.75, 0.74, 0.72]]
)
IRIS_COLOURS = np.array(
    [[0.08, 0.04, 0.02], [0.20, 0.10, 0.04], [0.15, 0.25, 0.35], [0.18, 0.25, 0.12], [0.3, 0.3, 0.3]]
)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _segment_distance(points: np.ndarray, polyline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from (N, 2) points to a polyline (K, 2), and the arclength fraction [0, 1] of the nearest point."""
    best = np.full(len(points), np.inf)
    where = np.zeros(len(points))
    lengths = np.linalg.norm(np.diff(polyline, axis=0), axis=1)
    starts = np.concatenate([[0.0], np.cumsum(lengths)])
    for k in range(len(polyline) - 1):
        a, b = polyline[k], polyline[k + 1]
        ab = b - a
        t = np.clip(((points - a) @ ab) / max(ab @ ab, 1e-9), 0.0, 1.0)
        d = np.linalg.norm(points - (a + t[:, None] * ab), axis=1)
        closer = d < best
        best[closer] = d[closer]
        where[closer] = (starts[k] + t[closer] * lengths[k]) / starts[-1]
    return best, where


def _inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule, (N, 2) points in a closed (K, 2) polygon."""
    inside = np.zeros(len(points), dtype=bool)
    x, y = points[:, 0], points[:, 1]
    for k in range(len(polygon)):
        (x1, y1), (x2, y2) = polygon[k], polygon[(k + 1) % len(polygon)]
        crosses = (y1 > y) != (y2 > y)
        x_at = x1 + (y - y1) * (x2 - x1) / ((y2 - y1) if y2 != y1 else 1e-9)
        inside ^= crosses & (x < x_at)
    return inside


@dataclass
class FaceFeatures:
    """Per-vertex feature fields on the mean shape (all (N,) float32 unless noted)."""

    lips: SparseField  # 1 inside the outer lip contour
    eye_aperture: np.ndarray  # in [0, 1] from lower lid to upper lid inside the eyes, -1 outside
    eye_offset: np.ndarray  # (N, 2) mm from the eye centre (for iris/pupil)
    lash: SparseField  # 1 on the upper lash line
    brow: SparseField  # brow density shape
    socket: SparseField  # soft eye-socket / eyelid area
    nostril: SparseField
    beard: SparseField  # beard zone (mustache, chin, jaw, cheeks below the cheekbones)
    front: np.ndarray  # 1 on the front of the face, 0 on ears/back/neck sides (features only paint there)
    x: np.ndarray  # mean-shape coordinates, for hairline tests
    y: np.ndarray
    z: np.ndarray
    brow_y: float
    outside: np.ndarray  # bool, region OUTSIDE (neck, ears, scalp)
    eye_ids: np.ndarray  # vertices inside the eye apertures
    noise_bank: np.ndarray  # (N, 24) smooth noise fields
    occlusion: np.ndarray | None = None  # (N,) ambient occlusion of the mean shape (set by the renderer)

    @classmethod
    def from_mean(cls, vertices: np.ndarray, landmarks: np.ndarray, outside: np.ndarray) -> "FaceFeatures":
        v = np.asarray(vertices, dtype=np.float64)
        lm = np.asarray(landmarks, dtype=np.float64)
        xy = v[:, :2]
        front = _smoothstep((v[:, 2] - (lm[0, 2] + lm[16, 2]) / 2.0 - 20.0) / 25.0)
        lips = _inside_polygon(xy, lm[48:60, :2]).astype(np.float64)
        d_lip, _ = _segment_distance(xy, np.vstack([lm[48:60, :2], lm[48:49, :2]]))
        lips = np.where(lips > 0, _smoothstep(d_lip / 1.2 + 0.3), 0.0) * (v[:, 2] > lm[51, 2] - 20)
        aperture = np.full(len(v), -1.0)
        offset = np.zeros((len(v), 2))
        lash = np.zeros(len(v))
        socket = np.zeros(len(v))
        for upper, lower in (([36, 37, 38, 39], [39, 40, 41, 36]), ([42, 43, 44, 45], [45, 46, 47, 42])):
            poly = np.vstack([lm[upper, :2], lm[lower[1:3], :2]])
            inside = _inside_polygon(xy, poly) & (v[:, 2] > lm[upper, 2].min() - 10)
            centre = lm[upper + lower[1:3], :2].mean(axis=0)
            up_y = np.interp(v[:, 0], *_sorted_xy(lm[upper, :2]))
            low_y = np.interp(v[:, 0], *_sorted_xy(lm[[39, 40, 41, 36] if upper[0] == 36 else [45, 46, 47, 42], :2]))
            t = np.clip((v[:, 1] - low_y) / np.maximum(up_y - low_y, 0.3), 0.0, 1.0)
            aperture = np.where(inside, t, aperture)
            offset = np.where(inside[:, None], xy - centre, offset)
            d_up, _ = _segment_distance(xy, lm[upper, :2])
            near = v[:, 2] > lm[upper, 2].min() - 10
            lash = np.maximum(lash, (1.0 - _smoothstep(d_up / 0.9)) * near)
            d_eye = np.linalg.norm((xy - centre) / np.array([1.0, 1.4]), axis=1)
            socket = np.maximum(socket, (1.0 - _smoothstep((d_eye - 8.0) / 9.0)) * near)
        brow = np.zeros(len(v))
        for ids in ([17, 18, 19, 20, 21], [26, 25, 24, 23, 22]):
            line = lm[ids, :2] + np.array([0.0, 1.5])
            d, where = _segment_distance(xy, line)
            half_width = 2.0 + 2.8 * where  # thin outer end, thick inner end
            in_front = v[:, 2] > lm[ids, 2].min() - 12
            brow = np.maximum(brow, (1.0 - _smoothstep((d - half_width) / 1.5 + 0.5)) * in_front)
        nostril = np.zeros(len(v))
        for a, b in ((31, 32), (35, 34)):
            c = (lm[a, :2] * 0.6 + lm[b, :2] * 0.4) + np.array([0.0, 1.2])
            nostril = np.maximum(nostril, 1.0 - _smoothstep(np.linalg.norm(xy - c, axis=1) / 2.8))
        nostril *= v[:, 2] > lm[33, 2] - 10
        cheek_line_y = np.interp(v[:, 0], [lm[1, 0], lm[31, 0] - 4, lm[35, 0] + 4, lm[15, 0]], [lm[2, 1], lm[33, 1] + 2,
                                                                                           lm[33, 1] + 2, lm[14, 1]])
        beard = _smoothstep((cheek_line_y - v[:, 1]) / 14.0) * _smoothstep((v[:, 1] - lm[8, 1] + 35.0) / 20.0)
        beard *= (1.0 - lips) * _smoothstep((v[:, 2] - (lm[0, 2] + lm[16, 2]) / 2 + 5.0) / 15.0)
        f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
        return cls(
            lips=_sparse(lips), eye_aperture=f32(aperture), eye_offset=f32(offset), lash=_sparse(lash),
            brow=_sparse(brow), socket=_sparse(socket), nostril=_sparse(nostril), beard=_sparse(beard),
            front=f32(front),
            x=f32(v[:, 0]), y=f32(v[:, 1]), z=f32(v[:, 2]), brow_y=float(lm[17:27, 1].mean()),
            outside=np.asarray(outside, dtype=bool),
            eye_ids=np.flatnonzero(aperture >= 0), noise_bank=_noise_bank(v),
        )


@dataclass(frozen=True)
class SparseField:
    """A per-vertex field that is zero almost everywhere: its non-zero vertex ids and values (K, 1)."""

    ids: np.ndarray
    values: np.ndarray


def _sparse(field: np.ndarray, eps: float = 1e-3) -> SparseField:
    ids = np.flatnonzero(field > eps)
    return SparseField(ids, field[ids].astype(np.float32)[:, None])


def _sorted_xy(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(points[:, 0])
    return points[order, 0], points[order, 1]


def sample_appearance(rng: np.random.Generator) -> dict[str, Any]:
    """Colours and densities of one face (JSON-friendly, recorded in the sample's params)."""
    tone = rng.uniform(0, len(SKIN_TONES) - 1)
    lo = int(np.floor(tone))
    skin = SKIN_TONES[lo] + (SKIN_TONES[min(lo + 1, len(SKIN_TONES) - 1)] - SKIN_TONES[lo]) * (tone - lo)
    skin = skin * np.exp(rng.normal(0, [0.06, 0.05, 0.08]))  # redness / yellowness per person
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] * np.exp(rng.normal(0, 0.15, 3))
    bald = rng.random() < 0.08
    style = "bald" if bald else ["short", "short", "long", "bangs", "covered"][rng.integers(5)]
    return {
        "skin": skin.tolist(),
        "skin_detail": float(rng.uniform(0.03, 0.12)),
        "hair": np.clip(hair, 0, 1).tolist(),
        "hair_style": style,
        "hairline_mm": float(rng.uniform(35, 65) if style != "bangs" else rng.uniform(14, 30)),
        "brow_density": float(rng.uniform(0.35, 1.0)),
        "lip_tint": (np.array([1.0, 0.62, 0.62]) * np.exp(rng.normal(0, 0.08, 3))).tolist(),
        "lipstick": float(rng.uniform(0.3, 0.9)) if rng.random() < 0.12 else 0.0,
        "lipstick_colour": [[0.55, 0.04, 0.06], [0.45, 0.12, 0.2], [0.2, 0.03, 0.05]][rng.integers(3)],
        "iris": (IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))] * np.exp(rng.normal(0, 0.1, 3))).tolist(),
        "gaze_mm": rng.normal(0, [1.8, 0.8]).tolist(),
        "beard": float(rng.uniform(0.15, 0.9)) if rng.random() < 0.18 else 0.0,
        "eye_shadow": float(rng.uniform(0.1, 0.5)) if rng.random() < 0.15 else 0.0,
        "blush": float(rng.uniform(0.0, 0.15)),
        "hat": rng.uniform(0, 1, 3).tolist(),  # style "covered": a hat / hood / scarf over the hair
        "clothes": (rng.uniform(0, 1, 3) ** rng.uniform(0.5, 2.0)).tolist(),
        "noise_seed": int(rng.integers(2**31)),
    }


def hairline_y(x: np.ndarray, brow_y: float, hairline_mm: float) -> np.ndarray:
    """Hairline height: above the brows in the middle, lower at the temples."""
    return brow_y + hairline_mm - 22.0 * np.clip(np.abs(x) / 70.0, 0, 1) ** 3


def _noise_bank(positions: np.ndarray, count: int = 24) -> np.ndarray:
    """(N, count) float32 smooth random 3D waves (wavelengths 20-90 mm), the same in every process."""
    rng = np.random.default_rng(20181008)
    dirs = rng.normal(size=(count, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    freqs = 2 * np.pi / rng.uniform(20, 90, count)
    return np.sin(np.einsum("nk,ck->nc", positions, dirs * freqs[:, None]) + rng.uniform(0, 2 * np.pi, count)).astype(
        np.float32)


def _mix(colour: np.ndarray, field: SparseField, target: np.ndarray, strength: float | np.ndarray = 1.0) -> None:
    """In place: colour[ids] += field * strength * (target - colour[ids])."""
    ids = field.ids
    target = target[ids] if np.ndim(target) == 2 and len(target) == len(colour) else target
    colour[ids] += np.clip(field.values * strength, 0, 1) * (target - colour[ids])


def albedo(features: FaceFeatures, app: dict[str, Any], blink: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """(N, 3) float32 linear albedo for the face mesh."""
    f = features
    rng = np.random.default_rng(app["noise_seed"])
    skin = np.asarray(app["skin"], dtype=np.float32)
    hair = np.asarray(app["hair"], dtype=np.float32)
    scalp_colour = np.asarray(app["hat"] if app["hair_style"] == "covered" else app["hair"], dtype=np.float32)
    # low-frequency skin detail: a random mix of smooth 3D waves (blotches, redness) + per-vertex grain
    bank = f.noise_bank
    mix = rng.normal(0, 1.0 / np.sqrt(bank.shape[1] / 3), (bank.shape[1], 3)).astype(np.float32)
    mix *= rng.random((bank.shape[1], 1)) < 0.4
    waves = bank @ mix  # (N, 3): mostly brightness (blotches, shadows of pores), a little redness
    detail = waves[:, :1] * np.float32([1.0, 0.95, 0.9]) + 0.3 * (waves[:, 1:2] * np.float32([0.6, -0.2, -0.3]))
    grain = rng.standard_normal((len(bank), 1), dtype=np.float32) * np.float32(0.35)
    colour = skin * np.exp(np.float32(app["skin_detail"]) * (detail + grain))
    _mix(colour, f.socket, colour * np.float32([0.72, 0.68, 0.7]), 1.0 + 2.0 * app["eye_shadow"])
    lip = skin * np.asarray(app["lip_tint"], dtype=np.float32)
    if app["lipstick"]:
        lip = lip * (1 - app["lipstick"]) + np.float32(app["lipstick"]) * np.asarray(app["lipstick_colour"])
    _mix(colour, f.lips, lip.astype(np.float32))
    _mix(colour, f.nostril, np.float32([0.02, 0.01, 0.01]), 0.8)
    if app["beard"]:  # darker, hair coloured, patchy
        blotches = bank[f.beard.ids] @ rng.normal(0, 0.12, (bank.shape[1], 1)).astype(np.float32)
        patch = np.clip(0.85 + blotches + 0.25 * grain[f.beard.ids], 0.3, 1.2)
        beard_colour = np.minimum(hair, skin * 0.55)  # stubble darkens even under fair hair
        _mix(colour, f.beard, beard_colour, app["beard"] * patch)
    brow_noise = 0.8 + 0.4 * rng.random((len(f.brow.ids), 1), dtype=np.float32)
    _mix(colour, f.brow, np.minimum(hair * 0.8, skin * 0.45), app["brow_density"] * brow_noise)
    hairy = hair_mask(f, app)
    ids = np.flatnonzero(hairy)
    colour[ids] += hairy[ids, None] * (scalp_colour - colour[ids])
    _paint_eyes(f, app, colour, blink)
    _mix(colour, f.lash, np.float32([0.02, 0.015, 0.01]), 0.85)
    return np.clip(colour, 0.0, 1.0).astype(np.float32)


def hair_mask(f: FaceFeatures, app: dict[str, Any]) -> np.ndarray:
    if app["hair_style"] == "bald":
        return np.zeros_like(f.x)
    line = hairline_y(f.x, f.brow_y, app["hairline_mm"]) + 3.0 * f.noise_bank[:, 5]  # an irregular hairline
    scalp = _smoothstep((f.y - line) / 4.0 + 0.5)
    side = _smoothstep((np.abs(f.x) - 60.0) / 6.0) * _smoothstep((f.y - f.brow_y + 10.0) / 6.0) * f.outside
    return np.maximum(scalp, side).astype(np.float32)


def _paint_eyes(f: FaceFeatures, app: dict[str, Any], colour: np.ndarray, blink: tuple[float, float]) -> None:
    """In place: sclera, iris and pupil inside the eye apertures not covered by the (blinking) upper lid."""
    ids = f.eye_ids
    aperture = f.eye_aperture[ids]
    closed = np.where(f.x[ids] > 0, blink[1], blink[0]).astype(np.float32)
    visible = aperture < 1.0 - closed
    ids, aperture = ids[visible], aperture[visible]
    r = np.linalg.norm(f.eye_offset[ids] - np.asarray(app["gaze_mm"], dtype=np.float32), axis=1)
    eye = np.where((r < 5.6)[:, None], np.asarray(app["iris"], dtype=np.float32), np.float32([0.75, 0.70, 0.66]))
    eye = np.where((r < 2.0)[:, None], np.float32([0.01, 0.01, 0.01]), eye)
    glint = np.linalg.norm(f.eye_offset[ids] - np.asarray(app["gaze_mm"], dtype=np.float32) - np.float32([1.3, 1.3]),
                           axis=1) < 0.9  # the light's reflection on the cornea
    eye = np.where(glint[:, None], np.float32([0.95, 0.95, 0.95]), eye)
    # the eyeball sits in the lid shadow: darker near the aperture boundary
    colour[ids] = eye * (0.55 + 0.45 * np.sin(np.pi * np.clip(aperture, 0, 1)))[:, None]


def ambient_occlusion(vertices: np.ndarray, triangles: np.ndarray, directions: int = 32, size: int = 192
                      ) -> np.ndarray:
    """(N,) float32 in [0, 1]: the cosine-weighted fraction of the front hemisphere each vertex sees, from
    orthographic depth renders of the mesh along `directions` (eye sockets, nostrils, mouth corners, under the
    chin and behind the ears come out dark). Computed once on the mean shape (~0.5 s)."""
    from prnet.geometry.raster import rasterize

    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(directions * 3, 3))
    dirs = dirs[dirs[:, 2] > 0.15][:directions]  # towards the viewer's side: the mesh's open back is not lit
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    normals = vertex_normals(vertices, triangles)
    centre = vertices.mean(axis=0)
    extent = np.abs(vertices - centre).max() * 1.05
    seen = np.zeros(len(vertices))
    weight = np.zeros(len(vertices))
    for d in dirs:
        # a frame whose z axis is d: project on the two other axes, depth along d (larger = closer to the light)
        x = np.cross(d, [0.0, 1.0, 0.0] if abs(d[1]) < 0.9 else [1.0, 0.0, 0.0])
        x /= np.linalg.norm(x)
        y = np.cross(d, x)
        rel = vertices - centre
        px = np.stack([rel @ x, rel @ y], axis=1) / extent * (size / 2 - 1) + size / 2
        depth = rel @ d
        raster = rasterize(px, triangles, size, size, depth=depth)
        cols = np.clip(np.round(px[:, 0]).astype(int), 0, size - 1)
        rows = np.clip(np.round(px[:, 1]).astype(int), 0, size - 1)
        visible = depth >= raster.depth[rows, cols] - extent * 0.02
        cosine = np.clip(normals @ d, 0.0, None)
        seen += visible * cosine
        weight += cosine
    return (seen / np.maximum(weight, 1e-6)).astype(np.float32)


def vertex_incidence(triangles: np.ndarray, num_vertices: int):
    """Sparse (N, T) matrix summing triangle quantities into their 3 corners (build once, reuse)."""
    import scipy.sparse as sp

    rows = np.asarray(triangles).T.reshape(-1)
    cols = np.tile(np.arange(len(triangles)), 3)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(num_vertices, len(triangles)))


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray, incidence=None) -> np.ndarray:
    """(N, 3) float32 unit normals, area-weighted, for counter-clockwise-from-the-front triangles."""
    v = np.asarray(vertices, dtype=np.float32)
    a, b, c = v[triangles[:, 0]], v[triangles[:, 1]], v[triangles[:, 2]]
    e1, e2 = b - a, c - a
    face_normals = np.stack([e1[:, 1] * e2[:, 2] - e1[:, 2] * e2[:, 1], e1[:, 2] * e2[:, 0] - e1[:, 0] * e2[:, 2],
                             e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]], axis=1)
    incidence = vertex_incidence(triangles, len(v)) if incidence is None else incidence
    normals = np.asarray(incidence @ face_normals, dtype=np.float32)
    return normals / (np.linalg.norm(normals, axis=1, keepdims=True) + np.float32(1e-12))


def sample_lighting(rng: np.random.Generator) -> dict[str, Any]:
    """Ambient + key light (direction in the camera frame: x right, y up, z to the viewer) + optional fill."""
    def direction(spread: float) -> list[float]:
        az, el = rng.uniform(-spread, spread), rng.uniform(-spread * 0.6, spread * 0.8)
        d = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
        return d.tolist()

    tint = lambda s: np.exp(rng.normal(0, s, 3)).tolist()  # noqa: E731
    return {
        "ambient": float(rng.uniform(0.15, 0.65)),
        "ambient_tint": tint(0.08),
        "key": float(rng.uniform(0.3, 1.0)),
        "key_dir": direction(np.radians(85)),
        "key_tint": tint(0.1),
        "fill": float(rng.uniform(0.0, 0.35)) if rng.random() < 0.5 else 0.0,
        "fill_dir": direction(np.radians(90)),
        "specular": float(rng.uniform(0.0, 0.35)),
        "shininess": float(rng.uniform(6, 50)),
        "exposure": float(rng.uniform(0.8, 1.3)),
    }


def shade(albedo_rgb: np.ndarray, normals_cam: np.ndarray, light: dict[str, Any], specular_mask=None,
          occlusion: np.ndarray | None = None) -> np.ndarray:
    """(N, 3) linear radiance of Lambertian + Blinn-Phong surfaces under `light` (camera-frame normals).
    `occlusion` (N,) darkens the ambient fully and the key light partly (a cheap stand-in for shadows)."""
    key_dir = np.asarray(light["key_dir"], dtype=np.float32)
    diffuse = np.clip(normals_cam @ key_dir, 0.0, None)[:, None] * (light["key"] * np.asarray(light["key_tint"]))
    ambient = light["ambient"] * np.asarray(light["ambient_tint"]) * (0.75 + 0.25 * normals_cam[:, 2:3])
    if occlusion is not None:
        ambient = ambient * occlusion[:, None]
        diffuse = diffuse * (0.4 + 0.6 * occlusion[:, None])
    radiance = ambient + diffuse
    if light["fill"]:
        fill_dir = np.asarray(light["fill_dir"], dtype=np.float32)
        radiance = radiance + np.clip(normals_cam @ fill_dir, 0.0, None)[:, None] * light["fill"]
    half = key_dir + np.float32([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)
    cos_half = normals_cam @ half
    spec = np.zeros(len(normals_cam), np.float32)
    lit = cos_half > 0.5  # below, cos^shininess (shininess >= 6) is under 2%: skip the pow
    spec[lit] = light["specular"] * cos_half[lit] ** light["shininess"]
    if specular_mask is not None:
        spec = spec * specular_mask
    colour = albedo_rgb * radiance + (spec * light["key"])[:, None] * np.asarray(light["key_tint"])
    return (colour * light["exposure"]).astype(np.float32)
