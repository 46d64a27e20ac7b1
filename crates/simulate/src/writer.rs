//! Writes blocks as Bitcoin Core does: `blkNNNNN.dat` files of records (magic, length, block),
//! a new file past a size limit, optionally XOR-obfuscated with the key in `xor.dat`.

use crate::Error;
use bitcoin::consensus::Encodable;
use bitcoin::Block;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

pub(crate) struct BlkWriter {
    dir: PathBuf,
    magic: [u8; 4],
    xor: Option<[u8; 8]>,
    max_file_bytes: u64,
    file_no: u32,
    file: Option<BufWriter<File>>,
    pos: u64,
    buf: Vec<u8>,
    pub(crate) bytes_written: u64,
    pub(crate) files: u32,
}

impl BlkWriter {
    pub(crate) fn new(dir: &Path, magic: [u8; 4], xor: Option<[u8; 8]>, max_file_bytes: u64) -> Result<BlkWriter, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.into(), source: e })?;
        let xor_path = dir.join("xor.dat");
        match xor {
            Some(key) => std::fs::write(&xor_path, key).map_err(|e| Error::Io { path: xor_path, source: e })?,
            None if xor_path.exists() => std::fs::remove_file(&xor_path).map_err(|e| Error::Io { path: xor_path, source: e })?,
            None => {}
        }
        Ok(BlkWriter {
            dir: dir.into(),
            magic,
            xor,
            max_file_bytes,
            file_no: 0,
            file: None,
            pos: 0,
            buf: Vec::with_capacity(1 << 20),
            bytes_written: 0,
            files: 0,
        })
    }

    pub(crate) fn write(&mut self, block: &Block) -> Result<(), Error> {
        self.buf.clear();
        self.buf.extend_from_slice(&self.magic);
        self.buf.extend_from_slice(&[0; 4]);
        block.consensus_encode(&mut self.buf).expect("vec write");
        let len = (self.buf.len() - 8) as u32;
        self.buf[4..8].copy_from_slice(&len.to_le_bytes());
        if self.file.is_some() && self.pos + self.buf.len() as u64 > self.max_file_bytes {
            self.finish_file()?;
            self.file_no += 1;
        }
        if self.file.is_none() {
            let path = self.path();
            self.file = Some(BufWriter::with_capacity(1 << 20, File::create(&path).map_err(|e| Error::Io { path, source: e })?));
            self.pos = 0;
            self.files += 1;
        }
        if let Some(key) = self.xor {
            for (i, b) in self.buf.iter_mut().enumerate() {
                *b ^= key[((self.pos + i as u64) % 8) as usize];
            }
        }
        let path = self.path();
        self.file.as_mut().expect("open").write_all(&self.buf).map_err(|e| Error::Io { path, source: e })?;
        self.pos += self.buf.len() as u64;
        self.bytes_written += self.buf.len() as u64;
        Ok(())
    }

    fn path(&self) -> PathBuf {
        self.dir.join(format!("blk{:05}.dat", self.file_no))
    }

    fn finish_file(&mut self) -> Result<(), Error> {
        if let Some(mut f) = self.file.take() {
            let path = self.path();
            f.flush().map_err(|e| Error::Io { path: path.clone(), source: e })?;
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<(), Error> {
        self.finish_file()
    }
}

/// A [`BlkWriter`] on its own thread, so blocks are encoded and written while the next ones
/// are built. Blocks are written in the order they are sent.
pub(crate) struct BackgroundWriter {
    blocks: Option<SyncSender<Block>>,
    thread: Option<JoinHandle<Result<(u32, u64), Error>>>,
}

impl Drop for BackgroundWriter {
    /// On an early return or a panic, the thread stops writing before `simulate` returns.
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.join();
        }
    }
}

impl BackgroundWriter {
    /// Starts the thread; at most 16 blocks wait for it.
    pub(crate) fn start(mut writer: BlkWriter) -> BackgroundWriter {
        let (blocks, queue) = sync_channel::<Block>(16);
        let thread = std::thread::spawn(move || {
            for block in queue {
                writer.write(&block)?;
            }
            let written = (writer.files, writer.bytes_written);
            writer.finish()?;
            Ok(written)
        });
        BackgroundWriter { blocks: Some(blocks), thread: Some(thread) }
    }

    /// Queues `block`; fails with the writer's error if the thread has stopped.
    pub(crate) fn write(&mut self, block: Block) -> Result<(), Error> {
        let sent = self.blocks.as_ref().is_some_and(|b| b.send(block).is_ok());
        if sent {
            return Ok(());
        }
        self.join().map(|_| ())
    }

    /// Waits for every queued block to be written; returns the files and bytes written.
    pub(crate) fn finish(mut self) -> Result<(u32, u64), Error> {
        self.join()
    }

    fn join(&mut self) -> Result<(u32, u64), Error> {
        self.blocks.take();
        match self.thread.take() {
            Some(t) => t.join().expect("block writer thread"),
            None => Err(Error::Config("the block writer has already stopped".into())),
        }
    }
}
