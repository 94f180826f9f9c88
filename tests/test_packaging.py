"""Packaging (issue 16): the core install anonymizes without any extra, the extras table agrees with pyproject.toml,
and the model card ships inside the package (what an installed `push_to_hub` uploads)."""

from __future__ import annotations

import importlib.resources
import subprocess
import sys
import tomllib
from pathlib import Path

from anon_model.extras import EXTRAS

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "anon_model" / "assets" / "examples" / "obama2.jpg"


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_model_card_is_package_data():
    card = importlib.resources.files("anon_model") / "model_card.md"
    text = card.read_text()
    assert text == (ROOT / "model_card.md").read_text()  # one card: the package's is the repository's
    front = text.split("---")[1]
    for key in ("license:", "library_name: anon_model", "datasets:", "model-index:"):
        assert key in front, key
    assert "@inproceedings{kuang2024facial" in text


def test_every_extra_named_to_users_exists_and_test_installs_them_all():
    extras = _pyproject()["optional-dependencies"]
    assert set(EXTRAS.values()) <= set(extras)
    wanted = {name.split("[")[0].replace("_", "-") for name in EXTRAS}
    declared = {req.split(">")[0].split("<")[0].split("=")[0].strip().replace("_", "-")
                for names in extras.values() for req in names}
    assert wanted <= declared, wanted - declared
    test = next(req for req in extras["test"] if req.startswith("anon_model["))
    assert set(test[len("anon_model["):-1].split(",")) == set(extras) - {"test"}
    assert "gradio>=6" in extras["app"]
    core = " ".join(_pyproject()["dependencies"])
    assert "scipy" in core and not any(name in core for name in ("gradio", "accelerate", "matplotlib", "h5py"))


def test_the_core_anonymizes_from_python_and_the_cli_without_any_extra(tmp_path):
    # every extra's modules (torchvision among them) made unimportable, as in a core-only install
    blocked = sorted(EXTRAS)
    code = f"""
import sys
for name in {blocked!r}:
    sys.modules[name] = None
from anon_model.cli import main
code = main(["anonymize", {str(PHOTO)!r}, "-o", {str(tmp_path / "cli")!r}, "-q"])
from anon_model import AnonPipeline
out = AnonPipeline.from_pretrained(None, device="cpu")({str(PHOTO)!r}, seed=0)
print("RESULT", code, out.counts()["anonymized"] + out.counts()["obscured"], "facenet_pytorch" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("RESULT")[-1].split() == ["0", "1", "False"]
    assert (tmp_path / "cli" / "obama2.png").is_file()


def test_the_space_requirements_hold_the_core_dependencies():
    names = {line.split(">")[0].split("<")[0].split("=")[0].strip().lower()
             for line in (ROOT / "space" / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith(("#", "-"))}
    core = {req.split(">")[0].split("<")[0].split("=")[0].split(";")[0].strip().lower()
            for req in _pyproject()["dependencies"]}
    core = {"opencv-python-headless" if name == "opencv-python" else name for name in core}  # a server has no GUI
    assert core <= names, core - names


def test_the_space_is_assembled_with_its_files_where_the_space_wants_them(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "space" / "assemble.py"), str(tmp_path / "space")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    space = tmp_path / "space"
    assert (space / "README.md").read_text().startswith("---\ntitle:")
    for name in ("app.py", "requirements.txt", "LICENSE", "anon_model/__init__.py", "anon_model/assets/bank/bank.json"):
        assert (space / name).is_file(), name
    assert not list(space.rglob("__pycache__")) and not (space / "anon_model" / "model_card.md").is_symlink()
    again = subprocess.run([sys.executable, str(ROOT / "space" / "assemble.py"), str(space)], capture_output=True,
                           text=True)
    assert again.returncode == 1 and "--overwrite" in again.stderr  # never writes over a folder unasked
