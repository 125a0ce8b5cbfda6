// The class list of a multi-class model: from `--classes a,b,c` (mask values 0..K-1) or from a classes.json
// beside the data, which gives each class its name, its mask value or mask colour, and its display colour:
//   { "classes": [ { "name": "background", "value": 0, "color": "#000000" },
//                  { "name": "tumour", "value": 1, "color": "#e6194b" } ],
//     "ignore": { "value": 255 } }
// ("rgb": "#rrggbb" or [r, g, b] instead of "value" for colour masks; "ignore" is optional). Class i is the
// i-th entry; class 0 is background. Parsing is strict: one clear error naming the file and the entry.
import * as fs from 'node:fs';
import { DataError, invalidOption } from '../errors';

export type Rgb = [number, number, number];

export interface ClassDef {
  name: string;
  /** the mask value of the class (index masks) */
  value?: number;
  /** the mask colour of the class (colour masks) */
  rgb?: Rgb;
  /** display colour (overlays, the _classes.png output) */
  color: Rgb;
}

export interface ClassList {
  classes: ClassDef[];
  /** masks hold values ('index') or colours ('rgb') */
  kind: 'index' | 'rgb';
  /** mask value or colour whose pixels the loss and metrics skip */
  ignore?: { value?: number; rgb?: Rgb };
  /** the classes.json it came from, for messages */
  source?: string;
}

/** Display colours: black background, then well-separated hues (Sasha Trubetskoy's 20 distinct colours). */
export const PALETTE: readonly string[] = [
  '#000000',
  '#e6194b',
  '#3cb44b',
  '#4363d8',
  '#ffe119',
  '#f58231',
  '#911eb4',
  '#46f0f0',
  '#f032e6',
  '#bcf60c',
  '#fabebe',
  '#008080',
  '#e6beff',
  '#9a6324',
  '#fffac8',
  '#800000',
  '#aaffc3',
  '#808000',
  '#ffd8b1',
  '#000075',
];

/** Most classes a model may have: labels are uint8 on the device and 255 stays free for the ignore index. */
export const MAX_CLASSES = 255;

