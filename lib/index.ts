// The package entry (`require('patho')`): the public API. Minimal for now: the typed native binding
// and its loader report; the training helper extends it with tensors, nn, data and training.
export * from './native';
