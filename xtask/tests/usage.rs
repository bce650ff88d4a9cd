//! `cargo xtask` as CI scripts call it: a typo must fail, `help` must not.

use std::process::Command;

#[test]
fn an_unknown_command_fails_and_help_succeeds() {
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("tets")
        .output()
        .expect("run xtask");
    assert!(!o.status.success(), "a typo must not pass");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown xtask command \"tets\""), "{err}");
    assert!(err.contains("usage: cargo xtask"), "{err}");

    for args in [&[][..], &["help"][..]] {
        let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .output()
            .expect("run xtask");
        assert!(o.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stdout).contains("usage: cargo xtask"));
    }
}
