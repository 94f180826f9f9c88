"""The `anon-model` command line: anonymize photos, build delegate banks, evaluate, benchmark."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from anon_model import __version__


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
        "anonymize", help="anonymize every face of photos (files or folders)",
        description="Anonymize every face of the given photos. Each result is written as OUTDIR/<name>.png at "
        "the input's size; inputs are never modified. A file that cannot be read is reported and skipped; "
        "a photo without faces is copied unchanged with a warning. Exit code 1 if any file failed.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
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
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace results that already exist in OUTDIR")
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
def collect_inputs(inputs: list[str], recursive: bool) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(file, output name relative to OUTDIR) for each input image, plus one error line per missing input."""
    from anon_model.imageio import IMAGE_SUFFIXES

    found: list[tuple[Path, Path]] = []
    errors: list[str] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(f for f in path.glob(pattern) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                           and not f.name.startswith("."))
            found += [(f, f.relative_to(path).with_suffix(".png")) for f in files]
        elif path.is_file():
            found.append((path, Path(path.stem + ".png")))
        else:
            errors.append(f"{path}: no such file or folder")
    return _dedupe(found), errors


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


def _run_anonymize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from anon_model.errors import AnonModelError
    from anon_model.imageio import save_image_atomic
    from anon_model.pipeline import AnonPipeline

    jobs, errors = collect_inputs(args.inputs, args.recursive)
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    if not jobs:
        print("error: no images to process", file=sys.stderr)
        return 1
    outdir = Path(args.output)
    inputs = {src.resolve() for src, _ in jobs}
    pipe = AnonPipeline.from_pretrained(args.model, device=args.device)
    print(f"anon-model: {len(jobs)} image(s) -> {outdir}; step 2 = {pipe.step2_name}", file=sys.stderr)
    failed = len(errors)
    for src, name in tqdm(jobs, desc="anonymizing", unit="img", file=sys.stderr):
        dest = outdir / name
        if dest.resolve() in inputs:
            tqdm.write(f"error: {src}: its output {dest} would overwrite an input; choose another OUTDIR", sys.stderr)
            failed += 1
            continue
        if dest.exists() and not args.overwrite:
            tqdm.write(f"skip: {dest} exists (use --overwrite to replace it)", sys.stderr)
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = pipe(src, seed=args.seed, k_top=args.k_top, epsilon=args.epsilon, k_neighbors=args.neighbors)
            save_image_atomic(out.image, dest)
        except AnonModelError as exc:
            tqdm.write(f"error: {exc}", sys.stderr)
            failed += 1
            continue
        except Exception as exc:  # one broken photo must not stop the batch
            tqdm.write(f"error: {src}: {type(exc).__name__}: {exc}", sys.stderr)
            failed += 1
            continue
        if not out.faces:
            tqdm.write(f"warning: {src}: no face found, written unchanged", sys.stderr)
    print(f"anon-model: {len(jobs) - failed + len(errors)} done, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


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
