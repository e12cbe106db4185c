//! The Traefik plugin-catalog artifact: a zip holding `plugin.wasm` and
//! `.traefik.yml` at its root, which is what Traefik downloads and unpacks
//! for a wasm plugin (and what `plugins-local/src/<moduleName>/` holds).
//!
//! The zip is reproducible: entries in a fixed order, every timestamp the
//! zip epoch (1980-01-01), fixed permissions. The same `plugin.wasm` gives
//! the same bytes.
//!
//! ```no_run
//! use cohort_harness::package;
//!
//! let wasm = std::fs::read(cohort_harness::artifacts::PLUGIN_WASM)?;
//! let written = package::write_dist("dist".as_ref(), &wasm)?;
//! println!("{} ({} bytes)", written.zip.display(), written.zip_len);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

/// The plugin manifest Traefik reads, the repository root's `.traefik.yml`.
pub const MANIFEST: &str = include_str!("../../.traefik.yml");

/// Name of the manifest inside the artifact.
pub const MANIFEST_NAME: &str = ".traefik.yml";

/// Name of the guest inside the artifact.
pub const WASM_NAME: &str = "plugin.wasm";

/// The version packaged (the workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What can go wrong packaging.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Writing or reading the zip itself.
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// A file or directory could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// `cohort-<version>.zip`.
pub fn zip_name() -> String {
    format!("cohort-{VERSION}.zip")
}

/// The artifact's bytes: `plugin.wasm` (`wasm`, deflated) then
/// `.traefik.yml` ([`MANIFEST`]).
pub fn build_zip(wasm: &[u8]) -> Result<Vec<u8>, Error> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644);
    for (name, bytes) in [(WASM_NAME, wasm), (MANIFEST_NAME, MANIFEST.as_bytes())] {
        writer.start_file(name, options)?;
        writer.write_all(bytes).map_err(|source| Error::Io {
            path: PathBuf::from(name),
            source,
        })?;
    }
    Ok(writer.finish()?.into_inner())
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
pub fn read_zip(zip: &[u8]) -> Result<Vec<Entry>, Error> {
    let mut archive = ZipArchive::new(Cursor::new(zip))?;
    let mut entries = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let mut file = archive.by_index(i)?;
        let name = file.name()?.into_owned();
        let compressed_len = file.compressed_size();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|source| Error::Io {
            path: PathBuf::from(&name),
            source,
        })?;
        entries.push(Entry {
            name,
            bytes,
            compressed_len,
        });
    }
    Ok(entries)
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
}

/// Writes `<out>/cohort-<version>.zip` and `<out>/plugin.wasm`, creating
/// `out` if needed.
pub fn write_dist(out: &Path, wasm: &[u8]) -> Result<Written, Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let zip = build_zip(wasm)?;
    let zip_path = out.join(zip_name());
    std::fs::write(&zip_path, &zip).map_err(io(&zip_path))?;
    let wasm_path = out.join(WASM_NAME);
    std::fs::write(&wasm_path, wasm).map_err(io(&wasm_path))?;
    Ok(Written {
        zip: zip_path,
        zip_len: zip.len() as u64,
        wasm: wasm_path,
        wasm_len: wasm.len() as u64,
        manifest_len: MANIFEST.len() as u64,
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
    fn manifest_is_a_wasm_middleware() {
        assert!(MANIFEST.contains("runtime: wasm"));
        assert!(MANIFEST.contains("type: middleware"));
        assert!(MANIFEST.contains("testData:"));
    }
}
