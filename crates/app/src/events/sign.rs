//! Standard Webhooks signatures (standardwebhooks.com): `v1,` and the
//! base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed with the bytes a
//! `whsec_` secret encodes.
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The key a `whsec_...` secret stands for.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix("whsec_").ok_or(
        "MEETPOOL_EVENTS_SECRET must be a Standard Webhooks secret: whsec_ followed by base64",
    )?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| "MEETPOOL_EVENTS_SECRET: what follows whsec_ is not base64")?;
    // The specification asks for 24 to 64 bytes.
    if !(24..=64).contains(&key.len()) {
        return Err(format!(
            "MEETPOOL_EVENTS_SECRET: the key is {} bytes; it must be 24 to 64",
            key.len()
        ));
    }
    Ok(key)
}

/// The `webhook-signature` header of a message.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::{decode_secret, signature};

    #[test]
    fn signs_the_specifications_test_vector() {
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn refuses_secrets_that_are_not_standard_webhooks_secrets() {
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_not base64!",
            "whsec_c2hvcnQ=",
        ] {
            assert!(decode_secret(bad).is_err(), "{bad}");
        }
    }
}
