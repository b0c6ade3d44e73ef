"""Wrappers around the ONNX face networks: one small class per model, one public verb."""
