"""The `anon-model` command line: anonymize photos, build delegate banks, evaluate, benchmark."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from anon_model import __version__
from anon_model.fallback import FALLBACKS, REPLACE_WITH


def main(argv: list[str] | None = None) -> int:
    """Entry point of `anon-model`; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    return int(args.run(args) or 0)


def build_parser() -> argparse.ArgumentParser:
    """All sub-commands and their options (each `--help` explains them)."""
    parser = argparse.ArgumentParser(
        prog="anon-model",
        description="Face anonymization by identity attention distraction (IFA + IPD/VAA/GSA). "
        "Runs offline with bundled models; pass --model for a trained pipeline (Hub id or folder).",
    )
    parser.add_argument("--version", action="version", version=f"anon_model {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_anonymize(sub)
    _add_bank(sub)
    _add_optional(sub, "evaluate", "score methods on a dataset: the paper's tables (ReID, IDS, SSIM, attributes)",
                  "anon_model.evaluation.report", "add_evaluate_arguments", "run_evaluate")
    _add_optional(sub, "bench", "time each stage (detect, landmarks, IFA, VCA, synthesis, paste-back)",
                  "anon_model.evaluation.bench", "add_bench_arguments", "run_bench")
    return parser


def _add_anonymize(sub) -> None:
    p = sub.add_parser(
        "anonymize", help="anonymize every face of photos and videos (files or folders)",
        description="Anonymize every face of the given photos and videos. Each photo's result is written as "
        "OUTDIR/<name>.png at the input's size; a video (.mp4, .mov, .mkv, .webm, .avi) as OUTDIR/<name>.mp4, .mov "
        "or .mkv (H.264, same frame count, rate and size, audio copied; each tracked person one stranger "
        "throughout); inputs are never modified. A file that cannot be read is reported and skipped; "
        "a photo without faces is copied unchanged with a warning. Exit code 1 if any file failed.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files and/or folders of them")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the results (created if needed)")
    p.add_argument("--recursive", action="store_true", help="also look for images in sub-folders of folder inputs")
    p.add_argument("--model", default=None, metavar="ID|DIR",
                   help="pipeline to use: a Hugging Face Hub repo id or a local folder written by save_pretrained "
                   "(default: the built-in offline pipeline with the training-free step 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed for delegate sampling (default 0: reproducible)")
    p.add_argument("--k-top", type=int, default=None, metavar="K",
                   help="number of top identity classes whose attention IFA distracts (paper: 2-4; default 3)")
    p.add_argument("--epsilon", type=float, default=None, metavar="E",
                   help="privacy budget of IPD sampling, Eq. 6 (0 = uniform over candidates; default 1.0)")
    p.add_argument("--neighbors", type=int, default=None, metavar="k", help="delegate candidates k for VAA (default 10)")
    p.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="face detection confidence in [0, 1]: lower finds more faces, and more false alarms "
                   "(default 0.9)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace results that already exist in OUTDIR")
    p.add_argument("--replace-with", default="anonymize", choices=REPLACE_WITH,
                   help="what every detected face gets: anonymize (this method, default), a classical obscuring "
                   "(mosaic, blur, solid) or none (detection only: nothing is changed)")
    p.add_argument("--fallback", default="mosaic", choices=(*FALLBACKS, "none"),
                   help="how a face that cannot be anonymized (too small, turned away, unreliable landmarks, still "
                   "recognized after every try) is obscured (default mosaic); none leaves it and fails the file")
    p.add_argument("--no-audio", action="store_true", help="videos: drop the audio (default: copied unchanged)")
    p.add_argument("--crf", type=int, default=18, help="videos: H.264 quality, lower is better (default 18)")
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


def _add_optional(sub, name: str, help_text: str, module: str, add_fn: str, run_fn: str) -> None:
    """A sub-command whose options live next to its implementation."""
    import importlib

    p = sub.add_parser(name, help=help_text, description=help_text)
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:  # a partial install: say so when the command is used
        p.set_defaults(run=lambda args: sys.exit(f"error: anon-model {name} is unavailable ({exc})"))
        return
    getattr(mod, add_fn)(p)
    p.set_defaults(run=getattr(mod, run_fn))


