// bfloat16 rounding for tests, written independently of the native code: float32 -> bfloat16 ->
// float32 with round to nearest, ties to even; NaN stays a quiet NaN (the rule of native/core/bf16.h,
// cuDNN's __float2bfloat16_rn and PyTorch).
export function roundBf16(a: ArrayLike<number>): Float32Array {
  const f = Float32Array.from(a);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < u.length; i++) {
    const x = u[i];
    if ((x & 0x7fffffff) > 0x7f800000) u[i] = ((x | 0x00400000) & 0xffff0000) >>> 0;
    else u[i] = ((x + 0x7fff + ((x >>> 16) & 1)) & 0xffff0000) >>> 0;
  }
  return f;
}
