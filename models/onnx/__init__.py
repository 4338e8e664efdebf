"""Exported ONNX models with their cards."""
