"""The `anon-model anonymize` run over many files, in one process, in a pool of local worker processes, or under
``accelerate launch`` in many.

Launched with several processes, each takes its share of the files still to do (accelerate's
``PartialState.split_between_processes``) and runs on its own device; every file is written by exactly one process.
On the CPU a folder of photos is shared among worker processes of this machine instead (``--jobs``; by default one
per core when there are at least ``PHOTOS_PER_JOB`` photos each): each takes the next few photos as it finishes
the last, so a slow photo holds up no one, and sends back what happened while this process keeps the manifest, the
console and the progress bar. Much of a photo's work is Python and single-threaded, so on 2 cores one process keeps
1.3 of them busy. Photos go through the pipeline ``--batch-size`` at a time (one list call: their faces share the
networks' batches) while a thread pool decodes the next batches and writes finished ones; a photo gets the same
result whichever process or batch takes it. Every finished file is recorded in the manifest
(``anon_model.batch.manifest``), so a rerun into the same OUTDIR skips what is done and goes on with the rest;
``--overwrite`` redoes everything.
"""
from __future__ import annotations

import argparse
import glob
import logging
import multiprocessing
import os
import sys
import threading
import warnings
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from anon_model import __version__
from anon_model.batch import manifest
from anon_model.batch.metadata import Metadata, read_metadata
from anon_model.errors import AnonModelError
from anon_model.imageio import load_image, save_image_atomic
from anon_model.output import TREATMENTS, AnonOutput
from anon_model.videofile import is_video

__all__ = ["Processes", "run", "local_jobs"]

#: How long a process waits for the others at the end (a slow share must not time the others out).
BARRIER_TIMEOUT = timedelta(days=7)
#: By default a folder is shared among worker processes only when each gets at least this many photos: a worker
#: starts in about 2.5 s (imports and the pipeline), a portrait takes about 1 s on one core.
PHOTOS_PER_JOB = 4

Job = tuple[Path, Path]  # (input file, output name relative to OUTDIR)


