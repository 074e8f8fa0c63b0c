#!/usr/bin/env bash
# Re-vendor onnxruntime-web into server/static/ort from the npm registry and
# check the files against SHA256SUMS there (--update: write new sums, after changing VERSION).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=1.30.0
FILES=(ort.wasm.min.mjs ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm)
DEST=server/static/ort
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "onnxruntime-web@$VERSION" >/dev/null && tar xzf "onnxruntime-web-$VERSION.tgz")
for f in "${FILES[@]}"; do cp "$tmp/package/dist/$f" "$DEST/$f"; done
if [ "${1:-}" = "--update" ]; then
  (cd "$DEST" && sha256sum "${FILES[@]}" > SHA256SUMS)
else
  (cd "$DEST" && sha256sum -c --quiet SHA256SUMS)
fi
echo "onnxruntime-web $VERSION in $DEST"
