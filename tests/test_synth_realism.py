"""Synthetic generator version 2 (realism.py, skin_detail.py, hair.py, lighting.py, render_v2.py): version 1
stays bit-identical and keeps its pools, version 2 is deterministic, shares version 1's geometry, has its
bald-head rate and more fine skin detail."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from prnet.data.format import read_manifest, read_sample
from prnet.data.synth.generate import generate_dataset
from prnet.data.synth.render import SynthConfig, load_assets, render_sample
from prnet.io import PrnetInputError

# sha256[:16] of image / posmap / landmarks bytes from the version 1 code before version 2 existed
# (commit f8f154a, numpy/cv2/numba of this venv): (seed, index, degrade) -> hashes
V1_HASHES = {
    (5, 0, True): ("eab07c03479ebd9b", "fa0792b21e33f6c3", "e6f4c785290b98e0"),
    (9, 17, False): ("0f1410c6672ab27f", "d7aa518605a3ca0f", "f5fc965878111e56"),
}


def _hash(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


@pytest.fixture(scope="module")
def assets():
    from prnet.data.synth.generate import limit_blas_threads

    limit_blas_threads()
    return load_assets()


@pytest.mark.parametrize("key", sorted(V1_HASHES))
def test_version_1_renders_bit_identically(assets, key):
    seed, index, degrade = key
    sample = render_sample(index, seed, SynthConfig(degrade=degrade, version=1), assets)
    assert (_hash(sample.image), _hash(sample.posmap), _hash(sample.landmarks)) == V1_HASHES[key]
    assert "realism" not in sample.params and sample.params["generator"]["version"] == 1
    assert SynthConfig(version=1).to_json() == {"name": "prnet-synth", "version": 1, "image_size": 256,
                                                "expression_rate": 0.7, "occlusion_rate": 0.45, "proxies": True,
                                                "degrade": True}  # the manifest block version 1 wrote


def test_version_2_is_the_default_and_keeps_version_1_geometry(assets):
    seed, index, _ = key = (5, 0, True)
    sample = render_sample(index, seed, SynthConfig(), assets)
    assert sample.params["generator"]["version"] == 2 and "realism" in sample.params
    assert (_hash(sample.posmap), _hash(sample.landmarks)) == V1_HASHES[key][1:]  # appearance only
    assert _hash(sample.image) != V1_HASHES[key][0]
    with pytest.raises(ValueError, match="version"):
        SynthConfig(version=3)


def test_version_1_pool_resumes_as_version_1(tmp_path):
    root = tmp_path / "v1pool"
    generate_dataset(root, 1, seed=5, config=SynthConfig(version=1))
    report = generate_dataset(root, 2, seed=5)  # no version named: the pool's own
    assert report.written == 1
    manifest = read_manifest(root)
    assert manifest.generator["version"] == 1 and SynthConfig.from_json(manifest.generator).version == 1
    for i in (0, 1):
        assert read_sample(root, i, manifest).params["generator"]["version"] == 1
    with pytest.raises(PrnetInputError, match="other settings"):  # naming another version is refused
        generate_dataset(root, 2, seed=5, config=SynthConfig(version=2))


def test_version_2_is_the_same_for_any_worker_count(tmp_path):
    one = generate_dataset(tmp_path / "one", 2, seed=7, workers=1)
    two = generate_dataset(tmp_path / "two", 2, seed=7, workers=2)
    assert one.written == two.written == 2
    m1, m2 = read_manifest(tmp_path / "one"), read_manifest(tmp_path / "two")
    assert m1.generator["version"] == 2
    for i in (0, 1):
        a, b = read_sample(tmp_path / "one", i, m1), read_sample(tmp_path / "two", i, m2)
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.posmap, b.posmap)
        assert json.dumps(a.params, sort_keys=True) == json.dumps(b.params, sort_keys=True)


def test_bald_and_shaved_heads_at_the_stated_rate():
    from prnet.data.synth.appearance import sample_appearance
    from prnet.data.synth.realism import BALD_RATE, sample_realism

    rng = np.random.default_rng(0)
    draws = 400
    styles = [sample_realism(rng, {"appearance": sample_appearance(rng)})["hair_style"] for _ in range(draws)]
    bare = sum(s in ("bald", "shaved") for s in styles)
    sd = np.sqrt(draws * BALD_RATE * (1 - BALD_RATE))
    assert abs(bare - draws * BALD_RATE) < 3.5 * sd, bare  # 60 +- 25
    assert styles.count("bald") > 0 and styles.count("shaved") > 0


def _cheek_energy(sample) -> float:
    """Mean squared fine-scale (image minus its 1 px blur) grey level over the cheeks (landmark polygons)."""
    import cv2

    lm = sample.landmarks[:, :2]
    mask = np.zeros(sample.image.shape[:2], np.uint8)
    for ids in ([1, 2, 3, 4, 48, 31, 41, 36], [15, 14, 13, 12, 54, 35, 46, 45]):
        cv2.fillPoly(mask, [lm[ids].astype(np.int32)], 1)
    mask = cv2.erode(mask, np.ones((5, 5), np.uint8)).astype(bool)
    grey = cv2.cvtColor(sample.image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(((grey - cv2.GaussianBlur(grey, (0, 0), 1.0))[mask] ** 2).mean())


def test_version_2_skin_has_more_fine_detail(assets):
    """Same faces and scenes (no degradation, no occluders), near-frontal poses: v2's cheeks carry more
    high-frequency energy (pores, mottling, freckles, creases) than v1's smooth per-vertex skin."""
    ratios = []
    for index in (0, 2):  # seed 3: yaw -14 and -62 degrees
        v1, v2 = (render_sample(index, 3, SynthConfig(degrade=False, occlusion_rate=0.0, version=v), assets)
                  for v in (1, 2))
        ratios.append(_cheek_energy(v2) / _cheek_energy(v1))
    assert min(ratios) > 1.15, ratios
