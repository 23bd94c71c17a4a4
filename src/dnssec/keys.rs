//! DNSSEC keys: ECDSAP256SHA256 (13) and ED25519 (15), read from and written to BIND's
//! `K<zone>+<alg>+<tag>.key` / `.private` files, so `dnssec-keygen`, `ldns-keygen` and
//! `keymgr` keys work, and the DNSKEY, key tag and DS that go with them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hickory_proto::rr::Name;
use ring::rand::SecureRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};

/// A signing algorithm gslbd supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA Curve P-256 with SHA-256 (RFC 6605), number 13.
    EcdsaP256Sha256,
    /// Ed25519 (RFC 8080), number 15.
    Ed25519,
}

impl Algorithm {
    /// The IANA number.
    pub fn number(self) -> u8 {
        match self {
            Algorithm::EcdsaP256Sha256 => 13,
            Algorithm::Ed25519 => 15,
        }
    }

    /// The algorithm of IANA number `n`, if supported.
    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            13 => Some(Algorithm::EcdsaP256Sha256),
            15 => Some(Algorithm::Ed25519),
            _ => None,
        }
    }

    /// BIND's mnemonic.
    pub fn mnemonic(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256Sha256 => "ECDSAP256SHA256",
            Algorithm::Ed25519 => "ED25519",
        }
    }

    /// By number or mnemonic (`13`, `ecdsap256sha256`, `15`, `ed25519`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "13" | "ECDSAP256SHA256" => Some(Algorithm::EcdsaP256Sha256),
            "15" | "ED25519" => Some(Algorithm::Ed25519),
            _ => None,
        }
    }
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// One key: its public half as a DNSKEY and its private half, able to sign.
pub struct Key {
    /// The zone it belongs to (the DNSKEY owner).
    pub zone: Name,
    /// The algorithm.
    pub alg: Algorithm,
    /// DNSKEY flags: 257 (SEP: a KSK or CSK) or 256 (a ZSK).
    pub flags: u16,
    /// The DNSKEY's public key field.
    pub public: Vec<u8>,
    /// The key tag (RFC 4034 Appendix B).
    pub tag: u16,
    pair: Pair,
    private: Vec<u8>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("zone", &self.zone.to_ascii())
            .field("alg", &self.alg)
            .field("flags", &self.flags)
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// Builds a key from its private bytes (the P-256 scalar, or the Ed25519 seed) and, for
    /// ECDSA, the public key field (X‖Y); checks that the two belong together.
    pub fn from_parts(
        zone: &Name,
        alg: Algorithm,
        flags: u16,
        private: &[u8],
        public: Option<&[u8]>,
    ) -> Result<Self, String> {
        let (pair, public) = match alg {
            Algorithm::EcdsaP256Sha256 => {
                let public = public.ok_or("an ECDSA key needs its public key")?;
                if public.len() != 64 {
                    return Err(format!(
                        "an ECDSAP256SHA256 public key is 64 bytes, not {}",
                        public.len()
                    ));
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(public);
                let pair = EcdsaKeyPair::from_private_key_and_public_key(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    private,
                    &point,
                    &ring::rand::SystemRandom::new(),
                )
                .map_err(|e| format!("the private and public key do not match: {e}"))?;
                (Pair::Ecdsa(pair), public.to_vec())
            }
            Algorithm::Ed25519 => {
                let pair = Ed25519KeyPair::from_seed_unchecked(private)
                    .map_err(|e| format!("bad Ed25519 private key: {e}"))?;
                let derived = pair.public_key().as_ref().to_vec();
                if let Some(p) = public
                    && p != derived.as_slice()
                {
                    return Err("the private and public key do not match".into());
                }
                (Pair::Ed25519(pair), derived)
            }
        };
        let mut key = Key {
            zone: zone.to_lowercase(),
            alg,
            flags,
            public,
            tag: 0,
            pair,
            private: private.to_vec(),
        };
        key.tag = key_tag(&key.dnskey_rdata());
        Ok(key)
    }

    /// A new random key.
    pub fn generate(zone: &Name, alg: Algorithm, flags: u16) -> Result<Self, String> {
        let rng = ring::rand::SystemRandom::new();
        match alg {
            Algorithm::Ed25519 => {
                let mut seed = [0u8; 32];
                rng.fill(&mut seed).map_err(|_| "no randomness")?;
                Self::from_parts(zone, alg, flags, &seed, None)
            }
            Algorithm::EcdsaP256Sha256 => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| "cannot generate a key")?;
                let pair =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng)
                        .map_err(|e| e.to_string())?;
                let point = pair.public_key().as_ref();
                let scalar = ec_private_scalar(doc.as_ref())
                    .ok_or("cannot read the generated private key")?;
                Self::from_parts(zone, alg, flags, scalar, point.get(1..))
            }
        }
    }

    /// Whether this is a key-signing key (or a CSK): the SEP flag.
    pub fn is_sep(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The DNSKEY RDATA: flags, protocol 3, algorithm, public key.
    pub fn dnskey_rdata(&self) -> Vec<u8> {
        dnskey_rdata(self.flags, self.alg, &self.public)
    }

    /// The DS RDATA with a SHA-256 digest (digest type 2): what the parent publishes.
    pub fn ds_rdata(&self) -> Vec<u8> {
        ds_rdata(&self.zone, self.alg, &self.dnskey_rdata())
    }

    /// Signs `data`: 64 bytes for both algorithms (ECDSA as r‖s, RFC 6605 §4).
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        match &self.pair {
            Pair::Ecdsa(p) => p
                .sign(&ring::rand::SystemRandom::new(), data)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "signing failed".into()),
            Pair::Ed25519(p) => Ok(p.sign(data).as_ref().to_vec()),
        }
    }

    /// BIND's base name for the files: `K<zone>+<alg>+<tag>`.
    pub fn file_stem(&self) -> String {
        format!(
            "K{}+{:03}+{:05}",
            self.zone.to_ascii(),
            self.alg.number(),
            self.tag
        )
    }

    /// The `.key` file: one DNSKEY record in master-file syntax.
    pub fn key_file(&self) -> String {
        format!(
            "; This is a {} key, keyid {}, for {}\n{} IN DNSKEY {} 3 {} {}\n",
            if self.is_sep() {
                "key-signing"
            } else {
                "zone-signing"
            },
            self.tag,
            self.zone.to_ascii(),
            self.zone.to_ascii(),
            self.flags,
            self.alg.number(),
            B64.encode(&self.public)
        )
    }

    /// The `.private` file, BIND's format v1.3.
    pub fn private_file(&self, created: &str) -> String {
        format!(
            "Private-key-format: v1.3\nAlgorithm: {} ({})\nPrivateKey: {}\nCreated: {created}\nPublish: {created}\nActivate: {created}\n",
            self.alg.number(),
            self.alg.mnemonic(),
            B64.encode(&self.private)
        )
    }

    /// Reads a key from the text of its `.key` and `.private` files (`file` names them in
    /// errors).
    pub fn from_bind(key_text: &str, private_text: &str) -> Result<Self, String> {
        let (zone, flags, alg, public) = parse_key_file(key_text)?;
        let mut palg = None;
        let mut private = None;
        for line in private_text.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            match k.trim() {
                "Algorithm" => {
                    let n = v.split_whitespace().next().unwrap_or("");
                    palg = n.parse::<u8>().ok().and_then(Algorithm::from_number);
                    if palg.is_none() {
                        return Err(format!(
                            ".private: algorithm {:?} is not supported (13 ECDSAP256SHA256 or 15 ED25519)",
                            v.trim()
                        ));
                    }
                }
                "PrivateKey" => {
                    private = Some(
                        B64.decode(v.trim())
                            .map_err(|e| format!(".private: PrivateKey is not base64: {e}"))?,
                    );
                }
                _ => {}
            }
        }
        let private = private.ok_or(".private: no PrivateKey line")?;
        if palg != Some(alg) {
            return Err(format!(
                "the .key file says algorithm {}, the .private file {:?}",
                alg.number(),
                palg.map(Algorithm::number)
            ));
        }
        Self::from_parts(&zone, alg, flags, &private, Some(&public))
    }
}

