"""Core ML export: mlprogram .mlpackage, FP16 compute by default, image input (RGB, scale 1/255), metadata.

Optional weight compression (works on Linux): "int8" (linear, per channel) or "palettize4"/"palettize6"/
"palettize8" (uniform LUT; k-means needs scikit-learn). Activation quantization and prediction need macOS,
so here the saved package is validated instead: loaded back, input/output contract and op types checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prnet.export.metadata import INPUT_NAME, METADATA_KEY, OUTPUT_NAME, ExportMetadata, missing_metadata_error
from prnet.io import PrnetInputError

WEIGHT_COMPRESSIONS = ("none", "int8", "palettize4", "palettize6", "palettize8")


def compress_weights(mlmodel: Any, method: str) -> Any:
    from coremltools.optimize.coreml import (OpLinearQuantizerConfig, OpPalettizerConfig, OptimizationConfig,
                                             linear_quantize_weights, palettize_weights)

    if method == "int8":
        config = OptimizationConfig(global_config=OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8",
                                                                           granularity="per_channel"))
        return linear_quantize_weights(mlmodel, config=config)
    if method.startswith("palettize"):
        nbits = int(method.removeprefix("palettize"))
        config = OptimizationConfig(global_config=OpPalettizerConfig(mode="uniform", nbits=nbits))
        return palettize_weights(mlmodel, config=config)
    raise PrnetInputError(f"unknown Core ML weight compression {method!r}; choose from {WEIGHT_COMPRESSIONS}")


def export_coreml(module: Any, path: Path, metadata: ExportMetadata, options: dict[str, Any]) -> list[str]:
    """Options: precision (fp16 | fp32 compute), weights (see WEIGHT_COMPRESSIONS), deployment_target (e.g.
    "iOS16"), image_input (True: an RGB image scaled by 1/255; False: a float tensor in [0, 1])."""
    import coremltools as ct
    import torch

    size, precision = metadata.input_size, options.get("precision", "fp16")
    example = torch.rand(1, 3, size, size)
    with torch.no_grad():  # torch.export: static shapes (jit.trace leaves shape arithmetic Core ML rejects)
        program = torch.export.export(module.eval(), (example,)).run_decompositions({})
    if options.get("image_input", True):
        model_input = ct.ImageType(name=INPUT_NAME, shape=example.shape, scale=1 / 255, bias=[0.0, 0.0, 0.0],
                                   color_layout=ct.colorlayout.RGB)
    else:
        model_input = ct.TensorType(name=INPUT_NAME, shape=example.shape)
    mlmodel = ct.convert(  # fresh input types per conversion: reusing them after an FP16 conversion breaks
        program,
        inputs=[model_input],
        outputs=[ct.TensorType(name=OUTPUT_NAME)],
        convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
        minimum_deployment_target=getattr(ct.target, options.get("deployment_target", "iOS16")),
    )
    weights = options.get("weights", "none")
    if weights != "none":
        mlmodel = compress_weights(mlmodel, weights)
    mlmodel.user_defined_metadata[METADATA_KEY] = metadata.to_json()
    for key, value in metadata.summary().items():
        mlmodel.user_defined_metadata[key] = value
    mlmodel.short_description = f"PRNet 3D face position map ({metadata.model_name}, {precision}, weights {weights})"
    mlmodel.version = metadata.project_version
    mlmodel.author = "prnet"
    mlmodel.input_description[INPUT_NAME] = f"{size}x{size} RGB face crop"
    mlmodel.output_description[OUTPUT_NAME] = f"(1, 3, {size}, {size}) x, y, z in crop pixels"
    mlmodel.save(str(path))
    return [f"mlprogram, compute {precision}, weights {weights}"]


def read_coreml_metadata(mlmodel: Any, path: Path) -> ExportMetadata:
    stored = dict(mlmodel.user_defined_metadata)
    if METADATA_KEY not in stored:
        raise missing_metadata_error(path)
    return ExportMetadata.from_json(stored[METADATA_KEY], str(path))


def coreml_op_types(spec: Any) -> list[str]:
    """Op types of an mlprogram's main function (nested blocks included)."""
    types: set[str] = set()

    def walk(block: Any) -> None:
        for op in block.operations:
            types.add(op.type)
            for inner in op.blocks:
                walk(inner)

    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            walk(block)
    return sorted(types)


def validate_coreml(path: str | Path) -> str:
    """Load a saved .mlpackage without running it (works on Linux) and check the I/O contract and ops."""
    import coremltools as ct

    path = Path(path)
    try:
        mlmodel = ct.models.MLModel(str(path), skip_model_load=True)
    except Exception as err:  # coremltools raises various errors for broken packages
        raise PrnetInputError(f"{path}: not a loadable Core ML package ({err})") from err
    metadata = read_coreml_metadata(mlmodel, path)
    spec, size = mlmodel.get_spec(), metadata.input_size
    problems = []
    (model_input,), (model_output,) = spec.description.input, spec.description.output
    kind = model_input.type.WhichOneof("Type")
    if kind == "imageType":
        image = model_input.type.imageType
        if (image.width, image.height) != (size, size):
            problems.append(f"input image is {image.width}x{image.height}, metadata says {size}")
        if ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(image.colorSpace) != "RGB":
            problems.append("input image is not RGB")
    elif list(model_input.type.multiArrayType.shape) != [1, 3, size, size]:
        problems.append(f"input shape {list(model_input.type.multiArrayType.shape)} != [1, 3, {size}, {size}]")
    if (model_input.name, model_output.name) != (INPUT_NAME, OUTPUT_NAME):
        problems.append(f"I/O names {model_input.name}, {model_output.name} != {INPUT_NAME}, {OUTPUT_NAME}")
    ops = coreml_op_types(spec)
    if "conv" not in ops or "conv_transpose" in ops:
        problems.append(f"unexpected op set {ops} (the deployment form has convs and no transposed convs)")
    if problems:
        raise PrnetInputError(f"{path}: invalid Core ML package: {'; '.join(problems)}")
    return f"Core ML spec v{spec.specificationVersion}, input {kind} {size}x{size}, ops: {', '.join(ops)}"
