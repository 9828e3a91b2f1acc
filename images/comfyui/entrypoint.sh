#!/bin/bash
# sdprov's ComfyUI entrypoint: ComfyUI on loopback, nginx with basic auth in front on 7860.
# ComfyUI reads the models sdprov syncs through /etc/sdprov/extra_model_paths.yaml. Refuses to
# start without the NAS or without a login. SDPROV_DRY_RUN=1 prepares everything, prints both
# commands and exits (tests).
set -euo pipefail

NAS_DIR="${SDPROV_NAS_DIR:-/mnt/auto/sd}"
MODELS="$NAS_DIR/models"
ETC="${SDPROV_ETC:-/etc/sdprov}"
RUN_DIR="${SDPROV_RUN_DIR:-/run/sdprov}"
PORT="${SDPROV_PORT:-7860}"
UPSTREAM="${COMFYUI_PORT:-8188}"

if [ ! -d "$NAS_DIR" ]; then
  echo "sdprov: $NAS_DIR is not there: the models NAS is not mounted; not starting" >&2
  exit 1
fi
case "${SDPROV_WEBUI_AUTH:-}" in
  ?*:?*) ;;
  *) echo "sdprov: SDPROV_WEBUI_AUTH (user:password) is not set; ComfyUI has no login of its own, so not starting" >&2
     exit 1 ;;
esac
mkdir -p "$MODELS/Stable-diffusion" "$MODELS/Lora" "$MODELS/VAE" "$MODELS/embeddings" \
  "$MODELS/hypernetworks" "$NAS_DIR/comfyui-output" "$RUN_DIR"
# nginx's workers (www-data) may read the password file and use the temp dirs; nobody else.
chown root:www-data "$RUN_DIR"
chmod 750 "$RUN_DIR"

# nginx reads crypt(3) hashes: SHA-512 ($6$), the password on stdin (never in argv or a file).
umask 077
user="${SDPROV_WEBUI_AUTH%%:*}"
hash="$(printf '%s' "${SDPROV_WEBUI_AUTH#*:}" | openssl passwd -6 -stdin)"
printf '%s:%s\n' "$user" "$hash" > "$RUN_DIR/htpasswd"
chown root:www-data "$RUN_DIR/htpasswd"
chmod 640 "$RUN_DIR/htpasswd"
for tmp in body proxy fastcgi uwsgi scgi; do
  install -d -o www-data -g www-data -m 700 "$RUN_DIR/$tmp"
done
sed -e "s#@RUN_DIR@#$RUN_DIR#g" -e "s#@PORT@#$PORT#g" -e "s#@UPSTREAM@#$UPSTREAM#g" \
  "$ETC/nginx.conf" > "$RUN_DIR/nginx.conf"

comfy=(python3 "${COMFYUI_DIR:-/opt/comfyui}/main.py" --listen 127.0.0.1 --port "$UPSTREAM"
  --extra-model-paths-config "$ETC/extra_model_paths.yaml"
  --output-directory "$NAS_DIR/comfyui-output")
front=(nginx -c "$RUN_DIR/nginx.conf" -g "daemon off;")
if [ "${SDPROV_DRY_RUN:-}" = 1 ]; then
  printf '%s\n' "${comfy[@]}" -- "${front[@]}"
  exit 0
fi
"${comfy[@]}" &
"${front[@]}" &
# Either one ending ends the container, so FC or Docker restarts it whole.
wait -n
exit 1
