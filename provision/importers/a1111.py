"""A1111 / Forge image infotext, read from a PNG's text chunks (`parameters`), and the
ComfyUI workflow some PNGs carry (`workflow` / `prompt` chunks).

Infotext's last line is `Key: value, Key: "quoted, value", …` (A1111's own `re_param`).
What identifies models there: `Model hash` (+ `Model`), `VAE hash`, `Lora hashes`, `TI
hashes`, `Hypernet hash` (short hashes Civitai's by-hash accepts) and `Civitai resources`
(model version ids, written by Civitai's generator)."""

from __future__ import annotations

import json
import re
import struct
import zlib
from typing import Final

from provision.errors import UsageError
from provision.importers import Found
from provision.kinds import Kind

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
MAX_TEXT: Final = 16 << 20  # a text chunk larger than this is not infotext
# modules/infotext_utils.py re_param_code
_PARAM: Final = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_HASH_FIELDS: Final = {"Model hash": Kind.CHECKPOINT, "VAE hash": Kind.VAE,
                       "Hypernet hash": Kind.HYPERNETWORK}  # fmt: skip
_NAME_FIELDS: Final = {"Model hash": "Model", "VAE hash": "VAE", "Hypernet hash": "Hypernet"}
_LIST_FIELDS: Final = {"Lora hashes": Kind.LORA, "TI hashes": Kind.EMBEDDING}
_CIVITAI_TYPES: Final = {
    "checkpoint": Kind.CHECKPOINT,
    "lora": Kind.LORA,
    "lycoris": Kind.LORA,
    "embed": Kind.EMBEDDING,
    "embedding": Kind.EMBEDDING,
    "textualinversion": Kind.EMBEDDING,
    "vae": Kind.VAE,
    "hypernet": Kind.HYPERNETWORK,
    "hypernetwork": Kind.HYPERNETWORK,
}


def png_texts(data: bytes, origin: str) -> dict[str, str]:
    """The PNG's tEXt, zTXt and iTXt chunks as keyword → text."""
    if not data.startswith(PNG_SIGNATURE):
        raise UsageError(f"{origin}: not a PNG image (A1111 writes its infotext into PNGs)")
    texts: dict[str, str] = {}
    at = len(PNG_SIGNATURE)
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + length]
        at += 12 + length
        if len(body) != length:
            raise UsageError(f"{origin}: truncated PNG (chunk {kind!r} cut short)")
        if kind in (b"tEXt", b"zTXt", b"iTXt") and length <= MAX_TEXT:
            keyword, _, rest = body.partition(b"\0")
            text = _chunk_text(kind, rest)
            if text is not None:
                texts[keyword.decode("latin-1")] = text
        if kind == b"IEND":
            return texts
    raise UsageError(f"{origin}: truncated PNG (no IEND chunk)")


def _chunk_text(kind: bytes, rest: bytes) -> str | None:
    try:
        if kind == b"tEXt":
            return rest.decode("latin-1")
        if kind == b"zTXt":
            return _inflate(rest[1:]).decode("latin-1")
        compressed = rest[0] == 1
        _, _, rest = rest[2:].partition(b"\0")  # language tag
        _, _, rest = rest.partition(b"\0")  # translated keyword
        return (_inflate(rest) if compressed else rest).decode("utf-8")
    except (zlib.error, UnicodeDecodeError, IndexError):
        return None


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_TEXT)
    if inflater.unconsumed_tail:
        raise zlib.error("text chunk inflates past the limit")
    return out


def parse_params(infotext: str) -> dict[str, str]:
    """The `Key: value` pairs of the infotext's last line (quoted values unquoted)."""
    last = infotext.strip().splitlines()[-1] if infotext.strip() else ""
    out: dict[str, str] = {}
    for key, value in _PARAM.findall(last):
        if value.startswith('"') and value.endswith('"'):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = value[1:-1]
        out[key.strip()] = str(value).strip()
    return out


def read_infotext(infotext: str, origin: str) -> list[Found]:
    params = parse_params(infotext)
    found: list[Found] = []
    for field, kind in _HASH_FIELDS.items():
        if params.get(field):
            name = params.get(_NAME_FIELDS[field])
            found.append(Found(origin=f"{origin}: {field}", name=name or None, kind=kind,
                               hash=params[field]))  # fmt: skip
    for field, kind in _LIST_FIELDS.items():
        for pair in params.get(field, "").split(","):
            name, sep, value = pair.rpartition(":")
            if sep and value.strip():
                found.append(Found(origin=f"{origin}: {field}", name=name.strip() or None,
                                   kind=kind, hash=value.strip()))  # fmt: skip
    found.extend(_civitai_resources(infotext, origin))
    hashed = {f.name for f in found if f.name}
    for name in re.findall(r"<(?:lora|lyco):([^:>]+)", infotext.split("Steps:")[0]):
        if name not in hashed:  # named in the prompt, but no hash says which file it was
            hashed.add(name)
            found.append(Found(origin=f"{origin}: prompt", name=name, kind=Kind.LORA))
    return found


def _civitai_resources(infotext: str, origin: str) -> list[Found]:
    # Civitai writes this value as bare JSON (commas inside, unquoted), which A1111's own
    # `Key: value` split cuts apart: decode it from where it starts instead.
    at = infotext.rfind("Civitai resources:")
    if at < 0:
        return []
    text = infotext[at + len("Civitai resources:") :].lstrip()
    try:
        resources, _ = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError:
        return [Found(origin=f"{origin}: Civitai resources (unreadable JSON)", name=None)]
    out = []
    for item in resources if isinstance(resources, list) else []:
        if not isinstance(item, dict) or not str(item.get("modelVersionId", "")).isdigit():
            continue
        out.append(
            Found(
                origin=f"{origin}: Civitai resources",
                name=None,
                kind=_CIVITAI_TYPES.get(str(item.get("type", "")).lower()),
                version_id=int(item["modelVersionId"]),
            )
        )
    return out
