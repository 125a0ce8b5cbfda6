// Instance separation on the host (lib/objects calls these through native/binding/objects.cc): exact
// Euclidean distance transform, connected components, h-maxima, marker-controlled watershed. Images are
// row-major w x h; masks are nonzero for foreground. Semantics follow scipy.ndimage / scikit-image, which
// the tests use for golden values. Pure functions: no state, safe on any thread.
#pragma once
#include <cstdint>

namespace patho {
namespace objects {

// out[i] = Euclidean distance (px) from foreground pixel i to the nearest background pixel, 0 on the
// background (scipy.ndimage.distance_transform_edt); +inf everywhere when there is no background pixel.
void distanceTransform(const uint8_t* mask, int64_t w, int64_t h, float* out);

// Labels 1..n of the connected foreground components (connectivity 4 or 8), numbered in the raster order
// of their first pixel like scipy.ndimage.label; 0 on the background. Returns n.
int32_t labelComponents(const uint8_t* mask, int64_t w, int64_t h, int connectivity, int32_t* out);

// Grayscale reconstruction by dilation of seed under limit (8-connected), in place in seed: seed <= limit.
void reconstructByDilation(float* seed, const float* limit, int64_t w, int64_t h);

// out = 1 on the regional maxima of image whose dynamic is at least hh (skimage.morphology.h_maxima with
// its default 3x3 footprint and its float tolerance), else 0. hh > 0.
void hMaxima(const float* image, int64_t w, int64_t h, float hh, uint8_t* out);

// Marker-controlled watershed flooding `elevation` from the nonzero labels (in place): a priority queue
// ordered by (elevation, time of entry), a pixel taking the label of the neighbour that reached it first,
// as skimage.segmentation.watershed (compactness 0, no watershed line). Only pixels with mask != 0 (all when
// mask is null) are labelled; markers outside the mask are cleared. connectivity 4 or 8.
void watershed(const float* elevation, const uint8_t* mask, int64_t w, int64_t h, int connectivity, int32_t* labels);

}  // namespace objects
}  // namespace patho
