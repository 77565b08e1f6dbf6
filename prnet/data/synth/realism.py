"""Generator version 2: the extra per-face choices that make renders look less like plastic mannequins.

`sample_realism` is drawn AFTER every version-1 choice (render.sample_params), from the same generator, so a
v2 sample shares shape, pose, colours, lighting, background, occluders and degradation with the v1 sample of
the same (seed, index): its position map and landmarks are identical, only the pixels differ. Everything is
JSON-friendly and recorded in the sample's params under "realism".

Rates (per face):
    bald or shaved head       15 %  (bald 60 % of those, half of the older bald ones keep a horseshoe fringe)
    hard key light            35 %  (low ambient, no fill, cast shadows at full strength); other faces get
                                    soft cast shadows 20 % of the time
    freckles                  12 %  (25 % on the two lightest tones)   moles: Poisson(0.8), at most 5
    stubble without a beard   12 %  (faces with the v1 beard always get stroke stubble under it)
    age                       16-85, creases grow with it (nasolabial folds at every age, forehead lines,
                              crow's feet, under-eye bags and glabella lines from the late twenties on)
"""

from __future__ import annotations

from typing import Any

import numpy as np

BALD_RATE = 0.15  # bald + shaved heads: a real photo collection has many; version 1 had 8 % and hid them
HARD_LIGHT_RATE = 0.35
NON_BALD_STYLES = ("short", "short", "long", "bangs", "covered")  # version 1's mix without its bald share


def age_factor(age: float) -> float:
    """0 for the young, 1 by about 70: how deep age creases and under-eye bags are."""
    x = float(np.clip((age - 24.0) / 46.0, 0.0, 1.0))
    return x * x * (3.0 - 2.0 * x)


def sample_realism(rng: np.random.Generator, params: dict[str, Any]) -> dict[str, Any]:
    """Version-2 choices for one face, given its version-1 params (not modified)."""
    app = params["appearance"]
    age = float(np.clip(rng.normal(40, 15), 16, 85))
    aged = age_factor(age)
    # head: bald / shaved at BALD_RATE; faces version 1 made bald get another style (the rate stays exact)
    if rng.random() < BALD_RATE:
        style = "bald" if rng.random() < 0.6 else "shaved"
    else:
        pick = NON_BALD_STYLES[int(rng.integers(len(NON_BALD_STYLES)))]
        style = app["hair_style"] if app["hair_style"] != "bald" else pick
    fringe = style == "bald" and age > 45 and rng.random() < 0.5  # male-pattern: hair left at sides and back
    skin_tone = float(np.mean(app["skin"]))
    freckle_rate = 0.25 if skin_tone > 0.5 else 0.12
    hard = rng.random() < HARD_LIGHT_RATE
    soft_shadow = rng.random() < 0.2
    stubble = app["beard"] * 0.8 if app["beard"] else (float(rng.uniform(0.15, 0.5)) if rng.random() < 0.12 else 0.0)
    grey = float(np.clip((age - 45) / 30, 0, 1) * rng.uniform(0.0, 1.0))  # hair greys with age, unevenly
    return {
        "age": age,
        "hair_style": style,
        "bald_fringe": bool(fringe),
        "grey": grey,
        "skin": {
            "micro": float(rng.uniform(0.025, 0.07)),  # multi-scale albedo noise amplitude (log albedo)
            "pores": float(rng.uniform(0.3, 1.0)),
            "pore_scale": float(rng.uniform(0.8, 1.4)),
            "redness": float(rng.uniform(0.0, 1.0) ** 1.5 * 0.6),
            "under_eye": float(rng.uniform(0.15, 0.6) * (0.6 + 0.6 * aged)),
            "freckles": float(rng.uniform(0.3, 1.0)) if rng.random() < freckle_rate else 0.0,
            "moles": int(min(rng.poisson(0.8), 5)),
            "shine": float(rng.uniform(0.5, 1.3)),  # oily (T-zone) vs matte skin: scales the specular
        },
        "creases": {
            "nasolabial": float(rng.uniform(0.25, 0.6) + 0.7 * aged),
            "forehead": float(aged * rng.uniform(0.5, 1.3)),
            "crows_feet": float(aged * rng.uniform(0.4, 1.2)),
            "bags": float(aged * rng.uniform(0.4, 1.2)),
            "glabella": float(aged * rng.uniform(0.0, 1.0)),
            "forehead_lines": int(rng.integers(2, 5)),
        },
        "brows": {
            "strokes": int(rng.integers(110, 260)),  # per brow
            "length_mm": float(rng.uniform(3.0, 6.0)),
            "tidy": float(rng.uniform(0.3, 1.0)),  # how closely hairs follow the brow direction
        },
        "stubble": float(stubble),
        "hair": {
            "pole_tilt": rng.normal(0, [0.25, 0.15]).tolist(),  # where the strands start (crown, parting)
            "wave": float(rng.uniform(0.0, 0.025)) if rng.random() < 0.4 else 0.0,  # curls (fraction of a turn)
            "contrast": float(rng.uniform(0.5, 1.0)),
            "sheen": float(rng.uniform(0.08, 0.35)),
            "sheen_power": float(rng.uniform(30, 120)),
        },
        "light": {
            "hard": bool(hard),
            "ambient_scale": float(rng.uniform(0.25, 0.55)) if hard else 1.0,
            "key_scale": float(rng.uniform(1.1, 1.5)) if hard else 1.0,
            "shadow": float(rng.uniform(0.85, 1.0)) if hard else (float(rng.uniform(0.4, 0.8)) if soft_shadow else 0.0),
            "subsurface": float(rng.uniform(0.1, 0.3)),
        },
        "seed": int(rng.integers(2**31)),
    }
