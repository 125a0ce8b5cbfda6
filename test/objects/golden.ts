// The scipy / scikit-image golden values of scripts/golden_objects.py (test/golden/objects.json).
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface RegionProps {
  label: number;
  area: number;
  centroid: [number, number];
  perimeter: number;
  equivalentDiameter: number;
  eccentricity: number;
  solidity: number;
  meanIntensity: number;
}
export interface ObjectsCase {
  name: string;
  width: number;
  height: number;
  mask: number[];
  distance: number[];
  label4: number[];
  label8: number[];
  hmaxima: Record<string, number[]>;
  watershed: Record<string, number[]>;
  intensity: number[];
  regionprops: RegionProps[];
}
export const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '../golden/objects.json'), 'utf8')) as {
  cases: ObjectsCase[];
  rgb: number[];
  hematoxylin: number[];
  eosin: number[];
};

/** indices where a and b differ (at most `max` of them), for readable failures */
export function differences(a: ArrayLike<number>, b: ArrayLike<number>, max = 5): string {
  const out: string[] = [];
  for (let i = 0; i < a.length && out.length < max; i++) if (a[i] !== b[i]) out.push(`[${i}] ${a[i]} vs ${b[i]}`);
  return out.join(', ');
}
