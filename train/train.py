"""Train the conditional generator (paper §3.3-3.4) with accelerate, from one CPU to many GPUs.

    accelerate launch train/train.py --config celebahq --data /data/CelebA-HQ --output runs/celebahq
    python train/train.py --config tiny --data photos/ --output runs/tiny --max-steps 50      # one process

Steps alternate 1:1 between reconstruction (Z_id = f_x -> x-hat) and cycle swap-reconstruction
(Z_id = f_y -> y-hat, then Z_id = f_x on y-hat's appearance and geometry -> x-bar), each with one Adam step of G
on L_All (Eq. 9) and one of D on the hinge loss (Eq. 10). ``OUTPUT/checkpoints/step_N`` hold accelerate states
(``--resume`` continues from the newest); the finished generator goes to ``OUTPUT/pipeline`` as the step-2 model
of an ``AnonPipeline`` folder.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import torch
from torch.utils.data import DataLoader

if __package__ in (None, ""):  # run as a script (accelerate launch train/train.py): make `train` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train.data import CacheSpec, FaceDataset, prepare_cache, step1, write_manifest  # noqa: E402
from train.losses import (  # noqa: E402
    Generated,
    Views,
    VGG19Features,
    adversarial_loss,
    appearance_loss,
    background_loss,
    feature_matching_loss,
    identity_loss,
    perceptual_loss,
    total_loss,
)

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
LOSS_NAMES = ("L1", "L2", "L3", "L4", "L5", "L6")
LOG_COLUMNS = ("step", "branch", *LOSS_NAMES, "L_All", "D")


def load_config(name_or_path: str) -> dict:
    """A training config by name (``train/configs/NAME.json``) or path to a JSON file."""
    path = Path(name_or_path)
    if not path.is_file():
        path = CONFIG_DIR / f"{name_or_path}.json"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
        raise FileNotFoundError(f"no training config {name_or_path!r}: give a JSON path or one of {known}")
    return json.loads(path.read_text())


def schedule_for(cfg: dict, num_processes: int) -> dict:
    """Per-process batch size and total steps for this many processes (the largest listed count not above it)."""
    counts = sorted(int(n) for n in cfg["schedule"])
    fitting = [n for n in counts if n <= num_processes] or counts[:1]
    return cfg["schedule"][str(fitting[-1])]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train anon_model's conditional generator (paper §3.3-3.4).")
    parser.add_argument("--config", required=True, help="config name in train/configs (tiny, celebahq) or a JSON path")
    parser.add_argument("--data", required=True, help="folder of face photos (CelebA-HQ, FFHQ or any layout)")
    parser.add_argument("--output", required=True, help="run folder: checkpoints, logs, cache and the exported pipeline")
    parser.add_argument("--max-steps", type=int, default=None, help="total steps (overrides the config's schedule)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in OUTPUT")
    parser.add_argument("--cache", default=None, help="preprocessing cache folder (default OUTPUT/cache)")
    parser.add_argument("--export-checkpoints", action="store_true",
                        help="also write a loadable pipeline folder inside every checkpoint")
    return parser.parse_args(argv)


class Progress:
    """The training step, saved and restored with accelerate's checkpoints."""

    def __init__(self) -> None:
        self.step = 0

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])


