//! Load: N concurrent tablets against a real server (written by the load bench task).
fn main() {}
