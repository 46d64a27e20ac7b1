//! Bitcoin Core's block files: `blocks/blk00000.dat`, … Each record is the network magic (4
//! bytes), the block length (4 bytes, little-endian) and the block. Since Bitcoin Core 28 the files
//! may be XOR-obfuscated with the 8-byte key in `blocks/xor.dat` (byte at file offset `p` is
//! XORed with `key[p % 8]`). Files end in zero padding where Core preallocated them (zeros on
//! disk, not obfuscated).
//!
//! The newest file may end in a record Core is still writing (or was writing when it stopped):
//! its header or block cut short by the end of the file or by the padding. The scan reports it as
//! [`PartialTail`] instead of an error and leaves it out; the next scan finds it whole. Anything
//! else that does not frame, in any file, is an error naming file and offset.

use crate::Error;
use bitcoin::block::Header;
use bitcoin::consensus::{deserialize, deserialize_partial, encode};
use bitcoin::{Block, BlockHash, CompactTarget};
use serde::Serialize;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use tracehound_core::UtxoChain;

/// Where one block is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLocation {
    /// Index into [`BlockFiles::files`].
    pub file: u32,
    /// Offset of the block bytes (after magic and length).
    pub offset: u64,
    /// Length of the block bytes.
    pub len: u32,
}

/// A block found by the header scan.
#[derive(Debug, Clone, Copy)]
pub struct IndexedBlock {
    /// Block hash.
    pub hash: BlockHash,
    /// Hash of the parent.
    pub prev: BlockHash,
    /// Difficulty target, for chain work.
    pub bits: CompactTarget,
    /// Where the block is stored.
    pub location: BlockLocation,
}

/// The block files of a data directory.
pub struct BlockFiles {
    /// The `blocks` directory.
    pub dir: PathBuf,
    /// `blk*.dat` files in number order.
    pub files: Vec<PathBuf>,
    /// XOR key from `xor.dat` (all zeros when absent).
    pub xor_key: [u8; 8],
    /// The chain the files belong to.
    pub chain: UtxoChain,
    open: Option<(u32, File)>,
}

/// A block record cut short at the very end of the newest block file: the block Bitcoin Core is
/// writing, or was writing when it stopped. It is not read this run; the next run finds it whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartialTail {
    /// The block file (always the highest-numbered one).
    pub file: PathBuf,
    /// Offset of the record (its magic) in the file.
    pub offset: u64,
    /// Bytes of the record written so far, up to the end of the file or the zero padding.
    pub bytes: u64,
}

impl std::fmt::Display for PartialTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.file.file_name().map_or_else(|| self.file.display().to_string(), |n| n.to_string_lossy().into_owned());
        write!(
            f,
            "{name}: partial block at offset {} (the node is still writing it): ingested up to the last complete block; run again to pick it up",
            self.offset
        )
    }
}

/// What the header scan found.
#[derive(Debug, Default)]
pub struct ScanResult {
    /// Every block record found, in file order.
    pub blocks: Vec<IndexedBlock>,
    /// Total bytes of the files.
    pub bytes: u64,
    /// Corrupt records skipped (`--skip-corrupt`), as messages naming file and offset.
    pub skipped: Vec<String>,
    /// The record cut short at the end of the newest file, if any (not in `blocks`).
    pub partial_tail: Option<PartialTail>,
}

/// The longest block any Bitcoin network accepts (a block's size never exceeds its weight,
/// at most 4,000,000): a longer length is damage, never a block being written.
const MAX_BLOCK_BYTES: u32 = 4_000_000;

/// Whether `bytes` are the start of a block and no more: decoding them runs out of bytes.
fn is_start_of_block(bytes: &[u8]) -> bool {
    matches!(deserialize_partial::<Block>(bytes), Err(encode::Error::Io(e)) if e.kind() == bitcoin::io::ErrorKind::UnexpectedEof)
}

