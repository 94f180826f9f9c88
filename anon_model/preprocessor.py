"""AnonPreprocessor, step 1 of the paper's two steps: photo -> per-face conditioning (Z_id, Z_a, Z_g) + explanations.

It owns perception (``analyzer``), the identity network Psi with IFA (§3.1) and the VCA draws (§3.2); the delegate
bank is a separate pipeline component passed in at call time. ``AnonPipeline.__call__`` calls its stages in order
(perceive, ``explain``, ``bank_queries``, ``draw_delegates``). Its settings live in ``PreprocessorConfig`` and are
saved as ``config.json``; any of them can be overridden for one call (``resolve``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from anon_model.attributes import AgeGenderEstimator, FaceAttributes, optional_estimator, skin_tone
from anon_model.bank import DelegateBank
from anon_model.bank.calibrate import calibrate_intrusion
from anon_model.conditioning import FaceConditioning, face_conditioning
from anon_model.guard import GIVE_UP_ROOM
from anon_model.identity import load_identity_network
from anon_model.identity.codebook import IdentityCodebook
from anon_model.ifa import IdentityFeatureAnonymizer, IFAResult, has_class_head
from anon_model.perception import Face, FaceAnalyzer
from anon_model.perception.detect import MIN_SCORE
from anon_model.vca import (RECOVER, AppearanceDelegate, DelegateDraw, GeometryDelegate, geometry_structure_anonymization,
                            refit_geometry, visual_appearance_anonymization)

CONFIG_FILE = "config.json"
DELEGATE_SAMPLING = ("ipd", "random", "farthest")


@dataclass
class PreprocessorConfig:
    """Step-1 settings; the defaults are the paper's where it gives one (K 2-4, k-NN delegates, IPD with u_a / u_g)."""

    detector: str = "auto"  # mtcnn | centerface | mtcnn+centerface | sfd | auto (perception/detect.py)
    landmarks: str = "auto"  # dlib | fan | auto
    detect_threshold: float = MIN_SCORE  # detector confidence that counts as a face (0.9; lower: more recall, more false
    # alarms)
    max_faces: int | None = None  # None: every face; a set limit drops the smallest beyond it, with a warning
    identity: str = "dlib"  # Psi: dlib (offline port) | facenet (the paper's) | a local path
    k_top: int = 3  # K of Eq. 5
    ifa_weights: str = "scores"  # w_i of Eq. 5: scores | uniform | ones
    epsilon: float = 1.0  # privacy budget of Eq. 6
    k_neighbors: int = 10  # |M_q| for VAA and GSA
    pose_tolerance: float = 10.0  # degrees, per axis, for GSA's same-pose candidates (doubled while too few)
    use_ifa: bool = True  # ablation switches (paper Table 4)
    use_vaa: bool = True
    use_gsa: bool = True
    delegate_sampling: str = "ipd"  # paper Table 5: ipd | random (uniform over all) | farthest (uniform over k farthest)
    delegate_mixture: int = 2  # VAA mixes this many bank identities (k-same-M style; 1 = the paper's single delegate)
    match_attributes: bool = True  # VAA and GSA draw delegates of x's perceived gender, age bracket and skin tone
    delegate_distance: float = 0.9  # VAA's candidates are at least this far from x in the bank's space (our departure;
    # tune portraits, seeds 0-2: 0.8 -> 70, 71, 67 of 80 anonymized in 304, 311, 326 tries; 0.9 -> 71, 70, 71 in 269,
    # 263, 291; 1.0 -> 69 in 289 with seed 0)
    recover: str = "expression"  # what S-hat_x keeps of S_x: expression (our default) | contour_and_mouth (paper)
    geometry_push: float = 0.5  # GSA's S-bar pushed this far beyond itself away from S_x at the guard's last try
    use_u_a: bool = True  # without u_a / u_g the draw is uniform (paper Table 6)
    use_u_g: bool = True
    guard_attempts: int = 12  # the identity guard: at most this many tries per face (tune portraits: 8 -> 65, 69 of 80
    # anonymized with seeds 0, 1; 12 -> 70, 71; 16 -> 69, 71)
    guard_give_up: float = GIVE_UP_ROOM  # after GIVE_UP_AFTER tries, a face whose best try is still farther than
    # this within a limit gets no more (it is obscured); inf: every face gets all its tries

    def validate(self) -> None:
        """Reject values no stage understands (a typo would otherwise silently run the default)."""
        if self.delegate_sampling not in DELEGATE_SAMPLING:
            raise ValueError(f"delegate_sampling must be one of {', '.join(DELEGATE_SAMPLING)}, "
                             f"not {self.delegate_sampling!r}")
        if min(self.k_top, self.k_neighbors, self.guard_attempts, self.delegate_mixture) < 1:
            raise ValueError("k_top, k_neighbors, guard_attempts and delegate_mixture must be at least 1")
        if self.recover not in RECOVER:
            raise ValueError(f"recover must be one of {', '.join(RECOVER)}, not {self.recover!r}")
        if not self.guard_give_up >= 0:
            raise ValueError(f"guard_give_up is a distance within the limits (>= 0; inf: never give up), not "
                             f"{self.guard_give_up}")
        if self.geometry_push < 0:
            raise ValueError(f"geometry_push must be >= 0 (0: S-bar as it is), not {self.geometry_push}")
        if self.epsilon < 0:
            raise ValueError(f"epsilon (the privacy budget) must be >= 0, not {self.epsilon}")
        if not 0 <= self.detect_threshold <= 1:
            raise ValueError(f"detect_threshold is a confidence in [0, 1], not {self.detect_threshold}")
        if self.max_faces is not None and self.max_faces < 1:
            raise ValueError(f"max_faces must be None (no limit) or at least 1, not {self.max_faces}")