@dataclass
class Processes:
    """This process's place among those of an ``accelerate launch`` (``PartialState``), or the only process."""

    rank: int = 0
    count: int = 1
    device: str | None = None  # None: the pipeline's default (CUDA when available)
    state: Any = None

    @classmethod
    def current(cls) -> "Processes":
        """Several processes when launched so (WORLD_SIZE > 1), each on its own device; else the only one."""
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return cls()
        import torch
        from accelerate import PartialState

        # without a GPU (or other accelerator) accelerate runs several processes only when told cpu=True (gloo)
        state = PartialState(cpu=not torch.accelerator.is_available(), timeout=BARRIER_TIMEOUT)
        device = "cpu" if state.device.type == "cpu" else str(state.device)  # cuda:<local rank> on GPUs
        return cls(state.process_index, state.num_processes, device, state)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, items: list) -> list:
        """This process's contiguous part of ``items`` (the same list in every process)."""
        if self.state is None:
            return list(items)
        with self.state.split_between_processes(items) as mine:
            return list(mine)

    def barrier(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()

    def gather(self, obj: Any) -> list:
        """``obj`` of every process, in rank order."""
        if self.state is None:
            return [obj]
        from accelerate.utils import gather_object

        return gather_object([obj])

    def close(self) -> None:
        if self.state is not None:
            self.state.destroy_process_group()


class Console:
    """What the run tells the user: errors always, notes unless ``-q``, every file with ``-v``; with ``--json`` one
    JSON line per file on stdout. Thread-safe; lines carry the process's rank when there are several."""

    def __init__(self, verbosity: int, procs: Processes, as_json: bool) -> None:
        self.verbosity, self.as_json = verbosity, as_json
        self.prefix = f"[{procs.rank}] " if procs.count > 1 else ""
        self._lock = threading.Lock()

    def error(self, text: str) -> None:
        self._say(f"error: {text}", 0)

    def note(self, text: str) -> None:
        self._say(text, 1)

    def detail(self, text: str) -> None:
        self._say(text, 2)

    def _say(self, text: str, level: int) -> None:
        if self.verbosity >= level:
            with self._lock:
                tqdm.write(self.prefix + text, sys.stderr)

    def json(self, entry: dict[str, Any]) -> None:
        if self.as_json:
            import json

            with self._lock:
                print(json.dumps(entry, ensure_ascii=False), flush=True)


@dataclass
class Tally:
    """One process's files and faces, summed by the main process."""

    done: int = 0
    failed: int = 0
    videos: int = 0
    faces: Counter = field(default_factory=Counter)

    def __add__(self, other: "Tally") -> "Tally":
        return Tally(self.done + other.done, self.failed + other.failed, self.videos + other.videos,
                     self.faces + other.faces)


@dataclass
class _Photo:
    """A decoded input photo and the metadata its result may carry."""

    rgb: np.ndarray
    metadata: Metadata


def run(args: argparse.Namespace, jobs: list[Job], errors: list[str], skipped: list[Path]) -> int:
    """Anonymize ``jobs`` (this process's share) into ``args.output``; the exit code (1 if any file failed)."""
    procs = Processes.current()
    console = Console(args.verbosity, procs, args.json)
    logging.getLogger().setLevel({0: logging.ERROR, 1: logging.WARNING}.get(args.verbosity, logging.INFO))
    if procs.is_main:
        for line in errors:
            console.error(line)
        for path in skipped:
            console.note(f"skip: {path}: not an image or video (format unrecognised)")
    if not jobs:
        console.error("no images or videos to process")
        return 1
    outdir = Path(args.output)
    if procs.is_main and not args.preview:  # what an interrupted run left: its manifest parts, half-written files
        manifest.merge(outdir)
        _remove_partial_files(outdir)
    procs.barrier()
    done = set() if args.overwrite or args.preview else manifest.finished(outdir, settings(args))
    todo = [job for job in jobs if job[1].as_posix() not in done]
    mine, tally = procs.share(todo), Tally()
    inputs = {src.resolve() for src, _ in jobs}  # no output may land on one of them
    count = local_jobs(args, procs, mine)
    if count > 1:
        with manifest.ManifestPart(outdir, procs.rank) as part:
            tally = _run_pool(args, mine, count, Report(args, console, procs, part, len(mine)), inputs,
                              lambda step2: _header(jobs, todo, skipped, outdir, step2, count))
    elif mine:  # the pipeline loads only where there is work left
        try:
            pipe = _load_pipeline(args, procs, mine)
            keep = pipe.reference(args.keep) if args.keep else None  # embedded once for the whole run
        except (AnonModelError, OSError, ValueError) as exc:
            console.error(str(exc))
            pipe, tally.failed = None, len(mine)
        if pipe is not None:
            if procs.is_main:
                console.note(_header(jobs, todo, skipped, outdir, pipe.step2_name, procs.count))
            batch = _Batch(pipe, args, outdir, inputs, keep)
            if args.preview:
                tally = batch.run(mine, Report(args, console, procs, None, len(mine)))
            else:
                with manifest.ManifestPart(outdir, procs.rank) as part:
                    tally = batch.run(mine, Report(args, console, procs, part, len(mine)))
    elif procs.is_main:
        console.note(f"anon-model: all {len(jobs)} file(s) already done in {outdir} with these settings (--overwrite "
                     "redoes them)")
    total = sum(procs.gather(tally), Tally())
    procs.barrier()
    if procs.is_main:
        if not args.preview:
            manifest.merge(outdir)
        console.note(f"anon-model: {total.done} done ({total.videos} video(s)), {total.failed + len(errors)} failed; "
                     f"faces (once per frame in videos): {face_counts(total.faces)}")
    procs.close()
    return 1 if total.failed or errors else 0


def _header(jobs: list[Job], todo: list[Job], skipped: list[Path], outdir: Path, step2: str, processes: int) -> str:
    """The run's first note: what it will do, where, with which step 2, in how many processes."""
    videos = sum(is_video(src) for src, _ in jobs)
    resumed = f"; {len(jobs) - len(todo)} already done with these settings (--overwrite redoes them)" \
        if len(todo) < len(jobs) else ""
    launched = f"; {processes} processes" if processes > 1 else ""
    return (f"anon-model: {len(jobs) - videos} image(s), {videos} video(s), {len(skipped)} other file(s) skipped -> "
            f"{outdir}; step 2 = {step2}{resumed}{launched}")


def local_jobs(args: argparse.Namespace, procs: Processes, todo: list[Job]) -> int:
    """How many local worker processes share ``todo`` (1: this process alone). ``--jobs`` when given; by default one
    per core of this process when the work is anonymizing photos (no video, no preview; obscuring alone takes 0.1-0.3 s
    a photo, less than a worker takes to start), on the CPU (no ``--device`` but cpu, no NVIDIA device), outside
    ``accelerate launch``, and there are ``PHOTOS_PER_JOB`` photos for each."""
    if procs.count > 1 or args.preview or len(todo) < 2 or any(is_video(src) for src, _ in todo):
        return 1
    if args.jobs is not None:
        return max(1, min(args.jobs, len(todo)))
    if args.device not in (None, "cpu") or (args.device is None and glob.glob("/dev/nvidia[0-9]*")):
        return 1  # one process keeps a GPU busy; several would each hold a copy of the models on it
    if _obscures_only(args, todo):
        return 1
    return max(1, min(_cores(), len(todo) // PHOTOS_PER_JOB))


def _cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _run_pool(args: argparse.Namespace, todo: list[Job], count: int, report: "Report", inputs: set[Path],
              header) -> Tally:
    """``todo`` (photos) shared among ``count`` worker processes, a few photos at a time, each worker with an equal
    share of the cores for its networks; what each reports is replayed into ``report`` here, after the run's first
    note (``header(step 2's name)``, once a worker has loaded the pipeline)."""
    # at least 6 parts for each worker, so that the last ones even out the slow photos (24 photos on 2 cores: parts of
    # 4 took 23.7 s, of 2 22.2 s; photos in a part still share the networks' batches)
    size = max(1, min(args.batch_size, len(todo) // (6 * count)))
    parts = [todo[i:i + size] for i in range(0, len(todo), size)]
    threads = max(1, _cores() // count)
    context = multiprocessing.get_context("spawn")  # fresh interpreters: nothing of this process's threads or models
    pool = ProcessPoolExecutor(count, mp_context=context, initializer=_start_worker, initargs=(args, inputs, threads))
    try:
        _collect(pool, parts, report, header)
    except BaseException:  # interrupted (Ctrl-C, a signal to this process alone): stop the workers now, not later
        workers = list((getattr(pool, "_processes", None) or {}).values())  # no public way before Python 3.14
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            process.terminate()
        raise
    pool.shutdown()
    report.close()
    return report.tally


def _collect(pool: ProcessPoolExecutor, parts: list[list[Job]], report: "Report", header) -> None:
    """Send each part of the photos to the workers and replay what they report, as they finish."""
    futures = {pool.submit(_worker_photos, part): part for part in parts}
    told = unloaded = False
    for future in as_completed(futures):
        try:
            step2, events = future.result()
        except _Unloaded as exc:  # said once, as one process says it; these photos are not done
            if not unloaded:
                report.console.error(str(exc))
            unloaded = True
            report.tally.failed += len(futures[future])
            continue
        except Exception as exc:  # the worker died: these photos failed
            for job in futures[future]:
                report.failed(job, _message(job[0], exc))
            continue
        if not told and report.procs.is_main:
            report.console.note(header(step2))
            told = True
        for name, values in events:
            getattr(report, name)(*values)


class _Unloaded(Exception):
    """A worker process could not load the pipeline (``--model``, ``--bank``, ``--keep``): the message says why."""


#: A worker process's ``_Batch`` (or why its pipeline could not load), made on its first photos.
_WORKER: dict[str, Any] = {}


def _start_worker(args: argparse.Namespace, inputs: set[Path], threads: int) -> None:
    """A worker process's start: its share of the cores (torch and onnxruntime read it), its run settings."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _WORKER.update(args=args, inputs=inputs)


def _worker_photos(jobs: list[Job]) -> tuple[str, list[tuple[str, tuple]]]:
    """In a worker: anonymize and write ``jobs``; step 2's name and what happened, for the main process to replay."""
    if "batch" not in _WORKER:
        args = _WORKER["args"]
        try:
            pipe = _load_pipeline(args, Processes(), jobs)
            keep = pipe.reference(args.keep) if args.keep else None
        except (AnonModelError, OSError, ValueError) as exc:  # what loading in one process reports the same way
            _WORKER["batch"] = _Unloaded(str(exc))
        else:
            _WORKER["batch"] = _Batch(pipe, args, Path(args.output), _WORKER["inputs"], keep)
    batch = _WORKER["batch"]
    if isinstance(batch, Exception):
        raise batch
    events = Events()
    batch.photos(jobs, events)
    return batch.pipe.step2_name, events.calls


def _remove_partial_files(outdir: Path) -> None:
    """Delete the temporary files of writes a killed run never finished (``atomic_write``'s ``.<name>.*.part``)."""
    if outdir.is_dir():
        for leftover in outdir.rglob(".*.part"):
            leftover.unlink(missing_ok=True)


def _load_pipeline(args: argparse.Namespace, procs: Processes, jobs: list[Job]):
    """The pipeline of ``--model`` on this process's device, drawing from ``--bank`` when given; or, when the run only
    obscures photos with the default perception, an ``Obscurer``: then nothing of steps 1 and 2 loads, nor torch."""
    from anon_model.obscuring import Obscurer

    if _obscures_only(args, jobs):
        return Obscurer()
    from anon_model.pipeline import AnonPipeline

    pipe = AnonPipeline.from_pretrained(args.model, device=args.device or procs.device, bank=args.bank or None)
    pipe.set_progress_bar_config(disable=True)  # the run shows its own, per file
    return pipe


def _obscures_only(args: argparse.Namespace, jobs: list[Job]) -> bool:
    """Whether the run only obscures photos with the default perception (an ``Obscurer`` does it, without torch)."""
    if args.replace_with == "anonymize" or args.keep or args.model or args.preview or any(is_video(s) for s, _ in jobs):
        return False
    from anon_model.obscuring import CLASSICAL, runs_without_torch  # imports the perception (0.5 s)

    return args.replace_with in CLASSICAL and runs_without_torch()


def _step2_class(pipe) -> str:
    """The class name of the pipeline's step 2 ("none" for an ``Obscurer``, which has none)."""
    synthesizer = getattr(pipe, "synthesizer", None)
    return "none" if synthesizer is None else type(synthesizer).__name__


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The options that shape a result: a file done with other ones is not finished for this run."""
    names = ("model", "bank", "seed", "k_top", "epsilon", "neighbors", "threshold", "face_search", "replace_with",
             "fallback",
             "mask_scale", "boxes", "keep_metadata", "no_audio", "crf", "detect_every", "look_ahead", "keep")
    return {name: getattr(args, name) for name in names}


def face_counts(counts: dict[str, int]) -> str:
    """Faces per treatment, e.g. 3 anonymized, 1 obscured (treatments no face got are left out)."""
    return ", ".join(f"{counts.get(t, 0)} {t}" for t in TREATMENTS if counts.get(t, 0) or t == "anonymized")


class Report:
    """What a run's results become in this process: the manifest part, the console and ``--json`` lines, the progress
    bar and the tally (thread-safe: photos are written on a thread pool)."""

    def __init__(self, args: argparse.Namespace, console: Console, procs: Processes,
                 part: manifest.ManifestPart | None, total: int) -> None:
        self.args, self.console, self.procs, self.part = args, console, procs, part
        self.settings, self.tally = settings(args), Tally()
        self._lock = threading.Lock()
        self.bar = tqdm(total=total, unit="file", desc="preview" if args.preview else "anonymizing",
                        file=sys.stderr, disable=not (args.verbosity >= 1 and procs.is_main))

    def close(self) -> None:
        self.bar.close()

    def note(self, text: str) -> None:
        self.console.note(text)

    def detail(self, text: str) -> None:
        self.console.detail(text)

    def previewed(self, job: Job, entries: list[dict[str, Any]]) -> None:
        with self._lock:
            self.tally.done += 1
        self.bar.update()
        self.console.detail(f"{job[0]}: {len(entries)} face(s) found")
        self.console.json({"source": str(job[0]), "output": job[1].as_posix(), "status": "preview", "faces": entries})

    def video(self) -> None:
        with self._lock:
            self.tally.videos += 1

    def record(self, job: Job, lines: list[dict[str, Any]], counts: dict[str, int], size: int, kind: str) -> None:
        closing = manifest.file_entry(str(job[0]), job[1].as_posix(), status="done", counts=counts, size=size,
                                      kind=kind, settings=self.settings)
        self.part.add([*lines, closing])
        with self._lock:
            self.tally.done += 1
            self.tally.faces.update(counts)
        self.bar.update()
        self._json(closing, lines)

    def failed(self, job: Job, message: str, lines: list[dict[str, Any]] = (), counts: dict[str, int] | None = None,
               kind: str = "image") -> None:
        self.console.error(message)
        with self._lock:
            self.tally.failed += 1
        self.bar.update()
        closing = manifest.file_entry(str(job[0]), job[1].as_posix(), status="failed", counts=counts, error=message,
                                      kind=kind, settings=self.settings)
        if self.part is not None:
            self.part.add([*lines, closing])
        self._json(closing, list(lines))

    def _json(self, closing: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        """``--json``: one stdout line per file, its manifest entry with its faces nested (less what the file says)."""
        drop = ("record", "source", "output", "seed", "pipeline")
        self.console.json({k: v for k, v in closing.items() if k != "record"}
                          | {"faces": [{k: v for k, v in line.items() if k not in drop} for line in lines]})


class Events:
    """A worker process's stand-in for ``Report``: the calls made to it, in order, to replay in the main process."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        if name.startswith("_") or not callable(getattr(Report, name, None)):
            raise AttributeError(name)
        return lambda *values: self._add(name, values)

    def _add(self, name: str, values: tuple) -> None:
        with self._lock:
            self.calls.append((name, values))


class _Batch:
    """Photos in batches with decoding and writing on a thread pool, then videos; what happens goes to a ``Report``
    (or, in a worker process, to ``Events``)."""

    def __init__(self, pipe, args: argparse.Namespace, outdir: Path, inputs: set[Path], keep: list | None = None
                 ) -> None:
        self.pipe, self.args, self.outdir, self.inputs = pipe, args, outdir, inputs
        self.options = {"k_top": args.k_top, "epsilon": args.epsilon, "k_neighbors": args.neighbors,
                        "replace_with": args.replace_with, "fallback": args.fallback,
                        "face_search": args.face_search, "detect_threshold": args.threshold}
        # the obscuring's shape, passed only when asked for (the pipeline's defaults otherwise)
        self.options |= {k: v for k, v in (("mask_scale", args.mask_scale), ("boxes", args.boxes or None),
                                           ("keep", keep)) if v}
        step2 = _step2_class(pipe)
        self.pipeline = {"id": args.model or "anon_model default", "version": __version__, "step2": step2,
                         "bank": args.bank or ("none" if step2 == "none" else "the pipeline's")}
        self.report: Report | Events | None = None

    def run(self, jobs: list[Job], report: Report) -> Tally:
        self.photos([job for job in jobs if not is_video(job[0])], report)
        for job in jobs:
            if is_video(job[0]):
                self._video(job)
        report.close()
        return report.tally

    # ---- photos
    def photos(self, photos: list[Job], report: Report | Events) -> None:
        """Anonymize and write ``photos`` (no videos), telling ``report`` about each."""
        self.report = report
        with ThreadPoolExecutor(self.args.workers, thread_name_prefix="anon-io") as pool:
            writes: deque[Future] = deque()
            for batch in _prefetch(pool, self._decode, photos, self.args.batch_size):
                for job, photo, out in self._anonymize(batch):
                    writes.append(pool.submit(self._finish, job, photo, out))
                while len(writes) > 2 * self.args.batch_size + self.args.workers:  # bound the results held
                    writes.popleft().result()
            for future in writes:
                future.result()

    def _decode(self, src: Path) -> _Photo:
        return _Photo(load_image(src), read_metadata(src) if self.args.keep_metadata else {})

    def _anonymize(self, batch: list[tuple[Job, Future]]) -> Iterator[tuple[Job, _Photo, AnonOutput]]:
        """Each decodable photo of ``batch`` with its result (the failures are recorded as such)."""
        ready = []
        for job, future in batch:
            try:
                photo = future.result()
            except Exception as exc:  # one unreadable photo must not stop the batch
                self.report.failed(job, _message(job[0], exc))
                continue
            if (self.outdir / job[1]).resolve() in self.inputs:
                self.report.failed(job, f"{job[0]}: its output {self.outdir / job[1]} would overwrite an input; "
                                        "choose another OUTDIR")
                continue
            ready.append((job, photo))
        if self.args.preview:
            yield from ((job, photo, None) for job, photo in ready)
        else:
            yield from self._results(ready)

    def _results(self, ready: list[tuple[Job, _Photo]]) -> Iterator[tuple[Job, _Photo, AnonOutput]]:
        """Each photo of ``ready`` with its result: one list call for them all, or photo by photo when that call
        fails (so that one bad photo fails alone)."""
        if not ready:
            return
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                outputs = self.pipe([photo.rgb for _, photo in ready], seed=self.args.seed, **self.options).split()
        except Exception as exc:
            if len(ready) == 1:
                self.report.failed(ready[0][0], _message(ready[0][0][0], exc))
                return
            for item in ready:
                yield from self._results([item])
            return
        for warning in caught:
            if "anon_model" in warning.filename:  # ours are for the user; the libraries' are noise here
                self.report.note(f"warning: {', '.join(str(job[0]) for job, _ in ready)}: {warning.message}")
        yield from ((job, photo, result) for (job, photo), result in zip(ready, outputs))

    def _finish(self, job: Job, photo: _Photo, out: AnonOutput | None) -> None:
        """Write one photo's result and record it (runs on the thread pool)."""
        src, name = job
        dest = self.outdir / name
        try:
            if self.args.preview:
                self._preview(job, photo, dest)
                return
            counts = out.counts()
            entries = [self._face_line(job, i, r) for i, r in enumerate(out.faces)]
            if counts["failed"]:
                self.report.failed(job, f"{src}: {counts['failed']} face(s) could not be anonymized and --fallback "
                                        "is none: not written", entries, counts)
                return
            save_image_atomic(out.image, dest, **photo.metadata)
        except Exception as exc:
            self.report.failed(job, _message(src, exc))
            return
        self.report.record(job, entries, counts, dest.stat().st_size, "image")
        if not out.faces:
            self.report.note(f"warning: {src}: no face found, written unchanged")
        elif counts["anonymized"] + counts["kept"] < len(out.faces):
            self.report.note(f"{src}: {face_counts(counts)}; " + "; ".join(
                f"face {i + 1} {r.treatment}: {r.treatment_reason}" for i, r in enumerate(out.faces)
                if r.treatment != "anonymized"))
        else:
            self.report.detail(f"{src}: {face_counts(counts)}")

    def _preview(self, job: Job, photo: _Photo, dest: Path) -> None:
        from anon_model.batch.preview import preview

        cfg = self.pipe.preprocessor.resolve(detect_threshold=self.args.threshold)
        drawn, entries = preview(self.pipe, photo.rgb, cfg, draw_scores=self.args.draw_scores,
                                 search=self.args.face_search)
        save_image_atomic(drawn, dest, **photo.metadata)
        self.report.previewed(job, entries)

    # ---- videos
    def _video(self, job: Job) -> None:
        src, name = job
        dest = self.outdir / name
        if self.args.preview:
            self.report.note(f"skip: {src}: --preview draws photos only")
            self.report.bar.update()
            return
        if dest.resolve() in self.inputs:
            self.report.failed(job, f"{src}: its output {dest} would overwrite an input; choose another OUTDIR")
            return
        from anon_model.video import LOOK_AHEAD, anonymize_video

        try:
            look_ahead = LOOK_AHEAD if self.args.look_ahead is None else self.args.look_ahead
            out = anonymize_video(self.pipe, src, dest, seed=self.args.seed, audio=not self.args.no_audio,
                                  crf=self.args.crf, detect_every=self.args.detect_every, look_ahead=look_ahead,
                                  progress=self.args.verbosity >= 1, **self.options)
        except Exception as exc:
            self.report.failed(job, _message(src, exc), kind="video")
            return
        counts = out.counts()
        tracks = [{**self._common(job), "record": "track", **manifest.track_entry(t)} for t in out.tracks]
        self.report.record(job, tracks, counts, dest.stat().st_size, "video")
        self.report.video()
        self.report.note(f"{src}: {out.frames} frames, {len(out.tracks)} tracked face(s); faces per frame: "
                         f"{face_counts(counts)}")

    # ---- the record of each file
    def _common(self, job: Job) -> dict[str, Any]:
        return {"source": str(job[0]), "output": job[1].as_posix(), "seed": self.args.seed, "pipeline": self.pipeline}

    def _face_line(self, job: Job, index: int, record) -> dict[str, Any]:
        return {"record": "face", **self._common(job), **manifest.face_entry(record, index)}


def _prefetch(pool: ThreadPoolExecutor, load, jobs: list[Job], batch_size: int,
              ahead: int = 2) -> Iterator[list[tuple[Job, Future]]]:
    """``jobs`` in batches, each photo's decoding started ``ahead`` batches before it is needed."""
    queue: deque[list[tuple[Job, Future]]] = deque()
    for start in range(0, len(jobs), max(1, batch_size)):
        queue.append([(job, pool.submit(load, job[0])) for job in jobs[start:start + batch_size]])
        if len(queue) > ahead:
            yield queue.popleft()
    yield from queue


def _message(src: Path, exc: Exception) -> str:
    """One line for a file that failed: our errors say it all; others are named."""
    if isinstance(exc, AnonModelError):
        text = str(exc)
        return text if text.startswith(str(src)) else f"{src}: {text}"
    return f"{src}: {type(exc).__name__}: {exc}"
