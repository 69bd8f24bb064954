// The name of the advisory lock the moderation worker's leader holds, apart from the worker itself:
// `serve` (the admin pages' status, the idle worker) reads it without loading the worker, which
// brings the Matrix client (matrix-js-sdk, about 200 modules) that `serve` otherwise never needs.
export const WORKER_LOCK = 'wiki-matrix-sso:worker';
