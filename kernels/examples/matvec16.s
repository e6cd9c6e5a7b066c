; matvec16.s -- y = W @ x: a 16x16 int8 matrix times an int8 vector on the `mini` chip's
; west MXM plane (mxm0, stage 0), with int32 accumulation.
;
; What it shows: loading weights row by row (lw), installing them (iw), one matrix-vector pass
; (mv) and reading the int32 accumulator back onto a group of 4 streams (acc).
;
; Stages: mxm0 = 0, mem.w7 = 2, mem.w6 = 3, mem.w5 = 4, mem.w4 = 5 (the slices farthest from
; the VXM, nearest the plane); everything here flows west
; into the plane and the result flows back east.
; Timing:
;   W row r is word r of mem.w7 (stage 2). `read W, w0, 1` + `repeat 15, 1` reads row r at
;   cycle r; it is on w0 at stage 2 at r+1 and reaches the plane (stage 0) at r+3, where
;   `lw.i8 w0, 1, r` takes it (cycles 3..18).
;   iw at cycle 19 installs the 16 rows; the plane is busy that cycle.
;   x is word 0 of mem.w6 (stage 3): read at cycle 16, at stage 0 on w1 at cycle 20 = mv.
;   mv latency 16 (+ skew 0 on one superlane): the accumulator is ready at cycle 36.
;   acc at cycle 36 puts y (i32, 4 byte planes) on e0..e3 at stage 0 at cycle 38; plane j
;   passes mem.w(7-j) (stage 2+j) at cycle 40+j, where it is written. Done at cycle 44.

.chip mini

.data W i8 (16, 16) at mem.w7:0 = [
    -5,  0,  5, -1,  4, -2,  3, -3,  2, -4,  1, -5,  0,  5, -1,  4,
    -2,  3, -3,  2, -4,  1, -5,  0,  5, -1,  4, -2,  3, -3,  2, -4,
     1, -5,  0,  5, -1,  4, -2,  3, -3,  2, -4,  1, -5,  0,  5, -1,
     4, -2,  3, -3,  2, -4,  1, -5,  0,  5, -1,  4, -2,  3, -3,  2,
    -4,  1, -5,  0,  5, -1,  4, -2,  3, -3,  2, -4,  1, -5,  0,  5,
    -1,  4, -2,  3, -3,  2, -4,  1, -5,  0,  5, -1,  4, -2,  3, -3,
     2, -4,  1, -5,  0,  5, -1,  4, -2,  3, -3,  2, -4,  1, -5,  0,
     5, -1,  4, -2,  3, -3,  2, -4,  1, -5,  0,  5, -1,  4, -2,  3,
    -3,  2, -4,  1, -5,  0,  5, -1,  4, -2,  3, -3,  2, -4,  1, -5,
     0,  5, -1,  4, -2,  3, -3,  2, -4,  1, -5,  0,  5, -1,  4, -2,
     3, -3,  2, -4,  1, -5,  0,  5, -1,  4, -2,  3, -3,  2, -4,  1,
    -5,  0,  5, -1,  4, -2,  3, -3,  2, -4,  1, -5,  0,  5, -1,  4,
    -2,  3, -3,  2, -4,  1, -5,  0,  5, -1,  4, -2,  3, -3,  2, -4,
     1, -5,  0,  5, -1,  4, -2,  3, -3,  2, -4,  1, -5,  0,  5, -1,
     4, -2,  3, -3,  2, -4,  1, -5,  0,  5, -1,  4, -2,  3, -3,  2,
    -4,  1, -5,  0,  5, -1,  4, -2,  3, -3,  2, -4,  1, -5,  0,  5]
.data x i8 (16) at mem.w6:0 = [1, 2, 3, 4, 5, 6, 7, 8, -1, -2, -3, -4, -5, -6, -7, -8]
.data y i32 (16) at mem.w7:16 mem.w6:16 mem.w5:16 mem.w4:16    ; the result

.queue mem.w7
    @0 read W, w0, 1                ; row 0 at cycle 0 ...
    repeat 15, 1                    ; ... rows 1..15 at cycles 1..15 (address steps by 1)

.queue mxm0.w
.rept r = 0, 16
    @r + 3 lw.i8 w0, 1, r           ; row r passes stage 0 at cycle r + 3
.endr
    iw                              ; cycle 19

.queue mem.w6
    @16 read x, w1, 0

.queue mxm0.a
t_mv:
    @20 mv.i8 w1, 0, 0              ; slot 0 = W @ x

.queue mxm0.r
t_acc:
    @t_mv + 16 acc 0, e0              ; y on e0..e3 at stage 0 at cycle t_acc + 2

.queue mem.w7
    @t_acc + 2 + 2 write y, e0, 0     ; plane 0, stage 2
.queue mem.w6
    @t_acc + 2 + 3 write y, e1, 0
.queue mem.w5
    @t_acc + 2 + 4 write y, e2, 0
.queue mem.w4
    @t_acc + 2 + 5 write y, e3, 0
