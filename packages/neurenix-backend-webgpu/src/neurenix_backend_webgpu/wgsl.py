"""WGSL sources of the kernel families, generated per specialisation (types, op, input kinds).

Every kernel reads its shapes and strides from ``P``, a read-only storage array of 32-bit words
(binding 0), writes ``OUT`` (binding 1) and reads its inputs from bindings 2 and up. Shapes live in
parameters rather than in the source, so one pipeline serves every shape. Kernels that cover ``n``
items loop with a grid stride, so any ``n`` runs within the adapter's workgroup-count limit.
"""

from __future__ import annotations

from string import Template

WG = 256  # invocations per workgroup of the 1-D kernels (the WebGPU minimum guarantee)
UT = 8  # unfold output tile edge (UT x UT positions per workgroup)
UNFOLD_TILE = 2048  # elements of input staged in workgroup memory by the tiled unfold

# numerically safe helpers (lavapipe's tanh overflows to NaN for large |x|; pow needs NumPy's signs). NaN
# propagates as in NumPy: WGSL's max/min/sign leave NaN operands undefined, so NaN is tested on the bits (a
# shader compiler may assume x == x)
HELPERS = """
fn ntanh(x: f32) -> f32 { let e = exp(-2.0 * abs(x)); return sign(x) * (1.0 - e) / (1.0 + e); }
fn nsigmoid(x: f32) -> f32 { if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); } let e = exp(x); return e / (1.0 + e); }
fn npow(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (x < 0.0 && y == round(y)) {
    let r = pow(-x, y);
    if (fract(y * 0.5) != 0.0) { return -r; }
    return r;
  }
  return pow(x, y);
}
fn nisnan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn nmax(a: f32, b: f32) -> f32 { if (nisnan(a)) { return a; } if (nisnan(b)) { return b; } return max(a, b); }
fn nmin(a: f32, b: f32) -> f32 { if (nisnan(a)) { return a; } if (nisnan(b)) { return b; } return min(a, b); }
fn nrelu(a: f32) -> f32 { if (nisnan(a)) { return a; } return max(a, 0.0); }
fn nsign(a: f32) -> f32 { if (nisnan(a)) { return a; } return sign(a); }
// does (v, j) beat the running arg-extremum (a, i)? NaN beats every number, the first NaN the others; ties:
// the first index
fn nbetter(v: f32, j: u32, a: f32, i: u32, larger: bool) -> bool {
  let nv = nisnan(v); let na = nisnan(a);
  if (nv || na) { return nv && (!na || j < i); }
  if (v == a) { return j < i; }
  return select((v < a), (v > a), larger);
}
"""

# int64 lives in i32: results that leave it raise the status flag (read back and raised at the next read)
# rather than wrap. Sums and matmul accumulate exactly in 64 bits (two u32 words) and check only the result,
# as NumPy's int64 would hold every partial sum.
STATUS_HELPERS = """
const I32_LOWEST = i32(-2147483647 - 1);
fn overflow() { atomicOr(&STATUS[0], 1u); }
fn cadd(a: i32, b: i32) -> i32 { let r = a + b; if (((a ^ r) & (b ^ r)) < 0) { overflow(); } return r; }
fn csub(a: i32, b: i32) -> i32 { let r = a - b; if (((a ^ b) & (a ^ r)) < 0) { overflow(); } return r; }
fn cmul(a: i32, b: i32) -> i32 {
  let r = a * b;
  if ((a != 0 && r / a != b) || (a == -1 && b == I32_LOWEST)) { overflow(); }
  return r;
}
fn cneg(a: i32) -> i32 { if (a == I32_LOWEST) { overflow(); } return -a; }
fn cabs(a: i32) -> i32 { if (a == I32_LOWEST) { overflow(); } return abs(a); }
fn cf2i(x: f32) -> i32 {  // NumPy's astype(int64) truncates; NaN, infinities and |x| >= 2^31 do not fit
  if (nisnan(x) || (x < -2147483648.0) || (x >= 2147483648.0)) { overflow(); return 0; }
  return i32(x);
}
fn wide(x: i32) -> vec2<u32> { return vec2<u32>(bitcast<u32>(x), select(0u, 0xffffffffu, x < 0)); }
fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  let lo = a.x + b.x;
  return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));  // the carry out of the low word
}
fn narrow(a: vec2<u32>) -> i32 {
  let r = bitcast<i32>(a.x);
  if (a.y != select(0u, 0xffffffffu, r < 0)) { overflow(); }
  return r;
}
"""
CHECKED = ("cadd(", "csub(", "cmul(", "cneg(", "cabs(", "cf2i(")


