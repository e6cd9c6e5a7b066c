"""Chip presets as data: GroqChip 1 as published (`tsp-v1`) and a small coursework chip (`mini`).

Every figure carries its source; derived quantities (SRAM bytes, bandwidths, peak ops, the stage
floorplan and the list of instruction queues) are computed here, once, for every tool to share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from lpu.errors import LpuError

TSP_PAPER = "paper: Abts et al., ISCA 2020 (Think Fast)"
TSP_BRIEF = "shared/design/tsp.md"


@dataclass(frozen=True)
class Param:
    value: int | float
    source: str


@dataclass(frozen=True)
class Chip:
    """A chip preset. Floorplan, west to east (mirrored about the VXM):

    MXM planes | SXM | MEM slices (far .. near) | VXM | MEM slices (near .. far) | SXM | MXM planes
    """

    name: str
    description: str
    params: dict[str, Param] = field(hash=False, compare=False)

    def __post_init__(self) -> None:
        # chip.superlanes etc. read a parameter's value as a plain attribute: the compiler reads
        # them ~10^6 times a decode step, and a __getattr__ call each time cost ~0.5 s of it
        for key, p in self.params.items():
            object.__setattr__(self, key, p.value)

    # ---- derived geometry -------------------------------------------------------------------
    @cached_property
    def lanes(self) -> int:
        return self.superlanes * self.lanes_per_superlane

    @cached_property
    def skew(self) -> int:
        """Cycles between superlane 0 and the last superlane seeing the same instruction."""
        return self.superlanes - 1

    @cached_property
    def mem_slices(self) -> int:
        return 2 * self.mem_slices_per_hemisphere

    @cached_property
    def mem_stages_per_hemisphere(self) -> int:
        return -(-self.mem_slices_per_hemisphere // self.mem_slices_per_stage)

    @cached_property
    def n_stages(self) -> int:
        # MXM, SXM, MEM stages, VXM, MEM stages, SXM, MXM
        return 2 * (2 + self.mem_stages_per_hemisphere) + 1

    @cached_property
    def vxm_stage(self) -> int:
        return 2 + self.mem_stages_per_hemisphere

    @cached_property
    def sram_bytes(self) -> int:
        return self.mem_slices * self.mem_words * self.lanes

    @cached_property
    def bank_words(self) -> int:
        return self.mem_words // self.mem_banks

    @cached_property
    def addr_bits(self) -> int:
        return (self.mem_words - 1).bit_length()

    def mem_slice_stage(self, hemisphere: str, index: int) -> int:
        """Stage of MEM slice `index` (0 = next to the VXM) in hemisphere 'w' or 'e'."""
        off = 1 + index // self.mem_slices_per_stage
        return self.vxm_stage - off if hemisphere == "w" else self.vxm_stage + off

    @cached_property
    def queues(self) -> tuple[Queue, ...]:
        """Every instruction queue, west to east."""
        out: list[Queue] = []
        p = self.mxm_planes_per_hemisphere
        last = self.n_stages - 1

        def mxm(planes: range, stage: int, hemi: str) -> None:
            for plane in planes:
                for role in ("w", "a", "r"):
                    out.append(Queue(f"mxm{plane}.{role}", "mxm", stage, plane, role, hemi))

        mxm(range(p), 0, "w")
        for i in range(self.sxm_queues_per_hemisphere):
            out.append(Queue(f"sxm.w{i}", "sxm", 1, 0, "", "w"))
        for i in reversed(range(self.mem_slices_per_hemisphere)):
            out.append(Queue(f"mem.w{i}", "mem", self.mem_slice_stage("w", i), i, "", "w"))
        for i in range(self.vxm_queues):
            out.append(Queue(f"vxm.{i}", "vxm", self.vxm_stage, i, "", "c"))
        for i in range(self.mem_slices_per_hemisphere):
            out.append(Queue(f"mem.e{i}", "mem", self.mem_slice_stage("e", i),
                             self.mem_slices_per_hemisphere + i, "", "e"))
        for i in range(self.sxm_queues_per_hemisphere):
            out.append(Queue(f"sxm.e{i}", "sxm", last - 1, 1, "", "e"))
        mxm(range(p, 2 * p), last, "e")
        return tuple(out)

    @cached_property
    def queue_index(self) -> dict[str, int]:
        return {q.name: i for i, q in enumerate(self.queues)}

    def queue(self, name: str) -> Queue:
        try:
            return self.queues[self.queue_index[name]]
        except KeyError:
            raise LpuError(f"chip {self.name} has no queue {name!r}",
                           hint=f"queues look like {self.queues[0].name}, mem.w0, vxm.0, "
                                "sxm.e0; see `lpu info --chip " + self.name + "`") from None

    # ---- derived performance figures ---------------------------------------------------------
    def derived(self) -> dict[str, float]:
        ghz = self.clock_ghz
        lanes = self.lanes
        macs = 2 * self.mxm_planes_per_hemisphere * lanes * lanes
        return {
            "lanes": lanes,
            "vector_bytes": lanes,
            "stages": self.n_stages,
            "queues": len(self.queues),
            "sram_bytes": self.sram_bytes,
            "sram_mib": self.sram_bytes / 2**20,
            # Eq. 2 of ISCA 2020: slices x banks x vector bytes per cycle.
            "sram_bytes_per_cycle": self.mem_slices * self.mem_banks * lanes,
            "sram_tb_per_s": self.mem_slices * self.mem_banks * lanes * ghz * 1e9 / 1e12,
            # Eq. 1: both directions, every stream one vector per cycle.
            "stream_bytes_per_cycle": 2 * self.streams * lanes,
            "stream_tb_per_s": 2 * self.streams * lanes * ghz * 1e9 / 1e12,
            "mxm_macs": macs,
            "peak_int8_tops": 2 * macs * ghz / 1e3,
            "peak_fp16_tflops": 2 * macs * ghz / 1e3 / 4,  # fp16 at a quarter of int8 (paper)
            "vxm_alus": self.vxm_queues * lanes,
            "mxm_feed_bytes_per_cycle": 2 * self.streams * lanes,
        }


@dataclass(frozen=True)
class Queue:
    name: str
    unit: str  # mem, vxm, mxm, sxm
    stage: int  # stream-register stage along the east-west axis (0 = west edge)
    index: int  # MEM slice number (0..slices-1), VXM ALU, MXM plane, SXM hemisphere (0 w, 1 e)
    role: str  # MXM queue role: w (weights), a (activations), r (results)
    hemisphere: str  # w, e, or c (centre)


def _p(value: float, source: str) -> Param:
    return Param(value, source)


TSP_V1 = Chip("tsp-v1", "GroqChip 1 as published (ISCA 2020): 14 nm, 320 lanes, 220 MiB SRAM", {
    "superlanes": _p(20, TSP_PAPER + ": 20 superlanes"),
    "lanes_per_superlane": _p(16, TSP_PAPER + ": 16 lanes per superlane (320-byte vectors)"),
    "streams": _p(32, TSP_PAPER + ": 32 streams per direction"),
    "mem_slices_per_hemisphere": _p(44, TSP_PAPER + ": 88 MEM slices, 44 per hemisphere"),
    "mem_slices_per_stage": _p(4, "third-party: crossing 44 MEM slices takes 11 cycles "
                                  "(GroqAPI comments), i.e. one stream stage per 4 slices"),
    "mem_words": _p(8192, TSP_PAPER + ": 13-bit addresses of 16-byte words per tile, 20 tiles"),
    "mem_banks": _p(2, TSP_PAPER + ": two banks per slice, pseudo-dual-port"),
    "hop_cycles": _p(1, "third-party: 11 cycles across 11 stages (GroqAPI comments)"),
    "mxm_planes_per_hemisphere": _p(2, TSP_PAPER + ": four 320x320 MXM planes"),
    "mxm_acc_slots": _p(4, "assumed: accumulator slots per plane are not published"),
    "vxm_queues": _p(16, TSP_PAPER + ": 16 ALUs per lane in a 4x4 mesh, 16 VXM queues"),
    "sxm_queues_per_hemisphere": _p(14, "press/analyst (tsp.md): 14 SXM queues per hemisphere"),
    "clock_ghz": _p(0.9, "paper: 900 MHz nominal (Groq, ISCA 2020)"),
})

MINI = Chip("mini", "A coursework chip with the same rules: 16 lanes, 8+8 streams, 16 MEM slices", {
    "superlanes": _p(1, "assumed: one superlane so every lane fits on one screen"),
    "lanes_per_superlane": _p(16, "same as tsp-v1"),
    "streams": _p(8, "assumed: 8 per direction, small enough to draw"),
    "mem_slices_per_hemisphere": _p(8, "assumed: 8 slices per hemisphere: 4 stream weights, "
                                       "4 hold activations (an fp32 vector is 4 byte planes)"),
    "mem_slices_per_stage": _p(1, "assumed: one stream stage per slice, so every hop is visible"),
    "mem_words": _p(4096, "assumed: 4096 words per slice (64 KiB), 1 MiB in all"),
    "mem_banks": _p(2, "same as tsp-v1"),
    "hop_cycles": _p(1, "same as tsp-v1"),
    "mxm_planes_per_hemisphere": _p(1, "assumed: one 16x16 plane per hemisphere"),
    "mxm_acc_slots": _p(4, "same as tsp-v1"),
    "vxm_queues": _p(4, "assumed: 4 ALU queues"),
    "sxm_queues_per_hemisphere": _p(2, "assumed: 2 SXM queues per hemisphere"),
    "clock_ghz": _p(0.9, "same as tsp-v1"),
})

CHIPS: dict[str, Chip] = {c.name: c for c in (TSP_V1, MINI)}


def get_chip(name: str) -> Chip:
    try:
        return CHIPS[name]
    except KeyError:
        raise LpuError(f"unknown chip {name!r}; known: {', '.join(CHIPS)}") from None
