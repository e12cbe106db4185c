//! The Traefik plugin-catalog artifact: a zip holding `plugin.wasm` and
//! `.traefik.yml` at its root, which is what Traefik downloads and unpacks
//! for a wasm plugin (and what `plugins-local/src/<moduleName>/` holds).
//! Next to it, the same two files as a Kubernetes ConfigMap
//! ([`build_configmap`]): mounted at `/plugins-local/src/<moduleName>/`, it
//! installs the plugin in a cluster without the catalog.
//!
//! Both are reproducible: zip entries in a fixed order, every timestamp the
//! zip epoch (1980-01-01), fixed permissions; the ConfigMap's keys in a
//! fixed order. The same `plugin.wasm` gives the same bytes.
//!
//! ```
//! use cohort_harness::package;
//!
//! let wasm = std::fs::read(cohort_harness::artifacts::PLUGIN_WASM)?;
//! let dist = std::env::temp_dir().join(format!("cohort-doc-{}", std::process::id()));
//! let written = package::write_dist(&dist, &wasm)?;
//! println!("{} ({} bytes)", written.zip.display(), written.zip_len);
//! assert!(written.zip.ends_with(package::zip_name()));
//! std::fs::remove_dir_all(&dist)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use sha2::{Digest, Sha256};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

/// The plugin manifest Traefik reads, the repository root's `.traefik.yml`.
pub const MANIFEST: &str = include_str!("../../.traefik.yml");

/// Name of the manifest inside the artifact.
pub const MANIFEST_NAME: &str = ".traefik.yml";

/// Name of the guest inside the artifact.
pub const WASM_NAME: &str = "plugin.wasm";

/// The plugin's module name: Traefik's `moduleName`, and the directory
/// under `plugins-local/src/` a local install puts the files in.
pub const MODULE_NAME: &str = "github.com/cohort-canary/cohort";

/// The version packaged (the workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `cohort-<version>.zip`.
pub fn zip_name() -> String {
    format!("cohort-{VERSION}.zip")
}

/// The artifact's bytes: `plugin.wasm` (`wasm`, deflated) then
/// `.traefik.yml` ([`MANIFEST`]).
pub fn build_zip(wasm: &[u8]) -> Result<Vec<u8>> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644);
    for (name, bytes) in [(WASM_NAME, wasm), (MANIFEST_NAME, MANIFEST.as_bytes())] {
        writer.start_file(name, options).map_err(zip_error)?;
        writer
            .write_all(bytes)
            .map_err(|source| anyhow!("{name}: {source}"))?;
    }
    Ok(writer.finish().map_err(zip_error)?.into_inner())
}

fn zip_error(error: zip::result::ZipError) -> anyhow::Error {
    anyhow!("zip: {error}")
}

/// One entry of a zip, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name (path inside the zip).
    pub name: String,
    /// Its uncompressed bytes.
    pub bytes: Vec<u8>,
    /// Its size inside the zip.
    pub compressed_len: u64,
}

/// Every entry of a zip, in order (checking CRCs as it reads).
pub fn read_zip(zip: &[u8]) -> Result<Vec<Entry>> {
    let mut archive = ZipArchive::new(Cursor::new(zip)).map_err(zip_error)?;
    let mut entries = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(zip_error)?;
        let name = file.name().map_err(zip_error)?.into_owned();
        let compressed_len = file.compressed_size();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|source| anyhow!("{name}: {source}"))?;
        entries.push(Entry {
            name,
            bytes,
            compressed_len,
        });
    }
    Ok(entries)
}

/// The ConfigMap's default name.
pub const CONFIGMAP_NAME: &str = "cohort-plugin";

/// What one ConfigMap may hold: Kubernetes refuses one whose `data` and
/// `binaryData` add up to more than 1 MiB (decoded bytes).
pub const CONFIGMAP_LIMIT: usize = 1 << 20;

/// The annotation carrying the SHA-256 of `plugin.wasm`.
pub const CONFIGMAP_SHA_ANNOTATION: &str = "cohort.dev/plugin-wasm-sha256";

/// `cohort-<version>-configmap.yaml`.
pub fn configmap_file_name() -> String {
    format!("cohort-{VERSION}-configmap.yaml")
}

/// Checks a Kubernetes object name (`max` 253, a DNS subdomain) or
/// namespace (`max` 63, a DNS label, no dots).
fn kubernetes_name(what: &'static str, name: &str, max: usize, dots: bool) -> Result<()> {
    let ok_inner =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.');
    let ok_edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= max
        && bytes.iter().all(|&b| ok_inner(b))
        && bytes.first().is_some_and(|&b| ok_edge(b))
        && bytes.last().is_some_and(|&b| ok_edge(b));
    if valid {
        Ok(())
    } else {
        Err(anyhow!(
            "{what} {name:?}: not a Kubernetes name (1 to {max} of a-z, 0-9, `-` and `.`, \
             starting and ending with a letter or digit)"
        ))
    }
}