export function hexColor(c: Rgb): string {
  return `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

function parseRgb(v: unknown, where: string, file: string): Rgb {
  if (typeof v === 'string' && /^#[0-9a-fA-F]{6}$/.test(v)) {
    return [parseInt(v.slice(1, 3), 16), parseInt(v.slice(3, 5), 16), parseInt(v.slice(5, 7), 16)];
  }
  if (Array.isArray(v) && v.length === 3 && v.every((x) => Number.isInteger(x) && x >= 0 && x <= 255)) return [v[0], v[1], v[2]];
  throw invalidOption(`${where} in ${file}`, "a colour '#rrggbb' or [r, g, b] with values 0-255", v, 'ERR_PATHO_DATA');
}

function parseValue(v: unknown, where: string, file: string): number {
  if (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535) return v as number;
  throw invalidOption(`${where} in ${file}`, 'an integer mask value 0-65535', v, 'ERR_PATHO_DATA');
}

/** Checks and normalises the parsed content of a classes.json (`file` names it in errors). */
export function parseClasses(json: unknown, file: string): ClassList {
  const obj = Array.isArray(json) ? { classes: json } : json;
  if (!obj || typeof obj !== 'object' || !Array.isArray((obj as { classes?: unknown }).classes)) {
    throw invalidOption(file, 'a JSON object with a "classes" array (or an array of classes)', json, 'ERR_PATHO_DATA');
  }
  const raw = (obj as { classes: unknown[] }).classes;
  if (raw.length < 2 || raw.length > MAX_CLASSES) {
    throw invalidOption(
      `"classes" in ${file}`,
      `2 to ${MAX_CLASSES} classes (class 0 is background)`,
      `${raw.length} classes`,
      'ERR_PATHO_DATA',
    );
  }
  let kind: ClassList['kind'] | undefined;
  const names = new Set<string>();
  const keys = new Set<string>();
  const classes = raw.map((c, i): ClassDef => {
    const where = `classes[${i}]`;
    if (!c || typeof c !== 'object')
      throw invalidOption(`${where} in ${file}`, 'an object with "name" and "value" or "rgb"', c, 'ERR_PATHO_DATA');
    const e = c as Record<string, unknown>;
    if (typeof e.name !== 'string' || e.name.trim() === '')
      throw invalidOption(`${where}.name in ${file}`, 'a non-empty string', e.name, 'ERR_PATHO_DATA');
    if (names.has(e.name)) throw invalidOption(`${where}.name in ${file}`, 'a name used once', e.name, 'ERR_PATHO_DATA');
    names.add(e.name);
    const k: ClassList['kind'] = e.rgb !== undefined ? 'rgb' : 'index';
    if (e.rgb !== undefined && e.value !== undefined)
      throw invalidOption(`${where} in ${file}`, 'either "value" or "rgb", not both', c, 'ERR_PATHO_DATA');
    if (kind && k !== kind) {
      throw invalidOption(
        `${where} in ${file}`,
        `a "${kind === 'rgb' ? 'rgb' : 'value'}" like the classes before it (masks are index or colour images, not both)`,
        c,
        'ERR_PATHO_DATA',
      );
    }
    kind = k;
    const def: ClassDef = {
      name: e.name,
      color: e.color !== undefined ? parseRgb(e.color, `${where}.color`, file) : parseRgb(PALETTE[i % PALETTE.length], where, file),
    };
    if (k === 'rgb') def.rgb = parseRgb(e.rgb, `${where}.rgb`, file);
    else def.value = e.value === undefined ? i : parseValue(e.value, `${where}.value`, file);
    const key = def.rgb ? hexColor(def.rgb) : String(def.value);
    if (keys.has(key)) throw invalidOption(`${where} in ${file}`, 'a mask value or colour no other class has', key, 'ERR_PATHO_DATA');
    keys.add(key);
    return def;
  });
  const list: ClassList = { classes, kind: kind!, source: file };
  const ig = (obj as { ignore?: unknown }).ignore;
  if (ig !== undefined) {
    const e = ig as Record<string, unknown>;
    list.ignore = kind === 'rgb' ? { rgb: parseRgb(e?.rgb, 'ignore.rgb', file) } : { value: parseValue(e?.value, 'ignore.value', file) };
    const key = list.ignore.rgb ? hexColor(list.ignore.rgb) : String(list.ignore.value);
    if (keys.has(key)) throw invalidOption(`ignore in ${file}`, 'a mask value or colour that is not a class', key, 'ERR_PATHO_DATA');
  }
  return list;
}

/** Reads and checks a classes.json. */
export function readClassesFile(file: string): ClassList {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataError(`Cannot read the class list ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DataError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  return parseClasses(json, file);
}

/** `--classes background,a,b`: index masks with values 0..K-1, palette colours. */
export function classesFromNames(names: string[], flag = '--classes'): ClassList {
  const list = names.map((n) => n.trim());
  if (list.length < 2 || list.length > MAX_CLASSES || list.some((n) => n === '') || new Set(list).size !== list.length) {
    throw invalidOption(
      flag,
      `2 to ${MAX_CLASSES} distinct, non-empty class names separated by commas (class 0 is background)`,
      names.join(','),
      'ERR_PATHO_USAGE',
    );
  }
  return parseClasses({ classes: list.map((name, value) => ({ name, value })) }, flag);
}

/** A K-class checkpoint (or model) used with a class list of another length: one clear error. */
export function checkClassCount(list: ClassList, K: number, what: string): void {
  if (list.classes.length !== K) {
    throw invalidOption(
      `the class list (${list.source ?? 'classes'}: ${list.classes.map((c) => c.name).join(', ')})`,
      `${K} classes to match ${what}`,
      `${list.classes.length} classes`,
      'ERR_PATHO_USAGE',
    );
  }
}

/** "background=0, tumour=1" or "background=#000000, ...": the class list as error messages show it. */
export function describeClasses(list: ClassList): string {
  return list.classes.map((c) => `${c.name}=${c.rgb ? hexColor(c.rgb) : c.value}`).join(', ');
}