# ---------------------------------------------------------------------- anonymize
def collect_inputs(inputs: list[str], recursive: bool) -> tuple[list[tuple[Path, Path]], list[str], list[Path]]:
    """(file, output name relative to OUTDIR) for each input image or video, one error line per missing input, and
    the other files of folder inputs (skipped, so the user can be told)."""
    from anon_model.imageio import find_images
    from anon_model.video import is_video, output_suffix

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
    from tqdm import tqdm

    from anon_model.errors import AnonModelError
    from anon_model.imageio import save_image_atomic
    from anon_model.output import TREATMENTS
    from anon_model.pipeline import AnonPipeline
    from anon_model.video import anonymize_video, is_video

    jobs, errors, skipped = collect_inputs(args.inputs, args.recursive)
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    for path in skipped:
        print(f"skip: {path}: not an image or video (format unrecognised)", file=sys.stderr)
    if not jobs:
        print("error: no images or videos to process", file=sys.stderr)
        return 1
    outdir = Path(args.output)
    inputs = {src.resolve() for src, _ in jobs}
    try:
        check_output_dir(outdir)
        pipe = AnonPipeline.from_pretrained(args.model, device=args.device)
    except (AnonModelError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    videos = sum(is_video(src) for src, _ in jobs)
    print(f"anon-model: {len(jobs) - videos} image(s), {videos} video(s), {len(skipped)} other file(s) skipped -> "
          f"{outdir}; step 2 = {pipe.step2_name}", file=sys.stderr)
    failed, faces = len(errors), dict.fromkeys(TREATMENTS, 0)
    options = {"k_top": args.k_top, "epsilon": args.epsilon, "k_neighbors": args.neighbors,
               "replace_with": args.replace_with, "fallback": args.fallback, "detect_threshold": args.threshold}
    for src, name in tqdm(jobs, desc="anonymizing", unit="file", file=sys.stderr):
        dest = outdir / name
        if dest.resolve() in inputs:
            tqdm.write(f"error: {src}: its output {dest} would overwrite an input; choose another OUTDIR", sys.stderr)
            failed += 1
            continue
        if dest.exists() and not args.overwrite:
            tqdm.write(f"skip: {dest} exists (use --overwrite to replace it)", sys.stderr)
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if is_video(src):  # written as it goes; a failed face stops it before anything is written
                    out = anonymize_video(pipe, src, dest, seed=args.seed, audio=not args.no_audio, crf=args.crf,
                                          **options)
                else:
                    out = pipe(src, seed=args.seed, **options)
            for warning in caught:
                if "anon_model" in warning.filename:  # ours are for the user; the libraries' are noise here
                    tqdm.write(f"warning: {src}: {warning.message}", sys.stderr)
            counts = out.counts()
            if counts["failed"]:
                raise AnonModelError(f"{src}: {counts['failed']} face(s) could not be anonymized and --fallback is "
                                     "none: not written")
            if not is_video(src):
                save_image_atomic(out.image, dest)
        except AnonModelError as exc:
            tqdm.write(f"error: {exc}", sys.stderr)
            failed += 1
            continue
        except Exception as exc:  # one broken photo must not stop the batch
            tqdm.write(f"error: {src}: {type(exc).__name__}: {exc}", sys.stderr)
            failed += 1
            continue
        faces = {t: faces[t] + counts[t] for t in TREATMENTS}
        if is_video(src):
            tqdm.write(f"{src}: {out.frames} frames, {len(out.tracks)} tracked face(s); faces per frame: "
                       f"{_face_counts(counts)}", sys.stderr)
        elif not out.faces:
            tqdm.write(f"warning: {src}: no face found, written unchanged", sys.stderr)
        elif counts["anonymized"] < len(out.faces):
            tqdm.write(f"{src}: {_face_counts(counts)}; " + "; ".join(
                f"face {i + 1} {r.treatment}: {r.treatment_reason}" for i, r in enumerate(out.faces)
                if r.treatment != "anonymized"), sys.stderr)
    print(f"anon-model: {len(jobs) - failed + len(errors)} done ({videos} video(s)), {failed} failed; faces (once per "
          f"frame in videos): {_face_counts(faces)}", file=sys.stderr)
    return 1 if failed else 0


def _face_counts(counts: dict[str, int]) -> str:
    """Faces per treatment, e.g. 3 anonymized, 1 obscured (treatments no face got are left out)."""
    return ", ".join(f"{n} {t}" for t, n in counts.items() if n or t == "anonymized")


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
