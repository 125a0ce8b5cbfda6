// The class list a K-class checkpoint records (patho.classes: K names, class 0 background;
// patho.classColors: K display colours '#rrggbb') and its validation when read back. Binary models
// (one output channel) keep patho.classes as the names of the positive class, as slide training
// writes it, and have no class list here.
import { PathoError } from '../errors';
import { classesFromNames, hexColor, PALETTE, parseClasses, type ClassList } from './classes';

/** What a checkpoint stores of a class list (metadata keys without the patho. prefix). */
export interface ClassMeta {
  classes: string[];
  classColors: string[];
}

export function classMeta(list: ClassList): ClassMeta {
  return { classes: list.classes.map((c) => c.name), classColors: list.classes.map((c) => hexColor(c.color)) };
}

function bad(file: string, key: string, expected: string, got: unknown): PathoError {
  const shown = JSON.stringify(got)?.slice(0, 120) ?? String(got);
  return new PathoError('ERR_PATHO_CHECKPOINT', `${file}: metadata patho.${key}: Expected ${expected} but received ${shown}`);
}

/**
 * The class list of a model with `outChannels` outputs from its checkpoint metadata: null for a binary
 * model; for K > 1 the recorded names and colours, checked (K distinct non-empty names, K colours), or
 * 'background', 'class1', ... with palette colours for a checkpoint that records none (a PyTorch
 * state_dict). Index masks of such a model hold the values 0..K-1.
 */
export function classesFromCheckpoint(meta: Record<string, unknown>, outChannels: number, file: string): ClassList | null {
  if (outChannels <= 1) return null;
  const K = outChannels;
  const names = meta.classes;
  if (names === undefined || names === null) {
    return classesFromNames(['background', ...Array.from({ length: K - 1 }, (_, i) => `class${i + 1}`)], file);
  }
  if (
    !Array.isArray(names) ||
    names.length !== K ||
    names.some((n) => typeof n !== 'string' || n.trim() === '') ||
    new Set(names).size !== K
  ) {
    throw bad(file, 'classes', `${K} distinct class names (one per output channel of the model)`, names);
  }
  const colors = meta.classColors;
  if (
    colors !== undefined &&
    (!Array.isArray(colors) || colors.length !== K || colors.some((c) => typeof c !== 'string' || !/^#[0-9a-fA-F]{6}$/.test(c)))
  ) {
    throw bad(file, 'classColors', `${K} colours '#rrggbb'`, colors);
  }
  const list = parseClasses(
    {
      classes: (names as string[]).map((name, value) => ({
        name,
        value,
        color: (colors as string[] | undefined)?.[value] ?? PALETTE[value % PALETTE.length],
      })),
    },
    file,
  );
  return list;
}
