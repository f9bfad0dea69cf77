# tests/: integration tests (real binaries on loopback) and benchmarks.
