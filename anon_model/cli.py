"""The `anon-model` command line: anonymize photos, build delegate banks, evaluate, benchmark."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from anon_model import __version__
from anon_model.fallback import FALLBACKS, REPLACE_WITH
from anon_model.perception.search import SEARCH_MODES


def main(argv: list[str] | None = None) -> int:
    """Entry point of `anon-model`; returns the process exit code."""
    # OpenMP threads that wait for each other by spinning stall whenever the cores are shared: on a busy 2-core
    # machine a photo took 10x longer. Set before torch loads its OpenMP runtime; the user's own setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    from anon_model.errors import AnonModelError

    try:
        return int(args.run(args) or 0)
    except AnonModelError as exc:  # meant for users: one line (a missing extra, weights, a bad input), no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """All sub-commands and their options (each `--help` explains them)."""
    parser = argparse.ArgumentParser(
        prog="anon-model",
        description="Face anonymization by identity attention distraction (IFA + IPD/VAA/GSA). "
        "Runs offline with bundled models; pass --model for a trained pipeline (Hub id or folder).",
    )
    parser.add_argument("--version", action="version", version=f"anon_model {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_LazyParser)
    _add_anonymize(sub)
    _add_bank(sub)
    _add_optional(sub, "evaluate", "score methods on a dataset: the paper's tables (ReID, IDS, SSIM, attributes)",
                  "anon_model.evaluation.report", "add_evaluate_arguments", "run_evaluate", needs=("matplotlib",))
    _add_optional(sub, "bench", "time each stage (detect, landmarks, IFA, VCA, synthesis, paste-back)",
                  "anon_model.evaluation.bench", "add_bench_arguments", "run_bench")
    _add_optional(sub, "report", "summarize an anonymize run from OUTDIR/manifest.jsonl",
                  "anon_model.batch.report", "add_report_arguments", "run_report")
    _add_optional(sub, "anonymize-dataset", "anonymize the image column of a Hugging Face dataset (Hub or disk)",
                  "anon_model.datasets", "add_dataset_arguments", "run_anonymize_dataset", needs=("datasets",))
    return parser


def _add_anonymize(sub) -> None:
    p = sub.add_parser(
        "anonymize", help="anonymize every face of photos and videos (files or folders)",
        description="Anonymize every face of the given photos and videos. Each photo's result is written as "
        "OUTDIR/<name>.png at the input's size; a video (.mp4, .mov, .mkv, .webm, .avi) as OUTDIR/<name>.mp4, .mov "
        "or .mkv (H.264, same frame count, rate and size, audio copied; each tracked person one stranger "
        "throughout); inputs are never modified. A file that cannot be read is reported and skipped; "
        "a photo without faces is copied unchanged with a warning. OUTDIR/manifest.jsonl records what every face "
        "got (no pixels); a rerun into the same OUTDIR skips the files it lists as done. --keep REF leaves the "
        "people of the reference photos as they are. Runs on several GPUs or "
        "machines with `accelerate launch -m anon_model anonymize ...`. Exit code 1 if any file failed.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files and/or folders of them")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the results (created if needed)")
    p.add_argument("--recursive", action="store_true", help="also look for images in sub-folders of folder inputs")
    p.add_argument("--model", default=None, metavar="ID|DIR",
                   help="pipeline to use: a Hugging Face Hub repo id or a local folder written by save_pretrained "
                   "(default: the built-in offline pipeline with the training-free step 2)")
    p.add_argument("--bank", default=None, metavar="DIR|ID",
                   help="delegate bank to draw from instead of the pipeline's: a folder written by `anon-model bank "
                   "build` (or bank synth), or a Hub repo id holding one")
    p.add_argument("--seed", type=int, default=0, help="random seed for delegate sampling (default 0: reproducible)")
    p.add_argument("--k-top", type=int, default=None, metavar="K",
                   help="number of top identity classes whose attention IFA distracts (paper: 2-4; default 3)")
    p.add_argument("--epsilon", type=float, default=None, metavar="E",
                   help="privacy budget of IPD sampling, Eq. 6 (0 = uniform over candidates; default 1.0)")
    p.add_argument("--neighbors", type=int, default=None, metavar="k", help="delegate candidates k for VAA (default 10)")
    p.add_argument("--threshold", "--thresh", type=float, default=None, metavar="T",
                   help="face detection confidence in [0, 1]: lower finds more faces, and more false alarms "
                   "(default 0.9)")
    p.add_argument("--face-search", default="auto", choices=SEARCH_MODES,
                   help="which views of each photo are searched for faces: upright (the photo as it is), auto "
                   "(default: also a normalized copy when the photo is dark, washed out, low in contrast or heavily "
                   "JPEG-compressed, and the photo turned 90, 180 and 270 degrees when no sure face was found or the "
                   "largest faces show upright only turned) or thorough (always all eight views: about 8x the "
                   "detection time)")
    p.add_argument("--device", default=None,
                   help="torch device, e.g. cpu or cuda (default: CUDA when available, else the CPU; under "
                   "accelerate launch each process's own device)")
    p.add_argument("--overwrite", action="store_true",
                   help="redo every file, also those OUTDIR's manifest lists as done (default: skip them, so an "
                   "interrupted run resumes)")
    p.add_argument("--replace-with", default="anonymize", choices=REPLACE_WITH,
                   help="what every detected face gets: anonymize (this method, default), a classical obscuring "
                   "(mosaic, blur, solid) or none (detection only: nothing is changed)")
    p.add_argument("--fallback", default="mosaic", choices=(*FALLBACKS, "none"),
                   help="how a face that cannot be anonymized (too small, turned away, unreliable landmarks, still "
                   "recognized after every try) is obscured (default mosaic); none leaves it and fails the file")
    p.add_argument("--mask-scale", type=float, default=None, metavar="S",
                   help="obscured faces: cover the face box scaled by S about its centre (default 1.4)")
    p.add_argument("--boxes", action="store_true",
                   help="obscured faces: cover the whole scaled box instead of the ellipse inscribed in it")
    p.add_argument("--keep", nargs="+", action="extend", default=None, metavar="REF",
                   help="people to leave as they are: photos (or folders of photos) of them, one face each. A face is "
                   "kept, pixel for pixel, only when two recognizers (dlib and FaceNet-CASIA) both match it to a "
                   "reference with room to spare; when unsure it is anonymized, as are faces too small or turned too "
                   "far to judge. Put --keep after the inputs (or end its list with --). See docs/keep.md")
    p.add_argument("--keep-metadata", action="store_true",
                   help="copy the photo's EXIF camera, date and rights tags and its colour profile to the result "
                   "(never GPS, thumbnail, maker note, comments, serial numbers, XMP or IPTC; default: copy nothing)")
    p.add_argument("--preview", action="store_true",
                   help="dry run: write each photo with its detected faces drawn (yellow: step 2 would take it, "
                   "red: straight to the fallback) instead of anonymizing; no manifest")
    p.add_argument("--draw-scores", action="store_true", help="with --preview: label each box with its detection score")
    p.add_argument("--batch-size", type=int, default=4, metavar="N",
                   help="photos per pipeline call: their faces go through the networks together, each photo getting "
                   "what it gets alone (4: 14%% faster than 1 on 2 CPU cores; 8-32 keep a GPU busy; default 4)")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), metavar="N",
                   help="threads decoding the next photos and writing results while the networks run")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="worker processes sharing a folder of photos on this machine, each taking the next photos as "
                   "it finishes (default: one per CPU core when there are at least 4 photos per core and the "
                   "networks run on the CPU, else 1); results are the same whatever the number")
    p.add_argument("--json", action="store_true",
                   help="print one JSON line per file on stdout: its status, and per face the box, score, "
                   "treatment and why")
    p.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=0, default=1,
                   help="print errors only (no progress bar, notes or summary)")
    p.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=2,
                   help="also name every file and what its faces got, and log the library's info messages")
    p.add_argument("--no-audio", action="store_true", help="videos: drop the audio (default: copied unchanged)")
    p.add_argument("--crf", type=int, default=18, help="videos: H.264 quality, lower is better (default 18)")
    p.add_argument("--detect-every", type=int, default=1, metavar="N",
                   help="videos: search the whole frame for faces every N-th frame only, following known faces in "
                   "between (a face entering the picture may wait N-1 frames; measured: no faster with several "
                   "faces) (default 1)")
    p.add_argument("--look-ahead", type=int, default=None, metavar="N",
                   help="videos: hold a frame back up to N frames while a face in it auditions for its stranger, "
                   "so it gets the stranger kept instead of staying obscured (0: none held back; default 50, "
                   "2 s at 25 fps, within 1 GiB of frames)")
    p.set_defaults(run=_run_anonymize)


def _add_bank(sub) -> None:
    p = sub.add_parser("bank", help="build delegate banks (the candidates VAA and GSA sample from)")
    bank_sub = p.add_subparsers(title="bank commands", metavar="ACTION")
    build = bank_sub.add_parser("build", help="detect and align every face of a folder of photos into a bank",
                                description="Build a delegate bank from a folder of face photos: per face the "
                                "aligned crop, identity embedding, landmarks and head pose.")
    build.add_argument("folder", help="folder of face photos (searched recursively)")
    build.add_argument("-o", "--output", required=True, metavar="BANK", help="output folder of the bank")
    build.add_argument("--identity", default="dlib", help="identity feature space: dlib (offline), arcface or a local model path")
    build.set_defaults(run=_run_bank_build)
    synth = bank_sub.add_parser("synth", help="fill a bank with synthetic faces of no one (diffusers model)",
                                description="Generate N synthetic faces with an unconditional diffusers pipeline and "
                                "store them as a delegate bank, so no real person serves as a delegate.")
    synth.add_argument("n", type=int, help="number of faces to generate")
    synth.add_argument("-o", "--output", required=True, metavar="BANK", help="output folder of the bank")
    synth.add_argument("--model", default="google/ddpm-celebahq-256", help="diffusers pipeline: Hub id or local folder")
    synth.add_argument("--steps", type=int, default=50, help="denoising steps")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--device", default="cpu")
    synth.set_defaults(run=_run_bank_synth)


def _add_optional(sub, name: str, help_text: str, module: str, add_fn: str, run_fn: str, *,
                  needs: tuple[str, ...] = ()) -> None:
    """A sub-command whose options live next to its implementation, in `module`: imported only when this
    sub-command is parsed or its help shown, so `anon-model --help` and the other commands start fast. `needs`:
    packages it imports only later, on the way (checked first, so a partial install fails at once, not after
    the work)."""
    sub.add_parser(name, help=help_text, description=help_text,
                   register=lambda p: _register(p, f"anon-model {name}", module, add_fn, run_fn, needs))


def _register(parser: argparse.ArgumentParser, command: str, module: str, add_fn: str, run_fn: str,
              needs: tuple[str, ...]) -> None:
    """Add `module`'s options and runner to `parser`; when an extra it needs is missing, exit saying which."""
    from anon_model.extras import MissingExtraError, installed, missing_message, require

    missing = [name for name in needs if not installed(name)]
    if missing:  # a partial install
        sys.exit(f"error: {missing_message(command, missing[0])}")
    try:
        mod = require(module, command)
    except MissingExtraError as exc:
        sys.exit(f"error: {exc}")
    getattr(mod, add_fn)(parser)
    parser.set_defaults(run=getattr(mod, run_fn))


