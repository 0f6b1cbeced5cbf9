"""The memory, fit, time and cost engine: what training one method on one model costs per GPU.

`budget.estimate_training` assembles the answer from small one-job modules: `setup` (the training setup),
`states` (weights, gradients, optimizer bytes), `activations` (what autograd saves, replayed on the symbolic
tape of `symbolic` over the module layout of `layout`), `overhead` (context, fragmentation, transients),
`sharding` (ZeRO/FSDP), `gpus` (the catalogue), `throughput` (FLOPs, hours, dollars). `probe` measures the
ground truth on CPU and `calibration` compares the two on the tiny configs of `tiny`.
"""
