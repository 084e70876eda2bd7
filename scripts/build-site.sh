#!/usr/bin/env bash
# Builds the browser side into target/site: the hydrate WASM and its JS glue (wasm-bindgen, then
# wasm-opt), the Tailwind CSS, and the static files in public/. This is what `cargo leptos build`
# does, by hand (shared/BUILD.md), so a fresh machine does not need cargo-leptos.
set -euo pipefail
cd "$(dirname "$0")/.."

SITE=target/site
PKG=$SITE/pkg
FRONT_TARGET_DIR=${FRONT_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/front}
mkdir -p "$PKG"

echo "==> frontend (wasm32, wasm-release)"
cargo build -p frontend --lib --target wasm32-unknown-unknown --profile wasm-release --target-dir "$FRONT_TARGET_DIR"
RAW="$FRONT_TARGET_DIR/wasm32-unknown-unknown/wasm-release/frontend.wasm"

SUM=$(sha256sum "$RAW" | cut -d' ' -f1)
if [ "$(cat "$PKG/.source.sha256" 2>/dev/null)" != "$SUM" ] || [ ! -f "$PKG/portcullis.wasm" ]; then
  echo "==> wasm-bindgen + wasm-opt"
  wasm-bindgen --target web --no-typescript --out-name portcullis --out-dir "$PKG" "$RAW"
  mv "$PKG/portcullis_bg.wasm" "$PKG/portcullis.wasm"
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$PKG/portcullis.wasm" -o "$PKG/portcullis.wasm"
  echo "$SUM" > "$PKG/.source.sha256"
fi

echo "==> tailwindcss"
tailwindcss --input style/main.css --output "$PKG/portcullis.css" --minify 2>/dev/null
cp -r public/. "$SITE/"
ls -l "$PKG" | awk 'NR>1 {print "    " $5 "\t" $9}'
