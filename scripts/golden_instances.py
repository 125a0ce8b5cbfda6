#!/usr/bin/env python3
"""An independent implementation of the instance metrics, written from the papers' definitions, for
cross-checking patho's lib/objects/metrics.ts (test/objects/metrics.test.ts):

- AJI, Kumar et al., "A Dataset and a Technique for Generalized Nuclear Segmentation for Computational
  Pathology", IEEE TMI 2017, Algorithm 1: for each ground-truth nucleus G_i take the segmented nucleus S_j
  maximising |G_i n S_j| / |G_i u S_j|; C += |G_i n S_j|, U += |G_i u S_j|; finally U += |S_k| for every
  S_k never chosen. AJI = C / U.
- PQ, Kirillov et al., "Panoptic Segmentation", CVPR 2019: segments match when IoU > 0.5 (then the match is
  unique); PQ = sum_TP IoU / (|TP| + |FP|/2 + |FN|/2) = SQ x DQ.
Here everything is computed with dense boolean masks per object (no shared code with the TypeScript).
Hausdorff distances use scipy's distance_transform_edt on the boundary masks, MONAI's percentile rule.

  python3 scripts/golden_instances.py    # writes test/golden/instances.json
"""
import json
import os

import numpy as np
from scipy import ndimage as ndi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "golden", "instances.json")


def objects(labels):
    return {int(v): labels == v for v in np.unique(labels) if v != 0}


def aji(gt, pred):
    G, S = objects(gt), objects(pred)
    C = U = 0
    used = set()
    for g in sorted(G):
        best, best_iou = None, -1.0
        for s in sorted(S):
            inter = np.logical_and(G[g], S[s]).sum()
            if inter == 0:
                continue
            iou = inter / np.logical_or(G[g], S[s]).sum()
            if iou > best_iou:
                best, best_iou = s, iou
        if best is None:
            U += G[g].sum()
            continue
        C += np.logical_and(G[g], S[best]).sum()
        U += np.logical_or(G[g], S[best]).sum()
        used.add(best)
    U += sum(S[s].sum() for s in S if s not in used)
    return float(C / U) if U else float("nan")


def pq(gt, pred):
    G, S = objects(gt), objects(pred)
    tp, iou_sum = 0, 0.0
    for g in G:
        for s in S:
            inter = np.logical_and(G[g], S[s]).sum()
            iou = inter / np.logical_or(G[g], S[s]).sum()
            if iou > 0.5:
                tp += 1
                iou_sum += iou
    fp, fn = len(S) - tp, len(G) - tp
    if not G and not S:
        return dict(pq=float("nan"), dq=float("nan"), sq=float("nan"), tp=0, fp=0, fn=0)
    dq = tp / (tp + 0.5 * fp + 0.5 * fn)
    sq = iou_sum / tp if tp else 0.0
    return dict(pq=dq * sq, dq=dq, sq=sq, tp=tp, fp=fp, fn=fn)


def hausdorff(a, b):
    def edges(m):
        return m & ~ndi.binary_erosion(m, border_value=0)
    ea, eb = edges(a.astype(bool)), edges(b.astype(bool))
    if not ea.any() or not eb.any():
        return None
    da = ndi.distance_transform_edt(~eb)[ea]
    db = ndi.distance_transform_edt(~ea)[eb]
    return dict(hd=float(max(da.max(), db.max())), hd95=float(max(np.percentile(da, 95), np.percentile(db, 95))))


def random_instances(rng, h, w, n, shift=0):
    """n random ellipses painted in order (later ones cover earlier ones), optionally shifted."""
    yy, xx = np.mgrid[0:h, 0:w]
    lab = np.zeros((h, w), np.int32)
    for k in range(1, n + 1):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(2, 7), rng.uniform(2, 7)
        lab[((yy - cy - shift) / ry) ** 2 + ((xx - cx + shift) / rx) ** 2 <= 1] = k
    return lab


def main():
    rng = np.random.default_rng(3)
    cases = []
    for i in range(6):
        h, w = 48, 64
        gt = random_instances(np.random.default_rng(100 + i), h, w, 12)
        # a prediction: the truth with jitter (shifted, a few objects merged, some dropped, some added)
        pred = random_instances(np.random.default_rng(100 + i), h, w, 12, shift=rng.integers(0, 3))
        if i % 2:
            pred[pred == 2] = 3
        if i % 3 == 0:
            pred[pred == 5] = 0
        pred[random_instances(np.random.default_rng(200 + i), h, w, 2) > 0] = 40 + i
        # relabel the prediction with arbitrary ids (metrics must not depend on label values)
        ids = np.unique(pred[pred > 0])
        perm = rng.permutation(len(ids)) * 7 + 11
        remap = np.zeros(pred.max() + 1, np.int32)
        remap[ids] = perm
        pred = remap[pred]
        case = dict(width=w, height=h, truth=gt.ravel().tolist(), pred=pred.ravel().tolist(), aji=aji(gt, pred), **pq(gt, pred),
                    nTrue=len(objects(gt)), nPred=len(objects(pred)))
        case["boundary"] = hausdorff(gt > 0, pred > 0)
        cases.append(case)
    with open(OUT, "w") as f:
        json.dump({"cases": cases}, f)
    print(f"wrote {OUT}: " + ", ".join(f"AJI {c['aji']:.3f} PQ {c['pq']:.3f}" for c in cases))


if __name__ == "__main__":
    main()
