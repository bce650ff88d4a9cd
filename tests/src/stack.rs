//! Worst-case stack of a Cortex-M firmware ELF by static analysis, against the RAM the
//! board leaves for the stack.
//!
//! - **Frames**: each function's bytes are decoded as Thumb-2; its frame is the sum of
//!   every stack-pointer decrement in it (`push`, `push.w`/`stmdb sp!`, `str.w rX,
//!   [sp, #-4]!`, `sub sp, #imm`, `sub.w`/`subw sp, sp, #imm`, `vpush`). LLVM allocates a
//!   frame once, so the sum is the frame (an over-estimate if a function pushed in two
//!   places). Inline data is skipped: the `tbb`/`tbh` jump tables (up to the first case)
//!   and the literal words that `ldr`/`vldr` read PC-relative.
//! - **Calls**: `bl` and branches (`b`, `b.w`, `b<c>.w`) whose target is the start of
//!   another function (tail calls) are edges. An indirect call (`blx rN`, `bx rN` other
//!   than `bx lr`) may reach any function whose address (with the Thumb bit) is stored in
//!   `.rodata`/`.data` (vtables, function-pointer tables): it is charged the deepest of
//!   them. A cycle (recursion) makes the bound meaningless (a recursive path is counted
//!   once): every recursive component of the call graph is reported by its functions
//!   ([`StackReport::recursive_components`], with example cycles in
//!   [`StackReport::cycles`]), and [`StackReport::check_acyclic`] fails naming them.
//! - **Worst case**: the deepest path from the reset handler, plus the deepest exception
//!   handler of the vector table with its hardware-stacked frame (32 bytes; 104 with the
//!   FPU's lazily stacked registers), as an interrupt can arrive at the deepest point.
//! - **Available**: the initial stack pointer (vector table word 0, `_stack_start`) minus
//!   the end of the statics (`_stack_end`/`__sheap` from cortex-m-rt's linker script).
//!
//! Dynamic stack adjustments (`sub sp, sp, rN`, `mov sp, rN`) cannot be bounded and are
//! reported as such.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

/// One function on the worst path: name and its own frame bytes.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Symbol name, demangled (legacy Rust mangling) and without the hash.
    pub name: String,
    /// Bytes its own frame takes.
    pub bytes: u64,
}

/// The analysis of one ELF.
#[derive(Clone, Debug)]
pub struct StackReport {
    /// Worst-case bytes of stack: the deepest path from reset plus the deepest exception.
    pub worst: u64,
    /// The deepest path from the reset handler, outermost first.
    pub path: Vec<Frame>,
    /// The deepest exception handler's path (with the hardware frame in `exception_bytes`).
    pub exception: Vec<Frame>,
    /// Bytes of the deepest exception (hardware frame + handler path).
    pub exception_bytes: u64,
    /// Bytes between the end of the statics and the initial stack pointer.
    pub available: u64,
    /// Functions that change SP by a register (unbounded), by name.
    pub dynamic: Vec<String>,
    /// Functions in a call cycle (the back edge was not counted), by name.
    pub recursive: Vec<String>,
    /// Each distinct call cycle the depth walk met, as the functions along it, the first
    /// repeated at the end (`a -> b -> a`): examples for the reader, not all of them.
    pub cycles: Vec<Vec<String>>,
    /// Every strongly connected component of the reachable call graph that contains a
    /// cycle (two or more functions, or one calling itself), by name: the complete set of
    /// functions through which some recursion runs (Tarjan's algorithm).
    pub recursive_components: Vec<Vec<String>>,
}