def uses_status(expr: str) -> bool:
    """Whether a map expression calls a checked helper (its kernel must bind the status buffer)."""
    return any(f in expr for f in CHECKED)


def _bindings(out_t: str, in_ts: list, out_atomic: bool = False, status: bool = False, extra: int = 0) -> str:
    """Declarations: P, OUT, the inputs, then (``status``) the status buffer after ``extra`` more
    bindings the kernel declares itself."""
    out = f"atomic<{out_t}>" if out_atomic else out_t
    lines = ["@group(0) @binding(0) var<storage, read> P: array<u32>;",
             f"@group(0) @binding(1) var<storage, read_write> OUT: array<{out}>;"]
    lines += [f"@group(0) @binding({i + 2}) var<storage, read> IN{i}: array<{t}>;" for i, t in enumerate(in_ts)]
    if status:
        binding = 2 + len(in_ts) + extra
        lines.append(f"@group(0) @binding({binding}) var<storage, read_write> STATUS: array<atomic<u32>>;")
    return "\n".join(lines) + "\n" + HELPERS + (STATUS_HELPERS if status else "")


def map_source(expr: str, out_t: str, inputs: tuple) -> str:
    """``OUT[o] = expr`` over a strided output; ``inputs`` is a tuple of (WGSL type, is_scalar) for
    the operands ``a, b, c``. Parameters: n, ndim, shape, then (offset, strides) for the output and
    for each operand (a scalar operand keeps its value bits in its offset word)."""
    names = "abc"
    buf_ts = [t for t, scalar in inputs if not scalar]
    decl, upd, loads, slot = [], [], [], 0
    for k, (t, scalar) in enumerate(inputs):
        base = f"(3u + 2u * nd + {k}u * (nd + 1u))"  # operand k's slot
        if scalar:
            loads.append(f"let {names[k]} = bitcast<{t}>(P[{base}]);")
            continue
        decl.append(f"var o{k} = i32(P[{base}]);")
        upd.append(f"o{k} += c * i32(P[{base} + 1u + k]);")
        loads.append(f"let {names[k]} = IN{slot}[o{k}];")
        slot += 1
    return _bindings(out_t, buf_ts, status=uses_status(expr)) + f"""
@compute @workgroup_size({WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {{
  let n = P[0]; let nd = P[1];
  for (var i = gid.x; i < n; i += nwg.x * {WG}u) {{
    var rem = i;
    var oo = i32(P[2u + nd]);
    {' '.join(decl)}
    for (var d = nd; d > 0u; d--) {{
      let k = d - 1u; let s = P[2u + k];
      let c = i32(rem % s); rem = rem / s;
      oo += c * i32(P[3u + nd + k]);
      {' '.join(upd)}
    }}
    {' '.join(loads)}
    OUT[oo] = {expr};
  }}
}}
"""


_EXTREMES = {"f32": ("bitcast<f32>(0xff800000u)", "bitcast<f32>(0x7f800000u)"),
             "i32": ("i32(-2147483647 - 1)", "i32(2147483647)"), "u32": ("0u", "1u")}


