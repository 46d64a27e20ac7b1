//! The on-disk layout shared by the index and cluster files: a 4 KiB header (magic, format
//! version, checksum, section table) followed by 8-byte aligned sections of fixed-width
//! little-endian arrays. The checksum (CRC-32) covers every byte of the file but its own four:
//! the section table as well as the arrays. Files are written to a temporary name, fsynced and renamed, so a reader
//! sees the old file or the new one, never half of one; a file whose magic, version, size or
//! checksum is wrong is refused with the reason.

use crate::{Error, Result};
use memmap2::Mmap;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

const HEADER_LEN: usize = 4096;
const NAME_LEN: usize = 24;
const ENTRY_LEN: usize = NAME_LEN + 16;
const MAX_SECTIONS: usize = (HEADER_LEN - 32) / ENTRY_LEN;

/// Builds a sectioned file in memory order and writes it atomically.
pub struct SectionWriter {
    magic: [u8; 8],
    version: u32,
    sections: Vec<(String, Vec<u8>)>,
}

impl SectionWriter {
    /// A file with `magic` and format `version`.
    pub fn new(magic: [u8; 8], version: u32) -> SectionWriter {
        SectionWriter { magic, version, sections: vec![] }
    }

    /// Adds a section of plain-old-data values.
    pub fn add<T: bytemuck::Pod>(&mut self, name: &str, values: &[T]) {
        self.add_bytes(name, bytemuck::cast_slice(values).to_vec());
    }

    /// Adds a section of raw bytes.
    pub fn add_bytes(&mut self, name: &str, bytes: Vec<u8>) {
        assert!(name.len() <= NAME_LEN && self.sections.len() < MAX_SECTIONS);
        self.sections.push((name.to_string(), bytes));
    }

    /// Writes the file at `path` through a temporary file, fsync and rename.
    pub fn write(self, path: &Path) -> Result<u64> {
        let lens: Vec<(String, u64)> = self.sections.iter().map(|(n, b)| (n.clone(), b.len() as u64)).collect();
        let sections = self.sections;
        write_streamed(path, self.magic, self.version, &lens, &mut |i, sink| sink(&sections[i].1))
    }
}

/// Where [`write_streamed`] takes a section's bytes.
pub type Sink<'a> = dyn FnMut(&[u8]) -> Result<()> + 'a;

/// Writes a sectioned file whose sections are produced one after the other instead of held in
/// memory: `sections` names each section and its length in bytes, and `fill(i, sink)` hands the
/// bytes of section `i`, in order, to `sink` (in as many pieces as it likes). The header is
/// written first, the checksum last; a section whose bytes differ in length from the declared
/// one is a bug and fails the write. Written through a temporary file, fsync and rename.
pub fn write_streamed(
    path: &Path,
    magic: [u8; 8],
    version: u32,
    sections: &[(String, u64)],
    fill: &mut dyn FnMut(usize, &mut Sink) -> Result<()>,
) -> Result<u64> {
    assert!(sections.len() <= MAX_SECTIONS && sections.iter().all(|(n, _)| n.len() <= NAME_LEN));
    let mut header = vec![0u8; HEADER_LEN];
    header[..8].copy_from_slice(&magic);
    header[8..12].copy_from_slice(&version.to_le_bytes());
    header[12..16].copy_from_slice(&(sections.len() as u32).to_le_bytes());
    let mut offset = HEADER_LEN as u64;
    for (i, (name, len)) in sections.iter().enumerate() {
        let e = 32 + i * ENTRY_LEN;
        header[e..e + name.len()].copy_from_slice(name.as_bytes());
        header[e + NAME_LEN..e + NAME_LEN + 8].copy_from_slice(&offset.to_le_bytes());
        header[e + NAME_LEN + 8..e + ENTRY_LEN].copy_from_slice(&len.to_le_bytes());
        offset += len + padding(*len as usize) as u64;
    }
    header[24..32].copy_from_slice(&offset.to_le_bytes());
    let mut hasher = header_hasher(&header);
    let dir = path.parent().expect("index files live in a directory");
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = tmp_path(path);
    let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(&header).map_err(|e| Error::io(&tmp, e))?;
    for (i, (name, len)) in sections.iter().enumerate() {
        let mut written = 0u64;
        fill(i, &mut |bytes: &[u8]| {
            hasher.update(bytes);
            written += bytes.len() as u64;
            w.write_all(bytes).map_err(|e| Error::io(&tmp, e))
        })?;
        assert_eq!(written, *len, "section {name} was declared {len} bytes long and {written} were written");
        let pad = &[0u8; 8][..padding(*len as usize)];
        hasher.update(pad);
        w.write_all(pad).map_err(|e| Error::io(&tmp, e))?;
    }
    let mut file = w.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?;
    file.seek(SeekFrom::Start(16)).map_err(|e| Error::io(&tmp, e))?;
    file.write_all(&hasher.finalize().to_le_bytes()).map_err(|e| Error::io(&tmp, e))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(offset)
}

