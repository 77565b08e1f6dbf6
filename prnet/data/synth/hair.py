"""Generator version 2: hair as strands, bald and shaved heads.

Version 1 multiplied hair pixels by screen-space stripes, which read as a striped helmet. Here every hairy
vertex (face mesh scalp, skull proxy, long hair) gets spherical coordinates about a pole near the crown
(azimuth across the strands, polar angle along them), interpolated per pixel and looked up in an anisotropic
strand texture (long along the strands, fine across, plus clumps and locks), so strands flow from the crown
over the head and follow its pose. Highlights are Kajiya-Kay (a band across the strands, not a round spot).
A bald head shows the skull proxy's skin with a strong specular highlight; a shaved one a faint stubble.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

ACROSS = 768  # texels over the full azimuth (~1.3 per mm on a head: about one crop pixel)
ALONG = 256  # texels from the pole to the opposite pole


@functools.lru_cache(maxsize=1)
def strand_bank() -> np.ndarray:
    """(ALONG, ACROSS) float32, zero mean, ~unit std, periodic across (the azimuth wraps); fixed seed."""
    import cv2

    rng = np.random.default_rng(1234567)
    out = np.zeros((ALONG, ACROSS), np.float32)
    for rows, cols, weight in ((40, ACROSS, 0.55), (16, ACROSS // 3, 0.6), (8, ACROSS // 12, 0.5)):
        coarse = rng.standard_normal((rows, cols)).astype(np.float32)
        wrapped = np.concatenate([coarse, coarse[:, :3]], axis=1)  # periodic across before resizing
        big = cv2.resize(wrapped, (ACROSS * (cols + 3) // cols, ALONG), interpolation=cv2.INTER_CUBIC)
        out += weight * big[:, :ACROSS]
    out -= out.mean()
    return out / out.std()


def hair_frame(centre: np.ndarray, tilt: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pole (unit, mesh frame: up and a little back, tilted per face) and two axes around it."""
    pole = np.array([tilt[0], 1.0, -0.2 + tilt[1]])
    pole /= np.linalg.norm(pole)
    forward = np.array([0.0, 0.0, 1.0]) - pole[2] * pole
    forward /= np.linalg.norm(forward)
    side = np.cross(pole, forward)
    return pole, forward, side


def hair_coords(points: np.ndarray, centre: np.ndarray, frame: tuple, wave: float, phase: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(across texel, along texel, unit tangent along the strands (V, 3)) of mesh-frame points.
    The azimuth seam (a jump of ACROSS texels) sits at the back of the head, rarely in view."""
    pole, forward, side = (np.asarray(a, np.float32) for a in frame)
    rel = np.asarray(points, np.float32) - np.asarray(centre, np.float32)
    rel /= np.linalg.norm(rel, axis=1, keepdims=True) + 1e-9
    cos_polar = np.clip(rel @ pole, -1.0, 1.0)
    polar = np.arccos(cos_polar)
    azimuth = np.arctan2(rel @ side, rel @ forward)
    across = (azimuth / (2 * np.pi) + 0.5 + wave * np.sin(polar * 5.0 + phase)) * ACROSS
    tangent = cos_polar[:, None] * rel - pole  # away from the pole, in the surface
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-9
    return across.astype(np.float32), (polar / np.pi * ALONG).astype(np.float32), tangent.astype(np.float32)


def kajiya_kay(tangent_cam: np.ndarray, key_dir: np.ndarray, power: float) -> np.ndarray:
    """(V,) strand highlight: strong where the half vector is perpendicular to the strand."""
    half = np.asarray(key_dir, np.float32) + np.float32([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)
    cos = np.clip(tangent_cam @ half, -1.0, 1.0)
    return np.sqrt(np.clip(1.0 - cos * cos, 0.0, 1.0)) ** np.float32(power)


def hair_colour(app: dict[str, Any], real: dict[str, Any]) -> np.ndarray:
    """Linear RGB of the hair (greyed with age), of a hat, or of a shaved head's stubble."""
    hair = np.asarray(app["hair"], dtype=np.float32)
    grey = np.float32([0.42, 0.41, 0.40]) * (0.6 + 0.8 * float(np.mean(hair) > 0.3))
    hair = hair + np.float32(real["grey"]) * (grey - hair)
    style = real["hair_style"]
    if style == "covered":
        return np.asarray(app["hat"], dtype=np.float32)
    if style == "shaved":  # skin seen through cut hair: darker, greyish
        return np.minimum(hair, np.asarray(app["skin"], dtype=np.float32) * 0.5) + 0.02
    return hair


def skull_hairness(vertices: np.ndarray, app: dict[str, Any], real: dict[str, Any], features, landmarks
                   ) -> np.ndarray:
    """(V,) hair coverage of the skull proxy's vertices (mean-shape mesh frame), version 1's rule for hair,
    nothing for a bald head except an optional horseshoe fringe at the sides and back."""
    from prnet.data.synth.appearance import hairline_y

    style = real["hair_style"]
    if style == "bald":
        if not real["bald_fringe"]:
            return np.zeros(len(vertices), np.float32)
        low = vertices[:, 1] < landmarks[27, 1] + 12.0
        sides = (np.abs(vertices[:, 0]) > 52.0) | (vertices[:, 2] < landmarks[0, 2] - 15.0)
        return (low & sides).astype(np.float32)
    line = hairline_y(vertices[:, 0], features.brow_y, app["hairline_mm"])
    above_ears = vertices[:, 1] > landmarks[2, 1]  # the face mesh hides the skull's front
    back = vertices[:, 2] < landmarks[0, 2] - 25.0
    return ((vertices[:, 1] > line) | above_ears | back).astype(np.float32)


def strand_pixels(across: np.ndarray, along: np.ndarray, seed: int) -> np.ndarray:
    """(M,) strand texture at M pixels' interpolated hair coordinates (offset per face, wrapping)."""
    import cv2

    from prnet.data.synth.render_v2 import remap_points

    rng = np.random.default_rng(seed)
    return remap_points(strand_bank(), across + np.float32(rng.uniform(0, ACROSS)),
                        along + np.float32(rng.uniform(0, ALONG)), cv2.BORDER_WRAP)[:, 0]
