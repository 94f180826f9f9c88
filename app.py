"""The anon_model Gradio app (the Hugging Face Space entry point): anonymize, explain, delegates, compare.

Run ``python app.py``; it serves on $GRADIO_SERVER_NAME:$GRADIO_SERVER_PORT (default 127.0.0.1:7860).
$ANON_MODEL_ID (a Hub repo id or a local folder) selects a trained pipeline; unset, the offline default
runs. Drawing and bookkeeping live in ``anon_model.ui``; this file only wires them to components.
The visitor's original photo never reaches the disk beyond the upload itself (deleted once read): whatever shows
it (the before/after slider, overlays on the original face) is sent inline as HTML data URLs.
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no telemetry, before gradio is imported
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: Space CPUs are shared, don't spin-wait

import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import hashlib  # noqa: E402
import secrets  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

import anon_model  # noqa: E402
from anon_model.errors import AnonModelError  # noqa: E402
from anon_model.imageio import atomic_write, load_image  # noqa: E402
from anon_model.ui import compare, examples, inline, private, render, study, video_tab, views, wording  # noqa: E402
from anon_model.ui.options import RunOptions, run_pipeline  # noqa: E402

EXAMPLES = examples.paths(examples.PHOTOS)
EXAMPLE_CLIPS = examples.paths(examples.CLIPS)
MAX_PIXELS = int(os.environ.get("ANON_APP_MAX_PIXELS", 16_000_000))
MAX_FILE_SIZE = os.environ.get("ANON_APP_MAX_FILE_SIZE", "20mb")
STUDY_CSV = Path(os.environ.get("ANON_STUDY_CSV", "user_study.csv"))
#: gradio's temporary copies of shown results are deleted this many seconds after creation (uploads at once).
CACHE_SECONDS = int(os.environ.get("ANON_APP_CACHE_SECONDS", 300))
#: Visitors waiting at most, and pipeline runs at once (each run already uses every core through torch).
QUEUE_SIZE = int(os.environ.get("ANON_APP_QUEUE", 64))
CONCURRENCY = int(os.environ.get("ANON_APP_CONCURRENCY", max(1, (os.cpu_count() or 1) // 8)))
#: A visitor's last result stays in memory (never on disk) this long, for the Explain/Delegates/Compare tabs.
SESSION_SECONDS = 900
_MINUTES = -(-(CACHE_SECONDS + min(60, CACHE_SECONDS)) // 60)  # creation age + one sweep, rounded up
PRIVACY = (
    "**Privacy.** Photos are processed in memory and never stored: an upload is deleted from the server as soon as "
    "it has been read, views of your original (before/after, overlays on your face) are sent inside the page, not "
    "as files, and the temporary copies the web framework makes of anonymized results are deleted within "
    f"{_MINUTES} minute{'s' * (_MINUTES > 1)} and when the app stops; "
    "no analytics. The user study stores only your answers and anonymous question ids, never an image."
)
CSS = ".gallery-item .caption-label { white-space: normal; }" + inline.CSS + """
.anon-tiles .grid-wrap { min-height: 0; max-height: none; overflow-y: visible; }
.anon-tiles .thumbnail-item { aspect-ratio: auto; height: auto; }
.anon-tiles .thumbnail-lg > img { aspect-ratio: 1; height: auto; }
.anon-tiles .caption-label { position: static; max-width: 100%; opacity: 1; border: 0; font-size: 12px; }
.anon-labelled label[data-testid="block-label"] { position: static; }
#scores th { white-space: nowrap; }
#scores table { display: block; overflow-x: auto; }
.anon-fine { font-size: 0.85em; opacity: 0.8; }
"""
#: The frontend announces "common.complete" to screen readers after each event, a key gradio's English lacks.
TRANSLATIONS = gr.I18n(en={"common.complete": "Done"})
#: Height of the photo box in CSS pixels: tiny, panoramic and tall photos are fitted inside it, never resize it.
PHOTO_HEIGHT = 360
#: Widest shown tile of the Explain tab's images, in CSS pixels (their crops are 256 x 256).
TILE = 320
CAM_TITLE = ("<p>Where the face recognizer looked when matching this face to each identity it finds most alike "
             "(<b>H</b>, Grad-CAM of look-alike <b>c_i</b>, paper Eq. 1-2), and where it looks after the distraction "
             "(<b>Ĥ</b>, Eq. 5). One colour scale for both:</p>")
STRUCTURE_TITLE = ("<p>The face's shape: its 68 landmarks (<b>S_x</b>), the shape borrowed from a bank face "
                   "(<b>S̄</b>), the new face's shape (<b>Ŝ_x</b>) and the map the generator draws it from "
                   "(<b>Z_g</b>).</p>")
HEADER = ("# Replace every face in a photo with a stranger\n"
          "Upload a photo or pick an example. Each face is replaced by a made-up face that keeps the pose, expression "
          "and background but is no longer the person: a blend of several faces of the face bank (public-domain "
          "portraits), kept only when a face recognizer matches it neither to the person nor to anyone in the bank. "
          "A face that cannot be replaced safely (too small, turned away, or still too similar) is obscured instead, "
          "and the result says which and why.\n\n"
          '<p class="anon-fine">The method: Kuang et al., <i>Facial Identity Anonymization via Intrinsic and Extrinsic '
          "Attention Distraction</i>, CVPR 2024; the Explain and Source faces tabs show its steps with the paper's "
          "symbols.</p>\n\n" + PRIVACY)
STUDY_NOTICE = "Preparing the questions (once): every method anonymizes the example photos first."


def user_error(message: str) -> gr.Error:
    """The error a visitor reads for their own mistake; logged as one line, without a traceback (no server fault)."""
    print(f"anon_model app: visitor told: {message}", file=sys.stderr, flush=True)
    return gr.Error(message, print_exception=False)


class _UploadGone:
    """What the photo input gives when a browser re-sends an upload the server has already deleted."""


UPLOAD_GONE = _UploadGone()
#: Size -> content digests of the bundled example photos and clips: gradio's copies of them are public and stay for the
#: Examples rows (an upload is hashed only when its size matches one, so most uploads are read once).
_EXAMPLE_DIGESTS: dict[int, set[str]] = {}
for _example in [*EXAMPLES, *EXAMPLE_CLIPS]:
    _EXAMPLE_DIGESTS.setdefault(_example.stat().st_size, set()).add(hashlib.sha256(_example.read_bytes()).hexdigest())


def private_upload(image: gr.Image) -> gr.Image:
    """Read each upload ourselves and delete it from gradio's cache at once: no upload outlives its response.

    The photo's size is checked from its header before any pixel is decoded, and a bad upload (not an image,
    truncated, too large) gets one plain sentence. A browser still showing the photo re-sends the deleted path on
    its next click; the input then gives ``UPLOAD_GONE`` and the handlers reuse the visitor's in-memory result.
    Replaces the instance's preprocess rather than subclassing (gradio writes a .pyi stub beside any subclass).
    """

    def read_then_delete(payload: gr.FileData | None) -> np.ndarray | _UploadGone | None:
        if payload is None:
            return None
        if not payload.path or (payload.url or "").startswith("data:"):
            raise user_error("Send the photo as an uploaded file, not inline data.")
        path = Path(payload.path)
        if not path.is_file():
            return UPLOAD_GONE
        try:
            return private.read_photo(path, max_pixels=MAX_PIXELS)
        except private.PhotoRefused as err:
            raise user_error(str(err)) from None
        finally:
            _delete_upload(path)

    image.preprocess = read_then_delete
    return image


def whole_cached_images() -> None:
    """Cache each output image once, whole: gradio names the file by a hash of its bytes and rewrote it in place
    whenever the same image was returned again (a delegate's thumbnail in the next run), so a browser still fetching
    it got a file cut short or grown mid-response (the server logged h11's "Too much data for declared
    Content-Length"). Same bytes, same name: a file already there is kept and touched (``delete_cache`` ages files
    by it), a new one is written beside it and renamed into place."""
    from gradio import processing_utils

    def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
        data = processing_utils.encode_pil_to_bytes(img, format)
        folder = Path(cache_dir) / processing_utils.hash_bytes(data)
        folder.mkdir(exist_ok=True, parents=True)
        path = (folder / f"{name}.{format}").resolve()
        if path.exists():
            with contextlib.suppress(OSError):
                os.utime(path)
        else:
            with atomic_write(path) as fh:
                fh.write(data)
        return str(path)

    processing_utils.save_pil_to_cache = save_pil_to_cache  # save_img_array_to_cache calls it too


def unique_upload_folders() -> None:
    """Give every upload a folder of its own: gradio names it by a hash of the content, so two visitors sending
    the same photo at once shared one file, and the first request's delete left the second without it."""
    from gradio import route_utils

    init = route_utils.GradioUploadFile.__init__

    def salted(self, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        self.sha.update(secrets.token_bytes(16))

    route_utils.GradioUploadFile.__init__ = salted


def _delete_upload(path: Path) -> None:
    """Remove an uploaded file (and its folder, if now empty) when it lies in gradio's cache and is no example."""
    cache = Path(gr.utils.get_upload_folder()).resolve()
    path = path.resolve()
    if cache not in path.parents or not path.is_file():
        return
    digests = _EXAMPLE_DIGESTS.get(path.stat().st_size)
    if digests and hashlib.sha256(path.read_bytes()).hexdigest() in digests:
        return
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


@functools.cache
def pipeline():
    """The shared pipeline: $ANON_MODEL_ID if set (trained generator), else the built-in offline default, on CUDA when
    available; $ANON_BANK (a bank folder or Hub id from `anon-model bank build`) replaces its delegate bank."""
    return anon_model.AnonPipeline.from_pretrained(os.environ.get("ANON_MODEL_ID") or None,
                                                   bank=os.environ.get("ANON_BANK") or None)


@functools.cache
def baselines() -> dict[str, compare.Method]:
    """The Compare tab's other methods (blur, pixelation, ...) from the evaluation package."""
    return compare.available_methods()


@functools.cache
def study_pool() -> study.StudyPool:
    """User-study questions from the bundled public-domain photos (identity = file name without digits)."""
    photos = {p.stem: (p.stem.rstrip("0123456789"), load_image(p)) for p in EXAMPLES}
    return study.StudyPool(photos, anonymize=lambda rgb: run_pipeline(pipeline(), rgb, RunOptions()),
                           methods=baselines(), bank=pipeline().bank)


# ---------------------------------------------------------------------------------------------- handlers
def _result(photo, options: RunOptions, session: dict | None, keep: list | None = None,
            keep_faces: tuple[int, ...] = ()) -> dict:
    """The pipeline's output for this photo and these settings (reused from the session when unchanged); ``keep``:
    the references of the people to leave as they are (None: the session's); ``keep_faces``: the faces the visitor
    ticked to keep (0-based)."""
    if photo is None:
        raise user_error("Upload a photo first (or pick an example).")
    if photo is UPLOAD_GONE and (session or {}).get("rgb") is None:
        raise user_error("For privacy, uploads are deleted from the server once read: please upload the photo again.")
    try:
        rgb = session["rgb"] if photo is UPLOAD_GONE else photo
        keep = (session or {}).get("keep", []) if keep is None else keep
        key = options.key(rgb, keep, keep_faces)
        if session and session.get("key") == key:
            return session
        return {"key": key, "rgb": rgb, "keep": keep, "keep_faces": keep_faces,
                "out": run_pipeline(pipeline(), rgb, options, keep, keep_faces)}
    except AnonModelError as err:
        raise user_error(str(err)) from None


def _face_index(session: dict, face: float | None) -> int:
    """The 0-based index of face number ``face`` (1-based, as on the boxes)."""
    count = len(session["out"].faces)
    if not count:
        raise user_error("No face was found in this photo, so there is nothing to show here.")
    index = int(face or 1) - 1
    if not 0 <= index < count:
        raise user_error(f"There is no face {index + 1}: this photo has {count}.")
    return index


def anonymize(photo, seed, k_top, epsilon, k_neighbors, use_ifa, use_vaa, use_gsa, session):
    """Anonymize every face but those of the people to keep (``remember_keep``); returns the photo, the before/after
    slider (inline HTML), the boxed result, a summary in plain words (which faces were kept and why) and the figures
    behind it (distances and limits)."""
    return _shown(_result(photo, RunOptions(seed, k_top, epsilon, k_neighbors, use_ifa, use_vaa, use_gsa), session))


def choose_faces(chosen, photo, seed, k_top, epsilon, k_neighbors, use_ifa, use_vaa, use_gsa, session):
    """The photo again with the faces ticked in ``chosen`` ("Face 2", ...) kept as they are: the visitor's choice."""
    faces = tuple(sorted(int(label.split()[-1]) - 1 for label in chosen or []))
    options = RunOptions(seed, k_top, epsilon, k_neighbors, use_ifa, use_vaa, use_gsa)
    return _shown(_result(photo, options, session, keep_faces=faces))


def _shown(session: dict) -> tuple:
    """What a run shows: the photo, the before/after slider (inline HTML), the boxed result, the summary, the
    figures, and the session."""
    out = session["out"]
    if not out.faces:
        gr.Warning("No face found in this photo: it is returned unchanged.")
    return (out.image, inline.slider_html(session["rgb"], out.image), views.boxed_result(out), views.summary(out),
            views.figures(out, pipeline().bank.sources), session)


def face_toggles(session: dict | None):
    """One keep toggle per face of the shown result ("Face 1", ... as on the boxes), ticked where it was kept by
    choice."""
    count = len(session["out"].faces) if session and "out" in session else 0
    labels = [f"Face {i + 1}" for i in range(count)]
    return gr.CheckboxGroup(choices=labels, value=[labels[i] for i in (session or {}).get("keep_faces", ())],
                            visible=count > 0)


def remember_keep(keep_photos, session):
    """The people to keep in this visitor's next runs, from their uploaded reference photos (one person each; read,
    then deleted): a line saying whom, and the session holding their embeddings (never the photos)."""
    references = _references(keep_photos)
    session = {**(session or {}), "keep": references}
    if not references:
        return "", session
    return (f"Keeping {wording.count(len(references), 'person', 'people')} as they are in your next runs: "
            + ", ".join(r.name for r in references) + "."), session


def _references(paths: list | None) -> list:
    """The people to keep from uploaded reference photos (each read, then deleted from gradio's cache); a photo with
    no face or several faces is a plain error naming it."""
    references = []
    for raw in paths or []:
        path = Path(getattr(raw, "path", raw))
        try:
            reference = pipeline().reference(private.read_photo(path, max_pixels=MAX_PIXELS))[0]
            references.append(dataclasses.replace(reference, name=path.name))
        except (private.PhotoRefused, AnonModelError) as err:
            raise user_error(f"Reference photo {path.name}: {str(err).removeprefix('reference 1: ')}") from None
        finally:
            _delete_upload(path)
    return references


def face_choice(session: dict | None):
    """Reset the face number to 1 and bound it by the number of faces found."""
    count = len(session["out"].faces) if session else 0
    return gr.Number(value=1, maximum=max(1, count), interactive=count > 1)


def explain_view(session: dict, face):
    """The Explain tab for one face: CAM overlays H / H-hat with their colour scale, the landmark sets and Z_g, the
    score table, and first what the face got (an obscured face is said to be so, with why)."""
    if session is None or not session["out"].faces:
        return "", "", "", "No face to explain."
    index = _face_index(session, face)
    record = session["out"].faces[index]
    cams = views.cam_gallery(record)
    cam_html = (CAM_TITLE + inline.legend_html(render.colorbar(), "0: ignored", "1: looked at most")
                + inline.gallery_html(cams, columns=2, tile=TILE)) if cams else ""
    structure = STRUCTURE_TITLE + inline.gallery_html(views.structure_gallery(record), columns=3, tile=TILE)
    return (cam_html, structure, views.explain_table(record, pipeline().bank.sources) if cams else "",
            views.face_status(record, index + 1))


def explain(photo, face, seed, k_top, epsilon, k_neighbors, use_ifa, use_vaa, use_gsa, session):
    """Explain one face of ``photo`` (runs the pipeline unless the session already holds this result)."""
    session = _result(photo, RunOptions(seed, k_top, epsilon, k_neighbors, use_ifa, use_vaa, use_gsa), session)
    return (*explain_view(session, face), session)


def delegates_view(session: dict, face):
    """The Source faces tab for one face: what it got, the appearance delegate Z_a (the mix and its weighted sources),
    and the appearance and geometry candidates with their probabilities."""
    if session is None or not session["out"].faces:
        return [], [], "No face, so no delegates.", []
    index = _face_index(session, face)
    record, bank = session["out"].faces[index], pipeline().bank
    status = views.face_status(record, index + 1)
    if record.cam is None:  # step 2 did not run: nothing was drawn
        return [], [], status, []
    return (views.appearance_gallery(record, bank), views.geometry_gallery(record, bank),
            f"{status}\n\n{views.delegate_note(record)}", views.mixture_gallery(record, bank))


def delegates_shown(session: dict | None, face):
    """Hide the Source faces tab's galleries that have nothing to show (no step 2, VAA or GSA off) instead of empty boxes."""
    record = session["out"].faces[_face_index(session, face)] if session and session["out"].faces else None
    if record is None or record.cam is None:  # no face, or step 2 did not run for it
        return gr.Gallery(visible=False), gr.Gallery(visible=False), gr.Gallery(visible=False)
    drawn = (record.delegates, record.geometry_candidates, record.delegate_mixture)
    return tuple(gr.Gallery(visible=bool(items)) for items in drawn)


def delegates(photo, face, seed, k_top, epsilon, k_neighbors, use_ifa, use_vaa, use_gsa, session):
    """Delegates of one face of ``photo`` (runs the pipeline unless the session already holds this result)."""
    session = _result(photo, RunOptions(seed, k_top, epsilon, k_neighbors, use_ifa, use_vaa, use_gsa), session)
    return (*delegates_view(session, face), session)


def compare_methods(photo, face, seed, k_top, epsilon, k_neighbors, use_ifa, use_vaa, use_gsa, session):
    """Original, ours and the baselines side by side, with identity distances per face."""
    session = _result(photo, RunOptions(seed, k_top, epsilon, k_neighbors, use_ifa, use_vaa, use_gsa), session)
    bank, out = pipeline().bank, session["out"]
    results = compare.compare(bank, session["rgb"], out, baselines())
    limits = [wording.original_limit(f) for f in out.faces]
    crops = compare.compare_gallery(results, limits=limits, face=_face_index(session, face)) if out.faces else []
    return ("<h4>The whole photo, per method</h4>"
            + inline.gallery_html(compare.compare_gallery(results, limits=limits), columns=3),
            "<h4>The chosen face, per method</h4>" + inline.gallery_html(crops, columns=5),
            views.compare_note(out, bank.embedder_name), session)


def next_question(participant):
    """Draw a random user-study question."""
    if study_pool.cache_info().currsize == 0:
        gr.Info(STUDY_NOTICE)
    try:
        item = study_pool().item(np.random.default_rng())
    except (AnonModelError, ValueError) as err:
        raise gr.Error(f"The user study cannot start: {err}") from None
    prompt = ("**Q1. Are the two faces from the same person?**" if item.question == "Q1" else
              "**Q2. Does the person on the left appear among the retrieved faces?** Pick its number, or "
              "'Not appear'.")
    refs = [(r, f"{i + 1}" if item.question == "Q2" else "another photo") for i, r in enumerate(item.references)]
    return (item, participant or secrets.token_hex(6), item.query, refs, prompt,
            gr.Radio(choices=item.choices, value=None, interactive=True))


def submit_answer(item, participant, answer):
    """Record the answer (no image), close the question so it counts once, and refresh the rates."""
    if item is None or not answer:
        raise user_error("Draw a question and choose an answer first.")
    log = study.StudyLog(STUDY_CSV)
    log.record(item, answer, participant=participant)
    gr.Info("Answer recorded. Draw the next question.")
    return None, gr.Radio(interactive=False), study.rates_markdown(log.rates())


def anonymize_video(clip, seed, k_top, epsilon, k_neighbors, use_ifa, use_vaa, use_gsa,
                    progress=gr.Progress(track_tqdm=True)):
    """Anonymize a short clip (refused from its header when over the limits): the clip and a per-person summary. The
    upload is deleted once processed; the result is written in gradio's cache, which removes it like photo results."""
    if not clip:
        raise user_error("Upload a clip first.")
    try:
        if not Path(clip).is_file():
            raise user_error("For privacy, uploads are deleted from the server once processed: please upload the clip "
                           "again.")
        out, info = video_tab.anonymize_clip(pipeline(), clip, gr.utils.get_upload_folder(), RunOptions(
            seed, k_top, epsilon, k_neighbors, use_ifa, use_vaa, use_gsa))
    except (video_tab.ClipRefused, AnonModelError) as err:
        raise user_error(str(err)) from None
    finally:
        _delete_upload(Path(clip))
    return str(out.path), video_tab.summary(out, info)


def new_seed() -> int:
    """A fresh seed for re-sampling the delegates."""
    return secrets.randbelow(2**31)


# ---------------------------------------------------------------------------------------------- layout
def _gallery(label: str, *, columns: int, **kwargs) -> gr.Gallery:
    """An output gallery of square tiles with their captions under them (not over the image)."""
    return gr.Gallery(label=label, columns=columns, fit_columns=False, height="auto", object_fit="contain",
                      interactive=False, elem_classes=["anon-tiles", "anon-labelled"], **kwargs)


def _inline(label: str, **kwargs) -> gr.HTML:
    """An output that shows images of the visitor's original inline (``anon_model.ui.inline``), never as files; its
    titles are part of its HTML (a gr.HTML shows no label)."""
    return gr.HTML(label=label, js_on_load=None, **kwargs)


def build_demo() -> gr.Blocks:
    """The five tabs and their events; every pipeline event shares one concurrency slot."""
    with gr.Blocks(title="anon_model: face anonymization", delete_cache=(min(60, CACHE_SECONDS), CACHE_SECONDS)) as demo:
        session = gr.State(None, time_to_live=SESSION_SECONDS)
        gr.Markdown(HEADER)
        with gr.Row():
            with gr.Column(scale=1):
                photo = private_upload(gr.Image(label="Photo", type="numpy", elem_id="photo", height=PHOTO_HEIGHT,
                                                 sources=["upload", "webcam", "clipboard"]))
                with gr.Accordion("Settings", open=False):
                    k_top = gr.Slider(1, 5, value=3, step=1, label="Look-alikes to distract the recognizer from",
                                      info="K: the top-K identity classes whose attention is distracted (IFA, Eq. 5)")
                    epsilon = gr.Slider(0.1, 10.0, value=1.0, step=0.1,
                                        label="Privacy budget: lower picks the source faces more at random",
                                        info="ε of the instance-level probabilistic sampling (IPD, Eq. 6)")
                    k_neighbors = gr.Slider(2, 50, value=10, step=1, info="k: neighbours in the delegate set M_q (VAA)",
                                            label="Similar bank faces to pick the sources from")
                    seed = gr.Number(0, precision=0, label="Random seed (another value gives another stranger)")
                    use_ifa = gr.Checkbox(True, label="Distract the recognizer", info="IFA, paper §3.1")
                    use_vaa = gr.Checkbox(True, label="Borrow the look of bank faces", info="VAA, paper §3.2")
                    use_gsa = gr.Checkbox(True, label="Borrow the shape of a bank face", info="GSA, paper §3.2")
                keep_photos = gr.File(label="Keep these people (optional): one photo of each, one face per photo",
                                      file_count="multiple", file_types=["image"], type="filepath",
                                      elem_id="keep-photos")
                keep_status = gr.Markdown(elem_id="keep-status")
                keep_faces = gr.CheckboxGroup(label="Keep these faces as they are (numbers as on the boxes)",
                                              visible=False, elem_id="keep-faces")
                run = gr.Button("Anonymize", variant="primary", elem_id="run")
                gr.Examples([[str(p)] for p in EXAMPLES], inputs=[photo], cache_examples=False)
            with gr.Column(scale=2):
                face = gr.Number(1, precision=0, minimum=1, label="Face (its number on the boxes)")
                with gr.Tabs():
                    with gr.Tab("Anonymize"):
                        status = gr.Markdown(elem_id="status")
                        with gr.Accordion("The figures behind this: distances and limits", open=False,
                                          elem_id="figures-box"):
                            figures = gr.Markdown(elem_id="figures")
                        slider = gr.HTML(label="Before / after (drag)", js_on_load=inline.SLIDER_JS, elem_id="slider")
                        with gr.Accordion("Anonymized photo, full size (download)", open=False):
                            result = gr.Image(label="Anonymized", type="pil", format="png", interactive=False,
                                              buttons=["download", "fullscreen"], elem_id="result")
                        boxed = gr.Image(label="Faces found", type="numpy", format="jpeg", interactive=False,
                                         buttons=["fullscreen"], height=360, elem_id="boxed")
                    with gr.Tab("Explain"):
                        explain_btn = gr.Button("Explain this face")
                        explain_note = gr.Markdown(elem_id="explain-note")
                        cams = _inline("Where the recognizer looked, before and after the distraction", elem_id="cams")
                        structure = _inline("The face's shape")
                        scores = gr.Markdown(elem_id="scores")
                    with gr.Tab("Source faces"):
                        with gr.Row():
                            delegates_btn = gr.Button("Show the source faces")
                            resample = gr.Button("Draw other source faces (new seed)")
                        delegate_note = gr.Markdown(elem_id="delegate-note")
                        mixture = _gallery("The blend the new face takes its look from, and the bank faces in it (Z_a)",
                                           columns=4, elem_id="mixture")
                        appearance = _gallery("Bank faces most like this one, and their chance of being drawn "
                                              "(VAA, u_a)", columns=5, elem_id="appearance")
                        geometry = _gallery("Bank faces with the same head pose, for the shape (GSA, u_g)", columns=5,
                                            elem_id="geometry")
                    with gr.Tab("Compare"):
                        compare_btn = gr.Button("Compare methods")
                        photos = _inline("Whole photo per method", elem_id="compare-photos")
                        face_crops = _inline("The selected face per method", elem_id="compare-faces")
                        compare_note = gr.Markdown(elem_id="compare-note")
                        with gr.Accordion("Quiz: can you still tell who it is? (the paper's user study, Fig. 10)",
                                          open=False):
                            item, participant = gr.State(None), gr.State(None)
                            question_btn = gr.Button("Next question")
                            prompt = gr.Markdown()
                            with gr.Row():
                                query = gr.Image(label="Anonymized face", interactive=False, format="jpeg",
                                                 buttons=[], height=256, scale=1, elem_id="study-query",
                                                 elem_classes="anon-labelled")
                                references = _gallery("Compared with", columns=5, scale=4)
                            answer = gr.Radio([], label="Your answer", interactive=True)
                            submit = gr.Button("Submit answer")
                            rates = gr.Markdown()
                    with gr.Tab("Video"):
                        gr.Markdown(video_tab.NOTE)
                        clip = gr.Video(label="Clip", sources=["upload"], elem_id="clip")
                        clip_btn = gr.Button("Anonymize the clip", variant="primary")
                        if EXAMPLE_CLIPS:
                            gr.Examples([[str(p)] for p in EXAMPLE_CLIPS], inputs=[clip], cache_examples=False)
                        clip_result = gr.Video(label="Anonymized clip", interactive=False, elem_id="clip-result")
                        clip_summary = gr.Markdown(elem_id="clip-summary")

        options = [seed, k_top, epsilon, k_neighbors, use_ifa, use_vaa, use_gsa]
        shared = dict(concurrency_id="pipeline", concurrency_limit=CONCURRENCY)
        private = dict(api_visibility="private", queue=False)
        anon_outputs = [result, slider, boxed, status, figures, session]
        explain_outputs = [cams, structure, scores, explain_note]
        delegate_outputs = [appearance, geometry, delegate_note, mixture]

        def shown(event):
            """After the Source faces tab was filled, hide its galleries that have nothing to show."""
            return event.then(delegates_shown, [session, face], [appearance, geometry, mixture], **private)

        def views_of(event):
            """After a new result or face choice, fill the explain and delegates tabs from the session."""
            return shown(event.then(face_choice, session, face, **private)
                         .then(face_toggles, session, keep_faces, **private)
                         .then(explain_view, [session, face], explain_outputs, **private)
                         .then(delegates_view, [session, face], delegate_outputs, **private))

        keep_photos.change(remember_keep, [keep_photos, session], [keep_status, session], api_name="keep", **shared)
        views_of(run.click(anonymize, [photo, *options, session], anon_outputs, api_name="anonymize", **shared))
        views_of(keep_faces.input(choose_faces, [keep_faces, photo, *options, session], anon_outputs,
                                  api_visibility="private", **shared))
        views_of(resample.click(new_seed, None, seed, **private)
                 .then(anonymize, [photo, *options, session], anon_outputs, api_visibility="private", **shared))
        shown(face.input(explain_view, [session, face], explain_outputs, **private).then(
            delegates_view, [session, face], delegate_outputs, **private))
        explain_btn.click(explain, [photo, face, *options, session], [*explain_outputs, session],
                          api_name="explain", **shared)
        shown(delegates_btn.click(delegates, [photo, face, *options, session], [*delegate_outputs, session],
                                  api_name="delegates", **shared))
        compare_btn.click(compare_methods, [photo, face, *options, session],
                          [photos, face_crops, compare_note, session], api_name="compare", **shared)
        question_btn.click(next_question, participant, [item, participant, query, references, prompt, answer],
                           api_visibility="private", **shared)
        clip_btn.click(anonymize_video, [clip, *options], [clip_result, clip_summary], api_name="anonymize_video",
                       **shared)
        submit.click(submit_answer, [item, participant, answer], [item, answer, rates], api_visibility="private")
        demo.load(lambda: study.rates_markdown(study.StudyLog(STUDY_CSV).rates()), None, rates, **private)
    return demo


def main() -> None:
    """Serve from a temp folder of this process's own (gone when it stops), with a queue of QUEUE_SIZE visitors."""
    os.environ["GRADIO_TEMP_DIR"] = str(private.process_temp_dir(os.environ.get("GRADIO_TEMP_DIR")))
    unique_upload_folders()
    whole_cached_images()
    print(f"anon_model app: step 2 = {pipeline().step2_name}", flush=True)
    demo = build_demo()
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", 7860)), max_file_size=MAX_FILE_SIZE,
                theme=gr.themes.Soft(), css=CSS, footer_links=["api"], i18n=TRANSLATIONS)


if __name__ == "__main__":
    main()
