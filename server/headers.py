"""The headers the page is served with (by the server, and by hosts that read export-web's
_headers file)."""
from __future__ import annotations

# 'wasm-unsafe-eval': the page compiles ONNX Runtime Web's WebAssembly (static/ort/)
CSP = ("default-src 'self'; img-src 'self' data: blob:; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
       "connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# cross-origin isolation: the page's WebAssembly may then use threads (SharedArrayBuffer)
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
