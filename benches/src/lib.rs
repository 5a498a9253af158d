//! Shared helpers for the roomcast benchmarks.
