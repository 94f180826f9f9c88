"""Build the default delegate bank from the 800 public-domain U.S. Congress portraits, and the split used to tune and
to report on people the bank does not hold.

    python docs/congress_bank.py                       # the shipped bank: all 800 -> anon_model/assets/bank
    python docs/congress_bank.py --without held-out -o /tmp/bank700   # the bank the held-out report uses

Split (by the sorted Bioguide IDs, so anyone gets the same): every 8th person from the first is ``held-out`` (100,
reported on only), every 8th from the fifth is ``tune`` (100, the step-2 and guard settings were chosen on 30 of them).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from anon_model.bank import DEFAULT_BANK_DIR, DelegateBank

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "faces" / "us-congress" / "images"
SOURCE = ("official U.S. Congress Member Guide portraits (U.S. Government Publishing Office), 225x275, collected by "
          "the unitedstates/images project and mirrored as Hainish/congress-images-225x275 (April 2015)")
LICENSE = "public domain (works of the U.S. federal government)"
NOTICE = f"""# The default delegate bank

Aligned 256x256 face crops (JPEG), dlib-ResNet embeddings, 68 landmarks, head poses, estimated gender/age and skin
tone of {{faces}} people: {SOURCE}. Licence: {LICENSE}. One person per photo; each face's person is its Bioguide ID
(`identities` in bank.json). Rebuild with `python docs/congress_bank.py`.

Every one of them is a real, recognizable public figure: anon_model never pastes one of them in (its results are
blends of two, and the identity guard rejects any result nearer to one of them than the limit calibrated on the bank
itself, `intrusion` in bank.json).
"""


def people(images: Path = IMAGES) -> list[str]:
    """The Bioguide IDs of the portraits, sorted."""
    return sorted(p.stem for p in images.glob("*.jpg"))


def split(images: Path = IMAGES) -> dict[str, list[str]]:
    """The held-out and tuning people (see the module docstring)."""
    ids = people(images)
    return {"held-out": ids[0::8], "tune": ids[4::8]}


def build(images: Path = IMAGES, without: tuple[str, ...] = ()) -> DelegateBank:
    """The bank of every portrait, less the people of the named parts of ``split``."""
    bank = DelegateBank.build(images, jpeg_quality=90)
    out = {p for part in without for p in split(images)[part]}
    bank = bank.subset([i for i, p in enumerate(bank.identity_labels) if p not in out])
    bank.info = {"built_from": "us-congress", "source": SOURCE, "license": LICENSE, "without": list(without),
                 "photos": len(people(images))}
    return bank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=IMAGES, help="the portraits folder (default: %(default)s)")
    parser.add_argument("--without", nargs="*", default=[], choices=["held-out", "tune"],
                        help="leave these people out (for evaluation)")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_BANK_DIR, help="bank folder (default: %(default)s)")
    args = parser.parse_args()
    bank = build(args.images, tuple(args.without))
    bank.save_pretrained(args.output)
    (args.output / "README.md").write_text(NOTICE.format(faces=bank.people))
    print(f"{len(bank)} faces of {bank.people} people -> {args.output} (intrusion limit {bank.intrusion.limit:.3f})")


if __name__ == "__main__":
    main()
