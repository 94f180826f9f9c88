"""Assemble the Hugging Face Space repository's files into one folder, ready to upload.

    python space/assemble.py OUTDIR            # then: hf upload USER/SPACE OUTDIR . --repo-type space

What goes where (paths relative to this repository -> the Space repository's root):

    space/README.md         -> README.md          the Space's front matter (sdk, sdk_version, app_file) and page
    space/requirements.txt  -> requirements.txt   the Python packages the Space installs (gradio from sdk_version)
    app.py                  -> app.py             the Gradio app
    anon_model/             -> anon_model/        the package, with its assets (delegate bank, example photos)
    LICENSE                 -> LICENSE

Caches (__pycache__, *.pyc) stay behind; links are copied as the files they point to.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Space path -> repository path.
FILES = {
    "README.md": "space/README.md",
    "requirements.txt": "space/requirements.txt",
    "app.py": "app.py",
    "anon_model": "anon_model",
    "LICENSE": "LICENSE",
}


def assemble(out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Write the Space's files into `out_dir` (built in a temporary folder beside it, then moved into place)."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} is not empty (pass --overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as tmp:
        staged = Path(tmp) / "space"
        staged.mkdir()
        for dest, src in FILES.items():
            if (ROOT / src).is_dir():
                shutil.copytree(ROOT / src, staged / dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copyfile(ROOT / src, staged / dest)
        if out.exists():
            shutil.rmtree(out)
        staged.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", metavar="OUTDIR", help="folder to write the Space repository's files into")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTDIR if it is not empty")
    args = parser.parse_args(argv)
    try:
        out = assemble(args.out_dir, overwrite=args.overwrite)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Space files in {out}; upload them with: hf upload USER/SPACE {out} . --repo-type space")
    return 0


if __name__ == "__main__":
    sys.exit(main())
