"""The training pipeline: splits, metrics, preprocessing parity, quantization, a smoke run, the lab-outcome export."""
