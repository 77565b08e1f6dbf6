"""The compression report: plain data (JSON) and its Markdown rendering, both written atomically to OUT.

Rows are found by name (variant, runtime), never by position. Latency is the median of interleaved runs in one
process, with the ratio to the original graph's FP32 in ONNX Runtime; the machine is shared, so ratios are the
numbers to read, not absolute milliseconds.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

from prnet.compress.macs import layer_costs, total_params
from prnet.compress.onnx_util import conv_module_names
from prnet.hardware import cpu_summary
from prnet.report import fmt, markdown_table, mb, md_cell, write_report_files

SCHEMA = "prnet-compress-report"
SCHEMA_VERSION = 1
NOISE_NOTE = ("Latency: median of interleaved rounds of back-to-back calls in one process, batch 1; the CPU is "
              "shared with other jobs, so compare the ratios within this report, not milliseconds across reports.")
FP16_NOTE = "FP16 is for GPUs/TensorRT/CoreML: x86 CPUs compute it in FP32 (casts), so it is not faster here."


def _int8_precisions(variants: dict) -> dict[str, str]:
    """torch module name -> 'int8' | 'float' for the INT8 variant's convs."""
    entry = variants.get("compressed-int8")
    if entry is None:
        return {}
    import onnx

    names = conv_module_names(onnx.load(str(entry["file"])))
    result = entry["int8"]
    # quantized convs are renamed by the QDQ pass only in their inputs; the node names are kept
    float_nodes = set(result.float_convs)
    return {module: ("float" if node in float_nodes else "int8") for node, module in names.items()}


def layer_table(teacher, student, variants: dict, input_size: int) -> list[dict]:
    plans = {p.name: p for p in student.svd.layers} if student.svd else {}
    precisions = _int8_precisions(variants)
    rows = []
    for cost in layer_costs(teacher, input_size):
        plan = plans.get(cost.name)
        row = {"name": cost.name, "in": cost.in_channels, "out": cost.out_channels, "kernel": list(cost.kernel),
               "output_hw": list(cost.output_hw), "macs": cost.macs, "params": cost.params,
               "macs_after": plan.macs_after if plan else cost.macs,
               "params_after": plan.params_after if plan else cost.params,
               "rank": plan.rank if plan else 0, "full_rank": plan.full_rank if plan else None,
               "scheme": plan.scheme if plan else "", "energy_kept": plan.energy_kept if plan else 1.0,
               "svd_status": plan.status if plan else "not factorized"}
        if precisions:
            parts = [v for k, v in precisions.items() if k == cost.name or fnmatch.fnmatchcase(k, cost.name + ".*")]
            row["precision"] = "int8" if parts and all(p == "int8" for p in parts) else (
                "mixed" if "int8" in parts else "float")
        rows.append(row)
    return rows


def build_report(loaded, teacher, student, variants: dict, accuracy: dict, timings: dict, failures: dict,
                 settings: dict, out: Path, extra: dict) -> dict[str, Any]:
    teacher_size = loaded.config.input_size
    size = student.model.config.input_size  # the compressed model's (smaller with --input-size)
    rows = []
    for name, entry in variants.items():
        module, pixels = entry["torch"], entry.get("size", teacher_size)
        row = {"variant": name, "file": Path(entry["file"]).name, "dtype": entry["dtype"], "input_size": pixels,
               "size_bytes": Path(entry["file"]).stat().st_size, "params": total_params(module),
               "macs": sum(c.macs for c in layer_costs(module, pixels)), "runtimes": {}}
        for runtime in settings["runtimes"]:
            key = f"{name}@{runtime}"
            cell: dict[str, Any] = {}
            if key in timings:
                cell.update(median_ms=timings[key].median_ms, p90_ms=timings[key].p90_ms,
                            speedup_vs_original_ort=timings[key].ratio_to_baseline)
            if key in failures:
                cell["error"] = failures[key]
            if key in accuracy:
                cell["accuracy"] = accuracy[key]
            row["runtimes"][runtime] = cell
        rows.append(row)
    pt = out / "model.pt"
    return {
        "schema": SCHEMA, "version": SCHEMA_VERSION, "model": loaded.config.name, "input_size": size,
        "teacher_input_size": teacher_size,
        "cpu": cpu_summary(), "settings": settings,
        "pytorch_model": {"file": pt.name, "size_bytes": pt.stat().st_size, "params": total_params(student.model),
                          "macs": sum(c.macs for c in layer_costs(student.model, size))},
        "reference_fp32_torch": accuracy.get("fp32-torch"),
        "variants": rows,
        "layers": layer_table(teacher, student, variants, size),
        "svd": None if student.svd is None else {"energy_used": student.svd.energy_used, "notes": student.svd.notes,
                                                 "factorized": len(student.svd.plan),
                                                 "setting": student.svd.config.describe()},
        "finetune_history": student.history, "qat_history": student.qat_history,
        "notes": [NOISE_NOTE] + ([FP16_NOTE] if "compressed-fp16" in variants else []),
        **extra,
    }