/// A CRC-32 hasher fed with the header, minus the checksum field (bytes 16..20).
fn header_hasher(header: &[u8]) -> crc32fast::Hasher {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[..16]);
    hasher.update(&header[20..HEADER_LEN]);
    hasher
}

/// The checksum a whole sectioned file (`bytes`, at least the 4 KiB header) should carry in its
/// header bytes 16..20: CRC-32 of every other byte.
pub fn file_checksum(bytes: &[u8]) -> u32 {
    let mut hasher = header_hasher(bytes);
    hasher.update(&bytes[HEADER_LEN..]);
    hasher.finalize()
}

fn padding(len: usize) -> usize {
    (8 - len % 8) % 8
}

/// The note of a verified file (see [`SectionFile::open_once_checked`]).
pub fn checked_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().expect("file name").to_os_string();
    name.push(".checked");
    path.with_file_name(name)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().expect("file name").to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// A sectioned file mapped into memory, checked on open.
pub struct SectionFile {
    path: PathBuf,
    map: Mmap,
    sections: BTreeMap<String, Range<usize>>,
}

impl SectionFile {
    /// Maps `path` and checks magic, version, size and (when `verify`) the body checksum.
    pub fn open(path: &Path, magic: [u8; 8], version: u32, verify: bool) -> Result<SectionFile> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: index files are only ever replaced by rename, never written in place, so the
        // mapped bytes do not change under us.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let bad = |reason: String| Error::Corrupt { path: path.to_path_buf(), reason };
        if map.len() < HEADER_LEN || map[..8] != magic {
            return Err(bad(format!("not a tracehound {} file (bad magic or shorter than its header)", String::from_utf8_lossy(&magic[..7]))));
        }
        let u32_at = |o: usize| u32::from_le_bytes(map[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(map[o..o + 8].try_into().expect("8 bytes"));
        let found = u32_at(8);
        if found != version {
            return Err(Error::Version { path: path.to_path_buf(), found, expected: version });
        }
        let count = u32_at(12) as usize;
        let total = u64_at(24);
        if count > MAX_SECTIONS || total != map.len() as u64 {
            return Err(bad(format!("size {} differs from the {} bytes its header names (truncated?)", map.len(), total)));
        }
        let mut sections = BTreeMap::new();
        for i in 0..count {
            let e = 32 + i * ENTRY_LEN;
            let name = String::from_utf8_lossy(&map[e..e + NAME_LEN]).trim_end_matches('\0').to_string();
            let (off, len) = (u64_at(e + NAME_LEN) as usize, u64_at(e + NAME_LEN + 8) as usize);
            if off % 8 != 0 || off.checked_add(len).is_none_or(|end| end > map.len()) {
                return Err(bad(format!("section {name} at {off}+{len} lies outside the file")));
            }
            sections.insert(name, off..off + len);
        }
        if verify {
            let expected = u32_at(16);
            let actual = file_checksum(&map);
            if actual != expected {
                return Err(bad(format!("checksum {actual:08x} differs from {expected:08x} in the header")));
            }
        }
        Ok(SectionFile { path: path.to_path_buf(), map, sections })
    }

    /// The section `name` as a slice of `T`.
    pub fn slice<T: bytemuck::Pod>(&self, name: &str) -> Result<&[T]> {
        let r = self.sections.get(name).ok_or_else(|| Error::Corrupt { path: self.path.clone(), reason: format!("section {name} is missing") })?;
        bytemuck::try_cast_slice(&self.map[r.clone()]).map_err(|e| Error::Corrupt { path: self.path.clone(), reason: format!("section {name}: {e}") })
    }

    /// Opens `path` like [`SectionFile::open`], verifying the checksum over the whole file only if
    /// it was not verified since it was last written: a note next to it (`<name>.checked`: its
    /// size, modification time, inode and checksum) says so. Returns whether it was checked
    /// before; if not, the caller runs its own checks of the contents and then
    /// [`SectionFile::mark_checked`]. On a chain of Bitcoin's size the index is hundreds of GB:
    /// reading all of it on every open would cost minutes per command. A file changed in any
    /// way since (rewritten, renamed over, edited) no longer matches its note and is verified
    /// again; damage by the disk itself afterwards is found by `tracehound index --verify`.
    pub fn open_once_checked(path: &Path, magic: [u8; 8], version: u32) -> Result<(SectionFile, bool)> {
        let unverified = SectionFile::open(path, magic, version, false)?;
        if unverified.note().is_some_and(|n| fs::read_to_string(checked_path(path)).ok().as_deref() == Some(n.as_str())) {
            return Ok((unverified, true));
        }
        drop(unverified);
        Ok((SectionFile::open(path, magic, version, true)?, false))
    }

    /// The note of this file as it is now: size, modification time, inode and checksum.
    fn note(&self) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(&self.path).ok()?;
        let crc = u32::from_le_bytes(self.map[16..20].try_into().expect("4 bytes"));
        Some(format!("{} {} {} {} {:08x}\n", m.len(), m.mtime(), m.mtime_nsec(), m.ino(), crc))
    }

