"""Evaluation as in the paper's §4: privacy (ReID, IDS), utility (attributes, SSIM, LPIPS, detection), ablations, speed.

    from anon_model.evaluation import evaluate, Judges, load_dataset, make_methods, write_report
    result = evaluate(load_dataset("photos/"), make_methods(["ours", "blur", "copy"]), Judges.load(), out_dir="report")
    write_report(result, "report")       # results.csv, report.md, privacy_utility.png, k_curve.png

The command line is ``anon-model evaluate`` (``report.py``) and ``anon-model bench`` (``bench.py``).
"""
from anon_model.evaluation.dataset import Sample, load_dataset
from anon_model.evaluation.evaluate import EvaluationResult, Judges, MetricValue, evaluate
from anon_model.evaluation.methods import VARIANTS, make_methods
from anon_model.evaluation.report import write_report

__all__ = ["Sample", "load_dataset", "EvaluationResult", "Judges", "MetricValue", "evaluate", "VARIANTS", "make_methods",
           "write_report"]