impl StackReport {
    /// The report as text: the numbers and both paths, largest frames first.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "worst-case stack {} B ({} B main path + {} B exception), {} B available \
             (initial SP - end of statics)\n  main path:\n",
            self.worst,
            self.worst - self.exception_bytes,
            self.exception_bytes,
            self.available
        );
        for f in &self.path {
            s += &format!("    {:>6} B  {}\n", f.bytes, f.name);
        }
        s += "  deepest exception handler:\n";
        for f in &self.exception {
            s += &format!("    {:>6} B  {}\n", f.bytes, f.name);
        }
        if !self.dynamic.is_empty() {
            s += &format!("  dynamic SP changes (unbounded) in: {:?}\n", self.dynamic);
        }
        if !self.recursive.is_empty() {
            s += &format!(
                "  recursion (back edges not counted) in: {:?}\n",
                self.recursive
            );
        }
        for c in &self.cycles {
            s += &format!("  call cycle: {}\n", c.join(" -> "));
        }
        s
    }

    /// `Err` naming every call cycle when the call graph has one: the static bound counts
    /// a recursive path once, so it is no bound at all.
    pub fn check_acyclic(&self) -> Result<(), String> {
        self.check_acyclic_except(&[])
    }

    /// [`check_acyclic`](Self::check_acyclic), except for recursion confined to functions
    /// whose names contain one of `bounded` (recursion the caller has argued is bounded,
    /// e.g. nested formatting): a recursive component with any other member is an `Err`
    /// naming its functions (and the cycles the walk met). Components, not single cycles,
    /// are checked, so a second cycle through an allowed one and another function (a ->
    /// b -> a allowed, a -> c -> b -> a not) is found.
    pub fn check_acyclic_except(&self, bounded: &[&str]) -> Result<(), String> {
        let bad: Vec<String> = self
            .recursive_components
            .iter()
            .filter(|c| !c.iter().all(|f| bounded.iter().any(|b| f.contains(b))))
            .map(|c| format!("{{{}}}", c.join(", ")))
            .collect();
        if bad.is_empty() {
            return Ok(());
        }
        let cycles: Vec<String> = self.cycles.iter().map(|c| c.join(" -> ")).collect();
        Err(format!(
            "the call graph has {} recursive component(s) outside the allowed functions, so \
             the stack bound does not hold: {} (cycles met: {})",
            bad.len(),
            bad.join("; "),
            cycles.join("; ")
        ))
    }
}

struct Func {
    name: String,
    start: u64,
    end: u64,
    frame: u64,
    calls: BTreeSet<u64>,
    indirect: bool,
    dynamic: bool,
}

/// `ThumbExpandImm` of the ARMv7-M manual (A5.3.2) for the 12-bit `i:imm3:imm8`.
fn thumb_expand_imm(imm12: u32) -> u32 {
    let imm8 = imm12 & 0xff;
    if imm12 >> 10 == 0 {
        match (imm12 >> 8) & 3 {
            0 => imm8,
            1 => imm8 | imm8 << 16,
            2 => imm8 << 8 | imm8 << 24,
            _ => imm8 | imm8 << 8 | imm8 << 16 | imm8 << 24,
        }
    } else {
        let unrotated = 0x80 | (imm12 & 0x7f);
        unrotated.rotate_right(imm12 >> 7)
    }
}

/// The `i:imm3:imm8` field of a 32-bit Thumb data-processing (immediate) instruction.
fn imm12(hw1: u16, hw2: u16) -> u32 {
    (u32::from(hw1 >> 10) & 1) << 11 | (u32::from(hw2 >> 12) & 7) << 8 | u32::from(hw2 & 0xff)
}

/// Legacy Rust mangling (`_ZN...E`) to a path without the hash; other names unchanged.
fn demangle(name: &str) -> String {
    let Some(mut rest) = name.strip_prefix("_ZN") else {
        return name.to_string();
    };
    let mut parts = Vec::new();
    while let Some(c) = rest.chars().next() {
        if !c.is_ascii_digit() {
            break;
        }
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        let Ok(n) = rest[..digits].parse::<usize>() else {
            break;
        };
        let Some(part) = rest.get(digits..digits + n) else {
            break;
        };
        parts.push(part);
        rest = &rest[digits + n..];
    }
    if parts
        .last()
        .is_some_and(|p| p.len() == 17 && p.starts_with('h'))
    {
        parts.pop();
    }
    parts
        .join("::")
        .replace("$LT$", "<")
        .replace("$GT$", ">")
        .replace("$u20$", " ")
        .replace("$RF$", "&")
        .replace("$C$", ",")
        .replace("..", "::")
}