def deviation_section(report: dict) -> list[str]:
    """How far each variant's output is from the FP32 PyTorch model's, per runtime: landmarks and every face pixel."""
    rows = []
    for row in report["variants"]:
        for runtime, cell in row["runtimes"].items():
            acc = cell.get("accuracy", {})
            dev = acc.get("map_deviation_px")
            if dev:
                rows.append([f"{row['variant']}@{runtime}", fmt(acc.get("landmark_deviation_px"), ".3f"),
                             f"{dev['mean']:.3f}", f"{dev['p99']:.3f}", f"{dev['max']:.2f}"])
    if not rows:
        return []
    return ["", "## Deviation from the FP32 PyTorch model (pixels of the input crop)", ""] + markdown_table(
        ["variant@runtime", "landmarks mean", "face pixels mean", "p99", "max"], rows)


def render_markdown(report: dict) -> str:
    runtimes = report["settings"]["runtimes"]
    lines = [f"# prnet compress: {report['model']} ({report['input_size']} px)", ""]
    teacher_size = report.get("teacher_input_size", report["input_size"])
    if teacher_size != report["input_size"]:
        jitter = " on jittered crops (--augment)" if report["settings"].get("augment") else ""
        how = (f"distilled from the FP32 model at {teacher_size} px{jitter}" if report.get("finetune_history")
               else f"the {teacher_size} px model's weights, not fine-tuned")
        lines += [f"Input size: the compressed model runs at {report['input_size']} px, {how}; every dNME and "
                  f"speed-up is against the {teacher_size} px original on the same faces, deviations are in pixels "
                  f"of each model's own crop.", ""]
    if report.get("cpu"):  # ratios differ by CPU kind (VNNI, AVX512-BF16, AMX): every report names its CPU
        lines += [f"CPU: {report['cpu']}.", ""]
    ref = report.get("reference_fp32_torch") or {}
    if ref:
        lines += [f"FP32 PyTorch reference: NME68 2D {ref['nme68_2d']:.3f} % on {ref['images']} validation images.", ""]
    headers = ["variant", "file", "px", "MB", "params", "GMACs"] + [
        f"{r} {column}" for r in runtimes for column in ("ms", "x", "NME", "dNME")]
    table = []
    for row in report["variants"]:
        cells = [row["variant"], row["file"], row.get("input_size", report["input_size"]), mb(row["size_bytes"]),
                 f"{row['params']:,}",
                 f"{row['macs'] / 1e9:.3f}"]
        for runtime in runtimes:
            cell = row["runtimes"].get(runtime, {})
            acc = cell.get("accuracy", {})
            if "error" in cell and "median_ms" not in cell:
                cells += [md_cell(f"failed: {cell['error'][:60]}"), "-", "-", "-"]
                continue
            cells += [fmt(cell.get("median_ms"), ".1f"), fmt(cell.get("speedup_vs_original_ort"), ".2f"),
                      fmt(acc.get("nme68_2d"), ".3f"), fmt(acc.get("delta_nme68_2d"), "+.3f")]
        table.append(cells)
    lines += markdown_table(headers, table)
    lines += ["", "x = speed-up vs original-fp32 in onnxruntime (same process, interleaved medians)."]
    lines += deviation_section(report)
    if report.get("search"):
        lines += ["", "## Budget search", ""] + markdown_table(
            ["candidate", "GMACs", "float layers", "NME", "dNME", "within budget"],
            [[c["name"], f"{c['macs'] / 1e9:.3f}", c["float_layers"], fmt(c.get("nme68_2d"), ".3f"),
              fmt(c.get("delta_nme68_2d"), "+.3f"), "yes" if c.get("ok") else "no"]
             for c in report["search"]["candidates"]])
        lines += ["", f"Chosen: **{report['search']['chosen']}** (budget {report['search']['budget_nme']} NME points)."]
    if report.get("int8_sensitivity"):
        lines += ["", "## INT8 sensitivity (one block fake-quantized at a time; worst first)", ""] + markdown_table(
            ["block", "convs", "landmarks move (px)"],
            [[r["group"], r["convs"], f"{r['landmark_deviation_px']:.3f}"] for r in report["int8_sensitivity"]])
        lines += ["", "Keep the worst blocks float with --keep-float 'BLOCK.*', or fine-tune with --qat."]
    lines += ["", "## Layers", ""] + markdown_table(
        ["layer", "in->out", "k", "out HW", "MMACs", "MMACs after", "rank", "scheme", "precision"],
        [[r["name"], f"{r['in']}->{r['out']}", f"{r['kernel'][0]}x{r['kernel'][1]}",
          f"{r['output_hw'][0]}x{r['output_hw'][1]}", f"{r['macs'] / 1e6:.1f}", f"{r['macs_after'] / 1e6:.1f}",
          f"{r['rank']}/{r['full_rank']}" if r["rank"] else "-", r["scheme"] or "-", r.get("precision", "float")]
         for r in report["layers"]])
    lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"] + (report["svd"] or {}).get("notes", [])]
    return "\n".join(lines) + "\n"


def write_report(report: dict, out: Path) -> None:
    write_report_files(out, report, render_markdown(report))
