"""Where a compressed model's output leaves the FP32 model's: face-pixel deviation by loss-weight region, by
distance to the face mask's border, and the worst pixels (issue 16: "INT8 rows show face pixels ~100 px away").

    python -m scripts.measure.int8_deviation --variant runs/compress/model.int8.onnx --data DIR [--model CKPT]
        [--count 200] [--runtime onnxruntime|openvino]

Compares the variant with the FP32 PyTorch model it was made from (--model; default: the default model), on the
first --count validation images of --data (the split `prnet compress` validates on, same seed). Prints tables; writes
nothing. Regions: the training loss weights of the layout (16 landmarks, 4 eyes-nose-mouth, 3 face, 0 elsewhere
inside the face mask), so a large deviation where the loss weight is 0 is a pixel training never constrained.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def border_distance(mask: np.ndarray) -> np.ndarray:
    """Per face pixel, its distance in pixels to the nearest pixel outside the mask."""
    from scipy.ndimage import distance_transform_edt

    return distance_transform_edt(mask)


def region_table(distance: np.ndarray, labels: np.ndarray, names: dict) -> list[list[str]]:
    """distance (N, P) per face pixel; labels (P,) -> mean / p99 / max / share over 3 px per label."""
    rows = []
    for key, name in names.items():
        part = distance[:, labels == key]
        if part.size:
            rows.append([name, f"{part.shape[1]}", f"{part.mean():.3f}", f"{np.percentile(part, 99):.3f}",
                         f"{part.max():.2f}", f"{100 * (part > 3).mean():.4f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", type=Path, required=True, help="ONNX file written by `prnet compress`")
    parser.add_argument("--model", type=Path, help="the FP32 checkpoint it came from (default: the default model)")
    parser.add_argument("--data", type=Path, required=True, help="the dataset `prnet compress` was given")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--runtime", default="onnxruntime", help="onnxruntime | openvino")
    args = parser.parse_args()

    from prnet.checkpoint import load_model
    from prnet.compress.data import first_batches
    from prnet.compress.evaluate import predict, torch_maps
    from prnet.compress.latency import runtime_callable
    from prnet.data.dataset import train_val_datasets
    from prnet.default_model import resolve_model
    from prnet.export.deploy import to_deployment
    from prnet.metrics import face_pixel_distance
    from prnet.report import markdown_table
    from prnet.train.augment import ResizedSamples

    source = load_model(resolve_model(args.model))
    data, variant = args.data, args.variant
    _, val = train_val_datasets(data)
    if val[0].image.shape[0] != source.config.input_size:  # resampled to the model's size, as prnet compress does
        val = ResizedSamples(val, source.config.input_size)
    batches = first_batches(val, args.count, 8)
    layout = source.layout
    reference = predict(torch_maps(to_deployment(source.model.eval())), batches, layout)
    moved = predict(runtime_callable(args.runtime, variant, 2), batches, layout)
    mask = layout.face_mask
    distance = face_pixel_distance(moved.maps, reference.maps, mask)  # (N, P) px
    weights = np.round(layout.weight_mask[mask], 3)
    names = {w: f"loss weight {w:g}" for w in sorted(set(weights.tolist()), reverse=True)}
    print(f"{variant.name} on {args.runtime} vs FP32 PyTorch, {len(distance)} images of {data}, "
          f"{mask.sum()} face pixels each; landmarks move {np.linalg.norm(moved.landmarks[..., :2] - reference.landmarks[..., :2], axis=-1).mean():.3f} px\n")
    headers = ["region", "pixels", "mean px", "p99 px", "max px", "% over 3 px"]
    print("\n".join(markdown_table(headers, [["all face pixels", f"{mask.sum()}", f"{distance.mean():.3f}",
                                               f"{np.percentile(distance, 99):.3f}", f"{distance.max():.2f}",
                                               f"{100 * (distance > 3).mean():.4f}"]]
                                   + region_table(distance, weights, names))))
    edge = border_distance(mask)[mask]
    rings = np.digitize(edge, [1.5, 3.5, 8.5])  # 1 px, 2-3, 4-8, deeper
    print()
    print("\n".join(markdown_table(["distance to the mask border"] + headers[1:], region_table(
        distance, rings, {0: "1 px (border)", 1: "2-3 px", 2: "4-8 px", 3: "> 8 px"}))))
    worst = np.argsort(distance.max(axis=0))[::-1][:5]
    v, u = np.nonzero(mask)
    print("\nworst pixels (v, u): max px over the images, loss weight, border distance, the FP32 map's local "
          "stretch (px of output per UV pixel)")
    dv, du = np.gradient(reference.maps.mean(axis=0), axis=(0, 1))  # (S, S, 3) each: along v and along u
    grad = np.hypot(np.linalg.norm(dv, axis=-1), np.linalg.norm(du, axis=-1))[mask]
    for i in worst:
        print(f"  ({v[i]}, {u[i]}): {distance[:, i].max():.2f} px, weight {weights[i]:g}, border {edge[i]:.0f} px, "
              f"stretch {grad[i]:.2f}")


if __name__ == "__main__":
    main()