    /// Records that the file passed every check, so [`SectionFile::open_once_checked`] trusts it
    /// until it changes (best effort: a read-only data directory just checks every time).
    pub fn mark_checked(&self) {
        if let Some(note) = self.note() {
            let (path, tmp) = (checked_path(&self.path), tmp_path(&checked_path(&self.path)));
            if fs::write(&tmp, note).is_ok() {
                let _ = fs::rename(&tmp, &path);
            }
        }
    }

    /// Where section `name` lies in the file, in bytes.
    pub fn range(&self, name: &str) -> Option<Range<usize>> {
        self.sections.get(name).cloned()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        let mut w = SectionWriter::new(*b"THTEST\0\0", 3);
        w.add::<u64>("a", &[1, 2, 3]);
        w.add_bytes("b", b"hello".to_vec());
        w.add::<u32>("c", &[7]);
        w.write(&path).unwrap();
        let f = SectionFile::open(&path, *b"THTEST\0\0", 3, true).unwrap();
        assert_eq!(f.slice::<u64>("a").unwrap(), &[1, 2, 3]);
        assert_eq!(f.slice::<u8>("b").unwrap(), b"hello");
        assert_eq!(f.slice::<u32>("c").unwrap(), &[7]);
        assert!(matches!(SectionFile::open(&path, *b"THTEST\0\0", 4, true), Err(Error::Version { found: 3, .. })));
        drop(f);
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 9] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let err = SectionFile::open(&path, *b"THTEST\0\0", 3, true).err().unwrap().to_string();
        assert!(err.contains("checksum") && err.contains("x.bin"), "{err}");
        // A changed section table (section "b" renamed) is caught by the checksum too.
        let mut bytes = fs::read(&path).unwrap();
        bytes[n - 9] ^= 1;
        let b_entry = 32 + ENTRY_LEN;
        assert_eq!(bytes[b_entry], b'b');
        bytes[b_entry] = b'd';
        fs::write(&path, &bytes).unwrap();
        let err = SectionFile::open(&path, *b"THTEST\0\0", 3, true).err().unwrap().to_string();
        assert!(err.contains("checksum"), "{err}");
        fs::write(&path, &bytes[..n - 8]).unwrap();
        let err = SectionFile::open(&path, *b"THTEST\0\0", 3, false).err().unwrap().to_string();
        assert!(err.contains("truncated"), "{err}");
    }
}
