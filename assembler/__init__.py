"""The assembler and disassembler of the LPU assembly language (docs/assembly.md)."""

if __name__ == "assembler":  # imported from the repository root: not ours (lpu/_shadow.py)
    from lpu._shadow import step_aside

    step_aside(__name__, __file__)

from lpu.assembler.asm import assemble, assemble_file
from lpu.assembler.diagnostics import AssemblyError, Diagnostic
from lpu.assembler.disasm import disassemble, format_instruction

__all__ = ["AssemblyError", "Diagnostic", "assemble", "assemble_file", "disassemble",
           "format_instruction"]