/// A Kubernetes ConfigMap (YAML) holding `plugin.wasm` (`wasm`) and
/// `.traefik.yml` ([`MANIFEST`]) as `binaryData`, base64: mount it at
/// `/plugins-local/src/<moduleName>/` (see
/// `recipes/helm/values.yml`). `namespace` `None` leaves it to
/// `kubectl -n`. The annotation [`CONFIGMAP_SHA_ANNOTATION`] names the
/// guest's SHA-256, for a pod annotation that restarts Traefik when the
/// plugin changes (Traefik loads plugins at start only).
pub fn build_configmap(wasm: &[u8], name: &str, namespace: Option<&str>) -> Result<String> {
    kubernetes_name("ConfigMap name", name, 253, true)?;
    if let Some(namespace) = namespace {
        kubernetes_name("namespace", namespace, 63, false)?;
    }
    let bytes = wasm.len() + MANIFEST.len();
    if bytes > CONFIGMAP_LIMIT {
        return Err(anyhow!(
            "the ConfigMap would hold {bytes} bytes, over Kubernetes' limit of {CONFIGMAP_LIMIT} bytes"
        ));
    }
    let sha: String = Sha256::digest(wasm)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut out = String::with_capacity(bytes * 4 / 3 + 1024);
    let _ = write!(
        out,
        "# Cohort {VERSION}: plugin.wasm ({} bytes) and .traefik.yml ({} bytes) for a Traefik\n\
         # local plugin. Written by `cohort-harness package`; mount it at\n\
         # /plugins-local/src/{MODULE_NAME} (recipes/helm/values.yml).\n\
         # Over 256 KiB: apply it with `kubectl apply --server-side` or `kubectl create`\n\
         # (a client-side apply copies it into an annotation, which Kubernetes caps at 256 KiB).\n\
         apiVersion: v1\n\
         kind: ConfigMap\n\
         metadata:\n  \
         name: {name}\n",
        wasm.len(),
        MANIFEST.len()
    );
    if let Some(namespace) = namespace {
        let _ = writeln!(out, "  namespace: {namespace}");
    }
    let _ = write!(
        out,
        "  labels:\n    \
         app.kubernetes.io/name: cohort\n    \
         app.kubernetes.io/version: \"{VERSION}\"\n  \
         annotations:\n    \
         {CONFIGMAP_SHA_ANNOTATION}: \"{sha}\"\n\
         binaryData:\n"
    );
    // Kubernetes mounts each key as a file of that name.
    for (key, content) in [(MANIFEST_NAME, MANIFEST.as_bytes()), (WASM_NAME, wasm)] {
        let _ = writeln!(out, "  {key}: {}", base64_encode(content));
    }
    Ok(out)
}

/// The files of a ConfigMap [`build_configmap`] wrote: `(key, bytes)` of
/// every `binaryData` entry, in order.
pub fn read_configmap(yaml: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let bad = |m: &str| anyhow!("not a Cohort plugin ConfigMap: {m}");
    if !yaml.lines().any(|l| l == "kind: ConfigMap") {
        return Err(bad("no `kind: ConfigMap`"));
    }
    let mut lines = yaml.lines().skip_while(|l| *l != "binaryData:");
    if lines.next().is_none() {
        return Err(bad("no `binaryData:`"));
    }
    let mut files = Vec::new();
    for line in lines.take_while(|l| l.starts_with("  ")) {
        let (key, value) = line
            .trim_start()
            .split_once(": ")
            .ok_or_else(|| bad("a binaryData line without `key: value`"))?;
        let bytes = base64_decode(value).ok_or_else(|| bad(&format!("{key}: not base64")))?;
        files.push((key.to_owned(), bytes));
    }
    if files.is_empty() {
        return Err(bad("an empty binaryData"));
    }
    Ok(files)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648, with padding), as Kubernetes' `binaryData`
/// wants it.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The bytes of standard base64 `text` (padding required, no whitespace);
/// `None` when it is not.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| BASE64.iter().position(|&b| b == c).map(|v| v as u32);
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let chunks = bytes.len() / 4;
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let padding = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 || (padding > 0 && i + 1 != chunks) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - padding] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * padding as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // Non-canonical padding bits would decode two texts to one value.
        if padding > 0 && decoded[3 - padding..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&decoded[..3 - padding]);
    }
    Some(out)
}

/// What [`write_dist`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// `<out>/cohort-<version>.zip`.
    pub zip: PathBuf,
    /// Its size in bytes.
    pub zip_len: u64,
    /// `<out>/plugin.wasm`, the loose guest.
    pub wasm: PathBuf,
    /// Its size in bytes.
    pub wasm_len: u64,
    /// The manifest's size in bytes.
    pub manifest_len: u64,
    /// `<out>/cohort-<version>-configmap.yaml`.
    pub configmap: PathBuf,
    /// Its size in bytes (the YAML, base64 included).
    pub configmap_len: u64,
}

