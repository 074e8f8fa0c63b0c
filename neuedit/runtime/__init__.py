"""The torch-free runtime: states, sketches, schemas, bundle metadata, the graph contract, the
editing core and the ONNX Runtime engine. numpy, pillow and onnxruntime only: what the server and
a deployer install (docs/layout.md)."""
