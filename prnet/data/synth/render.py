"""One synthetic sample, start to finish: parameters -> shape -> pose/crop -> shading -> image + position map.

    rng = default_rng([seed, index])          every choice below comes from it, so (seed, index) -> same sample
    params  = shape, pose, appearance, lighting, background, occluders, degradation   (all recorded)
    verts   = ShapeModel.deform(shape)        (N + cavity, 3) mm, mesh frame
    camera  = pose + PRNet crop from the 68 projected landmarks (1.5x box), z shifted to min 0
    posmap  = prnet.geometry.posmap.position_map(face vertices in the crop frame)   (S, S, 3) pixels
    image   = z-buffered render of face + mouth cavity + head/body proxies, lit per vertex,
              over a background, then occluders, then camera degradations             (S, S, 3) uint8
    landmarks = landmarks_from_posmap(posmap)  (so they agree with the map by construction)

The face mesh is drawn in front of the proxies (its depth is offset) because the ellipsoid proxies are
rough: they must never poke through the face; the mesh still depth-tests against itself (far ear, cheek).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from prnet.data.format import Sample
from prnet.data.synth.appearance import FaceFeatures, albedo, hair_mask, hairline_y, sample_appearance
from prnet.data.synth.appearance import ambient_occlusion, sample_lighting, shade
from prnet.data.synth.background import render_background, sample_background
from prnet.data.synth.degrade import degrade, sample_degradation
from prnet.data.synth.kernels import interpolate_fast, vertex_normals_fast
from prnet.data.synth.occluders import draw_occluders, sample_occluders
from prnet.data.synth.scene import body_rotation, head_proxies, make_camera, place_camera, proxy_mesh, sample_pose
from prnet.data.synth.shape import ShapeModel, sample_shape_params

GENERATOR_NAME = "prnet-synth"
GENERATOR_VERSION = 2  # the newest: what a new pool gets (see SynthConfig.version)
GENERATOR_VERSIONS = (1, 2)  # 1: the first renderer, kept bit-identical; 2: realism.py, render_v2.py
FACE_DEPTH_OFFSET = 1.0e4  # render-only depth bonus of the face mesh over the proxies


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of the generator; stored in the dataset manifest (a resumed run must use the same)."""

    image_size: int = 256
    expression_rate: float = 0.7  # fraction of faces with a non-neutral expression
    occlusion_rate: float = 0.45  # fraction of faces with one or two occluders
    proxies: bool = True  # skull / neck / shoulders / long hair around the face mesh
    degrade: bool = True  # resolution, blur, colour, noise, JPEG
    # None: the newest version for a new pool, and the pool's own version when resuming one (generate.py),
    # so pools written by version 1 keep rendering version 1 samples by (seed, index)
    version: int | None = None

    def __post_init__(self) -> None:
        if self.version is not None and self.version not in GENERATOR_VERSIONS:
            raise ValueError(f"unknown synthetic generator version {self.version}; known: {GENERATOR_VERSIONS}")

    @property
    def resolved_version(self) -> int:
        return GENERATOR_VERSION if self.version is None else int(self.version)

    def to_json(self) -> dict[str, Any]:
        """The manifest's "generator" block; version 1's has exactly the keys version 1 wrote."""
        fields = {k: v for k, v in asdict(self).items() if k != "version"}
        return {"name": GENERATOR_NAME, "version": self.resolved_version, **fields}

    @classmethod
    def from_json(cls, generator: dict[str, Any]) -> "SynthConfig":
        """The config a manifest's "generator" block records (unknown keys such as "seed" are ignored)."""
        names = {f.name for f in fields(cls)} - {"version"}
        return cls(**{k: v for k, v in generator.items() if k in names}, version=int(generator.get("version", 1)))


@dataclass
class SynthAssets:
    """What every sample reuses (built once per process: ~3 s)."""

    mesh: Any  # prnet.geometry.mesh.FaceMesh
    layout: Any  # prnet.layout.UVLayout
    model: ShapeModel
    features: FaceFeatures
    render_triangles: np.ndarray  # mesh triangles without the mouth fill fan (the cavity shows instead)
    face_region: np.ndarray  # (N,) bool, depth-offset in the render


