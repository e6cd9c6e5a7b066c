"""The compiled hot loops of the emulator: the interpreter (_run), one kernel over a whole schedule,
and the MXM's arithmetic (_work), which it hands over as jobs, on a second thread or in batches.

It takes only arrays, prepared and validated by lpu.machine; streams are kept as time-space
waves (no per-cycle shifting), and every hazard check rides on the lookups the work needs anyway.
"""

from __future__ import annotations

import math

import numpy as np

from lpu._jit import (
    cpu_relax,
    high_bit,
    load_acquire,
    low_bit,
    njit,
    prefetch_row,
    store_release,
)
from lpu._simd import (
    group_len,
    matvec_f16x1,
    matvec_f16x4,
    matvec_i8x1,
    matvec_i8x4,
    transpose_f16,
    transpose_i8,
)
from lpu.isa.dtypes import bf16_from_f32_bits, half_from_f32_bits

# Instruction classes (column C_CLS), set from the ISA table by lpu.machine.
K_READ, K_WRITE, K_GATHER, K_SCATTER = 1, 2, 3, 4
K_VBIN, K_VIMM, K_VUN, K_CVT = 5, 6, 7, 8
K_LW, K_IW, K_MV, K_ACC = 9, 10, 11, 12
K_SHIFT, K_ROTATE, K_PERMUTE, K_DISTRIBUTE, K_TRANSPOSE, K_REDUCE = 13, 14, 15, 16, 17, 18

# Columns of the decoded-instruction matrix.
(C_CLS, C_SUB, C_DT, C_DT2, C_A, C_B, C_Z, C_ADDR, C_STEP, C_IMM, C_N, C_ROW, C_SLOT, C_ADD,
 C_MAP, C_SEG, C_SG, C_STRIDE, C_LAT) = range(19)
N_COLS = 19

# Dtype codes (as in the ISA table) and their bytes.
DT_I8, DT_I32, DT_F16, DT_BF16, DT_F32 = 0, 1, 2, 3, 4

# Hazard codes returned by the kernel.
H_EMPTY, H_COLLISION, H_BANK, H_BUSY, H_NO_WEIGHTS, H_ACC_NOT_READY, H_ACC_TYPE, H_ADDR = range(
    1, 9)
H_WEIGHTS_NOT_READY = 9

NEVER = -(1 << 62)

# MXM work handed from the interpreter to the worker (see _work): job kinds, and the fields of
# a job's header row.
J_LW, J_MV = 1, 2
(JF_KIND, JF_PLANE, JF_BUF, JF_G, JF_ROW0, JF_NROWS, JF_DT, JF_SLOT, JF_ADD) = range(9)
# ctl, one cache line per writer so the two threads do not contend: jobs posted (interpreter);
# jobs done (worker); stop (the worker drains and returns); then the interpreter's own: threaded
# (0: no worker thread), byte-ring rows used since the ring was last drained, the jobs-done count
# it last saw, and where it stopped for jobs to be done (H_JOBS): the jobs it needs done, its
# next instance, pending-write ring head and tail, next read-log entry
CT_POSTED, CT_DONE, CT_STOP, CT_THREADED, CT_BYTES, CT_SEEN = 0, 8, 16, 24, 25, 26
CT_NEED, CT_I, CT_HEAD, CT_TAIL, CT_NLOG = 32, 33, 34, 35, 36
H_JOBS = 100  # not a hazard: the interpreter stopped so that jobs can be done (see _work)


@njit
def _dt_bytes(dt: int) -> int:
    if dt == DT_I8:
        return 1
    if dt == DT_F16 or dt == DT_BF16:
        return 2
    return 4


@njit
def _copy(dst, src):
    """dst[:] = src for two 1-D arrays of one length (an explicit loop: numba's slice
    assignment brings broadcasting code that costs seconds of JIT compile)."""
    for l in range(dst.shape[0]):
        dst[l] = src[l]


@njit
def _wave(d: int, stage: int, cycle: int, hop: int) -> int:
    return cycle - stage * hop if d == 0 else cycle + stage * hop


@njit
def _claim(tag, src, field, stage, cycle, hop, word) -> int:
    """Make stream `field` (dir<<5|id) at `stage` carry a new value landing at `cycle`: its
    bytes are SRAM word `word` (by reference) or, with word -1, the entry's own bytes, which
    the caller fills. Returns the entry's ring slot, or -1 when the entry is taken (collision).

    tag[d, s, slot] holds one wave and a bit per stage written on it: a slot's older wave is
    dead before a newer one can reach it (the ring outlasts a value's trip plus any latency),
    so the first write of a new wave clears the bits."""
    d = field >> 5
    s = field & 31
    w = _wave(d, stage, cycle, hop)
    slot = w & (tag.shape[2] - 1)
    bit = np.int64(1) << stage
    if tag[d, s, slot, 0] != w:
        tag[d, s, slot, 0] = w
        tag[d, s, slot, 1] = bit
    elif tag[d, s, slot, 1] & bit:
        return -1
    else:
        tag[d, s, slot, 1] |= bit
    src[d, s, slot, stage] = word
    return slot


@njit
def _swrite(tag, val, src, mem2, field, stage, cycle, hop, vec) -> int:
    """Put a vector on stream `field` (dir<<5|id) at `stage`, landing at `cycle`."""
    slot = _claim(tag, src, field, stage, cycle, hop, -1)
    if slot < 0:
        return H_COLLISION
    _copy(val[field >> 5, field & 31, slot, stage], vec)
    return 0


@njit
def _swrite_ref(tag, src, field, stage, cycle, hop, word) -> int:
    """Put SRAM word `word` on a stream by reference: no bytes move until someone reads it."""
    return H_COLLISION if _claim(tag, src, field, stage, cycle, hop, word) < 0 else 0


