"""Synthetic training data: parametric faces rendered at 300W-LP-like poses with exact position maps.

    shape.py       ShapeModel: identity + expression fields on the mesh asset (Wendland RBF handles, jaw hinge)
    appearance.py  skin albedo with features painted from the landmarks, ambient occlusion, lighting
    scene.py       pose sampling, head/body proxies, the orthographic camera and PRNet's 1.5x landmark crop
    background.py  gradients, noise, textures, clutter, photos shipped in installed packages
    occluders.py   hands, bars, objects, glasses, masks, hair strands
    degrade.py     resolution, blur, colour, sensor noise, JPEG
    kernels.py     numba kernels (normals, colour interpolation) with numpy oracles
    render.py      render_sample(index, seed, config) -> prnet.data.format.Sample   (everything above)
    generate.py    generate_dataset(out, n, seed, workers): `prnet data synth` (parallel, resumable, atomic)
    stream.py      SynthStream: endless seeded IterableDataset for DataLoader workers (imports torch)
    sheet.py       contact sheets of any prnet dataset: `prnet data show`
"""

from prnet.data.synth.render import SynthConfig, load_assets, render_sample

__all__ = ["SynthConfig", "load_assets", "render_sample"]
