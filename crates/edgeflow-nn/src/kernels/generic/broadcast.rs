//! NumPy broadcasting of two shapes (rank <= 6) and an iteration plan over it, for the
//! element-wise binary ops.

use edgeflow_format::graph::{Shape, MAX_RANK};

/// Dim `i` of `s` extended (with leading 1s) to rank `r`.
#[inline(always)]
fn extended_dim(s: &Shape, r: usize, i: usize) -> usize {
    (i + s.dims().len())
        .checked_sub(r)
        .and_then(|k| s.dims().get(k))
        .map_or(1, |&d| d as usize)
}

/// NumPy broadcast of two shapes, or `None` if they are incompatible.
pub(crate) fn broadcast_shape(a: &Shape, b: &Shape) -> Option<Shape> {
    let r = a.dims().len().max(b.dims().len());
    let mut dims = [0u32; MAX_RANK];
    let out = dims.get_mut(..r)?;
    for (i, d) in out.iter_mut().enumerate() {
        let (da, db) = (extended_dim(a, r, i), extended_dim(b, r, i));
        *d = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        } as u32;
    }
    Shape::new(out)
}

/// An iteration plan over a broadcast: dims of extent 1 dropped, adjacent dims that walk
/// both inputs contiguously (or both not at all) merged. Each dim is
/// `(extent, stride in input 1, stride in input 2)`, outermost first; the innermost dim
/// has input strides 0 or 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Broadcast {
    rank: usize,
    dims: [(usize, usize, usize); MAX_RANK],
}

impl Broadcast {
    /// The plan for two shapes that broadcast (see [`broadcast_shape`]); `None` otherwise.
    pub(crate) fn new(a: &Shape, b: &Shape) -> Option<Self> {
        let out_shape = broadcast_shape(a, b)?;
        let r = out_shape.dims().len();
        let mut plan = Broadcast {
            rank: 0,
            dims: [(0, 0, 0); MAX_RANK],
        };
        // Natural (contiguous) strides of the rank-extended inputs, innermost first.
        let (mut n1, mut n2) = (1usize, 1usize);
        for (i, &o) in out_shape.dims().iter().enumerate().rev() {
            let o = o as usize;
            let (da, db) = (extended_dim(a, r, i), extended_dim(b, r, i));
            let sa = if da == 1 { 0 } else { n1 };
            let sb = if db == 1 { 0 } else { n2 };
            n1 = n1.saturating_mul(da);
            n2 = n2.saturating_mul(db);
            if o == 1 {
                continue;
            }
            if let Some(inner) = plan.rank.checked_sub(1).and_then(|j| plan.dims.get_mut(j)) {
                let (e, s1, s2) = *inner;
                let mergeable = |s: usize, sj: usize| {
                    (s == 0 && sj == 0) || (sj != 0 && s == sj.saturating_mul(e))
                };
                if mergeable(sa, s1) && mergeable(sb, s2) {
                    inner.0 = e.saturating_mul(o);
                    continue;
                }
            }
            let slot = plan.dims.get_mut(plan.rank)?;
            *slot = (o, sa, sb);
            plan.rank += 1;
        }
        // Collected innermost first; flip to outermost first.
        plan.dims.get_mut(..plan.rank)?.reverse();
        Some(plan)
    }

    /// Calls `run(offset1, step1, offset2, step2, out_offset, len)` for each innermost
    /// run, in output order (element offsets; steps are 0 or 1).
    #[inline(always)]
    pub(crate) fn for_each_run(
        &self,
        mut run: impl FnMut(usize, usize, usize, usize, usize, usize),
    ) {
        let dims = self.dims.get(..self.rank).unwrap_or(&[]);
        let Some((&(len, st1, st2), outer_dims)) = dims.split_last() else {
            run(0, 0, 0, 0, 0, 1);
            return;
        };
        let outer: usize = outer_dims.iter().map(|d| d.0).product();
        let mut idx = [0usize; MAX_RANK];
        let (mut o1, mut o2, mut oo) = (0usize, 0usize, 0usize);
        for _ in 0..outer {
            run(o1, st1, o2, st2, oo, len);
            oo = oo.wrapping_add(len);
            for (i, &(e, s1, s2)) in idx.iter_mut().zip(outer_dims).rev() {
                *i += 1;
                o1 = o1.wrapping_add(s1);
                o2 = o2.wrapping_add(s2);
                if *i < e {
                    break;
                }
                o1 = o1.wrapping_sub(s1.wrapping_mul(e));
                o2 = o2.wrapping_sub(s2.wrapping_mul(e));
                *i = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::simple::shape;

    #[test]
    fn broadcast_shapes() {
        let s = |d: &[u32]| shape(d);
        assert_eq!(
            broadcast_shape(&s(&[2, 1, 3]), &s(&[4, 1])),
            Some(s(&[2, 4, 3]))
        );
        assert_eq!(broadcast_shape(&s(&[]), &s(&[5])), Some(s(&[5])));
        assert_eq!(broadcast_shape(&s(&[2, 3]), &s(&[3, 3])), None);
        // Same shape: one run covering everything.
        let p = Broadcast::new(&s(&[2, 3, 4]), &s(&[2, 3, 4])).unwrap();
        assert_eq!(&p.dims[..p.rank], [(24, 1, 1)]);
        // Per-channel bias: [N,H,W,C] + [C] -> outer 24 runs of C.
        let p = Broadcast::new(&s(&[1, 4, 6, 8]), &s(&[8])).unwrap();
        assert_eq!(&p.dims[..p.rank], [(24, 8, 0), (8, 1, 1)]);
        // Scalar.
        let p = Broadcast::new(&s(&[3, 5]), &s(&[1, 1])).unwrap();
        assert_eq!(&p.dims[..p.rank], [(15, 1, 0)]);
        // [2,1,3] + [4,1]: nothing merges.
        let p = Broadcast::new(&s(&[2, 1, 3]), &s(&[4, 1])).unwrap();
        assert_eq!(&p.dims[..p.rank], [(2, 3, 0), (4, 0, 1), (3, 1, 0)]);
    }
}
