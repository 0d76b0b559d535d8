"""Image metadata read straight from the file headers: format, dimensions and a few details.

PNG, GIF, JPEG, WebP, BMP, ICO/CUR and SVG are understood; a handful of others are recognised by
their magic bytes only. No Pillow: the UI only needs to say what an image is, never to decode it.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field


@dataclass
class ImageInfo:
    """What the header says about an image."""

    format: str
    width: int | None = None
    height: int | None = None
    details: list[tuple[str, str]] = field(default_factory=list)
    """Extra (name, value) facts such as bit depth, colour type or frame count."""

    @property
    def dimensions(self) -> str:
        if self.width is None or self.height is None:
            return "unknown"
        return f"{self.width} × {self.height}"


_PNG_COLOUR = {0: "greyscale", 2: "RGB", 3: "palette", 4: "greyscale + alpha", 6: "RGBA"}


def _png(b: bytes) -> ImageInfo | None:
    if not b.startswith(b"\x89PNG\r\n\x1a\n") or len(b) < 24 or b[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", b[16:24])
    info = ImageInfo("PNG", w, h)
    if len(b) >= 26:
        info.details.append(("Colour", f"{b[24]}-bit {_PNG_COLOUR.get(b[25], f'type {b[25]}')}"))
    if len(b) >= 29 and b[28] == 1:
        info.details.append(("Interlace", "Adam7"))
    if b"acTL" in b[:4096]:
        info.details.append(("Animated", "yes (APNG)"))
    return info


def _gif(b: bytes) -> ImageInfo | None:
    if b[:6] not in (b"GIF87a", b"GIF89a") or len(b) < 10:
        return None
    w, h = struct.unpack("<HH", b[6:10])
    info = ImageInfo("GIF", w, h, [("Version", b[3:6].decode())])
    frames = _gif_frames(b)
    if frames:
        info.details.append(("Frames", str(frames)))
    return info


def _gif_frames(b: bytes) -> int:
    """Count image descriptors by walking the block structure; 0 if the file is cut short or odd."""
    try:
        pos = 13
        if b[10] & 0x80:
            pos += 3 << ((b[10] & 7) + 1)
        frames = 0
        while pos < len(b):
            kind = b[pos]
            if kind == 0x3B:  # trailer
                break
            if kind == 0x21:  # extension: label, then sub-blocks
                pos += 2
            elif kind == 0x2C:  # image descriptor, optional local colour table, LZW code size
                frames += 1
                flags = b[pos + 9]
                pos += 10 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0) + 1
            else:
                return frames
            while b[pos]:  # data sub-blocks
                pos += b[pos] + 1
            pos += 1
        return frames
    except IndexError:
        return 0


_SOF = {0xC0: "baseline", 0xC1: "extended sequential", 0xC2: "progressive", 0xC3: "lossless",
        0xC5: "differential sequential", 0xC6: "differential progressive", 0xC7: "differential lossless",
        0xC9: "arithmetic sequential", 0xCA: "arithmetic progressive", 0xCB: "arithmetic lossless",
        0xCD: "differential arithmetic sequential", 0xCE: "differential arithmetic progressive",
        0xCF: "differential arithmetic lossless"}


def _jpeg(b: bytes) -> ImageInfo | None:
    if not b.startswith(b"\xff\xd8"):
        return None
    info = ImageInfo("JPEG")
    pos = 2
    while pos + 4 <= len(b):
        if b[pos] != 0xFF:
            break  # lost sync: not a marker where one must be
        marker = b[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
            pos += 2
            continue
        if marker == 0xD9 or marker == 0xDA:  # end of image / start of scan: no SOF before it
            break
        (length,) = struct.unpack(">H", b[pos + 2:pos + 4])
        if marker in _SOF and pos + 10 <= len(b):
            precision, h, w, comps = struct.unpack(">BHHB", b[pos + 4:pos + 10])
            info.width, info.height = w, h
            info.details += [("Encoding", _SOF[marker]), ("Components", str(comps)), ("Precision", f"{precision}-bit")]
            break
        if marker == 0xE1 and b[pos + 4:pos + 10] == b"Exif\x00\x00":
            info.details.append(("EXIF", "present"))
        pos += 2 + length
    return info


def _webp(b: bytes) -> ImageInfo | None:
    if len(b) < 16 or b[:4] != b"RIFF" or b[8:12] != b"WEBP":
        return None
    chunk = b[12:16]
    info = ImageInfo("WebP", details=[("Encoding", chunk.decode("latin-1").strip())])
    if chunk == b"VP8 " and len(b) >= 30 and b[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", b[26:30])
        info.width, info.height = w & 0x3FFF, h & 0x3FFF
    elif chunk == b"VP8L" and len(b) >= 25 and b[20] == 0x2F:
        (bits,) = struct.unpack("<I", b[21:25])
        info.width, info.height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8X" and len(b) >= 30:
        info.width = int.from_bytes(b[24:27], "little") + 1
        info.height = int.from_bytes(b[27:30], "little") + 1
        if b[20] & 0x02:
            info.details.append(("Animated", "yes"))
    return info


def _bmp(b: bytes) -> ImageInfo | None:
    if len(b) < 26 or b[:2] != b"BM":
        return None
    (header,) = struct.unpack("<I", b[14:18])
    if header == 12:  # OS/2 BITMAPCOREHEADER
        w, h, _planes, bpp = struct.unpack("<HHHH", b[18:26])
    elif len(b) >= 30:
        w, h, _planes, bpp = struct.unpack("<iiHH", b[18:30])
    else:
        return None
    info = ImageInfo("BMP", abs(w), abs(h), [("Bits per pixel", str(bpp))])
    if h < 0:
        info.details.append(("Rows", "top-down"))
    return info


def _ico(b: bytes) -> ImageInfo | None:
    if len(b) < 6 or b[:2] != b"\x00\x00" or b[2:4] not in (b"\x01\x00", b"\x02\x00"):
        return None
    (count,) = struct.unpack("<H", b[4:6])
    sizes = []
    for k in range(min(count, 64)):
        e = 6 + 16 * k
        if e + 2 > len(b):
            break
        sizes.append((b[e] or 256, b[e + 1] or 256))
    if count == 0 or not sizes:
        return None
    fmt = "ICO" if b[2] == 1 else "CUR"
    w, h = max(sizes)
    info = ImageInfo(fmt, w, h, [("Images", str(count))])
    info.details.append(("Sizes", ", ".join(f"{x}×{y}" for x, y in sizes)))
    return info


_SVG_TAG = re.compile(rb"<svg\b[^>]*>", re.IGNORECASE | re.DOTALL)
_SVG_ATTR = re.compile(rb"""\b(width|height|viewBox)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