class _LazyParser(argparse.ArgumentParser):
    """A sub-command's parser whose options are added by `register` on first use (parsing, usage or help)."""

    def __init__(self, *args, register: Callable[[argparse.ArgumentParser], None] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._register = register

    def _ensure_registered(self) -> None:
        register, self._register = self._register, None
        if register is not None:
            register(self)

    def parse_known_args(self, args=None, namespace=None):
        self._ensure_registered()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._ensure_registered()
        return super().format_usage()

    def format_help(self) -> str:
        self._ensure_registered()
        return super().format_help()


# ---------------------------------------------------------------------- anonymize
def collect_inputs(inputs: list[str], recursive: bool) -> tuple[list[tuple[Path, Path]], list[str], list[Path]]:
    """(file, output name relative to OUTDIR) for each input image or video, one error line per missing input, and
    the other files of folder inputs (skipped, so the user can be told)."""
    from anon_model.imageio import find_images
    from anon_model.videofile import is_video, output_suffix

    found: list[tuple[Path, Path]] = []
    errors: list[str] = []
    skipped: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            images, others = find_images(path, recursive=recursive)
            found += [(f, f.relative_to(path).with_suffix(".png")) for f in images]
            found += [(f, f.relative_to(path).with_suffix(output_suffix(f))) for f in others if is_video(f)]
            skipped += [f for f in others if not is_video(f)]
        elif path.is_file():
            found.append((path, Path(path.stem + (output_suffix(path) if is_video(path) else ".png"))))
        else:
            errors.append(f"{path}: no such file or folder")
    return _dedupe(found), errors, skipped


def _dedupe(found: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """Give inputs that share an output name distinct names (photo.png, photo_1.png, ...)."""
    seen: set[Path] = set()
    out = []
    for src, name in found:
        candidate, i = name, 1
        while candidate in seen:
            candidate = name.with_name(f"{name.stem}_{i}{name.suffix}")
            i += 1
        seen.add(candidate)
        out.append((src, candidate))
    return out


def check_output_dir(path: str | os.PathLike) -> None:
    """Raise OSError (one clear line) when results cannot be written to folder `path`, so a run fails before any
    model loads rather than once per photo. Creates nothing: the folder, or its nearest existing parent, must be
    a writable folder."""
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists())
    what = f"output folder {path}" if existing == path else f"cannot create output folder {path}: {existing}"
    if not existing.is_dir():
        raise NotADirectoryError(f"{what} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{what} is not writable")


def _run_anonymize(args: argparse.Namespace) -> int:
    """Check the options and OUTDIR, list the inputs, and run them (``anon_model.batch.runner``)."""
    from anon_model.batch.runner import run

    if args.batch_size < 1 or args.workers < 1 or (args.jobs is not None and args.jobs < 1):
        print("error: --batch-size, --workers and --jobs must be at least 1", file=sys.stderr)
        return 2
    if args.mask_scale is not None and args.mask_scale < 1:
        print(f"error: --mask-scale must be at least 1 (the face box itself), not {args.mask_scale}", file=sys.stderr)
        return 2
    if args.look_ahead is not None and args.look_ahead < 0:
        print(f"error: --look-ahead must be 0 (no frame held back) or more, not {args.look_ahead}", file=sys.stderr)
        return 2
    try:
        check_output_dir(args.output)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    jobs, errors, skipped = collect_inputs(args.inputs, args.recursive)
    return run(args, jobs, errors, skipped)


# ---------------------------------------------------------------------- bank
def _run_bank_build(args: argparse.Namespace) -> int:
    from anon_model.bank import DelegateBank

    bank = DelegateBank.build(args.folder, identity=args.identity)
    bank.save_pretrained(args.output)
    print(f"bank: {len(bank)} faces -> {args.output}", file=sys.stderr)
    return 0


def _run_bank_synth(args: argparse.Namespace) -> int:
    from anon_model.bank import DelegateBank

    bank = DelegateBank.synthesize(args.n, model=args.model, steps=args.steps, seed=args.seed, device=args.device)
    bank.save_pretrained(args.output)
    print(f"bank: {len(bank)} synthetic faces -> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
