#!/usr/bin/env python3
"""scipy / scikit-image golden values for patho's object functions (test/objects/*.test.ts):
distance_transform_edt, ndimage.label (4 and 8 connectivity), h_maxima, the marker watershed on the
distance transform, regionprops (area, centroid, perimeter, equivalent diameter, eccentricity, solidity,
mean intensity) and rgb2hed's hematoxylin channel, on small synthetic images of touching discs.

  python3 scripts/golden_objects.py    # writes test/golden/objects.json
Needs numpy, scipy, scikit-image; patho itself never needs Python.
"""
import json
import os

import numpy as np
from scipy import ndimage as ndi
from skimage.color import rgb2hed
from skimage.measure import regionprops
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "golden", "objects.json")


def discs(h, w, centres, radii):
    yy, xx = np.mgrid[0:h, 0:w]
    m = np.zeros((h, w), bool)
    for (cy, cx), r in zip(centres, radii):
        m |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    return m


def image_case(name, mask, hs, rng):
    h, w = mask.shape
    dist = ndi.distance_transform_edt(mask).astype(np.float32)
    out = {"name": name, "width": w, "height": h, "mask": mask.astype(int).ravel().tolist(),
           "distance": dist.ravel().tolist(),
           "label4": ndi.label(mask)[0].ravel().tolist(),
           "label8": ndi.label(mask, structure=np.ones((3, 3)))[0].ravel().tolist(),
           "hmaxima": {}, "watershed": {}}
    for hh in hs:
        peaks = h_maxima(dist, hh).astype(bool) & mask
        markers = ndi.label(peaks, structure=np.ones((3, 3)))[0]
        out["hmaxima"][str(hh)] = h_maxima(dist, hh).ravel().tolist()
        out["watershed"][str(hh)] = watershed(-dist, markers, mask=mask).ravel().tolist()
    labels = np.array(out["watershed"][str(hs[0])]).reshape(h, w)
    intensity = rng.random((h, w)).astype(np.float32)
    props = []
    for r in regionprops(labels, intensity_image=intensity):
        props.append({"label": int(r.label), "area": float(r.area), "centroid": [float(v) for v in r.centroid],
                      "perimeter": float(r.perimeter), "equivalentDiameter": float(r.equivalent_diameter_area),
                      "eccentricity": float(r.eccentricity), "solidity": float(r.solidity),
                      "meanIntensity": float(r.intensity_mean)})
    out["intensity"] = intensity.ravel().tolist()
    out["regionprops"] = props
    return out


def main():
    rng = np.random.default_rng(7)
    cases = [
        image_case("two touching discs", discs(24, 36, [(12, 11), (12, 24)], [8, 7]), [1, 2], rng),
        image_case("three discs, one apart, and a speck", discs(40, 40, [(12, 12), (20, 24), (32, 8), (3, 36)], [8, 9, 5, 1]),
                   [1, 3], rng),
    ]
    noisy = discs(30, 45, [(15, 12), (15, 30), (5, 40)], [9, 10, 3]) & (rng.random((30, 45)) > 0.08)
    cases.append(image_case("discs with holes and ragged edges", noisy, [1.5], rng))
    # lines and single pixels: 4- vs 8-connectivity differ
    diag = np.zeros((9, 11), bool)
    for i in range(6):
        diag[i + 1, i + 2] = True
    diag[7, 1] = diag[1, 9] = diag[2, 9] = True
    cases.append(image_case("a diagonal line and single pixels", diag, [1], rng))
    rgb = (rng.random((4, 5, 3)) * 255).astype(np.uint8)
    hed = rgb2hed(rgb)
    with open(OUT, "w") as f:
        json.dump({"cases": cases, "rgb": rgb.ravel().tolist(), "hematoxylin": hed[..., 0].ravel().tolist(),
                   "eosin": hed[..., 1].ravel().tolist()}, f)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
