"""Files of `prnet predict`: per image a JSON, a coloured .obj and dense vertices per face, and pictures;
per video an annotated video and per-frame landmarks. Folders are processed file by file: a bad file is
reported and skipped, the rest still run.

Outputs for IMAGE.jpg in OUT/ (face i = 0, 1, ... largest first):
    IMAGE.json               {"image", "width", "height", "model", "faces": [{"box", "score", "crop", "landmarks_2d",
                              "landmarks_3d", "pose", "files"}]} (image pixels; z scaled like x, y; larger z = closer)
    IMAGE_face{i}.obj        dense mesh, per-vertex colours from the image; y flipped to point up (as PRNet's demo)
    IMAGE_face{i}_dense.npz  vertices (M, 3) image frame, colors (M, 3) in [0, 1], triangles (T, 3)
    IMAGE_landmarks.jpg, IMAGE_dense.jpg, IMAGE_mesh.jpg
Outputs for VIDEO.mp4: VIDEO_annotated.mp4 and VIDEO_landmarks.json ({"fps_input", "fps_processing", "redetections",
    "redetect_reasons", "frames": [{"frame", "time", "detected", "reason", "faces"}]}): "detected" says whether the
    frame's crops came from the detector (or --bbox) rather than the previous frame's landmarks, "reason" why
    ("first", "periodic", "lost", "degraded:RULE", see prnet.predict.track; null when tracked); "redetections"
    counts the detector runs after the first frame, "redetect_reasons" them by reason.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from prnet.io import PrnetInputError, atomic_path, read_image_rgb, write_bytes_atomic, write_image_atomic, write_json_atomic, write_npz_atomic
from prnet.predict.detect import Face, detect_faces
from prnet.predict.pipeline import FaceFit, check_image, mean_shape_landmarks, reconstruct_faces, vertex_colors
from prnet.predict.track import Box, TrackConfig, detection_reason, follow, merge_detections
from prnet.runner import Runner

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2"}
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


@dataclass
class PredictOptions:
    boxes: list[Face] | None = None  # user boxes (--bbox) instead of the detector
    refine: bool = True  # second pass cropped from the first pass's landmarks
    min_score: float = 0.5  # detector confidence threshold
    max_faces: int | None = None  # keep the N largest faces
    write_obj: bool = True
    write_pictures: bool = True
    redetect_every: int = 15  # video: run the detector every N frames, track with landmarks in between
    track: TrackConfig = field(default_factory=TrackConfig)  # video: when a track has degraded (detect on the next frame)
    pose_reference: np.ndarray | None = None  # (68, 3) mean-shape landmarks for head pose; None: the face mesh's

    def reference_landmarks(self) -> np.ndarray:
        return self.pose_reference if self.pose_reference is not None else mean_shape_landmarks()


@dataclass
class PredictSummary:
    results: list[dict] = field(default_factory=list)  # one record per processed file
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, message)


def _r(array: np.ndarray, digits: int = 3) -> list:
    return np.round(np.asarray(array, dtype=np.float64), digits).tolist()


def face_record(fit: FaceFit) -> dict:
    return {
        "box": _r(fit.face.box, 2),
        "score": round(float(fit.face.score), 4),
        "crop": {"center": _r(fit.center, 3), "side": round(fit.side, 3), "matrix": _r(fit.matrix, 6)},
        "landmarks_2d": _r(fit.landmarks[:, :2]),
        "landmarks_3d": _r(fit.landmarks),
        "pose": {k: round(v, 3) for k, v in fit.pose.items() if k in ("yaw", "pitch", "roll")},
    }


def obj_text(vertices: np.ndarray, triangles: np.ndarray, colors: np.ndarray | None = None) -> str:
    """Wavefront OBJ (1-based faces); 'v x y z r g b' when colors (M, 3) in [0, 1] are given.
    One %-format per block (3x faster than np.savetxt's per-row formatting)."""
    rows = np.asarray(vertices, dtype=np.float64) if colors is None else np.hstack([vertices, colors]).astype(np.float64)
    vertex_line = "v" + " %.4f" * rows.shape[1] + "\n"
    faces = np.asarray(triangles, dtype=np.int64) + 1
    return (vertex_line * len(rows)) % tuple(rows.ravel()) + ("f %d %d %d\n" * len(faces)) % tuple(faces.ravel())


def write_face_files(fit: FaceFit, image: np.ndarray, triangles: np.ndarray, stem: Path, write_obj: bool) -> dict:
    colors = vertex_colors(image, fit.vertices)
    files = {"dense": f"{stem.name}_dense.npz"}
    write_npz_atomic(stem.parent / files["dense"], compressed=False, vertices=fit.vertices, colors=colors,
                     triangles=triangles)  # float data barely compresses: zlib costs more than the model here
    if write_obj:
        up = fit.vertices.astype(np.float64).copy()
        up[:, 1] = image.shape[0] - 1 - up[:, 1]  # y up for 3D viewers
        files["obj"] = f"{stem.name}.obj"
        write_bytes_atomic(stem.parent / files["obj"], obj_text(up, triangles, colors).encode())
    return files


def write_pictures(image: np.ndarray, fits: list[FaceFit], triangles: np.ndarray, stem: Path) -> dict:
    from prnet.predict.draw import draw_dense, draw_landmarks, render_mesh

    landmarks, dense, mesh = image, image, image
    for fit in fits:
        landmarks = draw_landmarks(landmarks, fit.landmarks)
        dense = draw_dense(dense, fit.vertices)
        mesh = render_mesh(mesh, fit.vertices, triangles)
    files = {}
    for kind, picture in (("landmarks", landmarks), ("dense", dense), ("mesh", mesh)):
        files[kind] = f"{stem.name}_{kind}.jpg"
        write_image_atomic(stem.parent / files[kind], picture)
    return files


def predict_image(image: np.ndarray, runner: Runner, options: PredictOptions, source: str = "image") -> list[FaceFit]:
    check_image(image, source)
    faces = options.boxes if options.boxes is not None else detect_faces(image, min_score=options.min_score)
    faces = faces[: options.max_faces] if options.max_faces else faces
    if not faces:
        raise PrnetInputError(f"{source}: no face found (try a lower --min-score, or give the face with --bbox)")
    return reconstruct_faces(image, runner, faces, refine=options.refine, reference_landmarks=options.reference_landmarks())


def predict_image_file(path: Path, runner: Runner, out_dir: Path, options: PredictOptions, stem: str) -> dict:
    image = read_image_rgb(path)
    fits = predict_image(image, runner, options, str(path))
    triangles = runner.layout.face_triangles
    record = {"image": str(path), "width": image.shape[1], "height": image.shape[0], "model": runner.name, "faces": []}
    for i, fit in enumerate(fits):
        face = face_record(fit)
        face["files"] = write_face_files(fit, image, triangles, out_dir / f"{stem}_face{i}", options.write_obj)
        record["faces"].append(face)
    if options.write_pictures:
        record["pictures"] = write_pictures(image, fits, triangles, out_dir / stem)
    write_json_atomic(out_dir / f"{stem}.json", record)
    return record


def _detected_crops(image: np.ndarray, options: PredictOptions) -> list[Box]:
    faces = options.boxes if options.boxes is not None else detect_faces(image, min_score=options.min_score)
    return [f.crop_box() for f in faces]


def predict_video_file(path: Path, runner: Runner, out_dir: Path, options: PredictOptions, stem: str) -> dict:
    """Frame by frame: detect every `redetect_every` frames, when no face is tracked or when a face's track
    degraded (prnet.predict.track), else crop each face from its previous landmarks (PRNet's ground-truth crop
    rule), as the seed's real-time tracking demos do. User boxes stand in for the detector, never periodically."""
    import cv2

    from prnet.predict.draw import draw_dense, draw_landmarks

    every = options.redetect_every if options.boxes is None else None
    capture = cv2.VideoCapture(str(path))
    try:
        ok, bgr = capture.read() if capture.isOpened() else (False, None)
        if not ok:
            raise PrnetInputError(f"{path}: not a readable video (corrupt, truncated or unsupported codec)")
        fps_in = capture.get(cv2.CAP_PROP_FPS) or 25.0
        reference = options.reference_landmarks()
        frames, tracks, last_detection, seconds = [], [], 0, 0.0
        with atomic_path(out_dir / f"{stem}_annotated.mp4") as tmp:
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps_in, bgr.shape[1::-1])
            if not writer.isOpened():
                raise PrnetInputError(f"{path}: OpenCV cannot write an mp4v video here; this OpenCV build has no video encoder")
            try:
                while ok:
                    image = np.ascontiguousarray(bgr[..., ::-1])
                    index, start = len(frames), time.perf_counter()
                    reason = detection_reason(tracks, index, index - last_detection, every)
                    if reason:
                        tracks = merge_detections(tracks, _detected_crops(image, options), options.max_faces, options.track)
                        last_detection = index
                    fits = reconstruct_faces(image, runner, crop_boxes=[t.box for t in tracks], refine=False, reference_landmarks=reference)
                    tracks = follow(tracks, [fit.landmarks for fit in fits], image.shape[:2], options.track)
                    seconds += time.perf_counter() - start
                    frames.append({"frame": index, "time": round(index / fps_in, 4), "detected": reason is not None,
                                   "reason": reason, "faces": [face_record(f) for f in fits]})
                    annotated = image
                    for fit in fits:
                        annotated = draw_landmarks(draw_dense(annotated, fit.vertices, step=8), fit.landmarks)
                    writer.write(np.ascontiguousarray(annotated[..., ::-1]))
                    ok, bgr = capture.read()
            finally:
                writer.release()
    finally:
        capture.release()
    fps = len(frames) / seconds if seconds > 0 else float("inf")
    reasons = Counter(f["reason"] for f in frames[1:] if f["detected"])
    record = {"video": str(path), "model": runner.name, "frames_total": len(frames), "fps_input": fps_in,
              "fps_processing": round(fps, 2), "redetections": sum(reasons.values()), "redetect_reasons": dict(reasons),
              "annotated": f"{stem}_annotated.mp4", "frames": frames}
    write_json_atomic(out_dir / f"{stem}_landmarks.json", record)
    return {k: v for k, v in record.items() if k != "frames"}


