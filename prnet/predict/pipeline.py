"""Predict on your own photos and videos: faces -> PRNet crops -> any Runner -> position maps -> original image.

    image (H, W, 3) uint8 RGB
      -> faces (prnet.predict.detect: yuface, or user boxes)       -> square crop per face (centre, side)
      -> crop matrix M (2x3, image -> crop)                 -> crops (B, S, S, 3) float32 in [0, 1]
      -> runner(crops)                                      -> position maps (B, S, S, 3), crop pixels
      -> inverse similarity (z scaled by the same factor)   -> position maps in image pixels
      -> 68 landmarks (bilinear at the layout's landmark UVs), dense vertices (face pixels), head pose
Optionally a second pass re-crops each face from its first-pass landmarks with PRNet's ground-truth crop rule
(`refine`), so the crop matches the training crops whatever the detector.

Writing files (JSON, .obj, pictures, video) lives in prnet.predict.io.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from prnet.geometry.crop import box_from_landmarks, crop_matrix, inverse_similarity, similarity_scale, transform_points
from prnet.io import PrnetInputError
from prnet.layout import UVLayout
from prnet.predict.detect import Face, detect_faces
from prnet.runner import Runner

MIN_IMAGE_SIDE = 32  # smaller images cannot hold a face the detector or the model can use
MAX_IMAGE_PIXELS = 120_000_000  # ~11k x 11k; beyond this, resize the image first
MAX_IMAGE_SIDE = 32_000  # OpenCV's remap/warp limit (SHRT_MAX)


@dataclass
class FaceFit:
    """One reconstructed face, everything in the original image frame (pixels; z scaled like x and y)."""

    face: Face  # the detector (or user) box the first crop came from
    center: np.ndarray  # (2,) centre of the final square crop
    side: float  # side of the final square crop in image pixels
    matrix: np.ndarray  # (2, 3) image -> crop
    posmap: np.ndarray  # (S, S, 3) float32 position map in the image frame
    landmarks: np.ndarray  # (68, 3) float32
    vertices: np.ndarray  # (M, 3) float32 dense vertices (layout face pixels, row-major)
    pose: dict = field(default_factory=dict)  # yaw/pitch/roll degrees (prnet.predict.pose.head_pose)


def check_image(image: np.ndarray, source: str = "image") -> np.ndarray:
    """Validate an RGB uint8 image for prediction (read files with prnet.io.read_image_rgb first)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise PrnetInputError(f"{source}: expected an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        raise PrnetInputError(f"{source}: image is {w}x{h}, too small to hold a face (need >= {MIN_IMAGE_SIDE} px)")
    if h * w > MAX_IMAGE_PIXELS or max(h, w) > MAX_IMAGE_SIDE:
        raise PrnetInputError(f"{source}: image is {w}x{h} ({h * w / 1e6:.0f} MP), over the limit ({MAX_IMAGE_PIXELS / 1e6:.0f} MP, {MAX_IMAGE_SIDE} px a side); resize it first")
    return image


def crop_image(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The (size, size, C) crop of `image` through `matrix`, reading only the region it needs (big photos).

    Equal to prnet.geometry.crop.warp_image on the whole image up to the blur border (a 4-sigma margin is kept).
    """
    from prnet.geometry.crop import compose, warp_image

    h, w = image.shape[:2]
    inverse = inverse_similarity(matrix)
    corners = transform_points(np.array([[-1.0, -1.0], [size, -1.0], [-1.0, size], [size, size]]), inverse)
    scale = similarity_scale(matrix)
    margin = 2 + (4 * 0.25 / scale if scale < 0.5 else 0)  # warp_image's blur sigma is 0.25 / scale
    x0, y0 = np.maximum(np.floor(corners.min(0) - margin).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0) + margin).astype(int) + 1, [w, h])
    if x1 <= x0 or y1 <= y0:  # crop entirely outside the image
        return np.zeros((size, size) + image.shape[2:], image.dtype)
    shift = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]])  # region pixel -> image pixel
    return warp_image(np.ascontiguousarray(image[y0:y1, x0:x1]), compose(matrix, shift), size)


def uncrop_posmap(posmap_crop: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Position map from crop pixels to image pixels: inverse similarity on x, y; z scaled by 1 / crop scale."""
    return transform_points(posmap_crop, inverse_similarity(matrix)).astype(np.float32)


def read_posmap(posmap: np.ndarray, layout: UVLayout) -> tuple[np.ndarray, np.ndarray]:
    """(68 landmarks (68, 3), dense vertices (M, 3)) of a position map in any frame (prnet.geometry.posmap)."""
    from prnet.geometry.posmap import dense_vertices, landmarks_from_posmap

    return landmarks_from_posmap(posmap, layout), dense_vertices(posmap, layout).astype(np.float32)


def _run_crops(image: np.ndarray, runner: Runner, boxes: list[tuple[np.ndarray, float]]) -> list[tuple]:
    size = runner.input_size
    matrices = [crop_matrix(center, side, size) for center, side in boxes]
    crops = np.stack([crop_image(image, m, size) for m in matrices]).astype(np.float32) / 255.0
    maps = runner(crops)
    if maps.shape != (len(boxes), size, size, 3):
        raise PrnetInputError(f"runner {runner.name} returned {maps.shape}, expected {(len(boxes), size, size, 3)}")
    return [(center, side, m, uncrop_posmap(p, m)) for (center, side), m, p in zip(boxes, matrices, maps)]


def refined_box(landmarks: np.ndarray, fallback: tuple[np.ndarray, float]) -> tuple[np.ndarray, float]:
    """PRNet's ground-truth crop around predicted landmarks; the fallback when they are unusable."""
    if not np.all(np.isfinite(landmarks)):
        return fallback
    center, side = box_from_landmarks(landmarks[:, :2])
    return (center, side) if side > 8 and side < 4 * fallback[1] else fallback


def reconstruct_faces(
    image: np.ndarray,
    runner: Runner,
    faces: list[Face] | None = None,
    crop_boxes: list[tuple[np.ndarray, float]] | None = None,
    refine: bool = True,
    reference_landmarks: np.ndarray | None = None,
) -> list[FaceFit]:
    """Reconstruct every face of an RGB image. `faces` from a detector (or `crop_boxes` directly, e.g. from
    tracking); `reference_landmarks` (68, 3) mean-shape landmarks enable head pose."""
    from prnet.predict.pose import head_pose

    if crop_boxes is None:
        faces = detect_faces(image) if faces is None else faces
        crop_boxes = [f.crop_box() for f in faces]
    if not crop_boxes:
        return []
    faces = faces or [Face(box=_box_of_crop(c, s), score=1.0) for c, s in crop_boxes]
    passes = _run_crops(image, runner, crop_boxes)
    if refine:
        boxes = [refined_box(read_posmap(p, runner.layout)[0], (c, s)) for c, s, _, p in passes]
        passes = _run_crops(image, runner, boxes)
    fits = []
    for face, (center, side, matrix, posmap) in zip(faces, passes):
        landmarks, vertices = read_posmap(posmap, runner.layout)
        pose = head_pose(landmarks, reference_landmarks) if reference_landmarks is not None else {}
        fits.append(FaceFit(face, np.asarray(center, float), float(side), matrix, posmap, landmarks, vertices, pose))
    return fits


def _box_of_crop(center: np.ndarray, side: float) -> np.ndarray:
    half = side / 2.0
    return np.array([center[0] - half, center[1] - half, center[0] + half, center[1] + half])


def vertex_colors(image: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Per-vertex RGB (M, 3) float32 in [0, 1], bilinear from the image at the vertices' x, y (border clamped)."""
    import cv2

    xy = np.asarray(vertices, dtype=np.float32)[:, :2]
    if len(xy) == 0:
        return np.zeros((0, 3), np.float32)
    n, cols = len(xy), 1024  # cv2.remap maps must stay under 32767 rows: lay the points out as a 2D grid
    grid = np.zeros((-(-n // cols) * cols, 2), np.float32)
    grid[:n] = xy
    grid = grid.reshape(-1, cols, 2)
    colors = cv2.remap(image, grid[..., 0], grid[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return colors.reshape(-1, 3)[:n].astype(np.float32) / 255.0


def mean_shape_landmarks() -> np.ndarray:
    """The mean face's 68 landmarks (68, 3) (mm, y up) for head pose, from the packaged face mesh."""
    from prnet.geometry.mesh import load_face_mesh

    mesh = load_face_mesh()
    return mesh.vertices[mesh.landmark_ids].astype(np.float64)
