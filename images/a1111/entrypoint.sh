#!/bin/bash
# sdprov's A1111 entrypoint: WebUI on the NAS layout sdprov syncs (design.md §6), with a login.
# Never links or downloads demo models; refuses to start without the NAS or without a login.
# SDPROV_DRY_RUN=1 prints the command (credentials masked) instead of running it (tests).
set -euo pipefail

NAS_DIR="${SDPROV_NAS_DIR:-/mnt/auto/sd}"
MODELS="$NAS_DIR/models"
PORT="${SDPROV_PORT:-7860}"

if [ ! -d "$NAS_DIR" ]; then
  echo "sdprov: $NAS_DIR is not there: the models NAS is not mounted; not starting" >&2
  exit 1
fi
case "${SDPROV_WEBUI_AUTH:-}" in
  ?*:?*) ;;
  *) echo "sdprov: SDPROV_WEBUI_AUTH (user:password) is not set; not starting without a login" >&2
     exit 1 ;;
esac
mkdir -p "$MODELS/Stable-diffusion" "$MODELS/Lora" "$MODELS/VAE" "$MODELS/embeddings" \
  "$MODELS/hypernetworks" "$MODELS/ESRGAN" "$NAS_DIR/outputs"
# WebUI keeps its hash cache on NAS next to the models, where `sdprov webui seed-cache` writes.
export SD_WEBUI_CACHE_FILE="$NAS_DIR/cache.json"

args=(--api --listen --port "$PORT" --data-dir "$NAS_DIR"
  --ckpt-dir "$MODELS/Stable-diffusion" --lora-dir "$MODELS/Lora" --vae-dir "$MODELS/VAE"
  --embeddings-dir "$MODELS/embeddings" --hypernetwork-dir "$MODELS/hypernetworks"
  --esrgan-models-path "$MODELS/ESRGAN"
  --no-download-sd-model --skip-prepare-environment --skip-version-check)

if [ "${SDPROV_DRY_RUN:-}" = 1 ]; then
  printf '%s\n' "${WEBUI_DIR:-/opt/webui}/venv/bin/python" launch.py "${args[@]}" \
    --api-auth '***' --gradio-auth '***'
  exit 0
fi
cd "${WEBUI_DIR:-/opt/webui}"
exec venv/bin/python launch.py "${args[@]}" \
  --api-auth "$SDPROV_WEBUI_AUTH" --gradio-auth "$SDPROV_WEBUI_AUTH"