fn xor_in_place(buf: &mut [u8], key: &[u8; 8], file_offset: u64) {
    if key == &[0u8; 8] {
        return;
    }
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[((file_offset + i as u64) % 8) as usize];
    }
}

impl BlockFiles {
    /// Finds the block files under `dir` (a `blocks` directory or a data directory holding one)
    /// and the chain they belong to (from the magic of the first record unless `chain` is given).
    pub fn open(dir: &Path, chain: Option<UtxoChain>) -> Result<BlockFiles, Error> {
        let dir = if dir.join("blocks").join("blk00000.dat").exists() { dir.join("blocks") } else { dir.to_path_buf() };
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut files: Vec<(u32, PathBuf)> = vec![];
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&dir, e))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if let Some(num) = name.strip_prefix("blk").and_then(|n| n.strip_suffix(".dat")) {
                if let Ok(n) = num.parse::<u32>() {
                    files.push((n, path));
                }
            }
        }
        if files.is_empty() {
            return Err(Error::Input(format!("no blk*.dat files in {} (give Bitcoin Core's data directory or its blocks/ folder)", dir.display())));
        }
        files.sort();
        let xor_path = dir.join("xor.dat");
        let mut xor_key = [0u8; 8];
        if xor_path.exists() {
            let key = std::fs::read(&xor_path).map_err(|e| Error::io(&xor_path, e))?;
            xor_key = key.as_slice().try_into().map_err(|_| Error::Corrupt {
                file: xor_path.clone(),
                offset: 0,
                reason: format!("xor.dat must hold 8 bytes, it holds {}", key.len()),
            })?;
        }
        let files: Vec<PathBuf> = files.into_iter().map(|(_, p)| p).collect();
        let chain = match chain {
            Some(c) => c,
            None => {
                let mut magic = [0u8; 4];
                let first = &files[0];
                File::open(first).and_then(|mut f| f.read_exact(&mut magic)).map_err(|e| Error::io(first, e))?;
                xor_in_place(&mut magic, &xor_key, 0);
                UtxoChain::from_magic(magic).ok_or_else(|| Error::Corrupt {
                    file: first.clone(),
                    offset: 0,
                    reason: format!("magic {} is not a Bitcoin network's (give --chain if the files are obfuscated without xor.dat)", hex::encode(magic)),
                })?
            }
        };
        if chain.magic().is_none() {
            return Err(Error::Input(format!("tracehound reads block files of Bitcoin networks only; ingest {chain} over JSON-RPC")));
        }
        Ok(BlockFiles { dir, files, xor_key, chain, open: None })
    }

    /// Reads every record header (magic, length, 80-byte block header) without reading blocks.
    /// A corrupt record stops the scan with its file and offset, or with `skip_corrupt` is
    /// reported and skipped (the scan resumes at the next magic in that file).
    ///
    /// The newest (highest-numbered) file may end in the record Bitcoin Core is writing, or was
    /// writing when it stopped: a header or block cut short by the end of the file, or by the zero
    /// padding Core preallocated. That is no error: the record is left out of `blocks` and
    /// returned as [`ScanResult::partial_tail`], and a later scan finds it whole. A record is taken
    /// for one only when what is there of it is the start of a block and no more (decoding runs out
    /// of bytes); a record cut short in an older file, or a length running past the end of the
    /// newest file from a record that more records follow, is corrupt.
    pub fn scan(&self, skip_corrupt: bool) -> Result<ScanResult, Error> {
        let magic = self.chain.magic().expect("checked in open");
        let mut result = ScanResult::default();
        let newest = self.files.len() - 1;
        for (file_no, path) in self.files.iter().enumerate() {
            let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
            let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
            result.bytes += len;
            let mut offset = 0u64;
            let mut head = [0u8; 88];
            let mut padding = false;
            while offset < len {
                let want = (len - offset).min(88) as usize;
                f.seek(SeekFrom::Start(offset)).map_err(|e| Error::io(path, e))?;
                f.read_exact(&mut head[..want]).map_err(|e| Error::io(path, e))?;
                if head[..want.min(4)].iter().all(|b| *b == 0) {
                    // Preallocated zero padding (zeros on disk, never obfuscated): the end of the file's data.
                    padding = true;
                    break;
                }
                xor_in_place(&mut head[..want], &self.xor_key, offset);
                let rec_magic = &head[..want.min(4)];
                let size = (want >= 8).then(|| u32::from_le_bytes(head[4..8].try_into().expect("4")));
                let magic_ok = rec_magic == &magic[..rec_magic.len()];
                // Cut short by the end of the file: the header, or a block of a length a block can have.
                let cut_short = magic_ok && size.is_none_or(|s| (80..=MAX_BLOCK_BYTES).contains(&s) && offset + 8 + s as u64 > len);
                let partial = cut_short && file_no == newest && (size.is_none() || self.is_cut_block(&mut f, path, offset + 8, len)?);
                if partial {
                    result.partial_tail = Some(PartialTail { file: path.clone(), offset, bytes: len - offset });
                    break;
                }
                let why_not_partial = match (cut_short, file_no == newest) {
                    (false, _) => "",
                    (true, false) => " (only the newest block file may end in a block cut short, the one Bitcoin Core is writing)",
                    (true, true) => " (and more than the start of a block follows it, so it is not a block Bitcoin Core is writing)",
                };
                let problem = if !magic_ok {
                    Some(format!("bad magic {} (expected {} for {})", hex::encode(rec_magic), hex::encode(magic), self.chain))
                } else {
                    match size {
                        None => Some(format!("record header cut short by the end of the file ({want} of 8 bytes){why_not_partial}")),
                        Some(size) if size < 80 || offset + 8 + size as u64 > len => {
                            Some(format!("block length {size} runs past the end of the file ({len} bytes) or is shorter than a header{why_not_partial}"))
                        }
                        Some(_) => None,
                    }
                };
                if let Some(reason) = problem {
                    if !skip_corrupt {
                        return Err(Error::Corrupt { file: path.clone(), offset, reason });
                    }
                    result.skipped.push(format!("{} offset {offset}: {reason}", path.display()));
                    match self.find_magic(&mut f, path, offset + 1, len, &magic)? {
                        Some(next) => {
                            offset = next;
                            continue;
                        }
                        None => break,
                    }
                }
                let size = size.expect("a complete header");
                let header: Header = deserialize(&head[8..88]).expect("80 bytes always decode as a header");
                result.blocks.push(IndexedBlock {
                    hash: header.block_hash(),
                    prev: header.prev_blockhash,
                    bits: header.bits,
                    location: BlockLocation { file: file_no as u32, offset: offset + 8, len: size },
                });
                offset += 8 + size as u64;
            }
            // Core preallocates, so the block it is writing is more often cut short by the padding
            // than by the end of the file: its framing is whole, its last bytes still zeros.
            if file_no == newest && padding {
                if let Some(last) = result.blocks.last().filter(|b| b.location.file == file_no as u32).copied() {
                    if let Some(written) = self.unfinished_block(&mut f, path, last.location)? {
                        result.blocks.pop();
                        result.partial_tail = Some(PartialTail { file: path.clone(), offset: last.location.offset - 8, bytes: 8 + written });
                    }
                }
            }
        }
        Ok(result)
    }

    /// Reads `from..to` of a file as stored (obfuscated, if it is).
    fn read_stored(f: &mut File, path: &Path, from: u64, to: u64) -> Result<Vec<u8>, Error> {
        let mut buf = vec![0u8; (to - from) as usize];
        f.seek(SeekFrom::Start(from)).map_err(|e| Error::io(path, e))?;
        f.read_exact(&mut buf).map_err(|e| Error::io(path, e))?;
        Ok(buf)
    }

    /// Whether the bytes from `from` (a record's block) to the end of the file `len` are the start
    /// of a block cut short, rather than a whole block with more after it (a damaged length).
    /// Zeros on disk at the end (space preallocated but not written yet) are not counted.
    fn is_cut_block(&self, f: &mut File, path: &Path, from: u64, len: u64) -> Result<bool, Error> {
        let mut bytes = Self::read_stored(f, path, from, len)?;
        let written = bytes.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
        xor_in_place(&mut bytes, &self.xor_key, from);
        Ok(is_start_of_block(&bytes[..written]))
    }

    /// For a record whose last bytes are zeros on disk: how many bytes of its block were written
    /// before the zeros, when the block does not decode whole but those bytes are the start of
    /// one (the block Core was writing into its preallocated space); `None` otherwise.
    fn unfinished_block(&self, f: &mut File, path: &Path, loc: BlockLocation) -> Result<Option<u64>, Error> {
        let mut bytes = Self::read_stored(f, path, loc.offset, loc.offset + loc.len as u64)?;
        let written = bytes.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
        if written == bytes.len() {
            return Ok(None);
        }
        xor_in_place(&mut bytes, &self.xor_key, loc.offset);
        if deserialize::<Block>(&bytes).is_ok() || !is_start_of_block(&bytes[..written]) {
            return Ok(None);
        }
        Ok(Some(written as u64))
    }

    fn find_magic(&self, f: &mut File, path: &Path, from: u64, len: u64, magic: &[u8; 4]) -> Result<Option<u64>, Error> {
        let mut rest = vec![0u8; (len - from) as usize];
        f.seek(SeekFrom::Start(from)).map_err(|e| Error::io(path, e))?;
        f.read_exact(&mut rest).map_err(|e| Error::io(path, e))?;
        xor_in_place(&mut rest, &self.xor_key, from);
        Ok(rest.windows(4).position(|w| w == magic).map(|p| from + p as u64))
    }

    /// Reads the raw bytes of a block.
    pub fn read_raw(&mut self, loc: BlockLocation, buf: &mut Vec<u8>) -> Result<(), Error> {
        let path = &self.files[loc.file as usize];
        if self.open.as_ref().map(|(n, _)| *n) != Some(loc.file) {
            self.open = Some((loc.file, File::open(path).map_err(|e| Error::io(path, e))?));
        }
        let f = &mut self.open.as_mut().expect("just opened").1;
        buf.resize(loc.len as usize, 0);
        f.seek(SeekFrom::Start(loc.offset)).map_err(|e| Error::io(path, e))?;
        f.read_exact(buf).map_err(|e| Error::io(path, e))?;
        xor_in_place(buf, &self.xor_key, loc.offset);
        Ok(())
    }

    /// Reads and decodes a block; a block that does not decode is reported with file and offset.
    pub fn read_block(&mut self, loc: BlockLocation, buf: &mut Vec<u8>) -> Result<Block, Error> {
        self.read_raw(loc, buf)?;
        deserialize(buf).map_err(|e| Error::Corrupt {
            file: self.files[loc.file as usize].clone(),
            offset: loc.offset - 8,
            reason: format!("block does not decode: {e}"),
        })
    }
}

/// Decodes one `blk*.dat` file image held in memory (for fuzzing and tools): every record's
/// block, or the first error with its offset.
pub fn parse_file_bytes(bytes: &[u8], magic: [u8; 4]) -> Result<Vec<Block>, (u64, String)> {
    let mut out = vec![];
    let mut offset = 0usize;
    while offset + 8 <= bytes.len() {
        if bytes[offset..offset + 4] == [0; 4] {
            break;
        }
        if bytes[offset..offset + 4] != magic {
            return Err((offset as u64, "bad magic".into()));
        }
        let size = u32::from_le_bytes(bytes[offset + 4..offset + 8].try_into().expect("4")) as usize;
        let end = offset.checked_add(8 + size).filter(|e| *e <= bytes.len()).ok_or((offset as u64, "length past end".to_string()))?;
        let block: Block = deserialize(&bytes[offset + 8..end]).map_err(|e| (offset as u64, e.to_string()))?;
        out.push(block);
        offset = end;
    }
    Ok(out)
}
