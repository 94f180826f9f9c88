"""``--keep-metadata``: which of a photo's metadata the anonymized copy may carry (by default it carries none).

Kept: the EXIF camera, exposure, date and rights tags, and the ICC colour profile. Dropped even then, because they can
locate or name someone or show the original: GPS position, the EXIF thumbnail (a small copy of the un-anonymized
photo), the maker note (vendor data that may hold previews, face-detection results and serial numbers), free-text
fields (description, user comment, Windows XP title/comment/keywords/subject/author), owner and serial-number tags,
and all XMP and IPTC data (they may list the people shown). Orientation is reset to 1: the pixels were rotated already.
"""
from __future__ import annotations

import os

from PIL import ExifTags, Image

__all__ = ["Metadata", "read_metadata"]

_BASE = ExifTags.Base
#: Tags of the main image directory left out.
DROPPED = frozenset({_BASE.ImageDescription, _BASE.XPTitle, _BASE.XPComment, _BASE.XPAuthor, _BASE.XPKeywords,
                     _BASE.XPSubject, _BASE.XMLPacket, _BASE.IPTCNAA, ExifTags.IFD.GPSInfo})
#: Tags of the Exif sub-directory left out.
DROPPED_EXIF = frozenset({_BASE.MakerNote, _BASE.UserComment, _BASE.CameraOwnerName, _BASE.BodySerialNumber,
                          _BASE.LensSerialNumber, _BASE.ImageUniqueID})

Metadata = dict[str, object]


def read_metadata(path: str | os.PathLike) -> Metadata:
    """The metadata of the photo at ``path`` that may be copied (see the module's docstring), as Pillow save options."""
    with Image.open(path) as im:
        exif = im.getexif()
        icc = im.info.get("icc_profile")
    kept: Metadata = {}
    if icc:
        kept["icc_profile"] = icc
    if exif:
        sub = exif.get_ifd(ExifTags.IFD.Exif)  # loaded into `exif`, so edits here are saved with it
        for tag in DROPPED_EXIF & set(sub):
            del sub[tag]
        for tag in DROPPED & set(exif):
            del exif[tag]
        if _BASE.Orientation in exif:
            exif[_BASE.Orientation] = 1
        kept["exif"] = exif.tobytes()
    return kept
