//! Bitcoin Core's block files: `blocks/blk00000.dat`, … Each record is the network magic (4
//! bytes), the block length (4 bytes, little-endian) and the block. Since Bitcoin Core 28 the files
//! may be XOR-obfuscated with the 8-byte key in `blocks/xor.dat` (byte at file offset `p` is
//! XORed with `key[p % 8]`). Files end in zero padding where Core preallocated them.

use crate::Error;
use bitcoin::block::Header;
use bitcoin::consensus::deserialize;
use bitcoin::{Block, BlockHash, CompactTarget};
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

/// What the header scan found.
#[derive(Debug, Default)]
pub struct ScanResult {
    /// Every block record found, in file order.
    pub blocks: Vec<IndexedBlock>,
    /// Total bytes of the files.
    pub bytes: u64,
    /// Corrupt records skipped (`--skip-corrupt`), as messages naming file and offset.
    pub skipped: Vec<String>,
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
    pub fn scan(&self, skip_corrupt: bool) -> Result<ScanResult, Error> {
        let magic = self.chain.magic().expect("checked in open");
        let mut result = ScanResult::default();
        for (file_no, path) in self.files.iter().enumerate() {
            let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
            let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
            result.bytes += len;
            let mut offset = 0u64;
            let mut head = [0u8; 88];
            while offset + 8 <= len {
                let want = (len - offset).min(88) as usize;
                f.seek(SeekFrom::Start(offset)).map_err(|e| Error::io(path, e))?;
                f.read_exact(&mut head[..want]).map_err(|e| Error::io(path, e))?;
                xor_in_place(&mut head[..want], &self.xor_key, offset);
                let rec_magic: [u8; 4] = head[..4].try_into().expect("4");
                if rec_magic == [0; 4] {
                    break; // preallocated zero padding: end of the file's data
                }
                let size = u32::from_le_bytes(head[4..8].try_into().expect("4"));
                let problem = if rec_magic != magic {
                    Some(format!("bad magic {} (expected {} for {})", hex::encode(rec_magic), hex::encode(magic), self.chain))
                } else if size < 80 || offset + 8 + size as u64 > len {
                    Some(format!("block length {size} runs past the end of the file ({len} bytes) or is shorter than a header"))
                } else {
                    None
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
                let header: Header = deserialize(&head[8..88]).expect("80 bytes always decode as a header");
                result.blocks.push(IndexedBlock {
                    hash: header.block_hash(),
                    prev: header.prev_blockhash,
                    bits: header.bits,
                    location: BlockLocation { file: file_no as u32, offset: offset + 8, len: size },
                });
                offset += 8 + size as u64;
            }
        }
        Ok(result)
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