@functools.lru_cache(maxsize=1)
def load_assets() -> SynthAssets:
    from prnet.geometry.layout import default_layout
    from prnet.geometry.mesh import REGION_FACE, load_face_mesh

    mesh = load_face_mesh()
    model = ShapeModel.from_mesh(mesh.vertices, mesh.landmark_ids, mesh.triangles, mesh.mouth_fill_vertex)
    lm = model.landmarks
    features = FaceFeatures.from_mean(mesh.vertices, lm, outside=mesh.regions < REGION_FACE)
    fan = (mesh.triangles == mesh.mouth_fill_vertex).any(axis=1)
    features.occlusion = ambient_occlusion(mesh.vertices, mesh.triangles[~fan])
    return SynthAssets(
        mesh=mesh,
        layout=default_layout(),
        model=model,
        features=features,
        render_triangles=mesh.triangles[~fan],
        face_region=mesh.regions >= REGION_FACE,
    )


def sample_params(rng: np.random.Generator, assets: SynthAssets, config: SynthConfig) -> dict[str, Any]:
    """Draw every random choice of one sample, in a fixed order. Version 2 draws its extra choices after all
    of version 1's, so both versions share shape, pose and scene for the same (seed, index)."""
    params = {
        "shape": sample_shape_params(rng, assets.model, config.expression_rate),
        "pose": sample_pose(rng),
        "appearance": sample_appearance(rng),
        "lighting": sample_lighting(rng),
        "background": sample_background(rng),
        "occluders": sample_occluders(rng, config.occlusion_rate),
        "degradation": sample_degradation(rng),
        "proxy_seed": int(rng.integers(2**31)),
    }
    if config.resolved_version >= 2:
        from prnet.data.synth.realism import sample_realism

        params["realism"] = sample_realism(rng, params)
    return params


def render_sample(index: int, seed: int, config: SynthConfig = SynthConfig(), assets: SynthAssets | None = None
                  ) -> Sample:
    """Sample `index` of the stream seeded `seed`: identical for the same (seed, index, config)."""
    assets = assets or load_assets()
    rng = np.random.default_rng([int(seed), int(index)])
    return render_params(sample_params(rng, assets, config), index, seed, config, assets)