class Trainer:
    """G, D, the frozen loss networks and one training step of the 1:1 reconstruction / cycle-swap alternation."""

    def __init__(self, cfg: dict, accelerator, *, z_id_dim: int) -> None:
        from anon_model.identity import load_identity_network
        from anon_model.models import FaceAnonGenerator, MultiScaleDiscriminator

        self.cfg, self.accelerator = cfg, accelerator
        loss_cfg = cfg["loss"]
        self.lambdas, self.betas = loss_cfg["lambda"], (loss_cfg["beta1"], loss_cfg["beta2"], loss_cfg["beta3"])
        self.notes: list[str] = []
        backend = cfg["data"]["identity_backend"]
        self.generator_kwargs = {**cfg["generator"], "z_id_dim": z_id_dim, "identity_backend": backend}
        generator = FaceAnonGenerator(**self.generator_kwargs, training_config=cfg["name"]).train()
        discriminator = MultiScaleDiscriminator(**cfg["discriminator"]).train()
        opt = cfg["optimizer"]
        opt_g = torch.optim.Adam(generator.parameters(), lr=opt["lr_g"], betas=tuple(opt["betas"]))
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=opt["lr_d"], betas=tuple(opt["betas"]))
        self.G, self.D, self.opt_g, self.opt_d = accelerator.prepare(generator, discriminator, opt_g, opt_d)
        self.identity = load_identity_network(backend, device=accelerator.device).requires_grad_(False)
        self.vgg = self._vgg(loss_cfg["vgg"])

    def _vgg(self, weights: str) -> VGG19Features | None:
        """rho_1's VGG19, or None when the config turns it off; random weights are announced loudly."""
        if weights == "off":
            self.notes.append("rho_1 (VGG19 perceptual loss) disabled by the config")
            return None
        vgg = VGG19Features(weights=weights).to(self.accelerator.device)
        if not vgg.pretrained:
            self.notes.append("rho_1 (VGG19 perceptual loss) used RANDOM weights, not ImageNet's")
        return vgg

    @property
    def generator(self):
        return self.accelerator.unwrap_model(self.G)

    @property
    def discriminator(self):
        return self.accelerator.unwrap_model(self.D)

    def generate(self, batch: dict, *, swap: bool) -> list[dict]:
        """The branch's generated images with their loss weights (see train/losses.py)."""
        if not swap:
            x_hat = self.G(batch["z_id"], batch["z_a"], batch["z_g"])  # x-hat = G(f_x, Z_a(x), Z_g(x))
            return [{"image": x_hat, "id_target": batch["f_id"]}]
        beta1, beta2, beta3 = self.betas
        y_hat = self.G(batch["z_id_y"], batch["z_a"], batch["z_g"])  # y-hat = G(f_y, Z_a(x), Z_g(x))
        # x-bar = G(f_x, Z_a(y-hat), Z_g(y-hat)); y-hat was drawn on S_x, so Z_g(y-hat) = its background + S_x's map
        mask = batch["mask"]
        x_bar = self.G(batch["z_id"], y_hat * mask, torch.cat([y_hat * (1 - mask), batch["structure"]], dim=1))
        return [
            {"image": y_hat, "id_target": batch["f_id_y"], "adv_weight": beta1, "id_weight": beta2,
             "perceptual_weight": beta3},
            {"image": x_bar, "id_target": batch["f_id"]},
        ]

    def views(self, images: torch.Tensor, batch: dict, groups: int) -> list[Views]:
        """Views of ``groups`` stacked batches (x first, then each output) through D, rho_1, rho_2, Psi and E."""
        landmarks, structure, mask = (_repeat(batch[k], groups) for k in ("landmarks", "structure", "mask"))
        id_map = self.identity.features(self.identity.to_input(images, landmarks=landmarks))
        parts = {
            "d": self.discriminator(images, structure),
            "vgg": self.vgg(images) if self.vgg is not None else None,
            "id_map": id_map,
            "f_id": self.identity.head(id_map),
            "f_a": self.generator.encoder(images * mask),
        }
        return [Views(**{k: _chunk(v, groups, i) for k, v in parts.items()}) for i in range(groups)]

    def step(self, batch: dict, *, swap: bool) -> dict[str, torch.Tensor]:
        """One G update on L_All and one D update on the adversarial hinge; returns the losses."""
        acc = self.accelerator
        self.D.requires_grad_(False)
        with acc.autocast():
            outs = self.generate(batch, swap=swap)
            real, *fake_views = self.views(torch.cat([batch["x"], *(o["image"] for o in outs)]), batch, 1 + len(outs))
            generated = [Generated(views=v, **o) for o, v in zip(outs, fake_views)]
            terms = {
                "L1": adversarial_loss(None, generated, for_discriminator=False),
                "L2": feature_matching_loss(real, generated),
                "L3": perceptual_loss(real, generated),
                "L4": appearance_loss(real, generated, batch["z_id"]),
                "L5": identity_loss(generated),
                "L6": background_loss(batch["x"], batch["mask"], generated),
            }
            loss_g = total_loss(terms, self.lambdas)
        self.opt_g.zero_grad(set_to_none=True)
        acc.backward(loss_g)
        self.opt_g.step()

        self.D.requires_grad_(True)
        with acc.autocast():
            images = torch.cat([batch["x"], *(g.image.detach() for g in generated)])
            d_out = self.D(images, _repeat(batch["structure"], len(generated) + 1))
            real_d, *fake_d = (Views(d=_chunk(d_out, len(generated) + 1, i)) for i in range(len(generated) + 1))
            fakes = [Generated(image=g.image, views=v, id_target=g.id_target, adv_weight=g.adv_weight)
                     for g, v in zip(generated, fake_d)]
            loss_d = adversarial_loss(real_d, fakes, for_discriminator=True)
        self.opt_d.zero_grad(set_to_none=True)
        acc.backward(loss_d)
        self.opt_d.step()
        return {**{k: v.detach() for k, v in terms.items()}, "L_All": loss_g.detach(), "D": loss_d.detach()}

    def export(self, folder: Path, *, step: int) -> Path:
        """Write the generator as step 2 (``synthesizer/``) of an AnonPipeline folder; return that folder."""
        from anon_model.models import FaceAnonGenerator
        from anon_model.pipeline import AnonPipeline

        generator = FaceAnonGenerator(**self.generator_kwargs, training_config=self.cfg["name"], trained_steps=step)
        generator.load_state_dict(self.generator.state_dict())
        generator.eval()
        # step 1 exactly as in training (same Psi, IFA settings and codebook bank), the trained G as step 2
        preprocessor, bank = step1(CacheSpec(**self.cfg["data"]))
        pipe = AnonPipeline(preprocessor=preprocessor, bank=bank, synthesizer=generator)
        target = pipe.save_pretrained(folder / "pipeline")
        generator_dir = target / "synthesizer"
        training = {"config": self.cfg, "step": step, "num_processes": self.accelerator.num_processes,
                    "notes": self.notes}
        (generator_dir / "training.json").write_text(json.dumps(training, indent=2))
        return target