@njit
def _materialize(src, val, mem2, word, head, log, since):
    """SRAM word `word` is about to be overwritten: copy it into every stream entry that still
    refers to it, so values already on a stream keep what was read. The entries are found
    through the read log (newest first), back to cycle `since`."""
    NS, RW, NP = src.shape[1], src.shape[2], src.shape[3]
    j = head[word]
    last = log[3, j] if j >= 0 else 0
    for _ in range(log.shape[1]):  # bounded: a recycled log slot can never loop forever
        if j < 0 or log[0, j] != word or log[3, j] < since or log[3, j] > last:
            return
        e = log[1, j]
        p = e % NP
        slot = (e // NP) % RW
        s = (e // (NP * RW)) % NS
        d = e // (NP * RW * NS)
        if src[d, s, slot, p] == word:
            _copy(val[d, s, slot, p], mem2[word])
            src[d, s, slot, p] = -1
        last = log[3, j]
        j = log[2, j]


@njit
def _sfind(tag, field, stage, cycle, hop) -> int:
    """Stage of the live writer of stream `field` seen at `stage` in `cycle`, or -1 (empty):
    the nearest stage written on its wave, upstream of the reader or at it."""
    d = field >> 5
    s = field & 31
    w = _wave(d, stage, cycle, hop)
    slot = w & (tag.shape[2] - 1)
    if tag[d, s, slot, 0] != w:
        return -1
    m = tag[d, s, slot, 1]
    if d == 0:  # eastward: writers at stages <= stage, the highest wins
        m &= (np.int64(2) << stage) - 1
        return high_bit(m) if m != 0 else -1
    m &= -(np.int64(1) << stage)  # westward: stages >= stage, the lowest wins
    return low_bit(m) if m != 0 else -1


@njit
def _entry_word(src, field, stage, cycle, hop, p) -> int:
    """The SRAM word the entry of stream `field` written at stage p holds by reference (found by
    _sfind for a reader at `stage` in `cycle`), or -1 when it holds its own bytes."""
    slot = _wave(field >> 5, stage, cycle, hop) & (src.shape[2] - 1)
    return src[field >> 5, field & 31, slot, p]


@njit
def _bytes_at(val, src, mem2, field, stage, cycle, hop, p):
    """The bytes of the entry of stream `field` written at stage p (found by _sfind for a
    reader at `stage` in `cycle`): its SRAM word when it holds one by reference, else its own."""
    d = field >> 5
    s = field & 31
    k = _entry_word(src, field, stage, cycle, hop, p)
    if k >= 0:
        return mem2[k]
    return val[d, s, _wave(d, stage, cycle, hop) & (val.shape[2] - 1), p]


@njit
def _sread(tag, val, src, mem2, field, stage, cycle, hop, out) -> int:
    """Copy the live value of stream `field` at `stage` in `cycle` into out; H_EMPTY if none."""
    p = _sfind(tag, field, stage, cycle, hop)
    if p < 0:
        return H_EMPTY
    _copy(out, _bytes_at(val, src, mem2, field, stage, cycle, hop, p))
    return 0


@njit
def _job(jb, kind, p, buf, dt):
    """Fill in the fields every job has (its header row jb); returns jb for the rest."""
    jb[JF_KIND] = kind
    jb[JF_PLANE] = p
    jb[JF_BUF] = buf
    jb[JF_DT] = dt
    return jb


@njit
def _lw(tag, val, sref, mem2, a, g, nrows, row0, st, t, hop, wflag, srcs, bring, ctl) -> tuple:
    """The interpreter's half of lw: find the nrows rows (g byte planes each: int8 or fp16) on
    streams a.. and say in srcs where each plane's bytes are for the worker (_work): SRAM word
    w >= 0 when every plane of its group of rows (8 when aligned, else 1: as the worker
    transposes them) is one by reference that this program never writes, so it still holds them
    when the worker gets there; else -1 - b, row b of the byte ring, copied now (the caller
    made room for nrows * g rows). Returns (hazard, the empty stream's field)."""
    L = mem2.shape[1]
    rr = 0
    while rr < nrows:
        n = group_len(row0 + rr, nrows - rr, L)
        f = (a & 32) | ((a & 31) + rr * g)
        k0 = rr * g
        by_ref = True
        for k in range(n * g):  # every plane must be on its stream
            p = _sfind(tag, f + k, st, t, hop)
            if p < 0:
                return H_EMPTY, f + k
            w = _entry_word(sref, f + k, st, t, hop, p)
            srcs[k0 + k] = w
            by_ref = by_ref and w >= 0 and wflag[w] == 0
        if not by_ref:  # copy the group's planes into the byte ring
            b0 = ctl[CT_BYTES]
            _read_group(tag, val, sref, mem2, f, n * g, st, t, hop, bring[b0:b0 + n * g])
            for k in range(n * g):
                srcs[k0 + k] = -1 - (b0 + k)
            ctl[CT_BYTES] = b0 + n * g
        rr += n
    return 0, 0


@njit(inline="always")  # one call site: compiled into _work only
def _cached_group(tc, idx, n, dt) -> int:
    """The row of the shared copies' pool holding the transposed group whose byte planes are
    SRAM words idx[:n] (loaded as dt), or -1 when none is kept."""
    tc_slot, tc_key = tc[0], tc[1]
    s = tc_slot[idx[0]]
    if s < 0 or tc_key[s, 0] != dt:
        return -1
    for k in range(n):
        if tc_key[s, 2 + k] != idx[k]:
            return -1
    return tc_key[s, 1]


@njit(inline="always")  # one call site: compiled into _work only
def _keep_group(tc, idx, n, dt, pool_rows) -> int:
    """A new pool row for the group on SRAM words idx[:n], registered under its first word, or
    -1 when that word already keys another group or the pool is full."""
    tc_slot, tc_key, tc_has, tc_n = tc
    k16 = 1 if n == 16 else 2  # the counter of this dtype's rows
    row = tc_n[3] + tc_n[k16]
    if tc_slot[idx[0]] >= 0 or tc_n[0] >= tc_key.shape[0] or row >= pool_rows:
        return -1
    s = tc_n[0]
    tc_n[0] = s + 1
    tc_n[k16] += 1
    tc_key[s, 0] = dt
    tc_key[s, 1] = row
    for k in range(n):
        tc_key[s, 2 + k] = idx[k]
        tc_has[idx[k]] = 1
    tc_slot[idx[0]] = s
    return row


@njit(inline="always")  # one call site: compiled into _work only
def _lw_rows(mem2, bring, srcs, g, nrows, row0, pool8, pool16, gi8, gi16, own0, rdt, dt, idx,
             tc):
    """The worker's half of lw: rows row0.. from where srcs says (see _lw) into the staging
    buffer's transposed groups of 8 (lpu._simd): an aligned run of 8 rows is transposed 16 lanes
    a step, any other row lane by lane. idx: scratch for 16 row indices.

    Group q of the buffer is row gi[q] of its dtype's pool: the buffer's own row (own0 + q),
    or a shared transposed copy of SRAM words the program never writes (the weights). An
    aligned group read by reference from such words is transposed once into a shared row and
    found there by every later lw of the same words, in this run and the next ones (until
    lpu.machine drops the copies because the words may have changed); a row written lane by
    lane first takes its group back into the buffer's own row."""
    L = mem2.shape[1]
    rr = 0
    while rr < nrows:
        row = row0 + rr
        q = row // 8
        own = own0 + q
        n = group_len(row, nrows - rr, L)
        k0 = rr * g
        ref = srcs[k0] >= 0  # the same for every plane of a group
        for k in range(n * g):
            idx[k] = srcs[k0 + k] if ref else -1 - srcs[k0 + k]
        rows = mem2 if ref else bring
        if n == 8:
            at = _cached_group(tc, idx, 8 * g, dt) if ref else -1
            if at < 0:
                at = _keep_group(tc, idx, 8 * g, dt, pool8.shape[0] if g == 1
                                 else pool16.shape[0]) if ref else -1
                if at < 0:
                    at = own
                if g == 1:
                    transpose_i8(rows, idx, pool8[at])
                else:
                    transpose_f16(rows, idx, pool16[at])
            if g == 1:
                gi8[q] = at
            else:
                gi16[q] = at
        else:
            j = row % 8
            lo = rows[idx[0]]
            if g == 1:
                if gi8[q] != own:  # the group's other rows stay as they were
                    _copy(pool8[own], pool8[gi8[q]])
                    gi8[q] = own
                o8 = pool8[own]
                for c in range(L):
                    o8[8 * c + j] = lo[c]
            else:
                if gi16[q] != own:
                    _copy(pool16[own], pool16[gi16[q]])
                    gi16[q] = own
                hi = rows[idx[1]]
                o16 = pool16[own]
                for c in range(L):
                    o16[8 * c + j] = np.uint16(lo[c]) | (np.uint16(hi[c]) << np.uint16(8))
        for k in range(n):
            rdt[row + k] = dt
        rr += n


@njit
def _row_in_order(pool8, pool16, gi8, gi16, rdt, r, x, y, f16f):
    """y[r] for one row, from the buffer its dtype keeps it in, summed in lane order."""
    acc = np.float32(0.0)
    j = r % 8
    if rdt[r] == DT_F16:
        o16 = pool16[gi16[r // 8]]
        for c in range(x.shape[0]):
            acc += f16f[o16[8 * c + j]] * x[c]
    else:
        o8 = pool8[gi8[r // 8]].view(np.int8)
        for c in range(x.shape[0]):
            acc += np.float32(o8[8 * c + j]) * x[c]
    y[r] = acc


@njit(inline="always")  # one call site: compiled into _work only
def _matvec_rows(pool8, pool16, gi8, gi16, rdt, x, y, f16f):
    """y = W @ x in fp32, each row summed in lane order, 8 rows per vector operation where a
    group of 8 rows has one dtype (int8 rows in pool8, fp16 rows in pool16, group q at row
    gi[q] of each; rows never loaded are zero in both)."""
    L = y.shape[0]
    n16 = 0
    for r in range(L):
        if rdt[r] == DT_F16:
            n16 += 1
    G = L // 8
    g = 0
    while g < G:
        if g + 4 <= G and (n16 == 0 or n16 == L):
            if n16 == 0:
                matvec_i8x4(pool8, gi8, g, x, y)
            else:
                matvec_f16x4(pool16, gi16, g, x, y)
            g += 4
            continue
        k16 = 0
        for j in range(8):
            if rdt[8 * g + j] == DT_F16:
                k16 += 1
        if k16 == 0:
            matvec_i8x1(pool8, gi8, g, x, y)
        elif k16 == 8:
            matvec_f16x1(pool16, gi16, g, x, y)
        else:
            for j in range(8):
                _row_in_order(pool8, pool16, gi8, gi16, rdt, 8 * g + j, x, y, f16f)
        g += 1
    for r in range(8 * G, L):
        _row_in_order(pool8, pool16, gi8, gi16, rdt, r, x, y, f16f)


@njit(inline="always")  # one call site: compiled into _work only
def _matvec_i8(pool8, gi8, x32, y):
    """int8 weights (transposed groups of 8 rows) x int8 activations (as int32), summed exactly
    in int32 (|sum| <= 320 * 128 * 128 < 2^31, so any order gives the same bits); y gets the
    sums as fp32, exact because |sum| < 2^24."""
    L = y.shape[0]
    for r in range(L):
        o = pool8[gi8[r // 8]].view(np.int8)
        j = r % 8
        acc = np.int32(0)
        for c in range(L):
            acc += np.int32(o[8 * c + j]) * x32[c]
        y[r] = np.float32(acc)


@njit
def _has_row_of(rowdt, dt) -> bool:
    for r in range(rowdt.shape[0]):
        if rowdt[r] == dt:
            return True
    return False


@njit
def _bits_to_values(bits, dt, u32, iv, f16tab):
    """Element bits -> fp32 bits in u32 (float types; view it as float32) or int64 in iv."""
    L = bits.shape[0]
    for l in range(L):
        b = bits[l]
        if dt == DT_F32:
            u32[l] = b
        elif dt == DT_F16:
            u32[l] = f16tab[b]  # exact table of all 65536 fp16 values
        elif dt == DT_BF16:
            u32[l] = (b << 16) & 0xFFFFFFFF
        elif dt == DT_I8:
            iv[l] = b - 256 if b >= 128 else b
        else:
            iv[l] = b - (1 << 32) if b >= (1 << 31) else b


@njit
def _store_once(zd, dt, fz, fzu, l):
    """fz[l] = the binary64 value zd as fp32, such that encoding fz[l] as dt (round to nearest
    even) rounds zd only once: exactly for f32; for f16 and bf16 zd is rounded to odd in fp32
    first (24 bits >= their 11 or 8 + 2, so the second rounding gives the correctly rounded
    result). Without it, exp of an f16 could differ from the correctly rounded value."""
    f = np.float32(zd)
    fz[l] = f
    if dt != DT_F32 and not math.isnan(zd) and np.float64(f) != zd:
        if abs(np.float64(f)) > abs(zd):
            fzu[l] -= np.uint32(1)  # truncate: one step toward zero (sign-magnitude bits)
        fzu[l] |= np.uint32(1)


@njit
def _encode_floats(fz, dt, out_bits):
    """float32 values -> element bits of a float dtype (round to nearest even). Every NaN
    becomes the type's one quiet NaN (payloads and signs would otherwise depend on which operand
    the host CPU propagates, so results could differ between builds)."""
    u = fz.view(np.uint32)
    for l in range(fz.shape[0]):
        b = np.int64(u[l])
        if (b & 0x7FFFFFFF) > 0x7F800000:
            out_bits[l] = 0x7FC00000 if dt == DT_F32 else (0x7E00 if dt == DT_F16 else 0x7FC0)
        elif dt == DT_F32:
            out_bits[l] = b
        elif dt == DT_F16:
            out_bits[l] = half_from_f32_bits(b)
        else:
            out_bits[l] = bf16_from_f32_bits(b)


@njit
def _int_wrap(v, dt) -> int:
    if dt == DT_I8:
        v &= 0xFF
        return v - 256 if v >= 128 else v
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= (1 << 31) else v


@njit
def _int_sat(v, dt) -> int:
    lo, hi = (-128, 127) if dt == DT_I8 else (-(1 << 31), (1 << 31) - 1)
    return min(max(v, lo), hi)


@njit
def _read_group(tag, val, src, mem2, field, g, stage, cycle, hop, planes) -> int:
    """Read g consecutive streams (one element type) into planes[0:g]; first hazard or 0."""
    d = field & 32
    s0 = field & 31
    for j in range(g):
        h = _sread(tag, val, src, mem2, d | (s0 + j), stage, cycle, hop, planes[j])
        if h:
            return h
    return 0


@njit
def _write_group(tag, val, src, mem2, field, g, stage, cycle, hop, planes) -> int:
    d = field & 32
    s0 = field & 31
    for j in range(g):
        h = _swrite(tag, val, src, mem2, d | (s0 + j), stage, cycle, hop, planes[j])
        if h:
            return h
    return 0


@njit
def _read_bits(tag, val, src, mem2, field, g, stage, cycle, hop, bits) -> int:
    """Element bits of g consecutive streams (one element type) at `stage` in `cycle`, taken
    straight from where each byte plane lives (an SRAM word or a stream entry): no copies."""
    L = bits.shape[0]
    for j in range(g):
        f = (field & 32) | ((field & 31) + j)
        p = _sfind(tag, f, stage, cycle, hop)
        if p < 0:
            return H_EMPTY
        row = _bytes_at(val, src, mem2, f, stage, cycle, hop, p)
        if j == 0:
            for l in range(L):
                bits[l] = np.int64(row[l])
        else:
            sh = 8 * j
            for l in range(L):
                bits[l] |= np.int64(row[l]) << sh
    return 0


@njit
def _write_bits(tag, val, src, field, g, stage, cycle, hop, bits) -> int:
    """Put element bits on g consecutive streams at `stage`, landing at `cycle`, one byte plane
    per stream, written straight into the stream entries."""
    L = bits.shape[0]
    for j in range(g):
        f = (field & 32) | ((field & 31) + j)
        slot = _claim(tag, src, f, stage, cycle, hop, -1)
        if slot < 0:
            return H_COLLISION
        dst = val[f >> 5, f & 31, slot, stage]
        sh = 8 * j
        for l in range(L):
            dst[l] = (bits[l] >> sh) & 0xFF
    return 0


@njit
def _is_float(dt) -> bool:
    return dt == DT_F16 or dt == DT_BF16 or dt == DT_F32


@njit
def _fmax(x, y):
    if math.isnan(x):
        return x
    if math.isnan(y):
        return y
    return max(x, y)


@njit
def _fmin(x, y):
    if math.isnan(x):
        return x
    if math.isnan(y):
        return y
    return min(x, y)


@njit
def _vxm_binary(op, dt, fa, ia, ba, fb, ib, bb, fz, out_bits) -> int:
    """One VXM ALU op over all lanes; returns the output dtype. Results land as element bits in
    out_bits (float results are computed in fp32 in fz, then rounded to the dtype)."""
    L = out_bits.shape[0]
    isf = _is_float(dt)
    mask = (1 << (8 * _dt_bytes(dt))) - 1
    if op >= 10:  # compares produce an i32 mask
        for l in range(L):
            if isf:
                x, y = fa[l], fb[l]
                r = (x == y) if op == 10 else ((x < y) if op == 11 else (x <= y))
            else:
                u, v = ia[l], ib[l]
                r = (u == v) if op == 10 else ((u < v) if op == 11 else (u <= v))
            out_bits[l] = 0xFFFFFFFF if r else 0
        return DT_I32
    if op == 5 or op == 6 or op == 7:  # raw bits, any type
        for l in range(L):
            if op == 5:
                out_bits[l] = (ba[l] & bb[l]) & mask
            elif op == 6:
                out_bits[l] = (ba[l] | bb[l]) & mask
            else:
                out_bits[l] = (ba[l] ^ bb[l]) & mask
        return dt
    if isf:
        for l in range(L):
            x = fa[l]
            y = fb[l]
            if op == 0:
                fz[l] = x + y
            elif op == 1:
                fz[l] = x - y
            elif op == 2:
                fz[l] = x * y
            elif op == 3:
                fz[l] = _fmax(x, y)
            else:
                fz[l] = _fmin(x, y)
        _encode_floats(fz, dt, out_bits)
        return dt
    for l in range(L):
        u = ia[l]
        v = ib[l]
        if op == 0:
            z = u + v
        elif op == 1:
            z = u - v
        elif op == 2:
            z = u * v
        elif op == 3:
            z = max(u, v)
        elif op == 4:
            z = min(u, v)
        elif op == 8:
            z = u << (v & 31)
        else:
            z = u >> (v & 31)
        out_bits[l] = _int_wrap(z, dt) & mask
    return dt


@njit
def _vxm_unary(op, dt, fa, ia, ba, fz, out_bits):
    L = out_bits.shape[0]
    fzu = fz.view(np.uint32)
    if _is_float(dt) and op <= 2:  # mov, neg, abs act on the bits (IEEE: NaN payloads kept)
        sign = np.int64(1) << (8 * _dt_bytes(dt) - 1)
        for l in range(L):
            b = ba[l]
            out_bits[l] = b if op == 0 else (b ^ sign if op == 1 else b & ~sign)
        return
    if _is_float(dt):
        for l in range(L):
            x = fa[l]
            if op == 0:
                fz[l] = x
            elif op == 1:
                fz[l] = -x
            elif op == 2:
                fz[l] = abs(x)
            elif op == 3:
                fz[l] = x if (x > 0 or math.isnan(x)) else np.float32(0.0)
            elif op == 4:
                fz[l] = np.float32(1.0) / x
            elif op == 5:
                fz[l] = np.sqrt(x)
            else:  # transcendentals: binary64 libm, rounded once to binary32
                xd = np.float64(x)
                if math.isnan(xd):
                    zd = xd
                elif op == 6:  # past 709 exp overflows binary64 (Python raises; JIT gives inf)
                    zd = math.exp(xd) if xd <= 709.0 else math.inf
                elif op == 7:
                    zd = math.tanh(xd)
                elif op == 8:
                    zd = (1.0 / math.sqrt(xd)) if xd > 0 else (math.inf if xd == 0 else math.nan)
                else:
                    zd = 1.0 / (1.0 + math.exp(-xd)) if xd >= -709.0 else 0.0
                _store_once(zd, dt, fz, fzu, l)
        _encode_floats(fz, dt, out_bits)
        return
    mask = (1 << (8 * _dt_bytes(dt))) - 1
    for l in range(L):
        u = ia[l]
        if op == 0:
            z = u
        elif op == 1:
            z = -u
        elif op == 2:
            z = abs(u)
        else:
            z = max(u, 0)
        out_bits[l] = _int_wrap(z, dt) & mask


@njit
def _round_half_even(x: float) -> int:
    f = math.floor(x)
    diff = x - f
    v = int(f)
    if diff > 0.5 or (diff == 0.5 and (v & 1) == 1):
        v += 1
    return v


@njit
def _convert(src, dst, fa, ia, fz, out_bits):
    L = out_bits.shape[0]
    sf = _is_float(src)
    mask = (1 << (8 * _dt_bytes(dst))) - 1
    if _is_float(dst):
        fzu = fz.view(np.uint32)
        for l in range(L):
            if sf:
                fz[l] = fa[l]  # float -> float: fa is exact, one rounding in the encoding
            else:  # int32 is exact in binary64
                _store_once(np.float64(ia[l]), dst, fz, fzu, l)
        _encode_floats(fz, dst, out_bits)
        return
    for l in range(L):
        if sf:
            x = np.float64(fa[l])
            if math.isnan(x):
                v = 0
            elif x >= 2.0**40:
                v = 1 << 40
            elif x <= -(2.0**40):
                v = -(1 << 40)
            else:
                v = _round_half_even(x)
        else:
            v = ia[l]
        out_bits[l] = _int_sat(v, dst) & mask


@njit(inline="always")  # compiled into _work only
def _accumulate(acc_f, acc_i, p, slot, add, is_int, y):
    """An mv's products into accumulator `slot` of plane p: added (add) or replacing it."""
    for rr in range(y.shape[0]):
        if is_int:
            base = acc_i[p, slot, rr] if add else 0
            acc_i[p, slot, rr] = _int_wrap(base + np.int64(y[rr]), DT_I32)
        else:
            acc_f[p, slot, rr] = acc_f[p, slot, rr] + y[rr] if add else y[rr]


@njit
def _work(ctl, need, jobs, job_src, job_x, bring, mem2, pool8, pool16, gi, rowdt_w, acc_f, acc_i,
          f16tab, wy, widx, tc) -> None:
    """Do the MXM's posted jobs, in order: until `need` are done (no worker thread: the
    interpreter stopped with H_JOBS and lpu.machine calls this, then resumes it), or, need < 0,
    as the worker thread: each job as it is posted, returning once told to stop with none left.
    Its own kernel, apart from _run: the interpreter never runs job code itself."""
    f16f = f16tab.view(np.float32)
    J = jobs.shape[0]
    NG = gi.shape[3]
    done = ctl[CT_DONE]
    posted = done
    while need < 0 or done < need:
        if done == posted:  # read the interpreter's counter only when out of work
            posted = load_acquire(ctl, CT_POSTED)
            if done == posted:
                if need >= 0 or (load_acquire(ctl, CT_STOP) != 0
                                 and done == load_acquire(ctl, CT_POSTED)):
                    break
                cpu_relax()
                continue
        # job j: an lw's transposes (_lw_rows), or an mv's product and accumulation. Jobs run
        # in the order they were posted, so the buffers and accumulators they touch change
        # exactly as in a one-thread run; rowdt_w is the worker's own record of each staged
        # row's dtype
        j = done % J
        p = jobs[j, JF_PLANE]
        b = jobs[j, JF_BUF]
        if jobs[j, JF_KIND] == J_LW:
            _lw_rows(mem2, bring, job_src[j], jobs[j, JF_G], jobs[j, JF_NROWS],
                     jobs[j, JF_ROW0], pool8, pool16, gi[0, p, b], gi[1, p, b],
                     (2 * p + b) * NG, rowdt_w[p, b], jobs[j, JF_DT], widx, tc)
        elif jobs[j, JF_DT] == DT_I8:  # int8 x int8, exact in int32 (and so in any order)
            _matvec_i8(pool8, gi[0, p, b], job_x[j].view(np.int32), wy)
            _accumulate(acc_f, acc_i, p, jobs[j, JF_SLOT], jobs[j, JF_ADD] == 1, True, wy)
        else:
            _matvec_rows(pool8, pool16, gi[0, p, b], gi[1, p, b], rowdt_w[p, b],
                         job_x[j].view(np.float32), wy, f16f)
            _accumulate(acc_f, acc_i, p, jobs[j, JF_SLOT], jobs[j, JF_ADD] == 1, False, wy)
        done += 1
        store_release(ctl, CT_DONE, done)


WS_CTL = 25  # ws[WS_CTL] is ctl
WS_GI = 30  # ws[WS_GI]: the pool row of each buffer's group (see workspace)
WS_TC = 31  # ws[WS_TC:WS_TC + 4]: the shared weight copies (see workspace)


def work_args(ws: tuple, mem2: np.ndarray, f16tab: np.ndarray, need: int) -> tuple:
    """_work's arguments, from the workspace: until `need` jobs are done (-1: the worker)."""
    (_, _, _, _, _, _, _, _, _, _, _, _, pool16, pool8, _, _, _, acc_f, acc_i, _, _, jobs,
     job_src, job_x, bring, ctl, _, rowdt_w, wy, widx, gi, tc_slot, tc_key, tc_has, tc_n) = ws
    return (ctl, need, jobs, job_src, job_x, bring, mem2, pool8, pool16, gi, rowdt_w, acc_f,
            acc_i, f16tab, wy, widx, (tc_slot, tc_key, tc_has, tc_n))


SYNC_BATCH = 64  # without a worker: jobs done in batches this big (measured: 16..128 alike)
JOBS = 256  # the job ring: how far the interpreter may run ahead of the worker


def workspace(n_streams: int, ring_w: int, n_stages: int, lanes: int, n_slices: int,
              n_sram_words: int, planes_n: int, acc_slots: int) -> tuple:
    """The kernel's working arrays (made in Python: allocating inside the kernel costs seconds
    of JIT compile, one specialisation per shape and type). A Machine keeps one for all its runs:
    each run's cycles are offset past the last one's (an epoch), so stream and SRAM bookkeeping
    left from earlier runs can never match; reset_workspace() clears the architectural state."""
    L = lanes
    assert n_stages < 63, "a stream slot keeps its stages as bits of one int64"
    P = 1 << 12  # pending SRAM writes in flight (a ring; all writes share one latency)
    G = -(-L // 8)
    n_own = planes_n * 2 * G
    ws = (
        np.zeros((2, n_streams, ring_w, 2), np.int64),  # tag: wave, stages written (_claim)
        np.empty((2, n_streams, ring_w, n_stages, L), np.uint8),  # val: bytes (stale: unread)
        np.full((2, n_streams, ring_w, n_stages), -1, np.int64),  # sref: SRAM word or -1
        np.full(n_sram_words, -1, np.int64),  # read_head: each word's newest read-log entry
        np.full((4, 1 << 16), -1, np.int64),  # read log: word, stream entry, next, cycle
        np.zeros((2, 16, L), np.uint8),  # planes, out_planes: lane moves and transposes
        np.zeros((3, L), np.int64),  # bits_a, bits_b, out_bits
        np.zeros((3, L), np.uint32),  # ua, ub (fp32 bits of operands a and b), int32 scratch
        np.zeros((2, L), np.int64),  # ia, ib
        np.zeros((1, L), np.float32),  # fz
        np.zeros((3, P), np.int64),  # pending writes: cycle, slice, address
        np.zeros((P, L), np.uint8),  # pending writes: data
        # the weights: two buffers per plane (staging, active), rows in groups of 8, transposed
        # (lpu._simd: row 8g + j, lane c at [g, 8c + j]): int8 rows as bytes, fp16 rows as
        # their bits, each dtype in a pool of group rows. A row is read from where its dtype
        # (rowdt) says; rows never loaded are zero in both. The first n_own rows of a pool are
        # the buffers' own groups; the rest hold shared transposed copies of weights (see
        # _lw_rows), untouched (so unallocated) until used
        np.zeros((n_own + n_sram_words // 16, 8 * L), np.uint16),
        np.zeros((n_own + n_sram_words // 8, 8 * L), np.uint8),
        np.zeros((3, planes_n), np.int64),  # active, installed_at, iw_cycle
        np.zeros((planes_n, 2), np.int64),  # wdt: per [plane, buffer], the dtype of its last lw
        np.zeros((planes_n, 2, L), np.int64),  # rowdt: dtype each staged row was loaded as
        np.zeros((planes_n, acc_slots, L), np.float32),  # acc_f
        np.zeros((planes_n, acc_slots, L), np.int64),  # acc_i
        np.stack([np.full((planes_n, acc_slots), -1, np.int64),  # acc_kind: never written
                  np.full((planes_n, acc_slots), NEVER, np.int64)]),  # acc_ready
        np.full((2, n_slices, 2), NEVER, np.int64),  # bank_write, bank_read
        # MXM jobs (_work): headers, lw row sources, mv activations; the byte ring (lw rows
        # whose bytes must be copied); ctl (CT_*); each accumulator's last mv job; the worker's
        # rowdt; its scratch (y, and row indices)
        np.zeros((JOBS, 16), np.int64),
        np.zeros((JOBS, 2 * L), np.int64),
        np.zeros((JOBS, L), np.uint32),
        np.zeros((max(1024, 2 * L), L), np.uint8),
        np.zeros(40, np.int64),
        np.zeros((planes_n, acc_slots), np.int64),
        np.zeros((planes_n, 2, L), np.int64),
        np.zeros(L, np.float32),
        np.zeros(2 * L, np.int64),
        # gi[dtype: 0 int8, 1 fp16, plane, buffer, group]: the pool row holding each group;
        # the shared copies: the key each SRAM word starts (-1 none); the keys (dtype, pool
        # row, the group's SRAM words); whether a word is in a copy; keys and rows used
        # (keys, fp16 rows, int8 rows, n_own). They last from run to run (drop_copies)
        np.zeros((2, planes_n, 2, G), np.int64),
        np.full(n_sram_words, -1, np.int64),
        np.zeros((n_sram_words // 8 + 1, 18), np.int64),
        np.zeros(n_sram_words, np.uint8),
        np.array([0, 0, 0, n_own], np.int64),
    )
    reset_workspace(ws)
    return ws


def drop_copies(ws: tuple) -> None:
    """Forget the shared transposed copies of weights (SRAM words they came from may change)."""
    tc_slot, tc_key, tc_has, tc_n = ws[WS_TC:WS_TC + 4]
    if tc_n[0]:
        tc_slot[tc_key[:tc_n[0], 2]] = -1
        tc_has[...] = 0
        tc_n[:3] = 0


def reset_workspace(ws: tuple) -> None:
    """A fresh chip's MXM and scratch state, as every run starts (stream and SRAM bookkeeping
    need no reset: the epoch keeps old entries from matching; the shared weight copies stay)."""
    (_, _, _, _, _, pl3, bits3, u2, i2, f2, _, _, pool16, pool8, pst, bst, rowdt, acc_f, acc_i,
     acc2, _, _, _, _, _, ctl, last_mv, rowdt_w, _, _, gi, _, _, _, tc_n) = ws
    n_own = tc_n[3]
    for a in (pl3, bits3, u2, i2, f2, pool16[:n_own], pool8[:n_own], acc_f, acc_i, ctl):
        a[...] = 0
    gi[...] = np.arange(n_own).reshape(gi.shape[1:])  # every group in its buffer's own row
    last_mv[...] = -1
    rowdt_w[...] = -1
    pst[0] = 0  # active buffer
    pst[1] = -1  # installed_at: nothing installed
    pst[2] = NEVER  # iw_cycle
    bst[...] = -1  # wdt: nothing loaded
    rowdt[...] = -1  # never loaded (zero bytes: 0.0 as any type)
    acc2[0] = -1  # acc_kind: never written
    acc2[1] = NEVER  # acc_ready


@njit
def _run(cycle, epoch, row_of, logme, wflag, queue, rep, F, q_stage, q_index, mem2, n_slices,
         maps, hop, bank_words, lanes_per_superlane, stop_cycle, busy, f16tab, ws):
    """Run instances in order. Returns (status, instance, event cycle, detail a, detail b, done).

    cycle: each instance's issue cycle; the run sees cycle + epoch (all event cycles returned
    include it). queue, rep: the schedule's int32 columns, as they are. logme: uint8 per
    instance, 1 for a read whose word the program may overwrite (see _materialize). wflag: uint8
    per SRAM word, 1 if the program may write it.

    The interpreter does every check and posts the MXM's arithmetic (lw transposes, mv
    products) as jobs for _work; it needs them done only where it reads an accumulator, its job
    ring is full or its byte ring must be drained. With a worker thread (ctl says threaded) it
    waits there; without one it returns H_JOBS, and lpu.machine runs _work and calls it again:
    it resumes where it stopped (ctl keeps its place).

    mem2: uint8 [words * slices, L], SRAM word (slice, addr) at row addr * n_slices + slice.
    busy: int64 [queues] (out): instances issued per queue. f16tab: uint32 [65536], the fp32
    bits of every fp16 value. ws: the arrays from workspace().
    """
    (tag, val, sref, read_head, read_log, pl3, bits3, u2, i2, f2, pend_i, pend_data, _, _, pst,
     bst, rowdt, acc_f, acc_i, acc2, banks, jobs, job_src, job_x, bring, ctl, last_mv, _, _,
     _, _, _, _, tc_has, _) = ws
    J = jobs.shape[0]
    B = bring.shape[0]
    L = mem2.shape[1]
    n = cycle.shape[0]
    ring_w = tag.shape[2]
    n_words = mem2.shape[0] // n_slices
    planes, out_planes = pl3[0], pl3[1]
    bits_a, bits_b, out_bits = bits3[0], bits3[1], bits3[2]
    ua, ub = u2[0], u2[1]  # fp32 bits of operand a; fa views the same memory
    fa = ua.view(np.float32)
    fb = ub.view(np.float32)
    ia, ib = i2[0], i2[1]
    fz = f2[0]
    P = pend_data.shape[0]
    pend_cycle, pend_slice, pend_addr = pend_i[0], pend_i[1], pend_i[2]
    head = ctl[CT_HEAD]
    tail = ctl[CT_TAIL]
    n_log = ctl[CT_NLOG]  # next read-log entry (a ring: the window it must cover is ~100 cycles)
    bank_write, bank_read = banks[0], banks[1]  # last cycle each bank was written / read
    # MXM: two weight buffers per plane [r, c]; which one is active
    active = pst[0]
    installed_at = pst[1]  # cycle the active buffer is usable, -1 none
    iw_cycle = pst[2]
    wdt = bst
    acc_kind = acc2[0]  # -1 never written, 0 float, 1 int
    acc_ready = acc2[1]
    four = np.int64(4)  # not a literal: one compiled specialisation of the helpers, not two
    sixteen = np.int64(16)

    post = -1  # the ring slot of a job this instruction filled in
    for i in range(ctl[CT_I], n):
        t = cycle[i] + epoch
        if t >= stop_cycle:
            return 0, i, t, 0, 0, i
        # SRAM writes whose landing cycle has come
        while head != tail and pend_cycle[head] <= t:
            word = pend_addr[head] * n_slices + pend_slice[head]
            since = pend_cycle[head] - 2 * ring_w
            j = read_head[word]
            if j >= 0 and read_log[0, j] == word and read_log[3, j] > since:  # on a stream?
                _materialize(sref, val, mem2, word, read_head, read_log, since)
            _copy(mem2[word], pend_data[head])
            head = (head + 1) & (P - 1)
        r = row_of[i]
        q = queue[i]
        k = rep[i]
        st = q_stage[q]
        cls = F[r, C_CLS]
        lat = F[r, C_LAT]
        # the MXM jobs this instruction needs done first: its accumulator's sums (acc), a free
        # ring slot (lw, mv), room in the byte ring (lw)
        need = 0
        if cls == K_LW or cls == K_MV:
            # a full ring; without a worker, SYNC_BATCH jobs (their rows still in cache)
            need = ctl[CT_POSTED] - (J if ctl[CT_THREADED] == 1 else SYNC_BATCH) + 1
            if cls == K_LW and ctl[CT_BYTES] + F[r, C_N] * _dt_bytes(F[r, C_DT]) > B:
                need = ctl[CT_POSTED]
                ctl[CT_BYTES] = 0
        elif cls == K_ACC:
            need = last_mv[q_index[q], F[r, C_SLOT]] + 1
        while need > ctl[CT_SEEN]:
            ctl[CT_SEEN] = load_acquire(ctl, CT_DONE)
            if need <= ctl[CT_SEEN]:
                break
            if ctl[CT_THREADED] == 0:  # stop here; lpu.machine runs _work, then resumes
                ctl[CT_NEED] = ctl[CT_POSTED]  # all of them: each stop costs a call
                ctl[CT_I] = i
                ctl[CT_HEAD] = head
                ctl[CT_TAIL] = tail
                ctl[CT_NLOG] = n_log
                return H_JOBS, i, 0, 0, 0, i
            cpu_relax()
        busy[q] += 1
        if cls == K_READ or cls == K_GATHER:
            sl = q_index[q]
            if cls == K_READ:
                addr = F[r, C_ADDR] + k * F[r, C_STEP]
            else:
                h = _read_bits(tag, val, sref, mem2, F[r, C_B], four, st, t, hop, bits_b)
                if h:
                    return h, i, t, F[r, C_B], st, i
                idx = bits_b[0] - (1 << 32) if bits_b[0] >= (1 << 31) else bits_b[0]
                addr = F[r, C_ADDR] + F[r, C_STRIDE] * idx
                if addr < 0 or addr >= n_words:
                    return H_ADDR, i, t, addr, sl, i
            bank = 1 if addr >= bank_words else 0  # two banks; addr < 2 * bank_words
            if bank_write[sl, bank] == t:
                return H_BANK, i, t, sl, bank, i
            bank_read[sl, bank] = t
            word = addr * n_slices + sl
            if tc_has[word] == 0:  # a unit will use these bytes some cycles from now, unless
                # they are weights the MXM worker keeps a transposed copy of (_lw_rows)
                prefetch_row(mem2, word)
            h = _swrite_ref(tag, sref, F[r, C_Z], st, t + lat, hop, word)
            if h:
                return h, i, t + lat, F[r, C_Z], st, i
            if logme[i] == 0:  # the program never writes this word
                continue
            # log the read, so an overwrite of the word finds the stream entry at once
            zd = F[r, C_Z] >> 5
            zslot = _wave(zd, st, t + lat, hop) & (ring_w - 1)
            read_log[0, n_log] = word
            read_log[1, n_log] = ((zd * tag.shape[1] + (F[r, C_Z] & 31)) * ring_w + zslot) \
                * sref.shape[3] + st
            read_log[2, n_log] = read_head[word]
            read_log[3, n_log] = t
            read_head[word] = n_log
            n_log = (n_log + 1) & (read_log.shape[1] - 1)
        elif cls == K_WRITE or cls == K_SCATTER:
            sl = q_index[q]
            h = _sread(tag, val, sref, mem2, F[r, C_A], st, t, hop, planes[0])
            if h:
                return h, i, t, F[r, C_A], st, i
            if cls == K_WRITE:
                addr = F[r, C_ADDR] + k * F[r, C_STEP]
            else:
                h = _read_bits(tag, val, sref, mem2, F[r, C_B], four, st, t, hop, bits_b)
                if h:
                    return h, i, t, F[r, C_B], st, i
                idx = bits_b[0] - (1 << 32) if bits_b[0] >= (1 << 31) else bits_b[0]
                addr = F[r, C_ADDR] + F[r, C_STRIDE] * idx
                if addr < 0 or addr >= n_words:
                    return H_ADDR, i, t, addr, sl, i
            bank = 1 if addr >= bank_words else 0  # two banks; addr < 2 * bank_words
            land = t + lat
            if bank_write[sl, bank] == land or bank_read[sl, bank] == land:
                return H_BANK, i, land, sl, bank, i
            bank_write[sl, bank] = land
            nxt = (tail + 1) & (P - 1)
            if nxt == head:  # cannot happen with one write per slice per cycle and P > slices
                return H_BUSY, i, t, sl, 0, i
            pend_cycle[tail] = land
            pend_slice[tail] = sl
            pend_addr[tail] = addr
            _copy(pend_data[tail], planes[0])
            tail = nxt
        elif cls == K_VBIN or cls == K_VIMM or cls == K_VUN or cls == K_CVT:
            dt = F[r, C_DT]
            g = _dt_bytes(dt)
            h = _read_bits(tag, val, sref, mem2, F[r, C_A], g, st, t, hop, bits_a)
            if h:
                return h, i, t, F[r, C_A], st, i
            _bits_to_values(bits_a, dt, ua, ia, f16tab)
            odt = dt
            if cls == K_VBIN:
                h = _read_bits(tag, val, sref, mem2, F[r, C_B], g, st, t, hop, bits_b)
                if h:
                    return h, i, t, F[r, C_B], st, i
                _bits_to_values(bits_b, dt, ub, ib, f16tab)
                odt = _vxm_binary(F[r, C_SUB], dt, fa, ia, bits_a, fb, ib, bits_b, fz, out_bits)
            elif cls == K_VIMM:
                imm = F[r, C_IMM]
                for l in range(L):
                    bits_b[l] = imm
                if dt == DT_I8 or dt == DT_I32:
                    v = imm - (1 << 32) if imm >= (1 << 31) else imm
                    for l in range(L):
                        ib[l] = v
                    # raw-bit ops on i8 use the low byte of the constant
                else:
                    for l in range(L):
                        ub[l] = imm
                    # raw-bit ops see the constant in the dtype's own encoding
                    _encode_floats(fb, dt, bits_b)
                odt = _vxm_binary(F[r, C_SUB], dt, fa, ia, bits_a, fb, ib, bits_b, fz, out_bits)
            elif cls == K_VUN:
                _vxm_unary(F[r, C_SUB], dt, fa, ia, bits_a, fz, out_bits)
            else:
                odt = F[r, C_DT2]
                _convert(dt, odt, fa, ia, fz, out_bits)
            og = _dt_bytes(odt)
            h = _write_bits(tag, val, sref, F[r, C_Z], og, st, t + lat, hop, out_bits)
            if h:
                return h, i, t + lat, F[r, C_Z], st, i
        elif cls == K_LW:
            p = q_index[q]
            if iw_cycle[p] == t:
                return H_BUSY, i, t, p, 0, i
            dt = F[r, C_DT]
            g = _dt_bytes(dt)
            nrows = F[r, C_N]
            a = F[r, C_A]
            stg = 1 - active[p]
            wdt[p, stg] = dt
            row0 = F[r, C_ROW]
            js = ctl[CT_POSTED] % J
            h, f0 = _lw(tag, val, sref, mem2, a, g, nrows, row0, st, t, hop, wflag, job_src[js],
                        bring, ctl)
            if h:
                return h, i, t, f0, st, i
            for rr in range(nrows):
                rowdt[p, stg, row0 + rr] = dt
            jb = _job(jobs[js], J_LW, p, stg, dt)
            jb[JF_G] = g
            jb[JF_ROW0] = row0
            jb[JF_NROWS] = nrows
            post = js
        elif cls == K_IW:
            p = q_index[q]
            active[p] = 1 - active[p]
            installed_at[p] = t + lat
            iw_cycle[p] = t
        elif cls == K_MV:
            p = q_index[q]
            if iw_cycle[p] == t:
                return H_BUSY, i, t, p, 0, i
            if installed_at[p] < 0:
                return H_NO_WEIGHTS, i, t, p, 0, i
            if t < installed_at[p]:
                return H_WEIGHTS_NOT_READY, i, t, p, installed_at[p], i
            dt = F[r, C_DT]
            g = _dt_bytes(dt)
            h = _read_bits(tag, val, sref, mem2, F[r, C_A], g, st, t, hop, bits_a)
            if h:
                return h, i, t, F[r, C_A], st, i
            _bits_to_values(bits_a, dt, ua, ia, f16tab)
            b = active[p]
            slot = F[r, C_SLOT]
            if dt == DT_I8 and (wdt[p, b] != DT_I8 or _has_row_of(rowdt[p, b], DT_F16)):
                return H_ACC_TYPE, i, t, p, -1, i  # int8 activations need int8 weights
            kind = 1 if dt == DT_I8 else 0
            if F[r, C_ADD] == 1 and acc_kind[p, slot] != -1 and acc_kind[p, slot] != kind:
                return H_ACC_TYPE, i, t, p, slot, i
            js = ctl[CT_POSTED] % J
            xj = job_x[js]
            if dt == DT_I8:
                for l in range(L):
                    xj[l] = np.uint32(ia[l] & 0xFFFFFFFF)
            else:
                for l in range(L):
                    xj[l] = ua[l]
            jb = _job(jobs[js], J_MV, p, b, dt)
            jb[JF_SLOT] = slot
            jb[JF_ADD] = F[r, C_ADD]
            last_mv[p, slot] = ctl[CT_POSTED]
            post = js
            acc_kind[p, slot] = kind
            acc_ready[p, slot] = t + lat
        elif cls == K_ACC:
            p = q_index[q]
            slot = F[r, C_SLOT]
            if acc_kind[p, slot] == -1 or t < acc_ready[p, slot]:
                return H_ACC_NOT_READY, i, t, p, slot, i
            if acc_kind[p, slot] == 1:
                for l in range(L):
                    out_bits[l] = acc_i[p, slot, l] & 0xFFFFFFFF
            else:
                accu = acc_f[p, slot].view(np.uint32)
                for l in range(L):  # NaN: the one quiet NaN, as VXM results
                    out_bits[l] = 0x7FC00000 if (accu[l] & 0x7FFFFFFF) > 0x7F800000 else accu[l]
            h = _write_bits(tag, val, sref, F[r, C_Z], four, st, t + lat, hop, out_bits)
            if h:
                return h, i, t + lat, F[r, C_Z], st, i
        elif cls == K_TRANSPOSE:
            h = _read_group(tag, val, sref, mem2, F[r, C_A], sixteen, st, t, hop, planes)
            if h:
                return h, i, t, F[r, C_A], st, i
            for sl in range(L // 16):
                for a_ in range(16):
                    for b_ in range(16):
                        out_planes[a_, 16 * sl + b_] = planes[b_, 16 * sl + a_]
            h = _write_group(tag, val, sref, mem2, F[r, C_Z], sixteen, st, t + lat, hop, out_planes)
            if h:
                return h, i, t + lat, F[r, C_Z], st, i
        elif cls == K_REDUCE:
            dt = F[r, C_DT]
            g = _dt_bytes(dt)
            h = _read_bits(tag, val, sref, mem2, F[r, C_A], g, st, t, hop, bits_a)
            if h:
                return h, i, t, F[r, C_A], st, i
            _bits_to_values(bits_a, dt, ua, ia, f16tab)
            seg = F[r, C_SEG]
            op = F[r, C_SUB]
            isf = dt != DT_I8 and dt != DT_I32
            for s0 in range(0, L, seg):
                s1 = min(s0 + seg, L)  # a last, shorter segment when seg does not divide L
                if isf:
                    accf = fa[s0]
                    for l in range(s0 + 1, s1):
                        x = fa[l]
                        if op == 0:
                            accf = accf + x
                        elif op == 1:
                            if x > accf or math.isnan(x):
                                accf = x
                        else:
                            if x < accf or math.isnan(x):
                                accf = x
                    fz[0] = accf
                    _encode_floats(fz[:1], dt, bits_b[:1])  # scratch: out_bits holds results
                    ob = bits_b[0]
                else:
                    acci = ia[s0]
                    for l in range(s0 + 1, s1):
                        if op == 0:
                            acci = _int_wrap(acci + ia[l], dt)
                        elif op == 1:
                            acci = max(acci, ia[l])
                        else:
                            acci = min(acci, ia[l])
                    ob = acci & ((1 << (8 * g)) - 1)
                for l in range(s0, s1):
                    out_bits[l] = ob
            h = _write_bits(tag, val, sref, F[r, C_Z], g, st, t + lat, hop, out_bits)
            if h:
                return h, i, t + lat, F[r, C_Z], st, i
        else:  # shift, rotate, permute, distribute: lane moves on sg streams
            sg = F[r, C_SG]
            h = _read_group(tag, val, sref, mem2, F[r, C_A], sg, st, t, hop, planes)
            if h:
                return h, i, t, F[r, C_A], st, i
            nsh = F[r, C_N]
            for j in range(sg):
                for l in range(L):
                    if cls == K_SHIFT:
                        src = l - nsh
                        out_planes[j, l] = planes[j, src] if 0 <= src < L else 0
                    elif cls == K_ROTATE:
                        out_planes[j, l] = planes[j, (l - nsh) % L]
                    else:
                        src = maps[F[r, C_MAP], l]
                        out_planes[j, l] = planes[j, src] if src >= 0 else 0
            h = _write_group(tag, val, sref, mem2, F[r, C_Z], sg, st, t + lat, hop, out_planes)
            if h:
                return h, i, t + lat, F[r, C_Z], st, i
        if post >= 0:  # hand the job over (to the worker, or to _work at the next H_JOBS)
            store_release(ctl, CT_POSTED, ctl[CT_POSTED] + 1)
            post = -1
    # land the writes still in flight
    while head != tail:
        _copy(mem2[pend_addr[head] * n_slices + pend_slice[head]], pend_data[head])
        head = (head + 1) & (P - 1)
    return 0, n, 0, 0, 0, n