def render_params(params: dict[str, Any], index: int, seed: int, config: SynthConfig = SynthConfig(),
                  assets: SynthAssets | None = None, placement: tuple[float, tuple[float, float]] | None = None
                  ) -> Sample:
    """Render one sample from drawn `params` (sample_params' dict, changed at will: one face turning its head in
    a video is one draw with a new "pose" per frame). `index` and `seed` are only recorded in the sample.
    `placement` (scale, (dx, dy)) moves the face inside the image (scene.place_camera) instead of PRNet's crop;
    the position map and landmarks are then in those image pixels."""
    from prnet.geometry.posmap import landmarks_from_posmap, position_map

    assets = assets or load_assets()
    params = copy.deepcopy(params)  # the caller's dict is reused across frames: never change it
    size = config.image_size
    model, mesh = assets.model, assets.mesh
    n = model.n_mesh

    verts = model.deform(params["shape"])  # (N + M, 3) mm
    camera = make_camera(verts[:n], mesh.landmark_ids, params["pose"], model.centre, size)
    if placement is not None:
        camera = place_camera(camera, *placement)
    crop = camera.to_crop(camera.to_camera(verts))
    posmap = position_map(crop[:n], None, assets.layout)  # None: the packaged mesh's cached UV sampler
    landmarks = landmarks_from_posmap(posmap, assets.layout)

    version = config.resolved_version
    if version >= 2:
        from prnet.data.synth.render_v2 import render_image_v2

        image = render_image_v2(verts, crop, camera, params, assets, config)
    else:
        image = _render_image(verts, crop, camera, params, assets, config)
    image = draw_occluders(image, params["occluders"], landmarks[:, :2], params["pose"]["yaw"])
    if config.degrade:
        image = degrade(image, params["degradation"], params["pose"]["source_face_px"])
    else:
        image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    params["camera"] = {"rotation": camera.rotation, "crop_matrix_mm": camera.matrix, "z_shift": camera.z_shift,
                        "convention": "crop = M @ (R @ (v - centre)) with y flipped; z * scale(M) + z_shift"}
    params["generator"] = {"name": GENERATOR_NAME, "version": version, "seed": int(seed),
                           "index": int(index)}
    return Sample(index=int(index), image=image, posmap=posmap.astype(np.float32),
                  landmarks=landmarks.astype(np.float32), params=_jsonable(params))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _render_image(verts, crop, camera, params, assets: SynthAssets, config: SynthConfig) -> np.ndarray:
    """float32 sRGB-ish image in [0, 1]: background + lit face, cavity and proxies."""
    size = config.image_size
    model, mesh = assets.model, assets.mesh
    n = model.n_mesh
    shape, app, light = params["shape"], params["appearance"], params["lighting"]
    rotation = camera.rotation

    # face mesh + mouth cavity: albedo, normals in the camera frame, shading
    normals = vertex_normals_fast(verts[:n], mesh.triangles) @ rotation.T.astype(np.float32)
    blink = (shape.get("blink_r", 0.0), shape.get("blink_l", 0.0))
    face_hair = hair_mask(assets.features, app)
    face_colour = shade(albedo(assets.features, app, blink), normals.astype(np.float32), light,
                        specular_mask=(1.0 - 0.8 * face_hair) * assets.features.occlusion,
                        occlusion=assets.features.occlusion)
    cavity_colour = _cavity_colours(model.cavity_rows, shape.get("jaw_open", 0.0), light)
    texture_strength = 0.35 if app["hair_style"] == "covered" else 1.0  # a hat's weave is fainter than hair
    positions = [crop]
    colours = [np.column_stack([face_colour, face_hair * texture_strength]),
               np.column_stack([cavity_colour, np.zeros(len(cavity_colour), np.float32)])]
    depth_bonus = [np.full(len(verts), FACE_DEPTH_OFFSET)]
    triangles = [assets.render_triangles, model.cavity_triangles + n]
    offset = len(verts)
    if config.proxies:
        rng = np.random.default_rng(params["proxy_seed"])
        body = body_rotation(params["pose"])
        for proxy in head_proxies(model.landmarks, app, rng):
            pv, pt, pn = proxy_mesh(proxy)
            rot = rotation if proxy.follows == "head" else body
            positions.append(camera.to_crop(camera.to_camera(pv, rot)))
            proxy_albedo, hairy = _proxy_albedo(proxy.name, pv, app, assets, rng)
            lit = shade(proxy_albedo, (pn @ rot.T).astype(np.float32), light, specular_mask=0.3)
            colours.append(np.column_stack([lit, hairy * texture_strength]))
            depth_bonus.append(np.zeros(len(pv)))
            triangles.append(pt + offset)
            offset += len(pv)
    raster, shaded = rasterize_parts(positions, triangles, depth_bonus, colours, size)  # (S, S, 4): RGB + hairness
    foreground = np.clip(shaded[..., :3], 0.0, 1.0) ** (1.0 / 2.2)
    streaks = hair_streaks(np.random.default_rng(params["proxy_seed"] + 1), size, params["pose"]["roll"])
    foreground = foreground * (1.0 + shaded[..., 3:] * (streaks - 0.5) * 1.1)
    return _composite(foreground, raster.mask, render_background(params["background"], size))


