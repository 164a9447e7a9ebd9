//! Where a new backend's code comes from when Railway runs it: a build
//! context packed and uploaded for Railway to build (`pack`), or an image
//! built and pushed from this machine (`image`). Prebuilt images and GitHub
//! repositories need neither.

pub mod image;
pub mod pack;
