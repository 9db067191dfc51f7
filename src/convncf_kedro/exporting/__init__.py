"""From a trained PyTorch model to ONNX graphs: the export itself (checked against PyTorch) and the INT8 variant.
The only package here that needs torch and ONNX Runtime together; serving needs ONNX Runtime alone."""