/// Decodes one function: its frame, direct callees (by address), indirect calls.
fn decode(f: &mut Func, text: &[u8], text_addr: u64, starts: &BTreeSet<u64>) {
    let half = |a: u64| -> Option<u16> {
        let o = usize::try_from(a.checked_sub(text_addr)?).ok()?;
        Some(u16::from_le_bytes([*text.get(o)?, *text.get(o + 1)?]))
    };
    let byte = |a: u64| -> Option<u8> {
        let o = usize::try_from(a.checked_sub(text_addr)?).ok()?;
        text.get(o).copied()
    };
    let mut data: BTreeMap<u64, u64> = BTreeMap::new(); // literal words: start -> end
    let mut pc = f.start;
    // A branch into another function is a call (a tail call for `b`); one inside this
    // function (a loop, or back to its own start) is not.
    let edge = |f: &mut Func, target: u64| {
        if starts.contains(&target) && !(f.start..f.end).contains(&target) {
            f.calls.insert(target);
        }
    };
    while pc + 2 <= f.end {
        if let Some((&s, &e)) = data.range(..=pc).next_back() {
            if pc < e && pc >= s {
                pc = e;
                continue;
            }
        }
        let Some(hw1) = half(pc) else { break };
        let wide = matches!(hw1 & 0xf800, 0xe800 | 0xf000 | 0xf800);
        if !wide {
            match hw1 {
                // push {..., lr?}
                h if h & 0xfe00 == 0xb400 => {
                    f.frame += 4 * u64::from((h & 0xff).count_ones() + u32::from((h >> 8) & 1))
                }
                // sub sp, #imm7*4
                h if h & 0xff80 == 0xb080 => f.frame += 4 * u64::from(h & 0x7f),
                // mov sp, rN
                h if h & 0xff87 == 0x4685 => f.dynamic = true,
                // blx rN
                h if h & 0xff87 == 0x4780 => f.indirect = true,
                // bx rN (not lr): an indirect tail call
                h if h & 0xff87 == 0x4700 && (h >> 3) & 0xf != 14 => f.indirect = true,
                // ldr rT, [pc, #imm8*4]: a literal word
                h if h & 0xf800 == 0x4800 => {
                    let a = ((pc + 4) & !3) + 4 * u64::from(h & 0xff);
                    data.insert(a, a + 4);
                }
                // b <label> (16-bit, unconditional)
                h if h & 0xf800 == 0xe000 => {
                    let off = i64::from(((h & 0x7ff) << 5) as i16 >> 4);
                    edge(f, (pc as i64 + 4 + off) as u64);
                }
                _ => {}
            }
            pc += 2;
            continue;
        }
        let Some(hw2) = half(pc + 2) else { break };
        match (hw1, hw2) {
            // push.w / stmdb sp!, {...}
            (0xe92d, r) => f.frame += 4 * u64::from(r.count_ones()),
            // str.w rT, [sp, #-4]!
            (0xf84d, r) if r & 0x0fff == 0x0d04 => f.frame += 4,
            // sub.w sp, sp, #const
            (h, r) if h & 0xfbef == 0xf1ad && r & 0x8f00 == 0x0d00 => {
                f.frame += u64::from(thumb_expand_imm(imm12(h, r)))
            }
            // subw sp, sp, #imm12
            (h, r) if h & 0xfbff == 0xf2ad && r & 0x8f00 == 0x0d00 => {
                f.frame += u64::from(imm12(h, r))
            }
            // vpush {s/d...}
            (h, r) if h & 0xffbf == 0xed2d && r & 0x0e00 == 0x0a00 => {
                f.frame += 4 * u64::from(r & 0xff)
            }
            // sub.w sp, sp, rN
            (0xebad, r) if r & 0x0f00 == 0x0d00 => f.dynamic = true,
            // bl <label>
            (h, r) if h & 0xf800 == 0xf000 && r & 0xd000 == 0xd000 => {
                edge(f, branch_target(pc, h, r))
            }
            // b.w <label>
            (h, r) if h & 0xf800 == 0xf000 && r & 0xd000 == 0x9000 => {
                edge(f, branch_target(pc, h, r))
            }
            // tbb [rN, rM] / tbh [rN, rM, lsl #1] with rN = pc: the table follows
            (h, r) if h == 0xe8df && r & 0xffe0 == 0xf000 => {
                let wide_table = r & 0x10 != 0;
                let base = pc + 4;
                let mut end = u64::MAX;
                let mut i = 0u64;
                while base + i < end {
                    let e = if wide_table {
                        half(base + i).map(u64::from)
                    } else {
                        byte(base + i).map(u64::from)
                    };
                    let Some(e) = e else { break };
                    end = end.min(base + 2 * e);
                    i += if wide_table { 2 } else { 1 };
                }
                pc = (base + i + 1) & !1;
                continue;
            }
            // ldr.w rT, [pc, #+/-imm12]
            (h, r) if h & 0xff7f == 0xf85f => {
                let imm = u64::from(r & 0xfff);
                let a = if h & 0x80 != 0 {
                    ((pc + 4) & !3) + imm
                } else {
                    ((pc + 4) & !3).saturating_sub(imm)
                };
                data.insert(a, a + 4);
            }
            // vldr sN/dN, [pc, #+/-imm8*4]
            (h, r) if h & 0xff3f == 0xed1f && r & 0x0e00 == 0x0a00 => {
                let imm = 4 * u64::from(r & 0xff);
                let a = if h & 0x80 != 0 {
                    ((pc + 4) & !3) + imm
                } else {
                    ((pc + 4) & !3).saturating_sub(imm)
                };
                let len = if r & 0x0100 != 0 { 8 } else { 4 };
                data.insert(a, a + len);
            }
            _ => {}
        }
        pc += 4;
    }
}

