//! The mock Codex upstream with fault injection, used by tests, `cao demo` and the benchmarks.
