//! Local adapters: the lake and quarantine as a directory tree mirroring the S3 keys,
//! and input objects as files.

use muster_core::detect::Detection;
use muster_core::ports::{
    DetectionBus, LakeWriter, MetricsSink, ObjectMeta, OpenedObject, OutputFile, Quarantine,
};
use muster_core::{Error, Result};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory standing in for the output bucket: key `a/b/c` is file `<root>/a/b/c`.
pub struct LocalStore {
    root: PathBuf,
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf> {
        let rel = Path::new(key);
        // Keys come partly from input paths and data: never let one climb out of the lake.
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(Error::sink(
                key,
                "refusing a key that is absolute or contains '..'",
                false,
            ));
        }
        Ok(self.root.join(rel))
    }

    fn create_file(&self, key: &str) -> Result<Box<dyn OutputFile + '_>> {
        let path = self.path_of(key)?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| Error::sink(dir.display().to_string(), e, false))?;
        }
        let mut temp = path.clone().into_os_string();
        temp.push(format!(
            ".tmp{}-{}",
            std::process::id(),
            TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let temp = PathBuf::from(temp);
        let file =
            File::create(&temp).map_err(|e| Error::sink(temp.display().to_string(), e, false))?;
        Ok(Box::new(LocalFile {
            temp,
            path,
            writer: Some(BufWriter::with_capacity(256 * 1024, file)),
        }))
    }
}

/// Written to a temporary name and renamed on commit, so a reader never sees half a
/// file and a re-run replaces the old one whole.
struct LocalFile {
    temp: PathBuf,
    path: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl Write for LocalFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer
            .as_mut()
            .ok_or_else(|| io::Error::other("file already committed"))?
            .write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer
            .as_mut()
            .ok_or_else(|| io::Error::other("file already committed"))?
            .write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.writer.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl OutputFile for LocalFile {
    fn commit(mut self: Box<Self>) -> Result<()> {
        let name = self.path.display().to_string();
        let writer = self
            .writer
            .take()
            .ok_or_else(|| Error::sink(&name, "committed twice", false))?;
        let file = writer
            .into_inner()
            .map_err(|e| Error::sink(&name, e.error(), false))?;
        file.sync_data().map_err(|e| Error::sink(&name, e, false))?;
        fs::rename(&self.temp, &self.path).map_err(|e| Error::sink(&name, e, false))
    }
}

impl Drop for LocalFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

impl LakeWriter for LocalStore {
    fn create(&self, key: &str) -> Result<Box<dyn OutputFile + '_>> {
        self.create_file(key)
    }
}

impl Quarantine for LocalStore {
    fn create(&self, key: &str) -> Result<Box<dyn OutputFile + '_>> {
        self.create_file(key)
    }
}

/// EMF documents as JSON lines under `<root>/metrics/`, one file per run.
pub struct LocalMetrics {
    file: std::sync::Mutex<BufWriter<File>>,
}

impl LocalMetrics {
    pub fn create(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        Ok(LocalMetrics {
            file: std::sync::Mutex::new(BufWriter::new(File::create(path)?)),
        })
    }
}

impl MetricsSink for LocalMetrics {
    fn publish(&self, emf_document: &str) -> Result<()> {
        let mut file = self
            .file
            .lock()
            .map_err(|_| Error::sink("metrics", "lock poisoned", false))?;
        writeln!(file, "{emf_document}")
            .and_then(|_| file.flush())
            .map_err(|e| Error::sink("metrics", e, false))
    }
}

/// Detections as the EventBridge events the Lambda would put on the bus, one JSON
/// line each, under `<root>/detections/`.
pub struct LocalDetections {
    file: std::sync::Mutex<BufWriter<File>>,
}

impl LocalDetections {
    pub fn create(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        Ok(LocalDetections {
            file: std::sync::Mutex::new(BufWriter::new(File::create(path)?)),
        })
    }
}

impl DetectionBus for LocalDetections {
    fn publish(&self, detections: &[Detection]) -> Result<()> {
        let mut file = self
            .file
            .lock()
            .map_err(|_| Error::sink("detections", "lock poisoned", false))?;
        for d in detections {
            writeln!(file, "{}", d.to_eventbridge_event())
                .map_err(|e| Error::sink("detections", e, false))?;
        }
        file.flush()
            .map_err(|e| Error::sink("detections", e, false))
    }
}

/// The key a local file stands for: its path as given, without `.`/`..`/root parts,
/// so that `../x/AWSLogs/...` still reads as an AWS delivery key and quarantine
/// records land inside the lake.
pub fn key_for(path: &Path) -> String {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Opens a local file as an object. Local files carry no Content-Encoding: the
/// magic bytes decide, as they would for an S3 object without headers.
pub fn open_file(path: &Path) -> io::Result<OpenedObject> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let meta = ObjectMeta {
        bucket: String::new(),
        key: key_for(path),
        size: Some(size),
        ..ObjectMeta::default()
    };
    Ok(OpenedObject {
        meta,
        body: Box::new(file),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_escape_the_store() {
        assert_eq!(
            key_for(Path::new("../shared/samples/x.log")),
            "shared/samples/x.log"
        );
        assert_eq!(
            key_for(Path::new("/abs/AWSLogs/1/CloudTrail/r/f.json")),
            "abs/AWSLogs/1/CloudTrail/r/f.json"
        );
        let store = LocalStore::new(std::env::temp_dir());
        assert!(store.path_of("../etc/passwd").is_err());
        assert!(store.path_of("/etc/passwd").is_err());
        assert!(store.path_of("ocsf/cloudtrail/x.jsonl.gz").is_ok());
    }

    #[test]
    fn uncommitted_files_leave_nothing_behind() {
        let dir = std::env::temp_dir().join(format!("muster-local-{}", std::process::id()));
        let store = LocalStore::new(&dir);
        {
            let mut f = LakeWriter::create(&store, "a/b.txt").unwrap();
            f.write_all(b"half").unwrap();
        }
        assert!(!dir.join("a/b.txt").exists());
        assert_eq!(fs::read_dir(dir.join("a")).unwrap().count(), 0);
        let mut f = LakeWriter::create(&store, "a/b.txt").unwrap();
        f.write_all(b"whole").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read_to_string(dir.join("a/b.txt")).unwrap(), "whole");
        fs::remove_dir_all(&dir).unwrap();
    }
}
