"""AnonPreprocessor, step 1 of the paper's two steps: photo -> per-face conditioning (Z_id, Z_a, Z_g) + explanations.

It owns perception (FaceAnalyzer), the identity network Psi with IFA (§3.1) and the VCA samplers (§3.2); the
delegate bank is a separate pipeline component passed in at call time. Its settings live in
`PreprocessorConfig` and are saved as `config.json`; any of them can be overridden for one call.
"""

from __future__ import annotations

import dataclasses
import json
import os
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from anon_model.bank import DelegateBank
from anon_model.conditioning import FaceConditioning
from anon_model.identity import load_identity_network
from anon_model.identity.codebook import IdentityCodebook
from anon_model.ifa import IdentityFeatureAnonymizer, IFAResult, has_class_head
from anon_model.output import FaceRecord
from anon_model.perception import Face, FaceAnalyzer
from anon_model.perception.render import landmark_map
from anon_model.synthesis import guarded_synthesis
from anon_model.vca import (AppearanceDelegate, GeometryDelegate, face_conditioning,
                            geometry_structure_anonymization, visual_appearance_anonymization)

CONFIG_FILE = "config.json"
DELEGATE_SAMPLING = ("ipd", "random", "farthest")


@dataclass
class PreprocessorConfig:
    """Step-1 settings; the defaults are the paper's where it gives one (K 2-4, k-NN delegates, IPD with u_a / u_g)."""

    detector: str = "auto"  # mtcnn | sfd | auto
    landmarks: str = "auto"  # dlib | fan | auto
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
    use_u_a: bool = True  # without u_a / u_g the draw is uniform (paper Table 6)
    use_u_g: bool = True
    guard_attempts: int = 4  # identity guard: resynthesize a face still recognized, at most this many tries

    def validate(self) -> None:
        """Reject values no stage understands (a typo would otherwise silently run the default)."""
        if self.delegate_sampling not in DELEGATE_SAMPLING:
            raise ValueError(f"delegate_sampling must be one of {', '.join(DELEGATE_SAMPLING)}, "
                             f"not {self.delegate_sampling!r}")
        if self.k_top < 1 or self.k_neighbors < 1 or self.guard_attempts < 1:
            raise ValueError("k_top, k_neighbors and guard_attempts must be at least 1")
        if self.epsilon < 0:
            raise ValueError(f"epsilon (the privacy budget) must be >= 0, not {self.epsilon}")


