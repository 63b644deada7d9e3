/**
 * Preloaded (`--import`) into a benchmarked server started with
 * `--expose-gc`: SIGUSR2 runs a full garbage collection, so the benchmark
 * can read memory per socket after GC without touching the server's code.
 */
process.on('SIGUSR2', () => {
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
})
