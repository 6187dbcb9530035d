//! GStreamer elements that compare video frames on the GPU (or CPU) within bounded memory.

pub mod scoring;
