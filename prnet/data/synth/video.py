"""A synthetic video with ground truth: one face, first still, then turning its head left and right while it moves
across the frame and changes size. It is what the tracker of `prnet predict VIDEO` is measured on (issue 16): the
landmarks of every frame are known exactly, so NME per frame, frames per second and the jitter of a still head
come out of one file, for any model.

    frames 0 .. still-1           still head: the same render each frame but fresh sensor noise (jitter)
    frames still .. still+turn-1  yaw = amplitude * sin(...), `cycles` left-right turns, pitch and roll swaying,
                                  the face gliding across the frame and growing / shrinking by ~25 %

One face is drawn once (`sample_params`: identity, expression, skin, hair, light, background) and only its pose,
its place in the frame and the noise seed change per frame (`render_params`). Occluders are off: a hand that
follows the landmarks frame by frame would be a different test.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from prnet.data.format import Sample
from prnet.io import PrnetInputError, atomic_path, write_json_atomic

GT_SCHEMA = "prnet-synth-video"


@dataclass(frozen=True)
class VideoConfig:
    seed: int = 777015  # a seed no training pool uses
    size: int = 320  # square frame, pixels
    fps: float = 30.0
    still_frames: int = 60
    turn_frames: int = 180
    cycles: float = 2.0  # left-right turns in the turning part
    yaw_amplitude: float = 70.0  # degrees
    still_yaw: float = 10.0
    face_scale: float = 0.55  # the face's PRNet crop as a share of the frame (0.55: the crop is 176 of 320 px)
    generator: int | None = None  # synthetic generator version (None: the newest)

    @property
    def frames(self) -> int:
        return self.still_frames + self.turn_frames


def frame_pose(config: VideoConfig, index: int) -> tuple[dict[str, float], float, tuple[float, float]]:
    """Pose (degrees), crop scale and crop offset (pixels) of frame `index`."""
    size, base = config.size, config.face_scale
    if index < config.still_frames:
        pose = {"yaw": config.still_yaw, "pitch": 0.0, "roll": 0.0}
        scale, shift = base, (0.0, 0.0)
    else:
        phase = 2 * np.pi * config.cycles * (index - config.still_frames) / max(1, config.turn_frames)
        pose = {"yaw": config.yaw_amplitude * np.sin(phase), "pitch": 8.0 * np.sin(0.7 * phase),
                "roll": 6.0 * np.sin(0.45 * phase)}
        scale = base * (1.0 + 0.25 * np.sin(0.5 * phase))
        shift = (0.18 * size * np.sin(0.5 * phase + 0.3), 0.08 * size * np.sin(0.35 * phase))
    scale = float(scale)
    # the crop is centred in the frame, then moved: image = scale * crop + offset
    offset = ((1.0 - scale) * size / 2 + shift[0], (1.0 - scale) * size / 2 + shift[1])
    return {k: float(v) for k, v in pose.items()}, scale, (float(offset[0]), float(offset[1]))


def render_frames(config: VideoConfig = VideoConfig()) -> Iterator[Sample]:
    """Every frame as a Sample: image (size, size, 3) uint8 RGB, landmarks (68, 3) in frame pixels."""
    from prnet.data.synth.render import SynthConfig, load_assets, render_params, sample_params

    synth = SynthConfig(image_size=config.size, version=config.generator)
    assets = load_assets()
    params = sample_params(np.random.default_rng([config.seed, 0]), assets, synth)
    params["occluders"] = []
    noise = np.random.default_rng([config.seed, 1])
    for index in range(config.frames):
        pose, scale, offset = frame_pose(config, index)
        # the frame is the camera's full resolution (no "small face in its photo" downscale) and has no motion
        # blur of its own; colour, noise and JPEG stay as drawn, the noise fresh each frame
        frame = dict(params, pose={**params["pose"], **pose, "source_face_px": float(config.size)})
        frame["degradation"] = {**params["degradation"], "motion_px": 0.0, "seed": int(noise.integers(2**31))}
        yield render_params(frame, index, config.seed, synth, assets, placement=(scale, offset))


def write_video(out: str | Path, config: VideoConfig = VideoConfig(), log=lambda line: None) -> dict[str, Any]:
    """Write OUT (mp4) and OUT's stem + '_gt.json' (landmarks per frame, the config), both atomically."""
    import cv2

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    landmarks, yaws = [], []
    with atomic_path(out, suffix=out.suffix) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), config.fps, (config.size, config.size))
        if not writer.isOpened():
            raise RuntimeError(f"{out}: this OpenCV build cannot write mp4v video")
        try:
            for sample in render_frames(config):
                writer.write(np.ascontiguousarray(sample.image[..., ::-1]))
                landmarks.append(np.round(sample.landmarks.astype(np.float64), 3).tolist())
                yaws.append(round(float(sample.params["pose"]["yaw"]), 3))
                if (sample.index + 1) % 30 == 0:
                    log(f"frame {sample.index + 1}/{config.frames}")
        finally:
            writer.release()
    record = {"schema": GT_SCHEMA, "video": out.name, "config": asdict(config), "frames": config.frames,
              "still_frames": config.still_frames, "yaw": yaws, "landmarks": landmarks}
    write_json_atomic(ground_truth_path(out), record)
    return record


def ground_truth_path(video: str | Path) -> Path:
    video = Path(video)
    return video.with_name(video.stem + "_gt.json")


def read_ground_truth(video: str | Path) -> dict[str, Any]:
    """The ground truth `write_video` wrote beside `video`; a missing, corrupt or foreign file is a PrnetInputError
    naming it and how to make it."""
    path = ground_truth_path(video)
    remedy = f"make the video and its ground truth with `prnet data video --out {Path(video)}`"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise PrnetInputError(f"{path}: no ground truth beside {video}; {remedy}") from None
    except (OSError, ValueError) as err:
        raise PrnetInputError(f"{path}: unreadable ground truth ({err}); {remedy}") from None
    if not isinstance(record, dict) or record.get("schema") != GT_SCHEMA:
        raise PrnetInputError(f"{path}: not a {GT_SCHEMA} ground-truth file; {remedy}")
    record["landmarks"] = np.asarray(record["landmarks"], dtype=np.float64)
    return record
