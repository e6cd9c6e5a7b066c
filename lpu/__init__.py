"""lpu: a deterministic, cycle-level emulator of a Groq-style Tensor Streaming Processor.

The machine lives in lpu/, its ISA in lpu.isa, the assembler in lpu.assembler, the compiler in
lpu.kernels, traces in lpu.traces and the HBM-bound GPU model in lpu.gpu.
"""

__version__ = "0.1.0"
