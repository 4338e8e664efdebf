"""ONNX models, their cards and the code that trains them."""