/// DNSKEY RDATA: flags, protocol 3, algorithm, public key.
fn dnskey_rdata(flags: u16, alg: Algorithm, public: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + public.len());
    out.extend_from_slice(&flags.to_be_bytes());
    out.push(3);
    out.push(alg.number());
    out.extend_from_slice(public);
    out
}

/// DS RDATA (SHA-256, digest type 2) of a zone's DNSKEY RDATA.
fn ds_rdata(zone: &Name, alg: Algorithm, dnskey: &[u8]) -> Vec<u8> {
    let mut input = super::name_wire_lower(zone);
    input.extend_from_slice(dnskey);
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    let mut out = Vec::with_capacity(4 + 32);
    out.extend_from_slice(&key_tag(dnskey).to_be_bytes());
    out.push(alg.number());
    out.push(2);
    out.extend_from_slice(digest.as_ref());
    out
}

/// The public half of a key, from its `.key` file alone: enough for its DS.
pub struct PublicKey {
    /// The zone (DNSKEY owner).
    pub zone: Name,
    /// DNSKEY flags.
    pub flags: u16,
    /// The algorithm.
    pub alg: Algorithm,
    /// The key tag.
    pub tag: u16,
    /// The DNSKEY RDATA.
    pub dnskey: Vec<u8>,
    /// The DS RDATA (SHA-256).
    pub ds: Vec<u8>,
}

impl PublicKey {
    /// Reads the text of a `.key` file.
    pub fn from_key_file(text: &str) -> Result<Self, String> {
        let (zone, flags, alg, public) = parse_key_file(text)?;
        Ok(Self::new(&zone, flags, alg, &public))
    }

    fn new(zone: &Name, flags: u16, alg: Algorithm, public: &[u8]) -> Self {
        let zone = zone.to_lowercase();
        let dnskey = dnskey_rdata(flags, alg, public);
        let ds = ds_rdata(&zone, alg, &dnskey);
        Self {
            tag: key_tag(&dnskey),
            zone,
            flags,
            alg,
            dnskey,
            ds,
        }
    }
}