/// Target of a 32-bit `bl`/`b.w` (encoding T4 / T1 of the ARMv7-M manual).
fn branch_target(pc: u64, hw1: u16, hw2: u16) -> u64 {
    let s = u32::from(hw1 >> 10) & 1;
    let j1 = u32::from(hw2 >> 13) & 1;
    let j2 = u32::from(hw2 >> 11) & 1;
    let i1 = !(j1 ^ s) & 1;
    let i2 = !(j2 ^ s) & 1;
    let imm =
        s << 24 | i1 << 23 | i2 << 22 | u32::from(hw1 & 0x3ff) << 12 | u32::from(hw2 & 0x7ff) << 1;
    let off = i64::from(((imm << 7) as i32) >> 7);
    (pc as i64 + 4 + off) as u64
}

/// Analyses `elf` (a Cortex-M image linked with cortex-m-rt). `fpu`: the core stacks the
/// FPU registers on exception entry (Cortex-M4F/M7). Errors: not an ELF, or no vector
/// table / `.text` / stack symbols.
pub fn analyse(elf: &[u8], fpu: bool) -> Result<StackReport, String> {
    let file = object::File::parse(elf).map_err(|e| format!("not an ELF: {e}"))?;
    let section = |name: &str| -> Result<(u64, Vec<u8>), String> {
        let s = file
            .section_by_name(name)
            .ok_or_else(|| format!("no {name} section"))?;
        let d = s.data().map_err(|e| format!("{name}: {e}"))?;
        Ok((s.address(), d.to_vec()))
    };
    let (_, vt) = section(".vector_table")?;
    let (text_addr, text) = section(".text")?;
    let word = |b: &[u8], i: usize| -> Option<u64> {
        b.get(4 * i..4 * i + 4)
            .map(|w| u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
    };
    let sp0 = word(&vt, 0).ok_or("empty vector table")?;
    let reset = word(&vt, 1).ok_or("no reset vector")? & !1;
    let sym = |name: &str| {
        file.symbols()
            .find(|s| s.name() == Ok(name))
            .map(|s| s.address())
    };
    let statics_end = sym("_stack_end")
        .or_else(|| sym("__sheap"))
        .ok_or("no _stack_end / __sheap symbol (cortex-m-rt's link.x)")?;

    let mut funcs: BTreeMap<u64, Func> = BTreeMap::new();
    for s in file.symbols() {
        if s.kind() != SymbolKind::Text || s.size() == 0 {
            continue;
        }
        let start = s.address() & !1;
        let name = demangle(s.name().unwrap_or("?"));
        funcs.entry(start).or_insert(Func {
            name,
            start,
            end: start + s.size(),
            frame: 0,
            calls: BTreeSet::new(),
            indirect: false,
            dynamic: false,
        });
    }
    let starts: BTreeSet<u64> = funcs.keys().copied().collect();
    for f in funcs.values_mut() {
        decode(f, &text, text_addr, &starts);
    }
    // Address-taken functions: Thumb addresses stored as words in .rodata / .data. The
    // reset handler is never called (the core enters it), so it is no call target. An
    // image linked with `--emit-relocs` (the applications are) says which words are
    // addresses: only those are read, so a number that happens to equal a function's
    // address is not taken for a pointer. Without relocations, every aligned word is.
    let mut taken = BTreeSet::new();
    for name in [".rodata", ".data"] {
        let Some(sec) = file.section_by_name(name) else {
            continue;
        };
        let Ok(d) = sec.data() else { continue };
        let (addr, size) = (sec.address(), sec.size());
        // ELF executables give r_offset as a virtual address; relocatable files as an
        // offset into the section.
        let relocated: Vec<usize> = sec
            .relocations()
            .map(|(off, _)| {
                if off >= addr && off < addr + size {
                    (off - addr) as usize
                } else {
                    off as usize
                }
            })
            .collect();
        let at = |i: usize| {
            d.get(i..i + 4)
                .map(|w| u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
        };
        let words: Vec<u64> = if relocated.is_empty() {
            (0..d.len() / 4).filter_map(|k| at(4 * k)).collect()
        } else {
            relocated.into_iter().filter_map(at).collect()
        };
        for v in words {
            if v & 1 == 1 && starts.contains(&(v & !1)) && v & !1 != reset {
                taken.insert(v & !1);
            }
        }
    }

    // Deepest path from each function (memoised DFS; back edges of cycles count 0).
    let mut w = Walk::new(&funcs, &taken);
    let main_depth = w.depth(reset);
    let path = w.path(reset);
    let hw_frame = if fpu { 104 } else { 32 };
    let mut exc = (0u64, None);
    for i in 2..vt.len() / 4 {
        let Some(h) = word(&vt, i) else { continue };
        let h = h & !1;
        if h == 0 || h == reset || !funcs.contains_key(&h) {
            continue;
        }
        let d = w.depth(h);
        if d >= exc.0 {
            exc = (d, Some(h));
        }
    }
    let exception = exc.1.map(|h| w.path(h)).unwrap_or_default();
    let exception_bytes = exc.0 + hw_frame;
    let names = |set: &BTreeSet<u64>| -> Vec<String> {
        set.iter()
            .filter_map(|a| funcs.get(a).map(|f| f.name.clone()))
            .collect()
    };
    let dynamic: BTreeSet<u64> = funcs
        .values()
        .filter(|f| f.dynamic && w.memo.contains_key(&f.start))
        .map(|f| f.start)
        .collect();
    Ok(StackReport {
        worst: main_depth + exception_bytes,
        path,
        exception,
        exception_bytes,
        available: sp0.saturating_sub(statics_end),
        dynamic: names(&dynamic),
        recursive: names(&w.recursive),
        recursive_components: recursive_components(
            &funcs,
            &taken,
            &w.memo.keys().copied().collect(),
        )
        .iter()
        .map(|c| {
            c.iter()
                .filter_map(|a| funcs.get(a).map(|f| f.name.clone()))
                .collect()
        })
        .collect(),
        cycles: w
            .cycles
            .iter()
            .map(|c| {
                c.iter()
                    .map(|a| {
                        funcs
                            .get(a)
                            .map_or_else(|| format!("{a:#x}"), |f| f.name.clone())
                    })
                    .collect()
            })
            .collect(),
    })
}

/// The functions `a` may call: its direct calls and, for an indirect call, every
/// function whose address is taken.
fn callees(f: &Func, taken: &BTreeSet<u64>) -> Vec<u64> {
    let mut v: Vec<u64> = f.calls.iter().copied().collect();
    if f.indirect {
        v.extend(taken.iter().copied());
    }
    v
}

/// The strongly connected components of the call graph among `nodes` that contain a
/// cycle (two or more functions, or one that calls itself), each sorted by address
/// (Tarjan's algorithm, recursive as the depth walk is).
fn recursive_components(
    funcs: &BTreeMap<u64, Func>,
    taken: &BTreeSet<u64>,
    nodes: &BTreeSet<u64>,
) -> Vec<Vec<u64>> {
    struct Tarjan<'f> {
        funcs: &'f BTreeMap<u64, Func>,
        taken: &'f BTreeSet<u64>,
        index: HashMap<u64, usize>,
        low: HashMap<u64, usize>,
        on_stack: BTreeSet<u64>,
        stack: Vec<u64>,
        out: Vec<Vec<u64>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, a: u64) {
            let Some(f) = self.funcs.get(&a) else { return };
            let i = self.index.len();
            self.index.insert(a, i);
            self.low.insert(a, i);
            self.stack.push(a);
            self.on_stack.insert(a);
            let next = callees(f, self.taken);
            for &c in &next {
                if !self.funcs.contains_key(&c) {
                    continue;
                }
                if !self.index.contains_key(&c) {
                    self.visit(c);
                    let lc = self.low[&c];
                    let la = self.low.get_mut(&a).expect("visited");
                    *la = (*la).min(lc);
                } else if self.on_stack.contains(&c) {
                    let ic = self.index[&c];
                    let la = self.low.get_mut(&a).expect("visited");
                    *la = (*la).min(ic);
                }
            }
            if self.low[&a] == self.index[&a] {
                let mut comp = Vec::new();
                while let Some(x) = self.stack.pop() {
                    self.on_stack.remove(&x);
                    comp.push(x);
                    if x == a {
                        break;
                    }
                }
                if comp.len() > 1 || next.contains(&a) {
                    comp.sort_unstable();
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = Tarjan {
        funcs,
        taken,
        index: HashMap::new(),
        low: HashMap::new(),
        on_stack: BTreeSet::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for &n in nodes {
        if !t.index.contains_key(&n) {
            t.visit(n);
        }
    }
    t.out.sort();
    t.out
}

/// The call-graph walk: deepest path from each function, memoised; a call back into a
/// function still on the DFS stack is a cycle (recorded, counted 0).
struct Walk<'f> {
    funcs: &'f BTreeMap<u64, Func>,
    taken: &'f BTreeSet<u64>,
    memo: HashMap<u64, (u64, Option<u64>)>,
    active: BTreeSet<u64>,
    /// The DFS stack, outermost first.
    stack: Vec<u64>,
    recursive: BTreeSet<u64>,
    /// Distinct cycles (by their set of functions), each closed on its first function.
    cycles: Vec<Vec<u64>>,
    cycle_sets: BTreeSet<Vec<u64>>,
}

impl<'f> Walk<'f> {
    fn new(funcs: &'f BTreeMap<u64, Func>, taken: &'f BTreeSet<u64>) -> Self {
        Walk {
            funcs,
            taken,
            memo: HashMap::new(),
            active: BTreeSet::new(),
            stack: Vec::new(),
            recursive: BTreeSet::new(),
            cycles: Vec::new(),
            cycle_sets: BTreeSet::new(),
        }
    }

    fn depth(&mut self, a: u64) -> u64 {
        if let Some(&(d, _)) = self.memo.get(&a) {
            return d;
        }
        let Some(f) = self.funcs.get(&a) else {
            return 0;
        };
        if !self.active.insert(a) {
            self.recursive.insert(a);
            if let Some(i) = self.stack.iter().position(|&x| x == a) {
                let mut cycle: Vec<u64> = self.stack[i..].to_vec();
                let mut key = cycle.clone();
                key.sort_unstable();
                if self.cycle_sets.insert(key) {
                    cycle.push(a);
                    self.cycles.push(cycle);
                }
            }
            return 0;
        }
        self.stack.push(a);
        let mut best = (0, None);
        let mut callees: Vec<u64> = f.calls.iter().copied().collect();
        if f.indirect {
            callees.extend(self.taken.iter().copied());
        }
        for c in callees {
            let d = self.depth(c);
            if d > best.0 {
                best = (d, Some(c));
            }
        }
        self.stack.pop();
        self.active.remove(&a);
        let d = f.frame + best.0;
        self.memo.insert(a, (d, best.1));
        d
    }

    fn path(&self, mut a: u64) -> Vec<Frame> {
        let mut v = Vec::new();
        let mut seen = BTreeSet::new();
        while let Some(f) = self.funcs.get(&a) {
            if !seen.insert(a) {
                break;
            }
            v.push(Frame {
                name: f.name.clone(),
                bytes: f.frame,
            });
            match self.memo.get(&a) {
                Some(&(_, Some(next))) => a = next,
                _ => break,
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumb_immediates_decode_as_the_manual_says() {
        // sub.w sp, sp, #36608 is f5ad 4d0f (0x8f00 = 0x8f rotated right by 24).
        assert_eq!(thumb_expand_imm(imm12(0xf5ad, 0x4d0f)), 36608);
        // subw sp, sp, #1732 is f2ad 6dc4.
        assert_eq!(imm12(0xf2ad, 0x6dc4), 1732);
        // sub.w sp, sp, #24192 is f5ad 4dbd.
        assert_eq!(thumb_expand_imm(imm12(0xf5ad, 0x4dbd)), 24192);
        // At 0x400, f00b fe96 is bl 0xc130; at 0x422, f00b f89c is bl 0xb55e.
        assert_eq!(branch_target(0x400, 0xf00b, 0xfe96), 0xc130);
        assert_eq!(branch_target(0x422, 0xf00b, 0xf89c), 0xb55e);
        assert_eq!(
            demangle("_ZN12edgeflow_app3run17h5017af7cb542ca82E"),
            "edgeflow_app::run"
        );
    }

    /// A synthetic call graph: `(address, name, frame bytes, direct callees)`.
    fn graph(nodes: &[(u64, &str, u64, &[u64])]) -> BTreeMap<u64, Func> {
        nodes
            .iter()
            .map(|&(a, name, frame, calls)| {
                (
                    a,
                    Func {
                        name: name.to_string(),
                        start: a,
                        end: a + 2,
                        frame,
                        calls: calls.iter().copied().collect(),
                        indirect: false,
                        dynamic: false,
                    },
                )
            })
            .collect()
    }

    /// A report for `funcs` as `analyse` builds one: the walk's cycles and the
    /// recursive components, by name.
    fn report_of(funcs: &BTreeMap<u64, Func>, root: u64) -> StackReport {
        let taken = BTreeSet::new();
        let mut w = Walk::new(funcs, &taken);
        w.depth(root);
        let name = |c: &Vec<u64>| c.iter().map(|a| funcs[a].name.clone()).collect();
        let mut r = report(w.cycles.iter().map(name).collect());
        r.recursive_components =
            recursive_components(funcs, &taken, &w.memo.keys().copied().collect())
                .iter()
                .map(name)
                .collect();
        r
    }

    fn report(cycles: Vec<Vec<String>>) -> StackReport {
        StackReport {
            worst: 0,
            path: vec![],
            exception: vec![],
            exception_bytes: 0,
            available: 0,
            dynamic: vec![],
            recursive: vec![],
            cycles,
            recursive_components: vec![],
        }
    }

    #[test]
    fn a_call_cycle_is_found_and_named_and_fails_the_check() {
        // main -> a -> b -> c -> a (recursion through three functions), main -> d.
        let funcs = graph(&[
            (0x10, "main", 8, &[0x20, 0x50]),
            (0x20, "a", 16, &[0x30]),
            (0x30, "b", 32, &[0x40]),
            (0x40, "c", 64, &[0x20]),
            (0x50, "d", 4, &[]),
        ]);
        let taken = BTreeSet::new();
        let mut w = Walk::new(&funcs, &taken);
        // The back edge c -> a counts nothing: 8 + 16 + 32 + 64.
        assert_eq!(w.depth(0x10), 120);
        assert_eq!(w.cycles, vec![vec![0x20, 0x30, 0x40, 0x20]]);
        let r = report_of(&funcs, 0x10);
        assert_eq!(r.recursive_components, vec![vec!["a", "b", "c"]]);
        let err = r.check_acyclic().unwrap_err();
        assert!(err.contains("{a, b, c}"), "{err}");
        assert!(err.contains("a -> b -> c -> a"), "{err}");
        assert!(err.contains("1 recursive component"), "{err}");
        // Allowed only when every function of the component is listed as bounded.
        assert!(r.check_acyclic_except(&["a", "b"]).is_err());
        assert_eq!(r.check_acyclic_except(&["a", "b", "c"]), Ok(()));
    }

    #[test]
    fn a_second_cycle_through_an_allowed_one_is_not_hidden_by_the_memo() {
        // main -> w, w -> x -> w (allowed), and w -> y -> x: the cycle w -> y -> x -> w
        // runs through y. The memoised walk meets only w -> x -> w (x is finished when y
        // calls it); the component {w, x, y} still names y.
        let funcs = graph(&[
            (0x10, "main", 8, &[0x20]),
            (0x20, "w", 16, &[0x30, 0x40]),
            (0x30, "x", 32, &[0x20]),
            (0x40, "y", 64, &[0x30]),
        ]);
        let r = report_of(&funcs, 0x10);
        assert_eq!(r.cycles, vec![vec!["w", "x", "w"]]);
        assert_eq!(r.recursive_components, vec![vec!["w", "x", "y"]]);
        let err = r.check_acyclic_except(&["w", "x"]).unwrap_err();
        assert!(err.contains("{w, x, y}"), "{err}");
        assert_eq!(r.check_acyclic_except(&["w", "x", "y"]), Ok(()));
    }

    #[test]
    fn self_recursion_is_a_cycle_and_an_acyclic_graph_passes() {
        let funcs = graph(&[(0x10, "main", 8, &[0x20]), (0x20, "f", 16, &[0x20])]);
        let taken = BTreeSet::new();
        let mut w = Walk::new(&funcs, &taken);
        assert_eq!(w.depth(0x10), 24);
        assert_eq!(w.cycles, vec![vec![0x20, 0x20]]);
        assert_eq!(
            report_of(&funcs, 0x10).recursive_components,
            vec![vec!["f"]]
        );

        // A diamond (main -> a, main -> b, a -> c, b -> c) shares c but has no cycle.
        let funcs = graph(&[
            (0x10, "main", 8, &[0x20, 0x30]),
            (0x20, "a", 16, &[0x40]),
            (0x30, "b", 32, &[0x40]),
            (0x40, "c", 4, &[]),
        ]);
        let mut w = Walk::new(&funcs, &taken);
        assert_eq!(w.depth(0x10), 44);
        assert!(w.cycles.is_empty());
        let r = report_of(&funcs, 0x10);
        assert!(r.recursive_components.is_empty());
        assert_eq!(r.check_acyclic(), Ok(()));
    }
}
