"""Generator version 2: skin micro-detail and age creases in a per-face texture atlas, sampled per pixel.

Per-vertex colour cannot hold detail finer than the mesh (~1 mm between vertices, ~1.3 px in a crop), so the
fine detail lives in an atlas: the mean face unrolled on a vertical cylinder (u = R0 * azimuth, v = -y, in mm,
SCALE px per mm). Every vertex keeps its mean-shape atlas coordinates, so the texture follows each face's
deformation; the renderer interpolates them per pixel and looks the maps up with cv2.remap.

Per face, `detail_maps` draws (all in the atlas, vectorized numpy / cv2):
    albedo factor  multi-scale noise, pores (nose and cheeks most), blotchy redness on cheeks and nose, darker
                   under-eyes, freckles, moles, vertical lip lines, eyebrows as short hair strokes along the
                   brow line, stubble as short dark strokes over the beard zone, darkening inside creases
    height         pores, lip lines, creases (nasolabial folds, forehead lines, crow's feet, under-eye bags,
                   frown lines): its gradient bump-shades the key light, so a crease has a lit and a dark side
    specular       pores and hair break up the highlight; lips and the T-zone are shinier
stored as (H, W, 6): albedo factor - 1 (3), height gradient d/du, d/dv (per mm, gain included), specular
factor - 1, so that outside the atlas (border 0) nothing changes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

SCALE = 1.4  # atlas px per mm (a crop shows ~1.3 px per mm of a frontal face)
R0 = 90.0  # mm, the unrolling cylinder's radius (about the face's curvature across the cheeks)
MARGIN = 48  # noise banks are larger than the atlas by this much: each face picks its own window
BUMP_GAIN = 2.2  # height slope -> change of the key light's cosine


@dataclass
class DetailAtlas:
    """What every face reuses: the mean face's atlas coordinates and feature masks in atlas space."""

    shape: tuple[int, int]  # (H, W)
    vertex_uv: np.ndarray  # (N, 2) float32 atlas px (col, row); far outside for vertices off the atlas
    azimuth: np.ndarray  # (N,) float32 radians about the cylinder axis (tangent frame for bump shading)
    landmarks: np.ndarray  # (68, 2) float64 atlas px
    masks: dict[str, np.ndarray]  # (H, W) float32: skin, lips, beard, pores, cheeks, nose, under_eye
    noise: np.ndarray  # (5, H + MARGIN, W + MARGIN) float32 unit-variance noise at 0.7, 2, 5, 12 px + lip lines
    mole_sites: np.ndarray  # (K, 2) atlas (row, col) of clear skin, where moles may sit


def _cylinder_uv(points: np.ndarray, z_axis: float) -> tuple[np.ndarray, np.ndarray]:
    azimuth = np.arctan2(points[:, 0], points[:, 2] - z_axis)
    return np.stack([R0 * azimuth, -points[:, 1]], axis=1), azimuth


