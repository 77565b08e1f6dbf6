"""Generator version 2 lighting: the lit parts kept apart for per-pixel detail, cast shadows, harder key light.

Version 1's `appearance.shade` returns finished colours per vertex. Version 2 keeps, per vertex,
    ambient + fill radiance (RGB), key-light cosine (RGB: red wraps further, a cheap stand-in for light
    scattered under the skin, which warms shadow edges), and the specular intensity,
so the renderer can multiply in a per-pixel albedo and bump-shade only the key light:
    colour = albedo * (ambient_fill + key_cosine * key_rgb) + specular * key_rgb.
Cast shadows: a depth map of the face mesh rendered from the key light (orthographic, like the ambient
occlusion of appearance.py) tells every face and proxy vertex whether the nose, brows, cheeks or jaw hide it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SHADOW_MAP = 160  # px: the shadow map's side (~1 px per mm over a head; shadows are soft anyway)


def adjust_lighting(light: dict[str, Any], real: dict[str, Any]) -> dict[str, Any]:
    """Version 1's lighting made harder for the 'hard' faces: dim ambient and fill, stronger key."""
    r = real["light"]
    out = dict(light)
    out["ambient"] = light["ambient"] * r["ambient_scale"]
    out["key"] = light["key"] * r["key_scale"]
    if r["hard"]:
        out["fill"] = light["fill"] * 0.3
    return out


def key_rgb(light: dict[str, Any]) -> np.ndarray:
    return (light["key"] * np.asarray(light["key_tint"]) * light["exposure"]).astype(np.float32)


def light_parts(normals_cam: np.ndarray, light: dict[str, Any], occlusion: np.ndarray | float = 1.0,
                shadow: np.ndarray | float = 1.0, specular_mask: np.ndarray | float = 1.0,
                subsurface: float = 0.0, shininess_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ambient + fill (V, 3), key cosine (V, 3), specular (V,)) with the exposure folded into the first."""
    key_dir = np.asarray(light["key_dir"], dtype=np.float32)
    occ = np.asarray(occlusion, np.float32).reshape(-1, 1) if np.ndim(occlusion) else np.float32(occlusion)
    ambient = light["ambient"] * np.asarray(light["ambient_tint"], np.float32) * (0.75 + 0.25 * normals_cam[:, 2:3])
    ambient = ambient * occ
    if light["fill"]:
        fill_dir = np.asarray(light["fill_dir"], dtype=np.float32)
        ambient = ambient + np.clip(normals_cam @ fill_dir, 0.0, None)[:, None] * np.float32(light["fill"])
    cosine = (normals_cam @ key_dir)[:, None]
    wrap = np.float32(subsurface) * np.float32([1.0, 0.35, 0.2])
    shadow = np.asarray(shadow, np.float32).reshape(-1, 1) if np.ndim(shadow) else np.float32(shadow)
    shadow_rgb = 1.0 - (1.0 - shadow) * (1.0 - 0.5 * wrap)  # red light leaks a little into the shadow
    key = np.clip((cosine + wrap) / (1.0 + wrap), 0.0, None) * (0.4 + 0.6 * occ) * shadow_rgb
    half = key_dir + np.float32([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)
    cos_half = normals_cam @ half
    spec = np.zeros(len(normals_cam), np.float32)
    lit = cos_half > 0.5
    spec[lit] = light["specular"] * cos_half[lit] ** (light["shininess"] * shininess_scale)
    spec = spec * np.asarray(specular_mask, np.float32).reshape(-1) * np.asarray(shadow, np.float32).reshape(-1)
    return (ambient * np.float32(light["exposure"])).astype(np.float32), key.astype(np.float32), spec.astype(
        np.float32)


class ShadowMap:
    """Depth of the face mesh seen from the key light; `visibility(points)` in [0, 1] (1 = lit)."""

    def __init__(self, camera_points: np.ndarray, triangles: np.ndarray, key_dir: np.ndarray):
        from prnet.geometry.raster import rasterize

        d = np.asarray(key_dir, np.float64)
        d /= np.linalg.norm(d)
        x = np.cross(d, [0.0, 1.0, 0.0] if abs(d[1]) < 0.9 else [1.0, 0.0, 0.0])
        x /= np.linalg.norm(x)
        self.axes = np.stack([x, np.cross(d, x), d]).astype(np.float32)  # rows: map x, map y, depth
        self.centre = camera_points.mean(axis=0)
        local = (camera_points - self.centre) @ self.axes.T
        self.extent = float(np.abs(local[:, :2]).max()) * 1.3  # room for proxies around the face
        raster = rasterize(self._pixels(local), triangles, SHADOW_MAP, SHADOW_MAP, depth=local[:, 2])
        self.depth = np.where(np.isfinite(raster.depth), raster.depth, -1e9).astype(np.float32)

    def _pixels(self, local: np.ndarray) -> np.ndarray:
        return local[:, :2] / self.extent * (SHADOW_MAP / 2 - 1) + SHADOW_MAP / 2

    def visibility(self, camera_points: np.ndarray, normals_cam: np.ndarray, softness_mm: float = 3.5
                   ) -> np.ndarray:
        local = (camera_points - self.centre) @ self.axes.T
        px = self._pixels(local)
        inside = (px >= 0).all(axis=1) & (px < SHADOW_MAP - 1).all(axis=1)
        px = np.clip(px, 0, SHADOW_MAP - 1.001)
        base = np.floor(px).astype(np.int64)
        frac = (px - base).astype(np.float32)
        cosine = np.clip(normals_cam @ self.axes[2], 0.0, 1.0)
        bias = 2.0 + 4.0 * (1.0 - cosine)  # grazing surfaces need more (no self-shadow acne)
        vis = np.zeros(len(px), np.float32)
        for dr in (0, 1):  # percentage-closer filtering: compare at the 4 nearest texels, blend bilinearly
            for dc in (0, 1):
                gap = self.depth[base[:, 1] + dr, base[:, 0] + dc] - local[:, 2] - bias  # > 0: something closer
                weight = (frac[:, 1] if dr else 1 - frac[:, 1]) * (frac[:, 0] if dc else 1 - frac[:, 0])
                vis += weight * (1.0 - np.clip(gap / softness_mm, 0.0, 1.0))
        return np.where(inside, vis, 1.0).astype(np.float32)
