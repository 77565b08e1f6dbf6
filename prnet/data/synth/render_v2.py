"""Generator version 2's image: version 1's scene (same mesh, proxies, camera, background) with per-pixel skin
detail, bump-shaded creases, strand hair, bald and shaved heads, cast shadows and a harder key light.

Per vertex the renderer keeps the parts of the lighting apart (lighting.py) plus texture coordinates, and
blends them per pixel with the raster's barycentrics (one pass, `interpolate_fast`), channels:
    0:3 albedo (skin, never hair)   3:6 ambient + fill   6:9 key cosine   9 skin specular   10 hair highlight
    11 hairness   12:14 skin atlas (col, row)   14:16 key light along the atlas axes   16:18 hair (across, along)
Then per pixel: albedo x skin detail (skin_detail.py), the key cosine minus the bump slope, hair colour and
strands blended in by hairness (broken up by the strands at the hairline). The position map never sees this.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from prnet.data.synth.appearance import albedo, hair_mask
from prnet.data.synth.hair import hair_colour, hair_coords, hair_frame, kajiya_kay, skull_hairness, strand_pixels
from prnet.data.synth.kernels import interpolate_fast, vertex_normals_fast
from prnet.data.synth.lighting import ShadowMap, adjust_lighting, key_rgb, light_parts
from prnet.data.synth.scene import body_rotation, head_proxies, proxy_mesh
from prnet.data.synth.skin_detail import detail_maps, load_atlas

CHANNELS = 18
OFF_ATLAS = -1000.0  # atlas coordinate of vertices without skin detail (cv2.remap's border: no change)


def v2_appearance(app: dict[str, Any], real: dict[str, Any]) -> dict[str, Any]:
    """Version 1's appearance with version 2's head style; brows and beard are mostly drawn as strokes
    (skin_detail.py), so their per-vertex paint is kept faint (the skin under them is a little darker)."""
    out = dict(app)
    out["hair_style"] = real["hair_style"]
    out["brow_density"] = app["brow_density"] * 0.3
    out["beard"] = app["beard"] * 0.35
    return out


def _face_hairness(features, app: dict[str, Any], real: dict[str, Any]) -> np.ndarray:
    style = real["hair_style"]
    if style == "bald":
        if not real["bald_fringe"]:
            return np.zeros_like(features.x)
        side = hair_mask(features, {**app, "hair_style": "short", "hairline_mm": 500.0})  # sides only
        return side * (features.y < features.brow_y + 5.0)
    hairy = hair_mask(features, {**app, "hair_style": "short" if style == "shaved" else style})
    return hairy * np.float32(0.55 if style == "shaved" else 1.0)  # shaved: the scalp shows through


def render_image_v2(verts, crop, camera, params, assets, config) -> np.ndarray:
    """float32 sRGB-ish image in [0, 1] (S, S, 3): background + lit face, cavity and proxies."""
    from prnet.data.synth.background import render_background
    from prnet.data.synth.render import _cavity_colours, _composite, rasterize_parts

    size = config.image_size
    model, mesh, f = assets.model, assets.mesh, assets.features
    n = model.n_mesh
    shape, real = params["shape"], params["realism"]
    app = v2_appearance(params["appearance"], real)
    light = adjust_lighting(params["lighting"], real)
    rotation = camera.rotation.astype(np.float32)
    key_dir = np.asarray(light["key_dir"], np.float32)
    key = key_rgb(light)
    atlas = load_atlas()
    skull_centre = next(p.centre for p in head_proxies(model.landmarks, app, np.random.default_rng(0))
                        if p.name == "skull")  # the skull's centre does not depend on the proxy rng
    frame = hair_frame(skull_centre, real["hair"]["pole_tilt"])
    wave, phase = real["hair"]["wave"], float(real["seed"] % 628) / 100.0
    style = real["hair_style"]
    sheen = real["hair"]["sheen"] * (0.3 if style == "covered" else 0.0 if style == "shaved" else 1.0)

    normals = vertex_normals_fast(verts[:n], mesh.triangles) @ rotation.T
    shadow_strength = real["light"]["shadow"]
    cam_face = camera.to_camera(verts[:n]).astype(np.float32) if shadow_strength else None
    shadows = ShadowMap(cam_face, assets.render_triangles, key_dir) if shadow_strength else None

    def shadow_of(points_cam: np.ndarray, normals_cam: np.ndarray) -> np.ndarray | float:
        if shadows is None:
            return 1.0
        return 1.0 - shadow_strength * (1.0 - shadows.visibility(points_cam, normals_cam))

    def hair_channels(points_mesh: np.ndarray, rot: np.ndarray, lit: np.ndarray, hairness: np.ndarray
                      ) -> np.ndarray:
        """(V, 3): highlight, across, along; computed only where there is hair (0 elsewhere)."""
        out = np.zeros((len(points_mesh), 3), np.float32)
        ids = np.flatnonzero(hairness > 0)
        across, along, tangent = hair_coords(points_mesh[ids], skull_centre, frame, wave, phase)
        out[ids, 0] = sheen * kajiya_kay(tangent @ rot.T, key_dir, real["hair"]["sheen_power"]) * lit[ids]
        out[ids, 1], out[ids, 2] = across, along
        return out

    # face mesh: skin albedo (hair is blended per pixel), light parts, atlas and hair coordinates
    blink = (shape.get("blink_r", 0.0), shape.get("blink_l", 0.0))
    skin_albedo = albedo(f, {**app, "hair_style": "bald"}, blink)
    hairy = _face_hairness(f, app, real)
    face_shadow = shadow_of(cam_face, normals)
    ambient, cosine, spec = light_parts(normals, light, f.occlusion, face_shadow,
                                        specular_mask=f.occlusion * np.float32(real["skin"]["shine"]),
                                        subsurface=real["light"]["subsurface"])
    light_mesh = rotation.T @ key_dir  # the key light in the mesh frame: project it on the atlas axes
    az = atlas.azimuth
    along_u = light_mesh[0] * np.cos(az) - light_mesh[2] * np.sin(az)
    face = np.empty((n, CHANNELS), np.float32)
    face[:, 0:3], face[:, 3:6], face[:, 6:9], face[:, 9] = skin_albedo, ambient, cosine, spec
    face[:, 11] = hairy
    face[:, 12:14] = atlas.vertex_uv
    face[:, 14], face[:, 15] = along_u, -light_mesh[1]
    lit_face = np.clip(cosine[:, 1] * 4.0, 0, 1)
    face[:, [10, 16, 17]] = hair_channels(model.mean[:n], rotation, lit_face, hairy)
    cavity = np.zeros((len(model.cavity_rows), CHANNELS), np.float32)
    cavity[:, 3:6] = _cavity_colours(model.cavity_rows, shape.get("jaw_open", 0.0), light)
    cavity[:, 0:3] = 1.0
    cavity[:, 12:14] = OFF_ATLAS
    positions, colours = [crop], [face, cavity]
    depth_bonus = [np.full(len(verts), 1.0e4)]
    triangles = [assets.render_triangles, model.cavity_triangles + n]
    offset = len(verts)
    if config.proxies:
        rng = np.random.default_rng(params["proxy_seed"])
        body = body_rotation(params["pose"])
        skin = np.asarray(app["skin"], dtype=np.float32)
        for proxy in head_proxies(model.landmarks, app, rng):
            pv, pt, pn = proxy_mesh(proxy)
            rot = (rotation if proxy.follows == "head" else body).astype(np.float32)
            cam = camera.to_camera(pv, rot).astype(np.float32)
            positions.append(camera.to_crop(cam))
            normals_cam = (pn @ rot.T).astype(np.float32)
            grain = np.exp(rng.normal(0, 0.08, (len(pv), 1))).astype(np.float32)
            channels = np.zeros((len(pv), CHANNELS), np.float32)
            channels[:, 12:14] = OFF_ATLAS
            hairness = np.zeros(len(pv), np.float32)
            shine = 0.3
            base = skin * 0.92
            if proxy.name == "shoulders":
                base = np.asarray(app["clothes"], dtype=np.float32)
            elif proxy.name == "long_hair":
                hairness[:] = 1.0
            elif proxy.name == "skull":
                hairness = skull_hairness(pv, app, real, f, model.landmarks)
                shine = 1.0 if style in ("bald", "shaved") else 0.3  # bare scalp is shiny
                base = skin
            shadow = shadow_of(cam, normals_cam) if proxy.name != "shoulders" else 1.0
            amb, cos_key, spc = light_parts(normals_cam, light, 1.0, shadow, specular_mask=shine * (1 - hairness),
                                            subsurface=real["light"]["subsurface"] * (proxy.name != "shoulders"),
                                            shininess_scale=1.5 if shine > 0.5 else 1.0)
            channels[:, 0:3] = np.clip(base * grain, 0, 1)
            channels[:, 3:6], channels[:, 6:9], channels[:, 9], channels[:, 11] = amb, cos_key, spc, hairness
            if proxy.name != "shoulders":
                lit = np.clip(cos_key[:, 1] * 4.0, 0, 1)
                if proxy.name == "long_hair":  # hangs straight: strands about its own vertical axis
                    across, along, tangent = hair_coords(pv, proxy.centre, hair_frame(proxy.centre, [0.0, 0.35]),
                                                         wave, phase)
                    channels[:, 10] = sheen * kajiya_kay(tangent @ rot.T, key_dir, real["hair"]["sheen_power"]) * lit
                    channels[:, 16], channels[:, 17] = across, along
                else:
                    channels[:, [10, 16, 17]] = hair_channels(pv, rot, lit, hairness)
            colours.append(channels)
            depth_bonus.append(np.zeros(len(pv)))
            triangles.append(pt + offset)
            offset += len(pv)
    raster, px = rasterize_parts(positions, triangles, depth_bonus, colours, size)
    colour = _shade_pixels(px, raster.mask, app, real, key, atlas, shape)
    foreground = np.clip(colour, 0.0, 1.0) ** (1.0 / 2.2)
    return _composite(foreground.astype(np.float32), raster.mask, render_background(params["background"], size))


def _shade_pixels(px: np.ndarray, mask: np.ndarray, app: dict[str, Any], real: dict[str, Any], key: np.ndarray,
                  atlas, shape: dict[str, Any]) -> np.ndarray:
    """(S, S, 3) linear colour from the interpolated channels (see the module docstring); only the covered
    pixels are computed (gathered into (M, C) rows: contiguous, and about half the image)."""
    import cv2

    rows = px[mask]  # (M, CHANNELS)
    detail = remap_points(detail_maps(real, app, shape, atlas), rows[:, 12], rows[:, 13], cv2.BORDER_CONSTANT)
    ambient, cosine = rows[:, 3:6], rows[:, 6:9]
    bump = detail[:, 3:4] * rows[:, 14:15] + detail[:, 4:5] * rows[:, 15:16]
    in_light = np.clip(cosine[:, 1:2] * 5.0, 0.0, 1.0)
    bumped = np.maximum(cosine - in_light * bump, 0.0)
    skin = rows[:, 0:3] * (1.0 + detail[:, 0:3]) * (ambient + bumped * key) + (rows[:, 9:10] * (1.0 + detail[:, 5:6])
                                                                              ) * key
    hairy = np.flatnonzero(rows[:, 11] > 0)  # hair work only where there is hair
    h = rows[hairy]
    strands = strand_pixels(h[:, 16], h[:, 17], real["seed"])[:, None]
    hairness = h[:, 11:12]
    edge = 4.0 * hairness * (1.0 - hairness)  # the hairline: strands reach out, skin shows between them
    coverage = np.clip((hairness - 0.5) * 2.0 + 0.5 + 0.45 * strands * edge, 0.0, 1.0)
    contrast = real["hair"]["contrast"] * (0.3 if real["hair_style"] in ("covered", "shaved") else 0.55)
    hair_rgb = hair_colour(app, real) * np.clip(1.0 + contrast * strands, 0.2, 2.0)
    hair = hair_rgb * (h[:, 3:6] + h[:, 6:9] * key) + (h[:, 10:11] * np.clip(0.6 + 0.5 * strands, 0, 2)) * key
    skin[hairy] += coverage * (hair - skin[hairy])
    out = np.zeros(mask.shape + (3,), np.float32)
    out[mask] = skin
    return out


def remap_points(image: np.ndarray, x: np.ndarray, y: np.ndarray, border: int) -> np.ndarray:
    """(M, C) bilinear lookups of `image` at M points (cv2.remap wants 2D maps under 32767 a side)."""
    import cv2

    width = 512
    count = len(x)
    if count == 0:
        return np.zeros((0, image.shape[2] if image.ndim == 3 else 1), np.float32)
    padded = -(-count // width) * width
    maps = np.full((2, padded), -1.0, np.float32)
    maps[0, :count], maps[1, :count] = x, y
    out = cv2.remap(image, maps[0].reshape(-1, width), maps[1].reshape(-1, width), cv2.INTER_LINEAR,
                    borderMode=border, borderValue=0)
    return out.reshape(padded, -1)[:count]