class AnonPreprocessor:
    """Step 1's stages for the faces of a photo: perception, IFA and VCA (driven by ``AnonPipeline.__call__``)."""

    def __init__(self, config: PreprocessorConfig | None = None, *, device: str = "cpu", **overrides) -> None:
        self.config = dataclasses.replace(config or PreprocessorConfig(), **overrides)
        self.config.validate()
        self.device = device
        self.analyzer = FaceAnalyzer(detector=self.config.detector, landmarks=self.config.landmarks, device=device)
        self.identity = load_identity_network(self.config.identity, device=device)
        self._bank_features: weakref.WeakKeyDictionary[DelegateBank, torch.Tensor] = weakref.WeakKeyDictionary()

    def to(self, device: str | torch.device) -> "AnonPreprocessor":
        """Run the perception and identity networks on `device` (perception is rebuilt there; caches are dropped)."""
        device = str(torch.device(device))
        if device != self.device:
            self.device = device
            self.analyzer = FaceAnalyzer(detector=self.config.detector, landmarks=self.config.landmarks, device=device)
            self.identity.to(device)
            self._bank_features = weakref.WeakKeyDictionary()
        return self

    @functools.cached_property
    def attribute_estimator(self) -> AgeGenderEstimator | None:
        """The gender/age estimator VAA matches delegates with (None, with a warning, when it cannot be loaded)."""
        return optional_estimator("delegates are drawn without matching gender and age")

    def face_attributes(self, faces: list[Face], *, config: PreprocessorConfig) -> list[FaceAttributes | None]:
        """Each x's estimated gender and age, from its aligned crop as bank faces were estimated, once per face for
        all its draws (None: matching off, no appearance draw, or no estimator)."""
        estimator = self.attribute_estimator if (config.match_attributes and config.use_vaa) else None
        return [None if estimator is None else estimator(f.crop, [f.crop_landmarks])[0] for f in faces]

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write `config.json` (the perception and identity backends are named there, not copied)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(self.config), indent=2))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, *, device: str = "cpu") -> "AnonPreprocessor":
        """Read a folder written by `save_pretrained` (unknown keys are an error, not silently dropped)."""
        values = json.loads((Path(directory) / CONFIG_FILE).read_text())
        return cls(PreprocessorConfig(**values), device=device)

    # ------------------------------------------------------------------ step 1, stage by stage
    def resolve(self, **overrides) -> PreprocessorConfig:
        """This preprocessor's config with the given fields replaced (None keeps the saved value)."""
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(PreprocessorConfig)})
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(unknown)}: not a field of PreprocessorConfig")
        cfg = dataclasses.replace(self.config, **{k: v for k, v in overrides.items() if v is not None})
        cfg.validate()
        return cfg

    def explain(self, faces: list[Face], *, bank: DelegateBank, config: PreprocessorConfig) -> list[IFAResult]:
        """IFA (§3.1) for a batch of faces: top-K classes, H and H-hat, f_x and the recast Z_id."""
        crops = torch.from_numpy(np.stack([f.crop for f in faces])).permute(0, 3, 1, 2).float().div(255.0)
        landmarks = torch.from_numpy(np.stack([f.crop_landmarks for f in faces])).float()
        ifa = IdentityFeatureAnonymizer(self.identity, codebook=self.codebook(bank), k_top=config.k_top,
                                        weights=config.ifa_weights)
        return ifa(crops.to(self.device), landmarks=landmarks.to(self.device))

    def codebook(self, bank: DelegateBank) -> IdentityCodebook | None:
        """IFA's classes: None when Psi has its own (FaceNet's VGGFace2 head, as in training); else the bank's
        identities as prototypes in Psi's space."""
        if has_class_head(self.identity):
            return None
        return IdentityCodebook(self.bank_features(bank), names=bank.sources)

    def bank_features(self, bank: DelegateBank) -> torch.Tensor:
        """Psi's features (N,D) of the bank's faces (the bank's own when it shares Psi's space), computed once per
        bank: IFA's codebook, and the identities the guard keeps every result away from."""
        if bank not in self._bank_features:
            if bank.shares_space(self.identity):
                self._bank_features[bank] = bank.embeddings.to(self.device)
            else:
                self._bank_features[bank] = torch.cat([self._embed_bank(bank, list(range(i, min(i + 32, len(bank)))))
                                                       for i in range(0, len(bank), 32)])
        return self._bank_features[bank]

    def intrusion_limit(self, bank: DelegateBank) -> float:
        """The bank's calibrated "no one is put in" limit in Psi's space: the bank's own when it shares Psi's space,
        else calibrated on Psi's features of its faces."""
        if bank.shares_space(self.identity):
            return bank.intrusion.limit
        return calibrate_intrusion(self.bank_features(bank).cpu(), bank.identities(),
                                   fallback=float(self.identity.threshold)).limit

    def _embed_bank(self, bank: DelegateBank, indices: list[int]) -> torch.Tensor:
        """Psi's features of some bank faces (a batch)."""
        crops = torch.from_numpy(np.stack([bank.crop(i) for i in indices])).permute(0, 3, 1, 2).float().div(255.0)
        with torch.inference_mode():
            return self.identity.embed(crops.to(self.device),
                                       landmarks=bank.crop_landmarks(indices).float().to(self.device)).float()

    def bank_queries(self, faces: list[Face], explained: list[IFAResult], *, bank: DelegateBank) -> torch.Tensor:
        """x's features (B,D) in the bank's k-NN space (Psi's own, from IFA, when the bank shares Psi's space)."""
        if bank.shares_space(self.identity):
            return torch.stack([r.feature.detach().float().cpu() for r in explained])
        return bank.embed(np.stack([f.crop for f in faces]), np.stack([f.crop_landmarks for f in faces]))

    def draw_delegates(self, face: Face, explained: IFAResult, query: torch.Tensor, *, bank: DelegateBank,
                       attributes: FaceAttributes | None, generator: torch.Generator, config: PreprocessorConfig,
                       reuse: DelegateDraw | None = None,
                       effort: float = 0.0) -> tuple[FaceConditioning, DelegateDraw]:
        """VAA and GSA draws (or their ablations) for one face -> its conditioning for step 2 and the delegates drawn,
        to be rendered at the guard's retry ``effort``. ``attributes``: x's, from ``face_attributes``. ``reuse``: an
        earlier draw for the same person (a video track) kept as it is (its effort too), its S-bar refitted to this
        S_x."""
        cfg = config
        if reuse is not None:
            return self._conditioning(face, explained, reuse.appearance,
                                      refit_geometry(reuse.geometry, face.crop_landmarks, bank), cfg, reuse.effort)
        uniform_pool = cfg.delegate_sampling == "random"
        farthest = cfg.delegate_sampling == "farthest"
        k = len(bank) if uniform_pool else cfg.k_neighbors
        ipd = cfg.delegate_sampling == "ipd"
        if cfg.use_vaa:
            appearance = visual_appearance_anonymization(
                query, bank, k=k, farthest=farthest, mixture=cfg.delegate_mixture, attributes=attributes,
                skin_tone=skin_tone(face.crop, face.crop_landmarks) if cfg.match_attributes else None,
                min_distance=cfg.delegate_distance, epsilon=cfg.epsilon if (ipd and cfg.use_u_a) else 0.0,
                generator=generator)
            if cfg.match_attributes and attributes is None:
                appearance.attribute_filter = "none: the gender/age estimator could not be loaded"
        else:  # keep x's own appearance (paper §3.3: "use the facial region of x")
            appearance = AppearanceDelegate(sample=None, crop=face.crop, landmarks=face.crop_landmarks)
        if cfg.use_gsa:
            geometry = geometry_structure_anonymization(
                face.crop_landmarks, face.pose, bank, embedding=query, k=k, farthest=farthest,
                epsilon=cfg.epsilon if (ipd and cfg.use_u_g) else 0.0, attributes=attributes, recover=cfg.recover,
                pose_tolerance=(cfg.pose_tolerance,) * 3, push=cfg.geometry_push * effort, generator=generator)
        else:
            geometry = GeometryDelegate(sample=None, delegate_landmarks=face.crop_landmarks,
                                        anonymized_landmarks=face.crop_landmarks, pose_tolerance=(0.0, 0.0, 0.0))
        return self._conditioning(face, explained, appearance, geometry, cfg, effort)

    @staticmethod
    def _conditioning(face: Face, explained: IFAResult, appearance: AppearanceDelegate, geometry: GeometryDelegate,
                      cfg: PreprocessorConfig, effort: float) -> tuple[FaceConditioning, DelegateDraw]:
        """Step 2's conditioning from the delegates and IFA's Z_id and attention (or x's own, without IFA)."""
        z_id = explained.feature_distracted if cfg.use_ifa else explained.feature
        attention = explained.attention if cfg.use_ifa else torch.ones_like(explained.attention)
        cond = face_conditioning(face, appearance, geometry, z_id=z_id.detach().cpu(), attention=attention.detach().cpu())
        return cond, DelegateDraw(appearance, geometry, effort)