def _fold(op: str, acc_t: str) -> Template:
    """The statement folding value $V at index $J into the accumulator $A at index $I."""
    if op == "sum":
        return Template("$A = add64($A, $V);" if acc_t == "vec2<u32>" else "$A = $A + $V;")
    if op in ("max", "min"):
        return Template(f"$A = {'n' + op if acc_t == 'f32' else op}($A, $V);")
    larger = op == "argmax"
    if acc_t == "f32":
        return Template(f"if (nbetter($V, $J, $A, $I, {str(larger).lower()})) {{ $A = $V; $I = $J; }}")
    cmp = ">" if larger else "<"
    return Template(f"if ($V {cmp} $A || ($V == $A && $J < $I)) {{ $A = $V; $I = $J; }}")


def reduce_source(op: str, in_t: str, out_t: str, serial: bool) -> str:
    """Reductions. Parameters: n_out, r, nk, nr, kept shape and strides, reduced shape and strides
    (strides of the input, in elements). ``serial``: one invocation per output folds its r elements
    (many outputs, short rows). Otherwise one workgroup per output (grid-strided): each invocation
    folds a strided share, then a tree in workgroup memory (few outputs, long rows). Integer sums
    accumulate in 64 bits and raise the status flag when the result does not fit int32."""
    arg, wide = op.startswith("arg"), op == "sum" and out_t == "i32"
    if wide:
        acc_t, init, load = "vec2<u32>", "vec2<u32>(0u, 0u)", "wide(i32(IN0[off]))"
    elif op == "sum":
        acc_t, load = out_t, f"{out_t}(IN0[off])"
        init = f"{acc_t}(0)"
    else:
        acc_t, load = in_t, "IN0[off]"
        init = _EXTREMES[in_t][op.endswith("min")]
    fold = _fold(op, acc_t)
    tree = fold.substitute(A="SV[l]", I="SI[l]", V="SV[l + s]", J="SI[l + s]")
    combine = fold.substitute(A="acc", I="ai", V="v", J="vi")

    def result(acc: str, idx: str) -> str:
        return f"i32({idx})" if arg else f"narrow({acc})" if wide else acc
    if serial:
        outer, first, stride, res = "o = gid.x", "0u", "1u", result("acc", "ai")
        shared = finish = ""
        head = f"@compute @workgroup_size({WG})\nfn main(@builtin(global_invocation_id) gid: vec3<u32>, "
        step = f"nwg.x * {WG}u"
    else:
        outer, first, stride, res = "o = wid.x", "l", f"{WG}u", result("SV[0]", "SI[0]")
        shared = f"var<workgroup> SV: array<{acc_t}, {WG}>;\nvar<workgroup> SI: array<u32, {WG}>;\n"
        finish = f"""SV[l] = acc; SI[l] = ai;
    workgroupBarrier();
    for (var s = {WG // 2}u; s > 0u; s = s >> 1u) {{
      if (l < s) {{ {tree} }}
      workgroupBarrier();
    }}"""
        head = (f"@compute @workgroup_size({WG})\nfn main(@builtin(local_invocation_id) lid: vec3<u32>, "
                "@builtin(workgroup_id) wid: vec3<u32>, ")
        step = "nwg.x"
    write = f"OUT[o] = {res};" if serial else f"if (l == 0u) {{ OUT[o] = {res}; }}\n    workgroupBarrier();"
    return _bindings(out_t, [in_t], status=wide) + shared + head + f"""@builtin(num_workgroups) nwg: vec3<u32>) {{
  let n_out = P[0]; let r = P[1]; let nk = P[2]; let nr = P[3];
  {"let l = lid.x;" if not serial else ""}
  for (var {outer}; o < n_out; o += {step}) {{
    var rem = o; var base = 0i;
    for (var d = nk; d > 0u; d--) {{
      let k = d - 1u; let s = P[4u + k];
      base += i32(rem % s) * i32(P[4u + nk + k]); rem = rem / s;
    }}
    var acc = {init}; var ai = 0xffffffffu;
    for (var j = {first}; j < r; j += {stride}) {{
      var rr = j; var off = base;
      for (var d = nr; d > 0u; d--) {{
        let k = d - 1u; let s = P[4u + 2u * nk + k];
        off += i32(rr % s) * i32(P[4u + 2u * nk + nr + k]); rr = rr / s;
      }}
      let v = {load}; let vi = j;
      {combine}
    }}
    {finish}
    {write}
  }}
}}
"""


