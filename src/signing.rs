//! Artifact signatures (cache-poisoning protection), in Nix's style:
//! ed25519 keys written as `name:base64`, a secret key file holding the
//! 32-byte seed followed by the public key, and signatures `name:base64` over
//! a fingerprint of the artifact: `strata-artifact;1;<key>;<blake3>;<size>`.
//! Because the fingerprint includes the archive's BLAKE3, a valid signature
//! vouches for exactly those bytes under exactly that install key.

use crate::artifact::ArtifactInfo;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};

/// A named signing key.
pub struct SecretKey {
    name: String,
    key: SigningKey,
}

/// A named public key trusted to sign artifacts.
#[derive(Clone, Debug)]
pub struct PublicKey {
    name: String,
    key: VerifyingKey,
}

fn split(text: &str) -> Result<(&str, Vec<u8>), String> {
    let (name, b64) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| "expected `name:base64`".to_string())?;
    if name.is_empty() {
        return Err("the key has no name".into());
    }
    let bytes = B64.decode(b64).map_err(|e| format!("bad base64: {e}"))?;
    Ok((name, bytes))
}

impl SecretKey {
    /// A new random key.
    pub fn generate(name: &str) -> Result<SecretKey, String> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| e.to_string())?;
        Ok(SecretKey {
            name: name.to_string(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Parses `name:base64(seed ‖ public)`.
    pub fn parse(text: &str) -> Result<SecretKey, String> {
        let (name, bytes) = split(text)?;
        let seed: [u8; 32] = bytes
            .get(..32)
            .and_then(|s| s.try_into().ok())
            .filter(|_| bytes.len() == 64)
            .ok_or_else(|| "a secret key is 64 bytes".to_string())?;
        Ok(SecretKey {
            name: name.to_string(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// `name:base64(seed ‖ public)`, for the secret key file.
    pub fn to_text(&self) -> String {
        let mut b = self.key.to_bytes().to_vec();
        b.extend_from_slice(self.key.verifying_key().as_bytes());
        format!("{}:{}", self.name, B64.encode(b))
    }

    /// The matching public key as `name:base64`.
    pub fn public_text(&self) -> String {
        format!(
            "{}:{}",
            self.name,
            B64.encode(self.key.verifying_key().as_bytes())
        )
    }

    /// The signature of `info`, as `name:base64`.
    pub fn sign(&self, info: &ArtifactInfo) -> String {
        let sig = self.key.sign(fingerprint(info).as_bytes());
        format!("{}:{}", self.name, B64.encode(sig.to_bytes()))
    }
}

impl PublicKey {
    /// Parses `name:base64(32 bytes)`.
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        let (name, bytes) = split(text)?;
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| "a public key is 32 bytes".to_string())?;
        let key = VerifyingKey::from_bytes(&arr).map_err(|e| e.to_string())?;
        Ok(PublicKey {
            name: name.to_string(),
            key,
        })
    }
}

/// What a signature covers.
pub fn fingerprint(info: &ArtifactInfo) -> String {
    format!(
        "strata-artifact;1;{};{};{}",
        info.key, info.blake3, info.size
    )
}

/// Ok if some signature on `info` is valid for a trusted key.
pub fn check(info: &ArtifactInfo, trusted: &[PublicKey]) -> Result<(), String> {
    if info.signatures.is_empty() {
        return Err("it is unsigned".into());
    }
    let msg = fingerprint(info);
    for s in &info.signatures {
        let Ok((name, bytes)) = split(s) else {
            continue;
        };
        let Ok(sig) = Signature::from_slice(&bytes) else {
            continue;
        };
        for t in trusted.iter().filter(|t| t.name == name) {
            if t.key.verify(msg.as_bytes(), &sig).is_ok() {
                return Ok(());
            }
        }
    }
    Err("no signature from a trusted key is valid".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ArtifactInfo {
        ArtifactInfo {
            format: "v1".into(),
            module: "m".into(),
            version: "1".into(),
            key: "k".repeat(64),
            strata_version: "t".into(),
            size: 10,
            files: 1,
            blake3: "b".repeat(64),
            created: 0,
            signatures: vec![],
            ci: None,
        }
    }

    #[test]
    fn sign_verify_and_tamper() {
        let sk = SecretKey::generate("ci").unwrap();
        let sk2 = SecretKey::parse(&sk.to_text()).unwrap();
        let pk = PublicKey::parse(&sk.public_text()).unwrap();
        let mut i = info();
        assert!(check(&i, std::slice::from_ref(&pk)).is_err());
        i.signatures.push(sk2.sign(&i));
        check(&i, std::slice::from_ref(&pk)).unwrap();
        let mut t = i.clone();
        t.blake3 = "c".repeat(64);
        assert!(check(&t, std::slice::from_ref(&pk)).is_err(), "other bytes");
        let other = PublicKey::parse(&SecretKey::generate("ci").unwrap().public_text()).unwrap();
        assert!(check(&i, &[other]).is_err(), "same name, other key");
    }
}