/// Writes `<out>/cohort-<version>.zip`, `<out>/plugin.wasm` and
/// `<out>/cohort-<version>-configmap.yaml` (ConfigMap [`CONFIGMAP_NAME`],
/// no namespace), creating `out` if needed.
pub fn write_dist(out: &Path, wasm: &[u8]) -> Result<Written> {
    write_dist_named(out, wasm, CONFIGMAP_NAME, None)
}

/// [`write_dist`] with the ConfigMap's name and namespace.
pub fn write_dist_named(
    out: &Path,
    wasm: &[u8],
    configmap_name: &str,
    namespace: Option<&str>,
) -> Result<Written> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source: std::io::Error| anyhow!("{}: {source}", path.display())
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let zip = build_zip(wasm)?;
    let zip_path = out.join(zip_name());
    std::fs::write(&zip_path, &zip).map_err(io(&zip_path))?;
    let wasm_path = out.join(WASM_NAME);
    std::fs::write(&wasm_path, wasm).map_err(io(&wasm_path))?;
    let configmap = build_configmap(wasm, configmap_name, namespace)?;
    let configmap_path = out.join(configmap_file_name());
    std::fs::write(&configmap_path, &configmap).map_err(io(&configmap_path))?;
    Ok(Written {
        zip: zip_path,
        zip_len: zip.len() as u64,
        wasm: wasm_path,
        wasm_len: wasm.len() as u64,
        manifest_len: MANIFEST.len() as u64,
        configmap: configmap_path,
        configmap_len: configmap.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_round_trips_and_is_reproducible() {
        let wasm = b"\0asm\x01\0\0\0 not really a module".repeat(100);
        let zip = build_zip(&wasm).expect("zip");
        let entries = read_zip(&zip).expect("read");
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, [WASM_NAME, MANIFEST_NAME]);
        assert_eq!(entries[0].bytes, wasm);
        assert_eq!(entries[1].bytes, MANIFEST.as_bytes());
        assert!(entries[0].compressed_len < wasm.len() as u64, "deflated");
        assert_eq!(build_zip(&wasm).expect("zip"), zip);
    }

    #[test]
    fn base64_matches_rfc_4648_and_refuses_what_is_not() {
        // RFC 4648, section 10.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).as_deref(), Some(plain.as_bytes()));
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&all)), Some(all));
        for bad in [
            "Zg=", "Zg", "Z===", "Zh==", "Zg==Zg==", "Zm9v\n", "Zm9-", "====",
        ] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn configmap_round_trips_and_names_are_checked() {
        let wasm = b"\0asm\x01\0\0\0 not really a module".repeat(1000);
        let yaml = build_configmap(&wasm, "cohort-plugin", Some("traefik")).expect("configmap");
        assert!(yaml.contains("\nkind: ConfigMap\n"));
        assert!(yaml.contains("\n  name: cohort-plugin\n  namespace: traefik\n"));
        let files = read_configmap(&yaml).expect("read");
        assert_eq!(
            files,
            [
                (MANIFEST_NAME.to_owned(), MANIFEST.as_bytes().to_vec()),
                (WASM_NAME.to_owned(), wasm.clone())
            ]
        );
        assert_eq!(
            build_configmap(&wasm, "cohort-plugin", Some("traefik")).expect("again"),
            yaml
        );
        let sha: String = Sha256::digest(&wasm)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(yaml.contains(&format!("{CONFIGMAP_SHA_ANNOTATION}: \"{sha}\"")));
        for bad in [
            "",
            "Cohort",
            "-cohort",
            "cohort-",
            "coh_ort",
            &"a".repeat(254),
        ] {
            assert!(
                matches!(
                    build_configmap(&wasm, bad, None),
                    Err(e) if e.to_string().contains("not a Kubernetes name")
                ),
                "{bad:?}"
            );
        }
        assert!(build_configmap(&wasm, "a.b", None).is_ok());
        assert!(matches!(
            build_configmap(&wasm, "cohort", Some("a.b")),
            Err(e) if e.to_string().contains("not a Kubernetes name")
        ));
        assert!(matches!(
            build_configmap(&vec![0; CONFIGMAP_LIMIT], "cohort", None),
            Err(e) if e.to_string().contains("over Kubernetes' limit")
        ));
        assert!(read_configmap("kind: Secret\n").is_err());
    }

    #[test]
    fn manifest_is_a_wasm_middleware() {
        assert!(MANIFEST.contains("runtime: wasm"));
        assert!(MANIFEST.contains("type: middleware"));
        assert!(MANIFEST.contains("testData:"));
    }
}
