"""`--budget-nme D`: the fastest settings whose validation 68-point NME stays within D points of FP32.

Candidates, cheapest first: input sizes from `sizes` (smallest first; default: the model's own, or --input-size),
then SVD energies from `energies` (lower energy = fewer MACs; `None` = no SVD), each
fine-tuned (a smaller input size is distilled even without SVD), and for INT8 the float-layer sets of `FLOAT_LEVELS` (each adds the next decoder stage, nearest the
output, to the layers kept in float). "Fastest" is ranked by MACs, then by how few convs stay in float (a
proxy: timing every candidate on a shared CPU would be noisier than the ranking); the chosen model's latency
is then measured side by side like any other run. The first candidate within budget wins, so the search
stops as early as it can. NME is measured in ONNX Runtime on the validation images (INT8: the QDQ model).
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from prnet.compress import int8 as int8_method
from prnet.compress.evaluate import torch_maps, validation_metrics
from prnet.compress.latency import ort_callable
from prnet.compress.macs import total_macs
from prnet.compress.onnx_util import export_onnx
from prnet.compress.pipeline import (CompressConfig, Student, build_student, compress_model, resolution_of,
                                     validation_sets)
from prnet.compress.svd import SvdConfig
from prnet.io import PrnetInputError

DEFAULT_ENERGIES = (0.8, 0.9, 0.95, 0.98, None)
FLOAT_LEVELS = ((), ("decoder.12.*", "decoder.13.*"), ("decoder.10.*", "decoder.11.*", "decoder.12.*", "decoder.13.*"))


def _int8_nme(student: Student, config, calibration, val, layout, reference, scratch: Path, size: int) -> dict:
    fp32 = export_onnx(student.model, scratch / "candidate.fp32.onnx", size)
    batches = [np.ascontiguousarray(b.images.numpy()) for b in calibration]
    result = int8_method.quantize_onnx(fp32, scratch / "candidate.int8.onnx", config, batches)
    metrics, _ = validation_metrics(ort_callable(result.path), val, layout, reference)
    return {**metrics, "float_layers": len(result.float_convs)}


def candidate_name(size: int | None, energy: float | None, level: tuple, int8: bool) -> str:
    name = (f"{size} px, " if size is not None else "") + f"svd {energy if energy is not None else 'off'}"
    return name + (f", float +{len(level)} patterns" if int8 else "")


def search(loaded, train: Any, val: Any, base: CompressConfig, budget_nme: float, out_dir: str | Path,
           energies: tuple = DEFAULT_ENERGIES, log: Callable[[str], None] = print, sizes: tuple = ()) -> dict:
    """Try candidates cheapest first, then run the full pipeline on the chosen one (its student is reused).
    `sizes`: student input sizes to try, smallest first (empty: only `base.input_size` or the model's own)."""
    from prnet.export.deploy import to_deployment

    if val is None:
        raise PrnetInputError("--budget-nme needs validation data (a dataset with a validation split)")
    teacher = to_deployment(loaded.model.eval(), upsample=base.upsample)
    svd_template = base.svd or SvdConfig()
    candidates, chosen = [], None
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        for size in sorted(sizes) or [base.input_size]:
            sized = replace(base, input_size=size)
            resolution = resolution_of(teacher, sized)
            reference_metrics, sets = validation_sets(teacher, val, loaded.layout, sized)
            chosen_set = sets[resolution.student_size]
            calibration = resolution.first_batches(train, base.int8.calibration_count, 8) if base.int8 else None
            label = resolution.student_size if sizes else None
            for energy in energies:
                svd = None if energy is None else replace(svd_template, energy=energy, target=None, target_ratio=None)
                config = replace(sized, svd=svd)
                student = build_student(teacher, train, loaded.layout, loaded.config.output_scale, config, log)
                macs = total_macs(student.model, resolution.student_size)
                for level in FLOAT_LEVELS if base.int8 else ((),):
                    name = candidate_name(label, energy, level, base.int8 is not None)
                    if base.int8:
                        int8 = replace(base.int8, keep_float=tuple(base.int8.keep_float) + level)
                        metrics = _int8_nme(student, int8, calibration, chosen_set.batches, chosen_set.layout,
                                            chosen_set.reference, scratch, resolution.student_size)
                    else:
                        int8 = None
                        metrics, _ = validation_metrics(torch_maps(student.model), chosen_set.batches,
                                                        chosen_set.layout, chosen_set.reference)
                        metrics["float_layers"] = 0
                    delta = metrics["nme68_2d"] - reference_metrics["nme68_2d"]
                    entry = {"name": name, "input_size": resolution.student_size, "energy": energy,
                             "keep_float": list(int8.keep_float) if int8 else [], "macs": macs,
                             "float_layers": metrics["float_layers"], "nme68_2d": metrics["nme68_2d"],
                             "delta_nme68_2d": delta, "ok": delta <= budget_nme}
                    candidates.append(entry)
                    log(f"budget search: {name}: NME {metrics['nme68_2d']:.3f} (delta {delta:+.3f}) "
                        f"{'within' if entry['ok'] else 'over'} budget {budget_nme}")
                    if entry["ok"]:
                        chosen = (entry, replace(config, int8=int8), student)
                        break
                if chosen:
                    break
            if chosen:
                break
    if chosen is None:
        raise PrnetInputError(
            f"no candidate stays within {budget_nme} NME points of FP32 (best delta "
            f"{min(c['delta_nme68_2d'] for c in candidates):+.3f}); raise --budget-nme or fine-tune longer "
            "(--finetune-steps)")
    entry, config, student = chosen
    search_report = {"budget_nme": budget_nme, "reference_nme68_2d": reference_metrics["nme68_2d"],
                     "sizes": sorted(sizes),
                     "chosen": entry["name"], "candidates": candidates}
    return compress_model(loaded, train, val, config, out_dir, log, student=copy.deepcopy(student),
                          extra_report={"search": search_report})
