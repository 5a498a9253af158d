//! Writes seed inputs for every target into `fuzz/corpus/<target>/`
//! (git-ignored; `cargo fuzz run <target>` starts from them).

use std::fs;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (target, seeds) in roomcast_fuzz::seeds::all() {
        let dir = root.join(target);
        fs::create_dir_all(&dir).expect("create corpus dir");
        for (i, seed) in seeds.iter().enumerate() {
            fs::write(dir.join(format!("seed-{i:04}")), seed).expect("write seed");
        }
        println!("{target}: {} seeds in {}", seeds.len(), dir.display());
    }
}
