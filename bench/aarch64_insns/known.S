// The instruction counter's check (run.sh): a static aarch64 Linux program, no libc,
// that executes exactly 2 * ITER + 5 instructions (ITER from -DITER=..., 1 to 65535):
// two to set the counter, ITER times `subs` + `b.ne`, three to exit.
    .global _start
    .text
_start:
    mov  x0, #ITER
    movk x0, #0, lsl #16
1:
    subs x0, x0, #1
    b.ne 1b
    mov  x0, #0
    mov  x8, #93        // exit
    svc  #0
