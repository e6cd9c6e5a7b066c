; dot.s -- s = sum(x * y) for two f32 vectors of 16 lanes, on the `mini` chip.
;
; What it shows: a VXM multiply feeding an SXM reduction on the far east side, and a result
; that comes back west. rsum gives every lane the sum of its segment; with seg = 16 (all lanes)
; every lane of `s` holds the dot product.
;
; Stages (see vadd.s): mem.w3..w0 = 2..5, vxm = 6, mem.e0..e3 = 7..10, sxm.e = 11.
; Timing:
;   x, y: read exactly as in vadd.s; all planes pass the VXM (stage 6) at cycle 5.
;   mul.f32 at cycle 5 -> x*y on e4..e7 at stage 6 at cycle 8 -> stage 11 at cycle 13.
;   rsum.f32 at cycle 13 in sxm.e0 -> the sums on w4..w7 at stage 11 at cycle 13 + 8 = 21.
;   s plane j is on w(4+j); mem.e(3-j) (stage 10-j) writes it at cycle 22 + j; done at 26.

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
    @t_mul + 3 + 5 rsum.f32 e4, w4, L           ; 3 ALU cycles, 5 hops (stage 6 -> 11)

; the sum, 8 cycles after the rsum issues, flows west from stage 11
.queue mem.e3
    @red + 8 + 1 write s, w4, 0
.queue mem.e2
    @red + 8 + 2 write s, w5, 0
.queue mem.e1
    @red + 8 + 3 write s, w6, 0
.queue mem.e0
    @red + 8 + 4 write s, w7, 0
