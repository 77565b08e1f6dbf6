"""Compression of PRNet for CPUs, phones and edge devices (torchao/modelopt style: one call per method).

    prnet.compress.svd.apply(model, SvdConfig)                          low-rank factorization (+ prnet.compress.distill.finetune)
    prnet.compress.int8.apply(model, Int8Config, forward_loop, path)    ONNX Runtime static QDQ INT8 (ORT, OpenVINO, TensorRT)
    prnet.compress.qat.apply(model, QatConfig, forward_loop)            fake quantization for QAT; qat.strip afterwards
    prnet.compress.fp16.apply(model, Fp16Config, path, input_size)      FP16 ONNX (GPU / TensorRT / CoreML)
    prnet.compress.pt2e.apply(model, Pt2eConfig, forward_loop, size)    PyTorch-native INT8 (ExecuTorch XNNPACK, Inductor)
    prnet.compress.pipeline.compress_model(...)                         `prnet compress`; prnet.compress.budget.search: --budget-nme
    prnet.compress.sensitivity.int8_sensitivity(...)                    which blocks INT8 hurts
    prnet.compress.resolution.Resolution(teacher_size, student_size)    a smaller input size (`--input-size`), distilled

Methods work on the deployment form (prnet.export.deploy.to_deployment): BN folded, no transposed convs, output in
pixels. `forward_loop(model)` runs the model over calibration batches (prnet.compress.data.calibration_loop).
"""
