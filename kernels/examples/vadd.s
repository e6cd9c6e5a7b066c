; vadd.s -- z = x + y for two f32 vectors of 16 lanes, on the `mini` chip.
;
; What it shows: a 4-byte type travels as 4 byte planes on a group of 4 streams, so each
; operand is spread over 4 MEM slices (one plane per slice) and the reads are skewed in time so
; that all 4 planes pass the VXM in the same cycle.
;
; Floorplan of mini (stages, west to east):
;   0 mxm0 | 1 sxm.w | 2..9 mem.w7..w0 | 10 vxm | 11..18 mem.e0..e7 | 19 sxm.e | 20 mxm1
;   (one cycle per stage hop); this program uses mem.w3..w0 (stages 6..9) and mem.e0..e3
;   (stages 11..14), the four slices on each side next to the VXM.
;
; Timing (a read at cycle t puts its word on the stream at t+1 at the slice's stage):
;   x plane j lives in mem.w(3-j) (stage 6+j) and flows east on e(j):
;     read at cycle j -> on the stream at j+1, stage 6+j -> at the VXM (stage 10) at cycle 5.
;   y plane j lives in mem.e(3-j) (stage 14-j) and flows west on w(j):
;     read at cycle j -> on the stream at j+1, stage 14-j -> at the VXM at cycle 5.
;   add.f32 issues at cycle 5 and writes z on e4..e7 at stage 10 at cycle 5+3 = 8.
;   z plane j is written by mem.e(j) (stage 11+j) at cycle 9+j; the last word lands at 13.

.chip mini

.data x f32 (16) at mem.w3:0 mem.w2:0 mem.w1:0 mem.w0:0 = [
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0]
.data y f32 (16) at mem.e3:0 mem.e2:0 mem.e1:0 mem.e0:0 = [
    0.5, 0.5, 0.5, 0.5, -1.0, -1.0, -1.0, -1.0, 100.0, 100.0, 100.0, 100.0, 0.25, 0.25, 0.25, 0.25]
.data z f32 (16) at mem.e0:1 mem.e1:1 mem.e2:1 mem.e3:1        ; the result, zeros at start

; ---- x: four planes eastward on e0..e3 ----
.queue mem.w3
    @0 read x, e0, 0
.queue mem.w2
    @1 read x, e1, 0
.queue mem.w1
    @2 read x, e2, 0
.queue mem.w0
    @3 read x, e3, 0

; ---- y: four planes westward on w0..w3 ----
.queue mem.e3
    @0 read y, w0, 0
.queue mem.e2
    @1 read y, w1, 0
.queue mem.e1
    @2 read y, w2, 0
.queue mem.e0
    @3 read y, w3, 0

; ---- the add: all 8 planes pass stage 10 at cycle 5 ----
.queue vxm.0
t_add:
    @5 add.f32 e0, w0, e4

; ---- z: plane j passes mem.e(j) at cycle t_add + 3 (ALU) + 1 + j (hops) ----
.queue mem.e0
    @t_add + 4 write z, e4, 0
.queue mem.e1
    @t_add + 5 write z, e5, 0
.queue mem.e2
    @t_add + 6 write z, e6, 0
.queue mem.e3
    @t_add + 7 write z, e7, 0
