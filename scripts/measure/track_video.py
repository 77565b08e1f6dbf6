"""Tracking on a video with exact ground truth: frames per second, NME per frame and still-head jitter of
`prnet predict VIDEO` for each model, side by side (issue 16).

    prnet data video --out data/head_turn.mp4                       # 240 frames: 60 still, 180 turning (+-70 deg)
    python -m scripts.measure.track_video --video data/head_turn.mp4 \\
        --model default --model runs/compress/model.pt --model exports/model_openvino [--redetect-every 15] \\
        [--rounds 2] [--out docs/track_video.json]

Each model runs the same frames through `prnet.predict.io.predict_video_file` (what `prnet predict VIDEO` runs:
detector every N frames and whenever a track degrades, landmark crops in between); models take turns for
`--rounds` rounds and the best round's frames/s is kept (this 2-core machine is noisy; NME and jitter are the
same every round). Reported per model:
  fps            frames / seconds of detection + crop + network + read-out (no drawing, no video writing),
                 as `prnet predict` prints it
  NME            68-point 2D NME per frame (GT landmark box), mean over all frames, the still part and the turn
  jitter         still part: mean landmark movement from one frame to the next, pixels and % of the box size
                 (the ground truth does not move: all of it is noise the model adds)
  detector runs  why the detector ran (periodic, degraded:RULE, lost)
The first model is the reference: the others' NME is also given as the difference to it on the same frames.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def frame_landmarks(record: dict, frames: int) -> np.ndarray:
    """(frames, 68, 2) of the first face per frame (NaN where no face was found)."""
    out = np.full((frames, 68, 2), np.nan)
    for frame in record["frames"][:frames]:
        if frame["faces"]:
            out[frame["frame"]] = np.asarray(frame["faces"][0]["landmarks_2d"], dtype=np.float64)
    return out


def score(predicted: np.ndarray, truth: np.ndarray, still: int) -> dict:
    """NME (percent) over all / still / turning frames, missed frames, and still-head jitter."""
    from prnet.metrics import landmark_box_size

    box = landmark_box_size(truth)  # (F,)
    found = np.isfinite(predicted).all(axis=(1, 2))
    nme = np.full(len(truth), np.nan)
    nme[found] = np.linalg.norm(predicted[found] - truth[found, :, :2], axis=-1).mean(axis=1) / box[found] * 100
    result = {"frames": int(len(truth)), "missed_frames": int((~found).sum()),
              "nme_all": float(np.nanmean(nme)), "nme_still": float(np.nanmean(nme[:still])) if still else None,
              "nme_turn": float(np.nanmean(nme[still:])) if still < len(nme) else None, "nme_per_frame": nme}
    if still > 1:
        steps = np.linalg.norm(np.diff(predicted[:still], axis=0), axis=-1).mean(axis=1)  # (still-1,) px
        result["jitter_px"] = float(np.nanmean(steps))
        result["jitter_pct"] = float(np.nanmean(steps / box[1:still] * 100))
    return result


def run_model(model: str, video: Path, redetect_every: int, threads: int) -> dict:
    from prnet.cli.commands.predict import open_runner, set_threads
    from prnet.predict.io import PredictOptions, predict_video_file

    from prnet.predict.detect import detect_faces

    set_threads(threads)
    runner = open_runner(None if model == "default" else Path(model))
    # steady state, as a live tracker runs: load the detector and run the network once before the clock starts
    size = runner.input_size
    runner(np.zeros((1, size, size, 3), np.float32))
    detect_faces(np.zeros((size, size, 3), np.uint8))
    options = PredictOptions(write_obj=False, write_pictures=False, redetect_every=redetect_every)
    with tempfile.TemporaryDirectory() as tmp:
        summary = predict_video_file(video, runner, Path(tmp), options, "clip")
        record = json.loads((Path(tmp) / "clip_landmarks.json").read_text())
    return {"runner": runner.name, "fps": summary["fps_processing"], "redetect_reasons": summary["redetect_reasons"],
            "record": record}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, required=True, help="made by `prnet data video` (needs STEM_gt.json)")
    parser.add_argument("--model", action="append", required=True, help="'default' or any model path prnet takes")
    parser.add_argument("--redetect-every", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, help="JSON of the results")
    args = parser.parse_args()

    from prnet.data.synth.video import read_ground_truth
    from prnet.hardware import cpu_summary
    from prnet.io import write_json_atomic

    truth = read_ground_truth(args.video)
    still, frames = int(truth["still_frames"]), int(truth["frames"])
    fps: dict[str, list[float]] = {m: [] for m in args.model}
    results: dict[str, dict] = {}
    for round_index in range(args.rounds):
        for model in args.model:  # interleaved: a slow spell of the machine hits every model
            run = run_model(model, args.video, args.redetect_every, args.threads)
            fps[model].append(run["fps"])
            if model not in results:
                results[model] = {"runner": run["runner"], "redetect_reasons": run["redetect_reasons"],
                                  **score(frame_landmarks(run["record"], frames), truth["landmarks"], still)}
            print(f"round {round_index + 1}: {model}: {run['fps']:.1f} frames/s", flush=True)
    reference = results[args.model[0]]
    rows = []
    for model, result in results.items():
        result["fps_best"], result["fps_rounds"] = max(fps[model]), fps[model]
        delta = result.pop("nme_per_frame") - reference["nme_per_frame"] if model != args.model[0] else None
        result["nme_delta_vs_first"] = None if delta is None else float(np.nanmean(delta))
        rows.append((model, result))
    reference.pop("nme_per_frame", None)
    print(f"\n{args.video.name}: {frames} frames ({still} still), redetect every {args.redetect_every}; "
          f"CPU {cpu_summary()}, {args.threads} threads\n")
    print("| model | runner | frames/s | NME all | still | turn | dNME | jitter px (% box) | missed | detector runs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model, r in rows:
        delta = "-" if r["nme_delta_vs_first"] is None else f"{r['nme_delta_vs_first']:+.3f}"
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(r["redetect_reasons"].items())) or "-"
        print(f"| {model} | {r['runner']} | {r['fps_best']:.1f} | {r['nme_all']:.3f} | {r['nme_still']:.3f} | "
              f"{r['nme_turn']:.3f} | {delta} | {r.get('jitter_px', np.nan):.3f} ({r.get('jitter_pct', np.nan):.3f}) | "
              f"{r['missed_frames']} | "
              f"{reasons} |")
    if args.out:
        write_json_atomic(args.out, {"video": str(args.video), "cpu": cpu_summary(), "threads": args.threads,
                                     "redetect_every": args.redetect_every, "frames": frames, "still_frames": still,
                                     "models": dict(rows)})


if __name__ == "__main__":
    import sys

    from prnet.io import PrnetInputError

    try:
        main()
    except PrnetInputError as err:  # a missing video, ground truth or model: say which, exit 2
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