def matmul_source(t: str, TS: int) -> str:  # noqa: N803
    """Batched (M, K) @ (K, N), tiled: each TS x TS workgroup stages TS x TS tiles of A and B in
    workgroup memory per step along K (TS: 16 on GPUs, 8 on CPU adapters). Parameters: M, N, K, nb,
    batches, batch shape, A and B batch strides (0 where broadcast). Grid: (N / TS, M / TS, batches),
    the batch axis grid-strided. Integers (int64 held in i32) accumulate exactly in 64 bits and raise
    the status flag where a product or the result does not fit int32."""
    wide = t == "i32"
    init, result = ("vec2<u32>(0u, 0u)", "narrow(acc)") if wide else (f"{t}(0)", "acc")
    ta, tb = f"TA[lid.y * {TS}u + q]", f"TB[q * {TS}u + lid.x]"
    step = f"acc = add64(acc, wide(cmul({ta}, {tb})));" if wide else f"acc += {ta} * {tb};"
    return _bindings(t, [t, t], status=wide) + f"""
var<workgroup> TA: array<{t}, {TS * TS}>;
var<workgroup> TB: array<{t}, {TS * TS}>;

@compute @workgroup_size({TS}, {TS})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {{
  let M = P[0]; let N = P[1]; let K = P[2]; let nb = P[3]; let nbatch = P[4];
  let row = wid.y * {TS}u + lid.y; let col = wid.x * {TS}u + lid.x;
  for (var z = wid.z; z < nbatch; z += nwg.z) {{
    var rem = z; var ao = 0u; var bo = 0u;
    for (var d = nb; d > 0u; d--) {{
      let k = d - 1u; let s = P[5u + k]; let c = rem % s; rem = rem / s;
      ao += c * P[5u + nb + k]; bo += c * P[5u + 2u * nb + k];
    }}
    var acc = {init};
    for (var t0 = 0u; t0 < K; t0 += {TS}u) {{
      let ak = t0 + lid.x; let bk = t0 + lid.y;
      var av = {t}(0); if (row < M && ak < K) {{ av = IN0[ao + row * K + ak]; }}
      var bv = {t}(0); if (bk < K && col < N) {{ bv = IN1[bo + bk * N + col]; }}
      TA[lid.y * {TS}u + lid.x] = av; TB[lid.y * {TS}u + lid.x] = bv;
      workgroupBarrier();
      for (var q = 0u; q < {TS}u; q++) {{ {step} }}
      workgroupBarrier();
    }}
    if (row < M && col < N) {{ OUT[z * M * N + row * N + col] = {result}; }}
  }}
}}
"""



def matmul_direct_source(t: str) -> str:
    """Batched (M, K) @ (K, N) for CPU adapters, one invocation per output, no workgroup memory: on
    lavapipe a workgroup barrier switches every invocation's coroutine, and the tiled kernel's barriers
    cost more than the reads they save. The same parameters as :func:`matmul_source`; a 1-D grid over the
    batch's outputs, grid-strided. Each output sums its products in the order of k, as the tiled kernel
    does (float32 only: integers keep the tiled kernel's checked 64-bit accumulation)."""
    return _bindings(t, [t, t]) + f"""
@compute @workgroup_size({WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {{
  let M = P[0]; let N = P[1]; let K = P[2]; let nb = P[3]; let nbatch = P[4];
  for (var i = gid.x; i < nbatch * M * N; i += nwg.x * {WG}u) {{
    let z = i / (M * N); let row = (i / N) % M; let col = i % N;
    var rem = z; var ao = 0u; var bo = 0u;
    for (var d = nb; d > 0u; d--) {{
      let k = d - 1u; let s = P[5u + k]; let c = rem % s; rem = rem / s;
      ao += c * P[5u + nb + k]; bo += c * P[5u + 2u * nb + k];
    }}
    var acc = {t}(0);
    for (var q = 0u; q < K; q++) {{ acc += IN0[ao + row * K + q] * IN1[bo + q * N + col]; }}
    OUT[i] = acc;
  }}
}}
"""

