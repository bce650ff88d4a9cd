//! The board's buffers as one static ([`static_memory!`](crate::static_memory)).

/// A [`Memory`](crate::Memory)`<'static>` over one static of the given sizes (arena bytes,
/// workspace `f32` words, summary `u32` words, feature `f32` words, telemetry buffer
/// bytes), the arena first and 16-byte aligned, in `.bss`.
///
/// The expansion dereferences a `static mut`, so it must be used inside `unsafe`: the
/// caller promises that the expression is evaluated at most once in the program (a
/// board's `main`), which makes the returned borrows unique.
///
/// ```ignore
/// // SAFETY: `main` runs once; nothing else touches these buffers.
/// let mem = unsafe { edgeflow_app::static_memory!(16 * 1024, 2048, 1024, 512, 4096) };
/// ```
#[macro_export]
macro_rules! static_memory {
    ($arena:expr, $workspace:expr, $summary:expr, $features:expr, $tx:expr $(,)?) => {{
        #[repr(C, align(16))]
        struct Buffers {
            arena: [u8; $arena],
            workspace: [f32; $workspace],
            summary: [u32; $summary],
            features: [f32; $features],
            tx: [u8; $tx],
        }
        static mut BUFFERS: Buffers = Buffers {
            arena: [0; $arena],
            workspace: [0.0; $workspace],
            summary: [0; $summary],
            features: [0.0; $features],
            tx: [0; $tx],
        };
        let b: &'static mut Buffers = &mut *core::ptr::addr_of_mut!(BUFFERS);
        $crate::Memory {
            workspace: &mut b.workspace,
            arena: &mut b.arena,
            summary: &mut b.summary,
            features: &mut b.features,
            tx: &mut b.tx,
        }
    }};
}
