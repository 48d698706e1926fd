//! The screenshot command's renderer: every screen at both panel sizes, as
//! real PNG files with something drawn on them (its own process: the
//! headless platform is set once).

#[test]
fn every_screen_renders_at_both_sizes() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let files = pumpgw_terminal::shots::render_all(dir.path()).expect("the screens render");
    assert_eq!(files.len(), 24, "{files:?}");
    for file in &files {
        let name = file.file_name().and_then(|n| n.to_str()).expect("a name");
        let (w, h) = if name.ends_with("-800x480.png") {
            (800, 480)
        } else {
            assert!(name.ends_with("-1280x800.png"), "{name}");
            (1280, 800)
        };
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(file).expect("the file opens"),
        ));
        let mut reader = decoder.read_info().expect("a PNG");
        let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
        let info = reader.next_frame(&mut pixels).expect("one frame");
        assert_eq!((info.width, info.height), (w, h), "{name}");
        // More than one colour: text and cards were drawn.
        let first = &pixels[..3];
        assert!(
            pixels.chunks(3).filter(|p| *p != first).count() > 1000,
            "{name} is blank"
        );
    }
}