def list_inputs(source: Path) -> list[Path]:
    """The image and video files to process: the file itself, or a folder's files (sorted, not recursive)."""
    if source.is_file():
        return [source]
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)
        if not files:
            raise PrnetInputError(f"{source}: no image or video files in this folder ({', '.join(sorted(IMAGE_EXTENSIONS))}, ...)")
        return files
    raise PrnetInputError(f"{source}: no such file or folder")


def output_stems(paths: list[Path]) -> list[str]:
    """File stems as output names; files sharing a stem (a.jpg, a.png) keep their extension in the name."""
    stems = [p.stem for p in paths]
    names = [s if stems.count(s) == 1 else p.name.replace(".", "_") for s, p in zip(stems, paths)]
    # the same file name in two folders: the folder's name in front, then a counter if that is not enough
    names = [n if names.count(n) == 1 else f"{p.parent.name}_{n}" for n, p in zip(names, paths)]
    return [n if names.count(n) == 1 else f"{n}_{i}" for i, n in enumerate(names)]


def predict_paths(source: Path | Sequence[Path], runner: Runner, out_dir: Path, options: PredictOptions,
                  progress=None) -> PredictSummary:
    """Process files, folders and videos (one path or several); every failure is recorded with its message and
    the rest still run. Output names stay unique across all of them."""
    summary = PredictSummary()
    sources = [source] if isinstance(source, (str, Path)) else list(source)
    if len(sources) == 1:
        paths = list_inputs(Path(sources[0]))
    else:  # several: a missing one is a recorded failure, the others still run
        paths = []
        for item in sources:
            try:
                paths += [p for p in list_inputs(Path(item)) if p not in paths]
            except PrnetInputError as err:
                summary.failures.append((str(item), str(err)))
                if progress is not None:
                    progress(Path(item), summary)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, stem in zip(paths, output_stems(paths)):
        try:
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                record = predict_video_file(path, runner, out_dir, options, stem)
            else:
                record = predict_image_file(path, runner, out_dir, options, stem)
            summary.results.append(record)
        except PrnetInputError as err:
            summary.failures.append((str(path), str(err)))
        if progress is not None:
            progress(path, summary)
    return summary