impl Key {
    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::new(&self.zone, self.flags, self.alg, &self.public)
    }
}

/// `<zone> [ttl] [IN] DNSKEY <flags> 3 <alg> <base64…>`, comments (`;`) allowed.
fn parse_key_file(text: &str) -> Result<(Name, u16, Algorithm, Vec<u8>), String> {
    let line = text
        .lines()
        .map(|l| l.split(';').next().unwrap_or("").trim())
        .find(|l| !l.is_empty())
        .ok_or(".key: no DNSKEY record")?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let at = fields
        .iter()
        .position(|f| f.eq_ignore_ascii_case("DNSKEY"))
        .ok_or(".key: no DNSKEY record")?;
    let zone = Name::from_ascii(fields.first().copied().unwrap_or(""))
        .map_err(|e| format!(".key: bad owner name: {e}"))?;
    let get = |i: usize| fields.get(at + i).copied().unwrap_or("");
    let flags: u16 = get(1)
        .parse()
        .map_err(|_| format!(".key: bad flags {:?}", get(1)))?;
    if get(2) != "3" {
        return Err(format!(".key: protocol {:?} is not 3", get(2)));
    }
    let alg = get(3)
        .parse::<u8>()
        .ok()
        .and_then(Algorithm::from_number)
        .ok_or_else(|| {
            format!(
                ".key: algorithm {:?} is not supported (13 ECDSAP256SHA256 or 15 ED25519)",
                get(3)
            )
        })?;
    let b64: String = fields.get(at + 4..).unwrap_or(&[]).concat();
    let public = B64
        .decode(b64.trim_matches(|c| c == '(' || c == ')'))
        .map_err(|e| format!(".key: public key is not base64: {e}"))?;
    if flags & !(256 | 1 | 128) != 0 || flags & 256 == 0 {
        return Err(format!(
            ".key: flags {flags}: expected 256 (ZSK) or 257 (KSK/CSK)"
        ));
    }
    Ok((zone, flags, alg, public))
}

/// The private scalar inside ring's PKCS#8 document for a P-256 key: the 32-byte OCTET STRING
/// after ECPrivateKey's version 1 (RFC 5915).
fn ec_private_scalar(doc: &[u8]) -> Option<&[u8]> {
    let at = doc
        .windows(5)
        .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])?;
    doc.get(at + 5..at + 5 + 32)
}

/// RFC 4034 Appendix B: the key tag of DNSKEY RDATA.
pub fn key_tag(rdata: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    for (i, b) in rdata.iter().enumerate() {
        acc += if i % 2 == 0 {
            u32::from(*b) << 8
        } else {
            u32::from(*b)
        };
    }
    acc += (acc >> 16) & 0xFFFF;
    (acc & 0xFFFF) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Name {
        Name::from_ascii("gslb.example.").unwrap()
    }

    #[test]
    fn generated_keys_round_trip_through_bind_files_and_sign() {
        for alg in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let k = Key::generate(&zone(), alg, 257).unwrap();
            let again = Key::from_bind(&k.key_file(), &k.private_file("20261205000000")).unwrap();
            assert_eq!(again.tag, k.tag);
            assert_eq!(again.public, k.public);
            assert_eq!(again.dnskey_rdata(), k.dnskey_rdata());
            let sig = again.sign(b"data").unwrap();
            assert_eq!(sig.len(), 64, "{alg:?}");
            assert!(
                k.file_stem()
                    .starts_with(&format!("Kgslb.example.+{:03}+", alg.number()))
            );
        }
    }

    #[test]
    fn a_bind_ed25519_key_reads_with_its_tag_and_ds() {
        // RFC 8080 §6.1's example key (private seed and DNSKEY), with the DS it gives.
        let key =
            "example.com. 3600 IN DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=\n";
        let private = "Private-key-format: v1.2\nAlgorithm: 15 (ED25519)\nPrivateKey: ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=\n";
        let k = Key::from_bind(key, private).unwrap();
        assert_eq!(k.tag, 3613);
        let ds = k.ds_rdata();
        assert_eq!(&ds[..4], &[0x0e, 0x1d, 15, 2]);
        let hex: String = ds[4..].iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(
            hex,
            "3AA5AB37EFCE57F737FC1627013FEE07BDF241BD10F3B1964AB55C78E79A304B"
        );
    }

    #[test]
    fn mismatched_or_unsupported_keys_are_refused_with_the_reason() {
        let a = Key::generate(&zone(), Algorithm::Ed25519, 256).unwrap();
        let b = Key::generate(&zone(), Algorithm::Ed25519, 256).unwrap();
        let e = Key::from_bind(&a.key_file(), &b.private_file("x")).unwrap_err();
        assert!(e.contains("do not match"), "{e}");
        let rsa = "z. IN DNSKEY 257 3 8 AwEAAa==\n";
        let e = Key::from_bind(rsa, "Algorithm: 8 (RSASHA256)\nPrivateKey: AA==\n").unwrap_err();
        assert!(e.contains("not supported"), "{e}");
    }
}
