//! Socket I/O under both sides: how writes are issued (`sockets`), reads
//! and writes with a time limit (`timed`), and futures that only wake
//! their task (`wakeup`).

pub mod sockets;
pub mod timed;
pub mod wakeup;