def _svg(b: bytes) -> ImageInfo | None:
    m = _SVG_TAG.search(b[:65536])
    if m is None:
        return None
    attrs = {k.decode().lower(): v.decode("utf-8", "replace").strip() for k, v in _SVG_ATTR.findall(m.group())}
    info = ImageInfo("SVG")

    def number(s: str | None) -> int | None:
        mm = re.match(r"\s*([0-9]*\.?[0-9]+)\s*(px)?\s*$", s or "")
        return round(float(mm.group(1))) if mm else None

    info.width, info.height = number(attrs.get("width")), number(attrs.get("height"))
    for k in ("width", "height"):
        if k in attrs and number(attrs[k]) is None:
            info.details.append((k.capitalize(), attrs[k]))
    if "viewbox" in attrs:
        info.details.append(("viewBox", attrs["viewbox"]))
        parts = re.split(r"[\s,]+", attrs["viewbox"])
        if info.width is None and len(parts) == 4:
            try:
                info.width, info.height = round(float(parts[2])), round(float(parts[3]))
            except ValueError:
                pass
    return info


_MAGIC_ONLY = [
    (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"8BPS", "PSD"), (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x0a", "JPEG XL"), (b"\x00\x00\x00\x0cJXL ", "JPEG XL"), (b"qoif", "QOI"),
]


def _other(b: bytes) -> ImageInfo | None:
    for magic, name in _MAGIC_ONLY:
        if b.startswith(magic):
            return ImageInfo(name)
    if b[4:8] == b"ftyp":  # ISO base media: AVIF / HEIC by their brand
        brand = b[8:12]
        if brand in (b"avif", b"avis"):
            return ImageInfo("AVIF")
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
            return ImageInfo("HEIF")
    return None


_PARSERS = (_png, _gif, _jpeg, _webp, _bmp, _ico, _other)


def image_info(body: bytes) -> ImageInfo | None:
    """Identify an image by its bytes; None if it is not one we know. Never raises on garbage."""
    for parse in _PARSERS:
        try:
            info = parse(body)
        except (struct.error, IndexError, ValueError):
            info = None
        if info is not None:
            return info
    head = body[:1024].lstrip()
    if head.startswith((b"<svg", b"<?xml", b"<!--", b"<!DOCTYPE svg", b"<!doctype svg")) or b"<svg" in head:
        try:
            return _svg(body)
        except (ValueError, UnicodeError):
            return None
    return None


def is_image(body: bytes) -> bool:
    """Magic-byte check for sniffing; SVG (XML text) and the weak ICO/JPEG XL signatures don't count."""
    info = image_info(body)
    return info is not None and info.format not in ("SVG", "ICO", "CUR", "JPEG XL")
