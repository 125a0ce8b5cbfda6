// PyTorch's default initialisation rules, drawn from our seedable Rng (same distributions as
// torch.nn.Conv2d.reset_parameters; the values differ from torch's generator, by design).
import type { InitFn } from './parameter';

/** kaiming_uniform_(a=sqrt(5)): bound = gain * sqrt(3 / fanIn) with gain = sqrt(2 / (1 + a^2)) = 1/sqrt(fanIn) */
export function kaimingUniformA5(fanIn: number): InitFn {
  const bound = Math.sqrt(2 / 6) * Math.sqrt(3 / fanIn);
  return uniform(-bound, bound);
}

/** the conv bias rule: uniform(-1/sqrt(fanIn), 1/sqrt(fanIn)) */
export function biasUniform(fanIn: number): InitFn {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return uniform(-bound, bound);
}

export function uniform(lo: number, hi: number): InitFn {
  return (rng, out) => {
    for (let i = 0; i < out.length; i++) out[i] = rng.uniform(lo, hi);
  };
}

export function constant(v: number): InitFn {
  return (_rng, out) => {
    out.fill(v);
  };
}