def _unit(field: np.ndarray) -> np.ndarray:
    field = field - field.mean()
    return (field / max(float(field.std()), 1e-6)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def load_atlas() -> DetailAtlas:
    """Built once per process (~0.3 s) from the renderer's assets; forked workers inherit it."""
    import cv2

    from prnet.data.synth.kernels import interpolate_fast
    from prnet.data.synth.render import load_assets
    from prnet.geometry.raster import rasterize

    assets = load_assets()
    f, lm = assets.features, assets.model.landmarks.astype(np.float64)
    verts = assets.model.mean[: assets.model.n_mesh].astype(np.float64)
    z_axis = float((lm[0, 2] + lm[16, 2]) / 2.0 - 10.0)
    uv_mm, azimuth = _cylinder_uv(verts, z_axis)
    front = f.front > 0.02
    lo = uv_mm[front].min(axis=0) - 4.0
    hi = uv_mm[front].max(axis=0) + 4.0
    width, height = (np.ceil((hi - lo) * SCALE)).astype(int)
    uv = ((uv_mm - lo) * SCALE).astype(np.float32)
    uv[~front] = -1000.0  # off the atlas: the ears, the back and the neck get no atlas detail
    lm_uv = (_cylinder_uv(lm, z_axis)[0] - lo) * SCALE

    def dense(field) -> np.ndarray:
        out = np.zeros(len(verts), np.float32)
        out[field.ids] = field.values[:, 0]
        return out

    eyes = np.zeros(len(verts), np.float32)
    eyes[f.eye_ids] = 1.0
    fields = np.stack([f.front, dense(f.lips), dense(f.beard), eyes, dense(f.lash), dense(f.nostril)], axis=1)
    raster = rasterize(np.where(front[:, None], uv, np.nan), assets.render_triangles, height, width,
                       depth=np.linalg.norm(verts[:, [0, 2]] - [0.0, z_axis], axis=1))
    maps = interpolate_fast(raster, assets.render_triangles, fields)
    front_map, lips, beard, eye_map, lash, nostril = np.moveaxis(maps, 2, 0)
    no_skin = cv2.dilate(np.maximum(eye_map, lash), np.ones((5, 5), np.uint8))  # eyeballs and lids keep clean
    skin = np.clip(front_map * (1.0 - no_skin) * (1.0 - 0.7 * nostril), 0, 1)

    def blob(centre: np.ndarray, radii_mm: tuple[float, float]) -> np.ndarray:
        cols, rows = np.meshgrid(np.arange(width), np.arange(height))
        d2 = ((cols - centre[0]) / (radii_mm[0] * SCALE)) ** 2 + ((rows - centre[1]) / (radii_mm[1] * SCALE)) ** 2
        return np.exp(-d2).astype(np.float32)

    cheeks = blob((lm_uv[2] + lm_uv[31] + lm_uv[41]) / 3, (16, 13)) + blob((lm_uv[14] + lm_uv[35] + lm_uv[46]) / 3,
                                                                          (16, 13))
    nose = blob(lm_uv[30], (9, 8)) + 0.7 * blob(lm_uv[28], (5, 10))
    pores = np.clip(0.45 + 0.8 * cheeks + 0.9 * nose, 0, 1.3) * skin * (1.0 - lips)
    under = np.zeros((height, width), np.float32)
    for ids in ([36, 41, 40, 39], [42, 47, 46, 45]):  # the darker skin under the eyes
        centre = lm_uv[ids].mean(axis=0) + np.array([0.0, 6.0 * SCALE])
        cv2.ellipse(under, tuple(int(v) for v in np.round(centre)), (int(14 * SCALE), int(5 * SCALE)), 0, 0, 360,
                    1.0, -1)
    under = cv2.GaussianBlur(under, (0, 0), 3.0 * SCALE) * skin
    rng = np.random.default_rng(20240611)  # fixed: the banks are the same in every process
    big = (height + MARGIN, width + MARGIN)
    noise = [_unit(cv2.GaussianBlur(rng.standard_normal(big).astype(np.float32), (0, 0), s)) for s in (0.7, 2, 5, 12)]
    lines = cv2.resize(rng.standard_normal((big[0] // 6, big[1])).astype(np.float32), big[::-1],
                       interpolation=cv2.INTER_CUBIC)  # vertical streaks: the lines of the lips
    noise.append(_unit(cv2.GaussianBlur(lines, (0, 0), 0.6)))
    return DetailAtlas(shape=(int(height), int(width)), vertex_uv=uv, azimuth=azimuth.astype(np.float32),
                       landmarks=lm_uv, masks={"skin": skin, "lips": lips * front_map, "beard": beard * skin,
                                               "pores": pores.astype(np.float32), "cheeks": cheeks, "nose": nose,
                                               "under_eye": under},
                       noise=np.stack(noise), mole_sites=np.argwhere(skin > 0.9))


def _window(atlas: DetailAtlas, rng: np.random.Generator) -> np.ndarray:
    """(5, H, W) views of the noise banks at a per-face offset (and sign): every face gets other detail."""
    h, w = atlas.shape
    dy, dx = rng.integers(0, MARGIN, 2)
    sign = np.where(rng.random(5) < 0.5, -1.0, 1.0).astype(np.float32)[:, None, None]
    return atlas.noise[:, dy:dy + h, dx:dx + w] * sign


def _polyline(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points) * 16).astype(np.int32)  # 4 fractional bits (cv2 shift=4)


def _bezier(p0, p1, p2, count: int = 12) -> np.ndarray:
    t = np.linspace(0.0, 1.0, count)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)


def _creases(atlas: DetailAtlas, real: dict[str, Any], shape: dict[str, Any], rng: np.random.Generator
             ) -> np.ndarray:
    """(H, W) groove depth (>= 0): age lines drawn as anti-aliased polylines, then softened."""
    import cv2

    lm, mm = atlas.landmarks, SCALE
    c = real["creases"]
    side = lambda name: max(shape.get(f"{name}_r", 0.0), shape.get(f"{name}_l", 0.0))  # noqa: E731
    groove = np.zeros(atlas.shape, np.float32)

    def draw(points: np.ndarray, strength: float, width_px: int = 1) -> None:
        if strength > 0.02:
            cv2.polylines(groove, [_polyline(points)], False, float(strength), width_px, cv2.LINE_AA, 4)

    for flip, wing, corner in ((1.0, 31, 48), (-1.0, 35, 54)):  # flip: the subject's right side has smaller u
        out = np.array([-flip, 1.0])
        p0 = lm[wing] + out * np.array([4.0, -3.0]) * mm
        p2 = lm[corner] + out * np.array([6.0, 7.0]) * mm
        p1 = (p0 + p2) / 2 + out * np.array([5.0, 0.0]) * mm
        draw(_bezier(p0, p1, p2), c["nasolabial"] * (0.6 + 0.8 * side("smile")), 2)
        eye_corner = lm[36] if flip > 0 else lm[45]
        for angle in np.radians(rng.uniform(-40, 35, 3 + int(rng.random() < 0.5))):
            direction = np.array([-flip * np.cos(angle), np.sin(angle)])
            start = eye_corner + direction * rng.uniform(2.5, 4.5) * mm
            end = start + direction * rng.uniform(5, 11) * mm
            draw(_bezier(start, (start + end) / 2 + rng.normal(0, 0.8 * mm, 2), end),
                 c["crows_feet"] * (0.6 + 0.8 * (side("smile") + side("squint"))))
        lower = lm[[36, 41, 40, 39]] if flip > 0 else lm[[42, 47, 46, 45]]
        draw(lower + np.array([0.0, rng.uniform(4.0, 6.5) * mm]), c["bags"] * 0.8, 2)
        draw(lower + np.array([0.0, 2.0 * mm]), c["bags"] * 0.35)
    brow_row = lm[17:27, 1].mean()
    centre_col = lm[27, 0]
    for k in range(c["forehead_lines"]):
        cols = np.linspace(-rng.uniform(25, 40), rng.uniform(25, 40), 14) * mm + centre_col
        rows = brow_row - (rng.uniform(12, 16) + 7.0 * k) * mm + 2.0 * mm * ((cols - centre_col) / (35 * mm)) ** 2
        rows = rows + rng.normal(0, 0.5 * mm) * np.sin(cols / (rng.uniform(6, 14) * mm) + rng.uniform(0, 6.3))
        keep = rng.random(len(cols) - 1) > 0.15  # broken lines, as real ones are
        points = np.stack([cols, rows], axis=1)
        for a in range(len(cols) - 1):
            if keep[a]:
                draw(points[a:a + 2], c["forehead"] * (0.6 + 0.9 * side("brow_raise")))
    frown = c["glabella"] + shape.get("frown", 0.0)
    for flip in (-1.0, 1.0):
        base = np.array([centre_col + flip * rng.uniform(2.5, 5.0) * mm, brow_row + 2 * mm])
        draw(np.array([base, base + np.array([flip * 1.0, -rng.uniform(7, 12)]) * mm]), frown * 0.8)
    return cv2.GaussianBlur(groove, (0, 0), 1.1)


def _brow_strokes(atlas: DetailAtlas, real: dict[str, Any], density: float, rng: np.random.Generator
                  ) -> np.ndarray:
    """(H, W) coverage of eyebrow hairs: short strokes rooted inside the brow band, pointing outwards and up
    (steeply at the inner end, almost along the brow at the tail), as real brows grow."""
    import cv2

    b = real["brows"]
    layer = np.zeros(atlas.shape, np.uint8)
    lines = []
    for ids in ([17, 18, 19, 20, 21], [26, 25, 24, 23, 22]):  # outer end first, like version 1's brow field
        line = atlas.landmarks[ids] + np.array([0.0, -1.5 * SCALE])
        seg = np.diff(line, axis=0)
        lengths = np.linalg.norm(seg, axis=1)
        t = rng.random(b["strokes"]) ** 0.8  # denser towards the inner end
        s = t * lengths.sum()
        k = np.minimum(np.searchsorted(np.cumsum(lengths), s), len(seg) - 1)
        start_s = np.concatenate([[0.0], np.cumsum(lengths)])[k]
        tangent = seg[k] / lengths[k, None]  # points inwards (outer -> inner)
        root = line[k] + tangent * (s - start_s)[:, None]
        normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
        normal *= np.sign(-normal[:, 1:2] + 1e-9)  # towards the forehead (smaller rows)
        half = (2.0 + 2.8 * t) * SCALE
        root = root + normal * (rng.uniform(-0.9, 0.7, len(t)) * half)[:, None]
        lift = np.radians(12 + 60 * t ** 3) + rng.normal(0, 0.5 * (1.2 - b["tidy"]), len(t))
        direction = -tangent * np.cos(lift)[:, None] + normal * np.sin(lift)[:, None]
        length = b["length_mm"] * SCALE * rng.uniform(0.5, 1.1, len(t))[:, None]
        lines.append(np.stack([root, root + direction * length], axis=1))
    cv2.polylines(layer, list(_polyline(np.concatenate(lines))), False, 255, 1, cv2.LINE_AA, 4)
    return layer.astype(np.float32) * np.float32(min(1.0, 0.35 + 0.75 * density) / 255.0)


def _speckles(rng: np.random.Generator, mask: np.ndarray, rate: float, sigma: float) -> np.ndarray:
    """Random soft dots with density `rate` * mask per px (amplitude ~1 at a dot's centre)."""
    import cv2

    draw = rng.random(mask.shape, dtype=np.float32)
    threshold = np.float32(rate) * mask
    dots = np.where(draw < threshold, 0.4 + 0.6 * draw / np.maximum(threshold, 1e-6), 0.0).astype(np.float32)
    return cv2.GaussianBlur(dots, (0, 0), sigma) * np.float32(2 * np.pi * sigma * sigma)


def _stubble(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """Short, mostly downward strokes (hairs cut ~1-2 mm long) seeded at random over the mask."""
    import cv2

    dots = (rng.random(mask.shape, dtype=np.float32) < 0.3 * mask).astype(np.float32)
    out = np.zeros_like(dots)
    for angle in rng.uniform(60, 120, 2):  # two growth directions, blended by position
        kernel = np.zeros((5, 5), np.float32)
        cv2.line(kernel, (2, 2), (int(round(2 + 2 * np.cos(np.radians(angle)))),
                                  int(round(2 + 2 * np.sin(np.radians(angle))))), 1.0, 1, cv2.LINE_AA)
        out = np.maximum(out, cv2.filter2D(dots, -1, kernel / kernel.max()))
    return np.clip(out, 0, 1) * mask


def detail_maps(real: dict[str, Any], app: dict[str, Any], shape: dict[str, Any], atlas: DetailAtlas | None = None
                ) -> np.ndarray:
    """(H, W, 6) float32 per-face atlas: albedo factor - 1 (RGB), bump d/du, d/dv, specular factor - 1.

    The log albedo is a sum of scalar layers, each with its own colour (one (H, W, K) @ (K, 3) product at the
    end instead of K passes over an RGB image)."""
    import cv2

    atlas = atlas or load_atlas()
    rng = np.random.default_rng(real["seed"])
    m, s = atlas.masks, real["skin"]
    fine, small, medium, large, lip_lines = _window(atlas, rng)
    skin = m["skin"]
    skin_rgb = np.maximum(np.asarray(app["skin"], dtype=np.float32), 0.02)
    hair = np.asarray(app["hair"], dtype=np.float32)
    layers: list[np.ndarray] = []
    colours: list[np.ndarray] = []

    def add(layer: np.ndarray, colour) -> None:
        layers.append(layer)
        colours.append(np.asarray(colour, np.float32))

    # multi-scale mottling, slightly redder where darker (blood under the skin)
    add(s["micro"] * (0.3 * fine + 0.4 * small + 0.7 * medium + 1.0 * large), [1.0, 1.1, 1.15])
    pore_noise = fine * (1.4 - 0.5 * s["pore_scale"]) + small * (0.5 * s["pore_scale"])
    pits = np.clip(pore_noise - 1.9, 0.0, None) * (s["pores"] * m["pores"])  # sparse dark pits
    add(pits, [-0.2, -0.22, -0.22])
    add(s["redness"] * (m["cheeks"] + 0.8 * m["nose"]) * np.clip(0.7 + 0.5 * medium + 0.3 * small, 0, None),
        [0.04, -0.28, -0.22])
    add(s["under_eye"] * m["under_eye"], [-0.18, -0.24, -0.16])
    if s["freckles"]:
        spots = _speckles(rng, (m["cheeks"] + m["nose"] + 0.25) * skin, 0.012 * s["freckles"], 0.9)
        add(np.clip(spots, 0, 1.5) * s["freckles"], [-0.35, -0.5, -0.65])
    moles = np.zeros(atlas.shape, np.float32)
    candidates = atlas.mole_sites
    for row, col in candidates[rng.integers(len(candidates), size=s["moles"])]:
        cv2.circle(moles, (int(col) * 16, int(row) * 16), int(rng.uniform(0.5, 1.4) * SCALE * 16), 1.0, -1,
                   cv2.LINE_AA, 4)
    add(moles, [-1.1, -1.35, -1.45])
    add(m["lips"] * lip_lines, [0.04, 0.045, 0.045])
    # hair on the face: brows as strokes, stubble as short strokes (colour relative to the skin underneath)
    brows = _brow_strokes(atlas, real, app["brow_density"], rng)
    add(brows, np.log(np.clip(np.minimum(hair * 0.8, skin_rgb * 0.4) / skin_rgb, 0.05, 1.0)))
    stubble = None
    if real["stubble"]:
        stubble = _stubble(rng, m["beard"] * min(1.0, real["stubble"] * 1.3)) * 0.9
        add(real["stubble"] * m["beard"], [-0.12, -0.1, -0.06])  # the skin between the hairs looks grey-blue
        add(stubble, np.log(np.clip(np.minimum(hair, skin_rgb * 0.45) / skin_rgb, 0.05, 1.0)))
    groove = _creases(atlas, real, shape, rng)
    add(groove, [-0.10, -0.14, -0.14])  # creases hold a little shadow
    weight = np.maximum(skin, brows).reshape(-1)  # brows may reach past the skin mask
    log_f = (np.stack(colours).T @ np.stack(layers).reshape(len(layers), -1)) * weight  # (3, H * W), one GEMM
    height = -0.9 * groove - 0.3 * pits + 0.06 * m["lips"] * lip_lines + 0.4 * moles + 0.15 * brows
    grad_u = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3)
    grad_v = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3)
    spec = 0.5 * m["nose"] * skin + 0.8 * m["lips"] - 0.6 * np.clip(pits, 0, 1) - 0.8 * brows
    if stubble is not None:
        spec -= 0.6 * stubble
    out = np.empty(atlas.shape + (6,), np.float32)
    out[..., :3] = np.expm1(log_f).T.reshape(atlas.shape + (3,))
    gain = np.float32(SCALE / 8.0 * BUMP_GAIN)  # Sobel sums 8 px-differences; per mm
    out[..., 3] = grad_u * skin * gain
    out[..., 4] = grad_v * skin * gain
    out[..., 5] = np.maximum(spec, -1.0)
    return out
