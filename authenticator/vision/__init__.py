"""The torch-free vision runtime: decode, quality gate, ONNX scoring, calibrated decisions."""
