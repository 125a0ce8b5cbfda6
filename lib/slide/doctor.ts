// The OpenSlide section of `patho doctor`: found or not, version, where it was looked for, and how
// to install it (slides in TIFF-based formats are read without it).
import { openSlideInfo, openSlideInstallHint } from './openslide';
import type { OpenSlideLibraryInfo } from '../native';

export function openSlideReport(): OpenSlideLibraryInfo {
  return openSlideInfo();
}

export function openSlideLines(r: OpenSlideLibraryInfo): string[] {
  if (r.available) return [`  openslide  ${r.version} (${r.path})  ok`];
  return [`  openslide  not found: ${r.error}`, ...r.tried.map((l) => `    looked   ${l}`)];
}

export function openSlideFix(r: OpenSlideLibraryInfo): string | null {
  if (r.available) return null;
  return (
    `OpenSlide: vendor slides (.ndpi, .mrxs, .scn, .vms, .bif, JPEG 2000 .svs) need it: ${openSlideInstallHint()}. ` +
    'Aperio .svs with JPEG tiles and pyramidal/OME-TIFF are read without it.'
  );
}
