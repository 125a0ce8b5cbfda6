// Whole-slide reading: openSlide() and the Slide object, tissue detection, µm-per-pixel parsing.
export { openSlide, isSlideFile, SLIDE_EXTENSIONS, OPENSLIDE_EXTENSIONS, TIFF_SLIDE_EXTENSIONS, type OpenSlideOptions } from './open';
export type { Slide, SlideLevel, RegionRequest, ScaledRequest, RgbImage } from './slide';
export { openSlideInfo, openSlideInstallHint } from './openslide';
export type { OpenSlideLibraryInfo } from '../native';
export { readTiffInfo, type TiffInfo, type TiffDirectory } from './tiff';
export {
  detectTissue,
  tissueFromImage,
  otsuThreshold,
  TissueMask,
  TISSUE_THRESHOLD_RANGE,
  type TissueOptions,
  type TissueMethod,
} from './tissue';
