// The CPU-bound work of GET /cpu, the same in every runtime (bench/app/index.ts): xorshift32.
// Shared by the component and the native server, so that both run exactly this code.

/// Rounds per request: about 1 ms in trail's JS interpreter.
pub const SPIN_ITERATIONS: u32 = 20000;

pub fn spin(n: u32) -> u32 {
    let mut x: u32 = 2463534242;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
    }
    x
}

/// The iteration count of a request: `?n=` when given, else SPIN_ITERATIONS (read at run time,
/// so that the compiler cannot compute the result ahead).
pub fn iterations(query: &str) -> u32 {
    query
        .split('&')
        .find_map(|p| p.strip_prefix("n="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(SPIN_ITERATIONS)
}
