"""Training augmentation, applied consistently to the image and its position map (pure numpy/cv2 functions).

One 2x3 similarity `A` maps the stored crop's pixel coordinates to the network input's: it combines the
resize to the model's input size with a random rotation, scale and translation about the crop centre. The
image is warped by `A`; the position map's (x, y) VALUES are mapped by `A` and z scaled by its scale (the
UV grid itself is only resized), so the map stays the 3D face of the warped image. Colour scaling and
occlusion change the image only. A horizontal flip (off by default) comes first: the image is mirrored and
the map re-read through the layout's mirror correspondence (prnet.geometry.mirror), since a mirrored face's
map is not the old map flipped on its UV grid.

Paper (Feng et al. 2018): rotation +-45 deg, translation +-10 % of the size, scale 0.9-1.2, colour scale
0.6-1.4 per channel, synthetic occlusion. The defaults here are tamer (the seed's advice): large rotations
push landmarks out of the crop and the small CPU runs learn faster on the easier distribution.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from prnet.geometry.mirror import LayoutMirror
from prnet.geometry.resample import resize_layout, resize_uv_map
from prnet.io import PrnetInputError
from prnet.layout import UVLayout


@dataclass(frozen=True)
class AugmentConfig:
    rotation_deg: float = 20.0  # uniform in +-rotation_deg
    translation: float = 0.05  # uniform shift in +-translation * size, per axis
    scale_min: float = 0.9
    scale_max: float = 1.1
    color_min: float = 0.8  # per-channel multiplier, uniform in [color_min, color_max]
    color_max: float = 1.2
    occlusion_prob: float = 0.2  # chance of one random rectangle of noise or flat colour
    occlusion_max_side: float = 0.4  # its sides are up to this fraction of the image
    # Chance of a left-right flip. Off by default: it changes what the model sees, and it is exact (up to the
    # mirror correspondence's error, prnet.geometry.mirror) only for the project's layout, which has a mirror map.
    flip_prob: float = 0.0

    @classmethod
    def paper(cls) -> "AugmentConfig":
        return cls(rotation_deg=45.0, translation=0.1, scale_min=0.9, scale_max=1.2, color_min=0.6, color_max=1.4,
                   occlusion_prob=0.5, occlusion_max_side=0.5)

    @classmethod
    def none(cls) -> "AugmentConfig":
        return cls(0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0)


def crop_similarity(data_size: int, out_size: int, angle_rad: float = 0.0, scale: float = 1.0,
                    shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """(2, 3) float64 map from the stored crop's pixels to the network input's (pixel centres at integers).

    Rotates by angle (counter-clockwise on screen), scales about the crop centre, shifts by `shift` output pixels,
    and resizes data_size -> out_size (x' = (x + 0.5) * f - 0.5 when nothing else is applied).
    """
    f = out_size / data_size
    c_in, c_out = (data_size - 1) / 2.0, (out_size - 1) / 2.0
    cos, sin = math.cos(angle_rad) * scale * f, math.sin(angle_rad) * scale * f
    linear = np.array([[cos, sin], [-sin, cos]])  # y points down, so +angle turns the face counter-clockwise
    offset = np.array([c_out + shift[0], c_out + shift[1]]) - linear @ np.array([c_in, c_in])
    return np.hstack([linear, offset[:, None]])


def similarity_scale(matrix: np.ndarray) -> float:
    return float(math.sqrt(abs(np.linalg.det(matrix[:, :2]))))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map (..., 3) points (x, y, z) through the similarity: (x, y) affinely, z scaled."""
    out = np.empty_like(points, dtype=np.float32)
    out[..., :2] = points[..., :2] @ matrix[:, :2].T.astype(np.float32) + matrix[:, 2].astype(np.float32)
    out[..., 2] = points[..., 2] * np.float32(similarity_scale(matrix))
    return out


def random_similarity(rng: np.random.Generator, config: AugmentConfig, data_size: int, out_size: int) -> np.ndarray:
    angle = math.radians(rng.uniform(-config.rotation_deg, config.rotation_deg))
    scale = rng.uniform(config.scale_min, config.scale_max)
    shift = tuple(rng.uniform(-config.translation, config.translation, 2) * out_size)
    return crop_similarity(data_size, out_size, angle, scale, shift)


def occlude(image: np.ndarray, rng: np.random.Generator, max_side: float) -> np.ndarray:
    """Paste one random rectangle of noise or flat colour (the paper pastes textures; we have none shipped)."""
    size = image.shape[0]
    h, w = (rng.uniform(0.1, max_side, 2) * size).astype(int) + 1
    top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
    if rng.random() < 0.5:
        patch = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:
        patch = np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (h, w, 3))
    image = image.copy()
    image[top : top + h, left : left + w] = patch
    return image