def _repeat(t: torch.Tensor, groups: int) -> torch.Tensor:
    """``groups`` copies of a batch stacked along the batch dimension."""
    return t.repeat(groups, *([1] * (t.dim() - 1)))


def _chunk(value, groups: int, index: int):
    """The ``index``-th of ``groups`` equal batch slices of a tensor or of nested lists of tensors."""
    if value is None:
        return None
    if isinstance(value, list):
        return [_chunk(v, groups, index) for v in value]
    return value.chunk(groups)[index]


def batches(accelerator, loader: DataLoader, start_step: int) -> Iterator[dict]:
    """Endless batches, epoch after epoch; on resume the epoch's already-seen batches are skipped."""
    epoch, skip = divmod(start_step, len(loader))
    while True:
        loader.set_epoch(epoch)
        yield from accelerator.skip_first_batches(loader, skip) if skip else loader
        epoch, skip = epoch + 1, 0


def latest_checkpoint(output: Path) -> Path | None:
    ckpts = sorted((output / "checkpoints").glob("step_*"))
    return ckpts[-1] if ckpts else None


def prepare_data(accelerator, data: Path, cache_dir: Path, cfg: dict) -> FaceDataset:
    """Preprocess the photos once (sharded over processes), then open the cached dataset on every process."""
    from tqdm.auto import tqdm

    spec = CacheSpec(**cfg["data"])
    progress = (lambda it: tqdm(it, desc="preprocessing faces")) if accelerator.is_local_main_process else None
    cache = prepare_cache(data, cache_dir, spec=spec, process_index=accelerator.process_index,
                          num_processes=accelerator.num_processes, device=accelerator.device, progress=progress)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        manifest = write_manifest(data, cache, spec=spec)
        if manifest["skipped_no_face"]:
            accelerator.print(f"{len(manifest['skipped_no_face'])} photos without a detectable face were skipped")
    accelerator.wait_for_everyone()
    return FaceDataset(cache)


