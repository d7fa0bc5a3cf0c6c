//! The server's TLS identity: the operator's certificate and key, or a
//! self-signed certificate generated on first start and kept in the data
//! dir (so its fingerprint, which agents pin, survives restarts).

use levee_proto::Fingerprint;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS {what} {path}: {detail} (give PEM files with --tls-cert/--tls-key)")]
    Read {
        what: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error(
        "cannot write {path}: {source} (is the data dir writable? choose another with --data-dir)"
    )]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS certificate {cert} and key {key} do not make a usable server identity: {detail}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
}

/// A ready TLS server identity.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate (what agents pin).
    pub fingerprint: Fingerprint,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// Made just now (first start).
    pub generated: bool,
}

/// The crypto provider of every TLS endpoint in Levee (ring: no C build tooling needed).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Uses `cert`/`key` when given, else `<data_dir>/tls/server.{crt,key}`,
/// generating them when missing (with `names` as extra SANs).
pub fn load_or_generate(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
    names: &[String],
) -> Result<TlsMaterial, TlsError> {
    let (cert_path, key_path, generated) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf(), false),
        _ => {
            let dir = data_dir.join("tls");
            let c = dir.join("server.crt");
            let k = dir.join("server.key");
            let generated = if c.exists() && k.exists() {
                false
            } else {
                generate(&dir, &c, &k, names)?;
                true
            };
            (c, k, generated)
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Read {
            what: "certificate",
            path: cert_path.clone(),
            detail: e.to_string(),
        })?;
    let leaf = certs.first().ok_or_else(|| TlsError::Read {
        what: "certificate",
        path: cert_path.clone(),
        detail: "no CERTIFICATE block in the file".into(),
    })?;
    let fingerprint = Fingerprint::of_der(leaf.as_ref());
    let key_der = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::Read {
        what: "private key",
        path: key_path.clone(),
        detail: e.to_string(),
    })?;
    let config_err = |detail: String| TlsError::Config {
        cert: cert_path.clone(),
        key: key_path.clone(),
        detail,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| config_err(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        config: Arc::new(config),
        fingerprint,
        cert_path,
        key_path,
        generated,
    })
}

/// The subject alternative names of a generated certificate.
fn san_list(names: &[String]) -> Vec<String> {
    let mut sans = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Some(h) = hostname() {
        sans.push(h);
    }
    sans.extend(names.iter().cloned());
    sans.sort();
    sans.dedup();
    sans
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_string())
}

fn generate(dir: &Path, cert: &Path, key: &Path, names: &[String]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let ck = rcgen::generate_simple_self_signed(san_list(names))
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let write = |path: &Path, text: &str, mode: u32| -> Result<(), TlsError> {
        let tmp = path.with_extension("tmp");
        let err = |source| TlsError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    };
    write(key, &ck.signing_key.serialize_pem(), 0o600)?;
    write(cert, &ck.cert.pem(), 0o644)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generates_once_and_keeps_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_generate(
            None,
            None,
            dir.path(),
            &["levee.test".into(), "192.0.2.9".into()],
        )
        .unwrap();
        assert!(a.generated);
        let mode = std::fs::metadata(&a.key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the private key is private");
        let b = load_or_generate(None, None, dir.path(), &[]).unwrap();
        assert!(!b.generated);
        assert_eq!(a.fingerprint, b.fingerprint);
        // The fingerprint is the SHA-256 of the certificate's DER (as openssl computes it).
        let der = CertificateDer::from_pem_file(&a.cert_path).unwrap();
        assert_eq!(Fingerprint::of_der(der.as_ref()), a.fingerprint);
    }

    #[test]
    fn given_files_are_used_and_bad_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let made = load_or_generate(None, None, dir.path(), &[]).unwrap();
        let used = load_or_generate(
            Some(&made.cert_path),
            Some(&made.key_path),
            Path::new("/nonexistent"),
            &[],
        )
        .unwrap();
        assert_eq!(used.fingerprint, made.fingerprint);
        assert!(!used.generated);
        let bogus = dir.path().join("bogus.pem");
        std::fs::write(&bogus, "not pem").unwrap();
        let e = load_or_generate(Some(&bogus), Some(&made.key_path), dir.path(), &[]).unwrap_err();
        assert!(e.to_string().contains("bogus.pem"), "{e}");
    }
}