def flip_sample(image: np.ndarray, posmap: np.ndarray, mirror: LayoutMirror | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sample of the left-right flipped crop. Landmarks are re-read from the flipped map, not permuted with
    the iBUG mirror order: the template's landmarks are not exactly mirror-symmetric, and they must stay what
    the map says."""
    from prnet.geometry.mirror import flip_posmap
    from prnet.geometry.posmap import bilinear_sample

    if mirror is None or mirror.mirror.shape[0] != posmap.shape[0]:
        got = "none" if mirror is None else f"one for {mirror.mirror.shape[0]} px"
        raise PrnetInputError(f"augment.flip_prob > 0 needs the mirror map of the data's {posmap.shape[0]} px layout "
                              f"(prnet.geometry.mirror.layout_mirror), got {got}")
    posmap = flip_posmap(posmap, mirror.mirror, image.shape[1])
    landmarks = bilinear_sample(posmap, mirror.landmark_uv).astype(np.float32)
    return np.ascontiguousarray(image[:, ::-1]), posmap, landmarks


def augment_sample(image: np.ndarray, posmap: np.ndarray, landmarks: np.ndarray, out_size: int,
                   config: AugmentConfig, rng: np.random.Generator | None, mirror: LayoutMirror | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image (S,S,3) uint8, posmap (S,S,3) px, landmarks (68,3) px) -> the same at out_size, augmented.

    rng None: only the resize to out_size (validation). `mirror` (`layout_mirror(data layout)`): needed when
    config.flip_prob > 0.
    """
    data_size = image.shape[0]
    if rng is None:
        matrix = crop_similarity(data_size, out_size)
    else:
        # drawn only when flips are on, so the augmentation of seeded runs without flips stays what it was
        if config.flip_prob > 0 and rng.random() < config.flip_prob:
            image, posmap, landmarks = flip_sample(image, posmap, mirror)
        matrix = random_similarity(rng, config, data_size, out_size)
    image = cv2.warpAffine(image, matrix, (out_size, out_size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    posmap = transform_points(resize_uv_map(posmap, out_size), matrix)
    landmarks = transform_points(landmarks, matrix)
    if rng is not None:
        colour = rng.uniform(config.color_min, config.color_max, 3).astype(np.float32)
        image = np.clip(image.astype(np.float32) * colour, 0, 255).astype(np.uint8)
        if rng.random() < config.occlusion_prob:
            image = occlude(image, rng, config.occlusion_max_side)
    return image, posmap, landmarks


def resize_sample(sample: Any, size: int) -> Any:
    """A dataset sample (prnet.data.format.Sample) resampled to a model's input size: image, position map (UV grid
    and pixel values) and landmarks. The same sample when it already has that size."""
    if sample.image.shape[0] == size and sample.posmap.shape[0] == size:
        return sample
    image, posmap, landmarks = augment_sample(sample.image, sample.posmap, sample.landmarks, size,
                                              AugmentConfig.none(), None)
    return dataclasses.replace(sample, image=image, posmap=posmap, landmarks=landmarks)


class ResizedSamples:
    """A map-style sample source (a dataset directory, the synthetic generator) seen at another input size, so a
    128 px model runs on 256 px data (compress, bench, eval); `.layout` is the resampled UV layout."""

    def __init__(self, source: Any, size: int):
        self.source, self.size = source, int(size)

    @property
    def layout(self) -> UVLayout:
        return resize_layout(self.source.layout, self.size)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> Any:
        return resize_sample(self.source[index], self.size)
