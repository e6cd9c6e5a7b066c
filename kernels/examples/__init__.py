"""Example programs: hand-written assembly (*.s) and generated tsp-v1 kernels (tsp_examples)."""
