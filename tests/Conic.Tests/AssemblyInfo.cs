// Model initialisation draws from libtorch's process-wide generator; tests that run concurrently would interleave
// their draws and break the same-seed-same-weights guarantees the tests check.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
