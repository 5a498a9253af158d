//! Runs every fuzz check over the seeds built from the vectors and over the
//! saved regression inputs (`fuzz/regressions/<target>/*`), on stable.

use std::fs;
use std::path::Path;

fn regressions(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("regressions")
        .join(target);
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .map(|e| fs::read(e.expect("entry").path()).expect("read"))
        .collect()
}

#[test]
fn reflection_seeds() {
    for seed in roomcast_fuzz::seeds::reflection()
        .into_iter()
        .chain(regressions("decode_reflection"))
    {
        roomcast_fuzz::reflection(&seed);
    }
}

#[test]
fn dynamic_seeds() {
    let schemas = roomcast_fuzz::schemas();
    for seed in roomcast_fuzz::seeds::dynamic()
        .into_iter()
        .chain(regressions("decode_dynamic"))
    {
        roomcast_fuzz::dynamic(&seed, &schemas);
    }
}

#[test]
fn typed_seeds() {
    for seed in roomcast_fuzz::seeds::typed()
        .into_iter()
        .chain(regressions("decode_typed"))
    {
        roomcast_fuzz::typed::typed(&seed);
    }
}

#[test]
fn typed_seed_is_valid() {
    use roomcast_schema::decoder::Decoder;
    let seed = &roomcast_fuzz::seeds::typed()[0];
    let mut d = Decoder::<roomcast_fuzz::typed::Table>::new().expect("types");
    for msg in roomcast_fuzz::messages(seed) {
        d.decode(msg).expect("seed messages are valid");
    }
    assert_eq!(
        d.to_dynamic().to_json(),
        r#"{"best":{"next":{"big":-1,"n":1.5},"rank":3,"suit":"h"},"deck":[],"hands":{"a":{"cards":[],"flag":true,"marks":[1,1],"tags":["x"]}},"log":["l"],"scores":{"s":7}}"#
    );
    assert_eq!(d.unrepresentable(), 0);
}

#[test]
fn client_frame_seeds() {
    for seed in roomcast_fuzz::seeds::client_frames()
        .into_iter()
        .chain(regressions("client_frames"))
    {
        roomcast_fuzz::client_frames(&seed);
    }
    // The seed is one well-formed frame of each kind.
    assert_eq!(
        roomcast_fuzz::client_frames(&roomcast_fuzz::seeds::client_frames()[0]),
        7
    );
}

/// The typed check over deterministic mutations of the typed seed, on
/// stable: its messages repeated, dropped and reordered (valid bytes that
/// move, share, re-add and delete structures), and bytes flipped.
#[test]
fn typed_seed_mutations() {
    let seed = &roomcast_fuzz::seeds::typed()[0];
    let msgs: Vec<&[u8]> = roomcast_fuzz::messages(seed);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    for _ in 0..3000 {
        let mut picked: Vec<Vec<u8>> = (0..1 + next(8))
            .map(|_| msgs[next(msgs.len())].to_vec())
            .collect();
        if next(2) == 0 {
            let m = next(picked.len());
            let len = picked[m].len();
            if len > 0 {
                let at = next(len);
                picked[m][at] ^= 1 << next(8);
            }
        }
        let mut input = Vec::new();
        for m in &picked {
            input.extend_from_slice(&(m.len() as u16).to_le_bytes());
            input.extend_from_slice(m);
        }
        roomcast_fuzz::typed::typed(&input);
    }
}
