// Data parallelism: communicators, rendezvous, gradient buckets and the launcher (DESIGN.md decision 6).
export { Communicator, type ReduceOp, type GlooOptions } from './communicator';
export { Rendezvous, rendezvousOptionsFromEnv, isLoopback, type RendezvousOptions } from './rendezvous';
export { StoreServer, StoreClient, StoreError } from './store';
export { planBuckets, bucketViews, DEFAULT_BUCKET_BYTES, type Bucket, type ParamSpan, type BucketOptions } from './buckets';
export { launch, restartCount, LAUNCH_MAX_NPROC, type LaunchOptions } from './launch';
export { detectPlacement, describePlacement, cudaDeviceForPlacement, slurmPort, type Placement, type PlacementSource } from './scheduler';
export { expandHostList, firstHost, expandTasksPerNode } from './hostlist';
export { GradientSync, broadcastParameters } from './grad_sync';
