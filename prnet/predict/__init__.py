"""Prediction stage: `prnet predict` (prnet/cli/commands/predict.py) on photos, folders and videos.

    pipeline.py  faces -> PRNet crops -> any Runner -> position maps -> landmarks, dense points, pose (FaceFit)
    io.py        the files of `prnet predict`: JSON, .obj, dense points, pictures, annotated videos
    detect.py    face detection (yuface) or user boxes, and the detector-box -> PRNet-crop calibration
    pose.py      head pose (yaw, pitch, roll) from 3D landmarks
    draw.py      pictures of predictions: landmarks, dense points, the shaded mesh

The crop convention itself (shared with the data loaders) is prnet/geometry/crop.py; `prnet eval`
(prnet/evaluate.py) reuses this pipeline.
"""
