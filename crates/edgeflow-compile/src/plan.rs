//! Offline memory planning: every activation tensor and scratch buffer gets a fixed arena
//! offset, from tensor lifetimes, with a greedy best-offset placement (largest first) as
//! TFLite Micro's greedy planner does. RESHAPE outputs share their input's bytes when
//! nothing reads the input afterwards.

use crate::error::CompileError;
use crate::ir::Graph;

/// The memory plan of a graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Arena offset of each tensor (None for constants and unused tensors).
    pub offsets: Vec<Option<u32>>,
    /// Scratch region (offset, length) of each op.
    pub scratch: Vec<Option<(u32, u32)>>,
    /// Total arena bytes.
    pub arena_bytes: u32,
}

struct Item {
    size: usize,
    first: usize,
    last: usize,
    offset: usize,
}

/// Plans the arena for `graph`, with `scratch[i]` bytes of scratch for op `i`, every
/// offset a multiple of `align`.
pub fn plan(graph: &Graph, scratch: &[usize], align: usize) -> Result<Plan, CompileError> {
    let n = graph.tensors.len();
    let steps = graph.ops.len() + 1;
    let mut first: Vec<Option<usize>> = vec![None; n];
    let mut last: Vec<usize> = vec![0; n];
    let is_const = |t: usize| graph.tensors[t].data.is_some();
    for &t in &graph.inputs {
        if is_const(t) {
            return Err(CompileError::ConstantInput(t));
        }
        first[t] = Some(0);
    }
    for (i, op) in graph.ops.iter().enumerate() {
        for &t in &op.inputs {
            if is_const(t) {
                continue;
            }
            if first[t].is_none() {
                return Err(CompileError::Op {
                    index: op.source_index as usize,
                    op: op.op.name().into(),
                    reason: format!(
                        "reads tensor {t} ({}) before anything writes it",
                        graph.tensors[t].name
                    ),
                });
            }
            last[t] = last[t].max(i + 1);
        }
        let o = op.output;
        if first[o].is_some() {
            return Err(CompileError::Op {
                index: op.source_index as usize,
                op: op.op.name().into(),
                reason: format!("writes tensor {o}, which is already written earlier"),
            });
        }
        first[o] = Some(i + 1);
        last[o] = last[o].max(i + 1);
    }
    for &t in &graph.outputs {
        if first[t].is_none() {
            return Err(CompileError::UnwrittenOutput(t));
        }
        last[t] = steps;
    }

    // In-place RESHAPE: the output joins the input's buffer group.
    let mut group: Vec<usize> = (0..n).collect();
    fn root(g: &mut [usize], mut t: usize) -> usize {
        while g[t] != t {
            g[t] = g[g[t]];
            t = g[t];
        }
        t
    }
    for (i, op) in graph.ops.iter().enumerate() {
        if let (edgeflow_format::graph::Op::Reshape, Some(&x)) = (&op.op, op.inputs.first()) {
            if !is_const(x) && last[x] == i + 1 && !graph.outputs.contains(&x) {
                let (rx, ro) = (root(&mut group, x), root(&mut group, op.output));
                group[ro] = rx;
            }
        }
    }

    let mut items: Vec<Item> = Vec::new();
    let mut item_of: Vec<Option<usize>> = vec![None; n];
    for t in 0..n {
        let Some(f) = first[t] else { continue };
        let r = root(&mut group, t);
        let size = graph.tensors[t].bytes().ok_or_else(too_big)?;
        match item_of[r] {
            Some(k) => {
                let it: &mut Item = &mut items[k];
                it.size = it.size.max(size);
                it.first = it.first.min(f);
                it.last = it.last.max(last[t]);
            }
            None => {
                item_of[r] = Some(items.len());
                items.push(Item {
                    size,
                    first: f,
                    last: last[t],
                    offset: 0,
                });
            }
        }
        item_of[t] = item_of[r];
    }
    let tensor_items = items.len();
    let mut scratch_item: Vec<Option<usize>> = vec![None; graph.ops.len()];
    for (i, &s) in scratch.iter().enumerate() {
        if s > 0 {
            scratch_item[i] = Some(items.len());
            items.push(Item {
                size: s,
                first: i + 1,
                last: i + 1,
                offset: 0,
            });
        }
    }
    let _ = tensor_items;

    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        items[b]
            .size
            .cmp(&items[a].size)
            .then(items[a].first.cmp(&items[b].first))
    });
    let mut placed: Vec<usize> = Vec::new();
    let mut arena = 0usize;
    for k in order {
        let (f, l, size) = (items[k].first, items[k].last, items[k].size);
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&p| items[p].first <= l && f <= items[p].last)
            // Placed items ended below `arena`, which was checked not to overflow.
            .map(|&p| {
                (
                    items[p].offset,
                    items[p].offset.saturating_add(items[p].size),
                )
            })
            .collect();
        busy.sort();
        let mut offset = 0usize;
        for (s, e) in busy {
            if offset.checked_add(size).ok_or_else(too_big)? <= s {
                break;
            }
            offset = offset.max(align_up(e, align)?);
        }
        items[k].offset = offset;
        arena = arena.max(offset.checked_add(size).ok_or_else(too_big)?);
        placed.push(k);
    }
    let arena_bytes = u32::try_from(align_up(arena, align)?).map_err(|_| too_big())?;
    // Every item ends at or below `arena_bytes` (a u32), so offsets and sizes fit.
    let to_u32 = |v: usize| u32::try_from(v).map_err(|_| too_big());
    Ok(Plan {
        offsets: item_of
            .iter()
            .map(|k| k.map(|k| to_u32(items[k].offset)).transpose())
            .collect::<Result<_, CompileError>>()?,
        scratch: scratch_item
            .iter()
            .map(|k| {
                k.map(|k| Ok::<_, CompileError>((to_u32(items[k].offset)?, to_u32(items[k].size)?)))
                    .transpose()
            })
            .collect::<Result<_, CompileError>>()?,
        arena_bytes,
    })
}

fn too_big() -> CompileError {
    CompileError::Limit(crate::error::Limit::Arena)
}

/// `v` rounded up to a multiple of `align` (> 0), checked.
fn align_up(v: usize, align: usize) -> Result<usize, CompileError> {
    v.div_ceil(align.max(1))
        .checked_mul(align.max(1))
        .ok_or_else(too_big)
}
