"""What goes into a Civitai model's cards: pure functions from the lock entry and Civitai's data.

Formats (reference/comfyui-and-cards.md §2, read from A1111 v1.10.1
`extensions-builtin/Lora/ui_edit_user_metadata.py`, `modules/ui_extra_networks_user_metadata.py`,
`modules/ui_extra_networks.py`, and Civitai Helper's `.civitai.info`):

- `<stem>.json`: A1111/Forge user metadata, `json.dump(indent=4, ensure_ascii=False)`. LoRA keys
  "description", "sd version" (A1111's `SdVersion` names; Forge adds Flux), "activation text"
  (appended after `<lora:name:weight>` when the card is clicked), "preferred weight" (0 = the
  global default), "notes"; checkpoints "description", "notes"; embeddings and hypernetworks
  "description", "notes".
- `<stem>.preview.png`: WebUI tries `<stem>.png` … then `<stem>.preview.png`; real PNG bytes work
  on every version (1.6 does not look for `.jpeg`, none for `.preview.jpeg` reliably).
- `<stem>.civitai.info`: the model-version object as JSON, indent 4.

All three are named by the model's stem plus a suffix no UI loads as a model (`.json`, `.png`,
`.info`), so they never show up as models.
"""

from __future__ import annotations

import html
import io
import json
import re
from typing import Any, Final

from provision.errors import SourceError
from provision.kinds import Family, Kind
from provision.lock.lockfile import LockEntry
from provision.manifest.cards import CardOptions
from provision.sources.locked import CivitaiSource

SUFFIXES: Final = {"metadata": ".json", "preview": ".preview.png", "info": ".civitai.info"}
SD_VERSION: Final = {Family.SD1: "SD1", Family.SD2: "SD2", Family.SDXL: "SDXL", Family.FLUX: "Flux"}
# Cards show a thumbnail: ask Civitai's image CDN for a small rendition, not the original.
PREVIEW_WIDTH: Final = 450
MAX_PREVIEW_PIXELS: Final = 40_000_000


def sidecar_path(entry: LockEntry, role: str) -> str:
    stem = entry.path.rsplit(".", 1)[0]
    return stem + SUFFIXES[role]


def page_url(source: CivitaiSource) -> str:
    return f"https://civitai.com/models/{source.model_id}?modelVersionId={source.version_id}"


def card_options(entry: LockEntry) -> CardOptions:
    return entry.card or CardOptions()


def activation_text(entry: LockEntry) -> str:
    trigger = card_options(entry).trigger
    words = trigger if trigger is not None else entry.trained_words
    return ", ".join(w.strip() for w in words if w.strip())


def _plain(text: str) -> str:
    # Civitai descriptions are HTML; A1111 shows the card text as-is, so keep words only.
    without_tags = re.sub(r"<br\s*/?>|</p>", "\n", text, flags=re.IGNORECASE)
    without_tags = re.sub(r"<[^>]+>", "", without_tags)
    return re.sub(r"\n{3,}", "\n\n", html.unescape(without_tags)).strip()


def vae_choice(lock_models: tuple[LockEntry, ...], entry: LockEntry) -> str | None:
    """A checkpoint card's "vae": WebUI's name for the VAE (its file name), from the manifest's
    `vae:`, which may name a `vaes` entry, a file name, `Automatic` or `None`."""
    wanted = card_options(entry).vae
    if wanted is None:
        return None
    for model in lock_models:
        filename = model.path.rsplit("/", 1)[-1]
        if model.kind is Kind.VAE and wanted in (model.name, filename):
            return filename
    return wanted


def user_metadata(
    entry: LockEntry, source: CivitaiSource, version: dict[str, Any], *, vae: str | None = None
) -> dict[str, Any]:
    model = version.get("model")
    model = model if isinstance(model, dict) else {}
    title = " – ".join(str(p) for p in (model.get("name"), version.get("name")) if p)
    description = _plain(str(version.get("description") or "")) or title
    notes = card_options(entry).notes
    note_text = f"{notes}\n{page_url(source)}" if notes else page_url(source)
    data: dict[str, Any] = {"description": description}
    if entry.kind is Kind.LORA:
        weight = card_options(entry).weight
        data["sd version"] = SD_VERSION.get(entry.base, "Unknown")
        data["activation text"] = activation_text(entry)
        data["preferred weight"] = weight if weight is not None else 0
    if entry.kind is Kind.CHECKPOINT and vae is not None:
        data["vae"] = vae
    data["notes"] = note_text
    return data


def render_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, indent=4, ensure_ascii=False).encode("utf-8")


def preview_request_url(url: str) -> str:
    return re.sub(r"/width=\d+/", f"/width={PREVIEW_WIDTH}/", url, count=1)


def to_png(data: bytes, what: str) -> bytes:
    """Any image Pillow reads (JPEG, WebP, PNG …) → PNG bytes; first frame of an animation."""
    # Pillow only here: a resync that writes no card (the usual case) never imports it.
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PREVIEW_PIXELS:
                raise SourceError(f"{what}: preview image is {image.width}×{image.height}, too big")
            frame = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise SourceError(f"{what}: preview is not an image Pillow can read ({exc})") from None
    out = io.BytesIO()
    frame.save(out, format="PNG", optimize=True)
    return out.getvalue()