def rasterize_parts(positions: list[np.ndarray], triangles: list[np.ndarray], depth_bonus: list[np.ndarray],
                    colours: list[np.ndarray], size: int) -> tuple[Any, np.ndarray]:
    """Rasterize the face and its proxy meshes in one z-buffer (triangles already offset into the concatenated
    vertices; depth_bonus biases a part towards the camera) and interpolate the per-vertex channels per pixel."""
    from prnet.geometry.raster import rasterize

    xyz = np.concatenate(positions)
    tris = np.concatenate(triangles)
    raster = rasterize(xyz[:, :2], tris, size, size, depth=xyz[:, 2] + np.concatenate(depth_bonus))
    return raster, interpolate_fast(raster, tris, np.concatenate(colours))


def hair_streaks(rng: np.random.Generator, size: int, roll_degrees: float) -> np.ndarray:
    """(S, S, 1) float32 in ~[0, 1]: noise stretched along the head's vertical (strands of hair)."""
    import cv2

    coarse = cv2.resize(rng.random((10, size // 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    fine = cv2.resize(rng.random((24, size // 1)).astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    streaks = 0.55 * coarse + 0.45 * fine
    turn = cv2.getRotationMatrix2D((size / 2, size / 2), -roll_degrees, 1.0)
    return cv2.warpAffine(streaks, turn, (size, size), borderMode=cv2.BORDER_REFLECT)[..., None]


def _composite(foreground: np.ndarray, mask: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Anti-aliased silhouette: blend with a slightly blurred coverage (foreground extended under the edge)."""
    import cv2

    grown = cv2.dilate(foreground, np.ones((3, 3), np.uint8))
    foreground = np.where(mask[..., None], foreground, grown)
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (3, 3), 0.6)[..., None]
    return (foreground * alpha + background * (1.0 - alpha)).astype(np.float32)


def _cavity_colours(rows: np.ndarray, jaw_open: float, light: dict[str, Any]) -> np.ndarray:
    """Upper teeth at the top of the mouth, a dark throat below, a hint of lower teeth at the bottom."""
    teeth = np.float32([0.75, 0.72, 0.64])
    throat = np.float32([0.025, 0.006, 0.006])
    t = rows[:, None].astype(np.float32)
    upper = (t < 0.3).astype(np.float32)
    lower = (t > 0.9).astype(np.float32) * 0.6
    base = throat * (1 - upper - lower) + teeth * (upper + lower)
    return (base * (light["ambient"] + 0.5 * light["key"]) * light["exposure"]).astype(np.float32)


def _proxy_albedo(name: str, vertices: np.ndarray, app: dict[str, Any], assets: SynthAssets,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(albedo (V, 3), hairness (V,)) of a proxy's vertices."""
    skin = np.asarray(app["skin"], dtype=np.float32)
    hair = np.asarray(app["hat"] if app["hair_style"] == "covered" else app["hair"], dtype=np.float32)
    grain = np.exp(rng.normal(0, 0.12, (len(vertices), 1))).astype(np.float32)
    none = np.zeros(len(vertices), np.float32)
    if name == "shoulders":
        clothes = np.asarray(app["clothes"], dtype=np.float32)
        stripes = 1.0 + 0.25 * np.sign(np.sin(vertices[:, 1:2] / rng.uniform(4, 25))) * (rng.random() < 0.3)
        return np.clip(clothes * stripes * grain, 0, 1), none
    if name == "neck":
        return np.clip(skin * 0.9 * grain, 0, 1), none
    if name == "long_hair":
        return np.clip(hair * grain, 0, 1), none + 1.0
    # skull: hair above the hairline and at the back, skin elsewhere (bald: all skin)
    if app["hair_style"] == "bald":
        return np.clip(skin * grain, 0, 1), none
    line = hairline_y(vertices[:, 0], assets.features.brow_y, app["hairline_mm"])
    above_ears = vertices[:, 1] > assets.model.landmarks[2, 1]  # the face mesh hides the skull's front
    back = vertices[:, 2] < assets.model.landmarks[0, 2] - 25.0
    is_hair = (vertices[:, 1] > line) | above_ears | back
    return np.clip(np.where(is_hair[:, None], hair, skin) * grain, 0, 1), is_hair.astype(np.float32)