_WINDOW_PARAMS = """
  let N = P[0]; let C = P[1]; let H = P[2]; let W = P[3]; let kh = P[4]; let kw = P[5];
  let sh = P[6]; let sw = P[7]; let ph = P[8]; let pw = P[9]; let dh = P[10]; let dw = P[11];
  let oh = P[12]; let ow = P[13]; let L = oh * ow; let KK = kh * kw;"""


def unfold_source(t: str, tiled: bool) -> str:
    """(N, C, H, W) -> (N, C*kh*kw, oh*ow). A UT x UT workgroup covers UT x UT output positions of one
    (n, c) plane; when ``tiled`` it first stages the input window they read (padding as zeros) in
    workgroup memory, so each input element is read from global memory once per workgroup."""
    if tiled:
        stage = f"""
    for (var e = lid.y * {UT}u + lid.x; e < RH * RW; e += {UT * UT}u) {{
      let y = y0 + i32(e / RW); let x = x0 + i32(e % RW);
      var v = {t}(0);
      if (y >= 0 && y < i32(H) && x >= 0 && x < i32(W)) {{ v = IN0[z * H * W + u32(y) * W + u32(x)]; }}
      TILE[e] = v;
    }}
    workgroupBarrier();"""
        read = "TILE[(lid.y * sh + i * dh) * RW + lid.x * sw + j * dw]"
    else:
        stage = ""
        read = "load_x(z, i32(oy * sh + i * dh) - i32(ph), i32(ox * sw + j * dw) - i32(pw), H, W)"
    return _bindings(t, [t]) + f"""
var<workgroup> TILE: array<{t}, {UNFOLD_TILE if tiled else 1}>;

fn load_x(z: u32, y: i32, x: i32, H: u32, W: u32) -> {t} {{
  if (y < 0 || y >= i32(H) || x < 0 || x >= i32(W)) {{ return {t}(0); }}
  return IN0[z * H * W + u32(y) * W + u32(x)];
}}

@compute @workgroup_size({UT}, {UT})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {{{_WINDOW_PARAMS}
  let RH = {UT - 1}u * sh + dh * (kh - 1u) + 1u; let RW = {UT - 1}u * sw + dw * (kw - 1u) + 1u;
  let tiles_y = (oh + {UT - 1}u) / {UT}u; let tiles_x = (ow + {UT - 1}u) / {UT}u;
  for (var z = wid.z; z < N * C; z += nwg.z) {{
  for (var ty = wid.y; ty < tiles_y; ty += nwg.y) {{
  for (var tx = wid.x; tx < tiles_x; tx += nwg.x) {{
    let oy = ty * {UT}u + lid.y; let ox = tx * {UT}u + lid.x;
    let y0 = i32(ty * {UT}u * sh) - i32(ph); let x0 = i32(tx * {UT}u * sw) - i32(pw);{stage}
    if (oy < oh && ox < ow) {{
      let ob = z * KK * L + oy * ow + ox;
      for (var i = 0u; i < kh; i++) {{
        for (var j = 0u; j < kw; j++) {{ OUT[ob + (i * kw + j) * L] = {read}; }}
      }}
    }}
    workgroupBarrier();
  }}
  }}
  }}
}}
"""