class CsvLog:
    """Append-only CSV of the losses (TensorBoard too, when installed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            with path.open("w", newline="") as fh:
                csv.writer(fh).writerow(LOG_COLUMNS)

    def write(self, row: dict) -> None:
        with self.path.open("a", newline="") as fh:
            csv.writer(fh).writerow([row.get(c, "") for c in LOG_COLUMNS])


def main(argv: Sequence[str] | None = None) -> Path:
    """Run (or resume) training; return the exported folder."""
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, InitProcessGroupKwargs, set_seed
    from tqdm.auto import tqdm

    args = parse_args(argv)
    cfg = load_config(args.config)
    output = Path(args.output)
    has_tensorboard = _installed("tensorboard")
    accelerator = Accelerator(
        cpu=_no_accelerator(),
        mixed_precision=os.environ.get("ACCELERATE_MIXED_PRECISION") or cfg.get("mixed_precision", "no"),
        log_with="tensorboard" if has_tensorboard else None,
        project_dir=output / "logs",
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(hours=6))],  # preprocessing may take long
    )
    set_seed(cfg["seed"], device_specific=True)
    dataset = prepare_data(accelerator, Path(args.data), Path(args.cache) if args.cache else output / "cache", cfg)
    sched = schedule_for(cfg, accelerator.num_processes)
    max_steps = sched["max_steps"] if args.max_steps is None else args.max_steps
    loader = DataLoader(dataset, batch_size=sched["batch_size"], shuffle=True, drop_last=True,
                        num_workers=cfg.get("num_workers", 0))
    trainer = Trainer(cfg, accelerator, z_id_dim=dataset.z_id_dim)
    loader = accelerator.prepare(loader)
    if len(loader) == 0:
        raise ValueError(f"{len(dataset)} faces are too few for batch {sched['batch_size']} x "
                         f"{accelerator.num_processes} processes")
    progress = Progress()
    accelerator.register_for_checkpointing(progress)
    ckpt = latest_checkpoint(output) if args.resume else None
    if ckpt is not None:
        accelerator.load_state(str(ckpt))
        accelerator.print(f"resumed from {ckpt} at step {progress.step}")
    elif args.resume:
        accelerator.print(f"--resume: no checkpoint in {output / 'checkpoints'}, starting at step 0")
    for note in trainer.notes:
        accelerator.print(f"NOTE: {note}")
    if has_tensorboard:
        accelerator.init_trackers("train", config={"config": cfg["name"], "max_steps": max_steps})
    log = CsvLog(output / "logs" / "train_log.csv") if accelerator.is_main_process else None
    bar = tqdm(total=max_steps, initial=progress.step, desc="training", disable=not accelerator.is_local_main_process)
    data = batches(accelerator, loader, progress.step)
    while progress.step < max_steps:
        swap = progress.step % 2 == 1  # 1:1 alternation of reconstruction and cycle swap-reconstruction
        losses = trainer.step(next(data), swap=swap)
        progress.step += 1
        if progress.step % cfg["log_every"] == 0 or progress.step == max_steps:
            names = list(losses)
            values = accelerator.reduce(torch.stack([losses[n].float() for n in names]), reduction="mean")
            row = {"step": progress.step, "branch": "swap" if swap else "recon",
                   **{n: round(v, 5) for n, v in zip(names, values.tolist())}}
            bar.set_postfix({k: row[k] for k in ("branch", *LOSS_NAMES, "D")})
            if log is not None:
                log.write(row)
            if has_tensorboard:
                accelerator.log({n: row[n] for n in names}, step=progress.step)
        bar.update(1)
        if progress.step % cfg["checkpoint_every"] == 0 or progress.step == max_steps:
            save_checkpoint(accelerator, trainer, output, progress.step, keep=cfg["keep_checkpoints"],
                            export=args.export_checkpoints)
    bar.close()
    accelerator.wait_for_everyone()
    exported = trainer.export(output, step=progress.step) if accelerator.is_main_process else output
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return exported


def save_checkpoint(accelerator, trainer: Trainer, output: Path, step: int, *, keep: int, export: bool) -> None:
    """accelerate state of ``step`` (models, optimizers, RNG, step); the oldest beyond ``keep`` are removed."""
    folder = output / "checkpoints" / f"step_{step:07d}"
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        if export:
            trainer.export(folder, step=step)
        for old in sorted((output / "checkpoints").glob("step_*"))[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def _no_accelerator() -> bool:
    """No GPU (or other accelerator): accelerate then needs cpu=True to run several processes over gloo."""
    device_api = getattr(torch, "accelerator", None)
    return not (device_api.is_available() if device_api is not None else torch.cuda.is_available())


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    main()
