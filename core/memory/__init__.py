"""The memory, fit, time and cost engine: what training one method on one model costs per GPU.

`budget.estimate_training` assembles the answer from small one-job modules: `setup` (the training setup, with
the option records `sharding` and `optimizers`) and `spec` (the step it implies), `step` (one real training step
of the real model on fake tensors) recorded by `trace` (every allocation and free, by category and phase), with
`standins` for what CUDA kernels keep and `quantization`; `profile` fits the traced timelines into exact
polynomials in batch and length and extrapolates them in depth, `steplog` builds the full-depth allocation log
that `allocator` replays for the reserved peak, `cache` keeps profiles on disk (beside the shipped ones) and
`ahead` traces missing ones in worker processes; then `overhead` (CUDA context, NCCL: the device-level peak),
`gpus` (the catalogue) and `throughput` (FLOPs, hours, dollars). `probe` measures what autograd really saves on
CPU; tests/support/accuracy.py compares the two on the tiny configs of tests/support/tiny.py.
"""
