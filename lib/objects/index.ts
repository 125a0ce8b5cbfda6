// Objects (instances): separation from probability maps, label-image operations, per-object measurements,
// instance metrics and the merge of objects across slide windows. The public surface of lib/objects.
export * from './label_image';
export * from './separate';
export * from './features';
export * from './metrics';
export * from './seams';
export * from './boundary';