class AnonPreprocessor:
    """Runs perception, IFA and VCA for every face of a photo; `synthesize_guarded` then runs step 2 with a guard."""

    def __init__(self, config: PreprocessorConfig | None = None, *, device: str = "cpu", **overrides) -> None:
        self.config = dataclasses.replace(config or PreprocessorConfig(), **overrides)
        self.config.validate()
        self.device = device
        self.analyzer = FaceAnalyzer(detector=self.config.detector, landmarks=self.config.landmarks, device=device)
        self.identity = load_identity_network(self.config.identity, device=device)
        self._codebooks: weakref.WeakKeyDictionary[DelegateBank, IdentityCodebook] = weakref.WeakKeyDictionary()

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

    # ------------------------------------------------------------------ step 1
    def __call__(self, image: np.ndarray, *, bank: DelegateBank, generator: torch.Generator,
                 **overrides) -> list["FacePlan"]:
        """Every face of an RGB uint8 photo with its conditioning and explanation; `overrides` set config fields."""
        cfg = self.resolve(**overrides)
        faces = self.analyzer(image)
        if not faces:
            return []
        explained = self.explain(faces, bank=bank, config=cfg)
        return self.plan(faces, explained, bank=bank, generator=generator, config=cfg)

    def resolve(self, **overrides) -> PreprocessorConfig:
        """This preprocessor's config with the given fields replaced (None keeps the saved value)."""
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

    def plan(self, faces: list[Face], explained: list[IFAResult], *, bank: DelegateBank,
             generator: torch.Generator, config: PreprocessorConfig) -> list["FacePlan"]:
        """VCA (§3.2) for a batch of explained faces: delegate draws, conditioning and record of each."""
        plans = []
        for face, res, emb in zip(faces, explained, self.bank_embeddings(bank, faces, explained)):
            plan = FacePlan(face=face, ifa=res, embedding=emb, config=config)
            self.draw_delegates(plan, bank, generator)
            plans.append(plan)
        return plans

    def synthesize_guarded(self, plans: list["FacePlan"], synthesizer, *, bank: DelegateBank,
                           generator: torch.Generator) -> list[np.ndarray]:
        """Step 2 for every face at once, redrawing delegates for faces the identity network still recognizes.

        Each face keeps the try farthest from its original identity; its record describes that try's delegates.
        """
        records = [[p.record] for p in plans]  # records[i][a]: face i's record at try a + 1

        def resample(i: int, attempt: int) -> FaceConditioning:
            self.draw_delegates(plans[i], bank, generator)
            records[i].append(plans[i].record)
            return plans[i].cond

        originals = torch.stack([p.ifa.feature.detach() for p in plans]).float()
        images, conds, report = guarded_synthesis(
            synthesizer, [p.cond for p in plans], identity=self.identity, resample=resample, originals=originals,
            max_attempts=plans[0].config.guard_attempts, generator=generator)
        crops = []
        for i, plan in enumerate(plans):
            plan.cond, plan.record = conds[i], records[i][int(report.kept[i]) - 1]
            plan.record.identity_distance = float(report.distances[i])
            plan.record.identity_threshold = float(self.identity.threshold)
            plan.record.attempts = int(report.attempts[i])
            crops.append((images[i].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy())
        return crops

    # ------------------------------------------------------------------ stages
    def codebook(self, bank: DelegateBank) -> IdentityCodebook | None:
        """IFA's classes: None when Psi has its own (FaceNet's VGGFace2 head, as in training); else the bank's
        identities as prototypes in Psi's space (computed once per bank)."""
        if has_class_head(self.identity):
            return None
        if bank not in self._codebooks:
            if bank.embedder_name == self.identity.name:
                self._codebooks[bank] = IdentityCodebook(bank.embeddings, names=bank.sources)
            else:
                self._codebooks[bank] = IdentityCodebook.from_bank(self.identity, bank)
        return self._codebooks[bank]

    def bank_embeddings(self, bank: DelegateBank, faces: list[Face], explained: list[IFAResult]) -> torch.Tensor:
        """x's features in the bank's k-NN space (reusing Psi's when the bank was built with the same network)."""
        if bank.embedder_name == self.identity.name:
            return torch.stack([r.feature.detach().float().cpu() for r in explained])
        return bank.embed(np.stack([f.crop for f in faces]), np.stack([f.crop_landmarks for f in faces]))

    def draw_delegates(self, plan: "FacePlan", bank: DelegateBank, generator: torch.Generator) -> None:
        """VAA and GSA draws (or their ablations) for one face, then its conditioning and record."""
        cfg, face = plan.config, plan.face
        uniform_pool = cfg.delegate_sampling == "random"
        farthest = cfg.delegate_sampling == "farthest"
        k = len(bank) if uniform_pool else cfg.k_neighbors
        ipd = cfg.delegate_sampling == "ipd"
        if cfg.use_vaa:
            appearance = visual_appearance_anonymization(
                plan.embedding, bank, k=k, farthest=farthest,
                epsilon=cfg.epsilon if (ipd and cfg.use_u_a) else 0.0, generator=generator)
        else:  # keep x's own appearance (paper §3.3: "use the facial region of x")
            appearance = AppearanceDelegate(sample=None, crop=face.crop, landmarks=face.crop_landmarks)
        if cfg.use_gsa:
            geometry = geometry_structure_anonymization(
                face.crop_landmarks, face.pose, bank, embedding=plan.embedding, k=k, farthest=farthest,
                epsilon=cfg.epsilon if (ipd and cfg.use_u_g) else 0.0,
                pose_tolerance=(cfg.pose_tolerance,) * 3, generator=generator)
        else:
            geometry = GeometryDelegate(sample=None, delegate_landmarks=face.crop_landmarks,
                                        anonymized_landmarks=face.crop_landmarks, pose_tolerance=(0.0, 0.0, 0.0))
        res = plan.ifa
        z_id = res.feature_distracted if cfg.use_ifa else res.feature
        attention = res.attention if cfg.use_ifa else torch.ones_like(res.attention)
        plan.cond = face_conditioning(face, appearance, geometry, z_id=z_id.detach().cpu(),
                                      attention=attention.detach().cpu())
        plan.record = _record(face, res, appearance, geometry, use_ifa=cfg.use_ifa)


@dataclass
class FacePlan:
    """One face between step 1 and step 2: perception, IFA result, bank-space embedding, conditioning, record."""

    face: Face
    ifa: IFAResult
    embedding: torch.Tensor
    config: PreprocessorConfig
    cond: FaceConditioning | None = None
    record: FaceRecord | None = None


def _record(face: Face, res: IFAResult, appearance: AppearanceDelegate, geometry: GeometryDelegate, *,
            use_ifa: bool) -> FaceRecord:
    """The explanation of one face for users (numpy, crop space for maps)."""
    cams = res.cams.detach().cpu()
    scale = cams.amax().clamp_min(1e-12)  # one scale for H and H-hat so they compare
    rec = FaceRecord(
        box=face.box, score=face.score, landmarks=face.landmarks, pose=face.pose, crop=face.crop,
        anonymized=face.crop, landmarks_crop=face.crop_landmarks,
        landmarks_anon_crop=np.asarray(geometry.anonymized_landmarks),
        classes=list(res.class_names), scores_before=res.scores.detach().cpu().numpy(),
        scores_after=res.scores_distracted.detach().cpu().numpy(),
        cam=(cams / scale).clamp(0, 1).numpy(),
        cam_distracted=(res.cams_distracted.detach().cpu() / scale).clamp(0, 1).numpy() if use_ifa else None,
        landmarks_delegate_crop=np.asarray(geometry.delegate_landmarks),
        z_g=landmark_map(np.asarray(geometry.anonymized_landmarks), face.crop.shape[0]),
    )
    if appearance.sample is not None:
        rec.delegates = appearance.sample.candidates.tolist()
        rec.delegate_probs = appearance.sample.probabilities.numpy()
        rec.delegate = appearance.sample.chosen
    if geometry.sample is not None:
        rec.geometry_candidates = geometry.sample.candidates.tolist()
        rec.geometry_probs = geometry.sample.probabilities.numpy()
        rec.geometry_delegate = geometry.sample.chosen
    return rec
