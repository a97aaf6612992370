export * from './image-prefetcher';
export * from './node-selector';
export * from './tag-filter';
export * from './threshold';
export * from './reconcile-schedule';
export * from './run-command-target';
export * from './prefetch-document';
export * from './prefetch-dead-letter-queue';
