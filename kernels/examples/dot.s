; dot.s -- s = sum(x * y) for two f32 vectors of 16 lanes, on the `mini` chip.
;
; What it shows: a VXM multiply feeding an SXM reduction on the far east side, and a result
; that comes back west. rsum gives every lane the sum of its segment; with seg = 16 (all lanes)
; every lane of `s` holds the dot product.
;
; Stages (see vadd.s): mem.w3..w0 = 6..9, vxm = 10, mem.e0..e3 = 11..14, sxm.e = 19.
; Timing:
;   x, y: read exactly as in vadd.s; all planes pass the VXM (stage 10) at cycle 5.
;   mul.f32 at cycle 5 -> x*y on e4..e7 at stage 10 at cycle 8 -> stage 19 at cycle 17.
;   rsum.f32 at cycle 17 in sxm.e0 -> the sums on w4..w7 at stage 19 at cycle 17 + 8 = 25.
;   s plane j is on w(4+j); mem.e(3-j) (stage 14-j) writes it at cycle 30 + j; the last
;   word lands at 34, so the program is 35 cycles long.

.chip mini

.const L = 16                                 ; lanes on mini, one segment for rsum

.data x f32 (L) at mem.w3:0 mem.w2:0 mem.w1:0 mem.w0:0 = [
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0]
.data y f32 (L) at mem.e3:0 mem.e2:0 mem.e1:0 mem.e0:0 = [
    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
.data s f32 (L) at mem.e3:1 mem.e2:1 mem.e1:1 mem.e0:1   ; 36 + 58 = 94 in every lane

; x plane j from mem.w(3-j) at cycle j on e(j); y plane j from mem.e(3-j) at cycle j on w(j).
.queue mem.w3
    @0 read x, e0, 0
.queue mem.w2
    @1 read x, e1, 0
.queue mem.w1
    @2 read x, e2, 0
.queue mem.w0
    @3 read x, e3, 0
.queue mem.e3
    @0 read y, w0, 0
.queue mem.e2
    @1 read y, w1, 0
.queue mem.e1
    @2 read y, w2, 0
.queue mem.e0
    @3 read y, w3, 0

.queue vxm.0
t_mul:
    @5 mul.f32 e0, w0, e4                     ; product on e4..e7 at cycle 8, stage 6

.queue sxm.e0
red:
    @t_mul + 3 + 9 rsum.f32 e4, w4, L           ; 3 ALU cycles, 9 hops (stage 10 -> 19)

; the sum, 8 cycles after the rsum issues, flows west from stage 19
.queue mem.e3
    @red + 8 + 5 write s, w4, 0
.queue mem.e2
    @red + 8 + 6 write s, w5, 0
.queue mem.e1
    @red + 8 + 7 write s, w6, 0
.queue mem.e0
    @red + 8 + 8 write s, w7, 0