def fold_source(t: str) -> str:
    """The adjoint of unfold, as a gather: each output pixel sums the columns that read it (no atomics)."""
    return _bindings(t, [t]) + f"""
@compute @workgroup_size({WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {{{_WINDOW_PARAMS}
  for (var e = gid.x; e < N * C * H * W; e += nwg.x * {WG}u) {{
    let x = e % W; let y = (e / W) % H; let z = e / (H * W);
    var acc = {t}(0);
    for (var i = 0u; i < kh; i++) {{
      let py = i32(y + ph) - i32(i * dh);
      if (py < 0 || py % i32(sh) != 0 || u32(py) / sh >= oh) {{ continue; }}
      for (var j = 0u; j < kw; j++) {{
        let px = i32(x + pw) - i32(j * dw);
        if (px < 0 || px % i32(sw) != 0 || u32(px) / sw >= ow) {{ continue; }}
        acc += IN0[(z * KK + i * kw + j) * L + (u32(py) / sh) * ow + u32(px) / sw];
      }}
    }}
    OUT[e] = acc;
  }}
}}
"""


def index_source(t: str, m: int, mode: str) -> str:
    """Indexing with ``m`` int index buffers: ``get`` gathers x[key] into OUT; ``put`` and ``add``
    scatter values into OUT at x[key] (``add`` atomically, so repeated indices add up). Parameters:
    n, nd, index-space shape, x offset, x strides, values offset, values strides, then per index
    buffer: its axis' stride and size in x, and its strides over the index space."""
    idx_decl = "\n".join(f"@group(0) @binding({3 + k}) var<storage, read> IDX{k}: array<i32>;" for k in range(m))
    decl = " ".join(f"var q{k} = 0u;" for k in range(m))
    upd = " ".join(f"q{k} += cu * P[4u + 3u * nd + {k}u * (nd + 2u) + 2u + k];" for k in range(m))
    adv = "\n    ".join(
        f"{{ let ib = 4u + 3u * nd + {k}u * (nd + 2u); var v = IDX{k}[q{k}]; "
        f"if (v < 0) {{ v += i32(P[ib + 1u]); }} xo += v * i32(P[ib]); }}" for k in range(m))
    if mode == "get":
        store = "OUT[i] = IN0[xo];"
    elif mode == "put":
        store = "OUT[xo] = IN0[vo];"
    elif t == "f32":  # no atomic float add in WGSL: compare-and-swap on the bits
        store = """var old = atomicLoad(&OUT[xo]);
    loop {
      let r = atomicCompareExchangeWeak(&OUT[xo], old, bitcast<u32>(bitcast<f32>(old) + IN0[vo]));
      if (r.exchanged) { break; }
      old = r.old_value;
    }"""
    elif t == "i32":  # the old value the atomic add returns tells whether the sum left int32
        store = "let add = IN0[vo]; _ = cadd(atomicAdd(&OUT[xo], add), add);"
    else:  # bool (u32) ors
        store = "atomicOr(&OUT[xo], IN0[vo]);"
    out_t = "u32" if (mode == "add" and t == "f32") else t
    status = mode == "add" and t == "i32"
    return _bindings(out_t, [t], out_atomic=mode == "add", status=status, extra=m) + idx_decl + f"""
@compute @workgroup_size({WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {{
  let n = P[0]; let nd = P[1];
  for (var i = gid.x; i < n; i += nwg.x * {WG}u) {{
    var rem = i; var xo = i32(P[2u + nd]); var vo = i32(P[3u + 2u * nd]);
    {decl}
    for (var d = nd; d > 0u; d--) {{
      let k = d - 1u; let s = P[2u + k]; let cu = rem % s; let c = i32(cu); rem = rem / s;
      xo += c * i32(P[3u + nd + k]); vo += c * i32(P[4u + 2u * nd + k]);
      {upd}
    }}
    {adv}
    {store}
  }}
}}
"""
