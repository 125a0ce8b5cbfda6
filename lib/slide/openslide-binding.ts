// The OpenSlide part of the addon's typed binding (native/binding/openslide.cc); lib/native.ts's
// Binding extends it, so only that file touches the loaded addon.

export interface OpenSlideLevelInfo {
  width: number;
  height: number;
  downsample: number;
}

/** An open slide in OpenSlide; reads run off the JS thread and may overlap. */
export interface OpenSlideHandle {
  readonly closed: boolean;
  properties(): Record<string, string>;
  levels(): OpenSlideLevelInfo[];
  /** RGB (premultiplied ARGB composited over white); x, y in level-0 pixels, width and height in the level's */
  readRegion(level: number, x: number, y: number, width: number, height: number): Promise<Uint8Array>;
  /** idempotent; reads in flight finish first */
  close(): void;
}

export interface OpenSlideLibraryInfo {
  available: boolean;
  version: string | null;
  /** the file that was loaded */
  path: string | null;
  error: string | null;
  /** every place looked at, with the result ("path: ok" or the dlopen message) */
  tried: string[];
}

export interface OpenSlideBinding {
  /** loads libopenslide on first use (PATHO_OPENSLIDE_PATH, else the library path) */
  openslideInfo(): OpenSlideLibraryInfo;
  /** ERR_PATHO_LOAD without OpenSlide; ERR_PATHO_SLIDE when OpenSlide cannot open the file */
  openslideOpen(file: string): OpenSlideHandle;
}
