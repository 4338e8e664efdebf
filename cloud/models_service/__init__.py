"""The cloud model service: ETA and demand predictions over HTTP, from the ONNX files and cards.

Other cloud processes call it through `ModelServiceClient`; it loads `models/onnx/<name>/`,
checks each file's sha256 against its card, and reloads a model when its files change.
"""
