//! Huge-page storage of packed lines.

use super::Line;

/// Buffers at least this large are mapped with transparent huge pages.
const HUGE_PAGE_MIN_BYTES: usize = 2 << 20;

/// Storage of packed lines: an anonymous mapping advised to use transparent huge pages where
/// it is large enough (the weights are streamed every token, and with 4 KiB pages every 4 KiB
/// costs a TLB miss; see the module docs for the difference), else a plain vector.
#[derive(Debug)]
pub(super) struct LineBuffer {
    pub(super) map: Option<memmap2::MmapMut>,
    vec: Vec<Line>,
    len: usize,
}

impl LineBuffer {
    /// `len` zeroed lines.
    pub(super) fn new(len: usize) -> Self {
        if len * 64 >= HUGE_PAGE_MIN_BYTES {
            if let Ok(map) = memmap2::MmapMut::map_anon(len * 64) {
                // Only advice: without huge pages the buffer still works, a little slower.
                #[cfg(target_os = "linux")]
                let _ = map.advise(memmap2::Advice::HugePage);
                return Self {
                    map: Some(map),
                    vec: Vec::new(),
                    len,
                };
            }
        }
        Self {
            map: None,
            vec: vec![Line::default(); len],
            len,
        }
    }

    pub(super) fn lines(&self) -> &[Line] {
        match &self.map {
            // SAFETY: the mapping is page-aligned, `len * 64` bytes long, and any bytes are a
            // valid `Line`.
            Some(m) => unsafe { std::slice::from_raw_parts(m.as_ptr() as *const Line, self.len) },
            None => &self.vec,
        }
    }

    pub(super) fn lines_mut(&mut self) -> &mut [Line] {
        match &mut self.map {
            // SAFETY: as in `lines`, and `&mut self` makes the access exclusive.
            Some(m) => unsafe {
                std::slice::from_raw_parts_mut(m.as_mut_ptr() as *mut Line, self.len)
            },
            None => &mut self.vec,
        }
    }
}
