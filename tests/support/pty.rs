//! Running the binary with its standard output on a pseudo-terminal of a
//! given size (libc's openpty), to see what a person at a terminal sees:
//! escape codes, the table width, a terminal that reports 0x0.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

/// What the terminal showed (`\r\n` turned back into `\n`), the separate
/// stderr, and the exit code.
#[derive(Debug)]
pub struct PtyRun {
    pub code: i32,
    pub screen: String,
    pub stderr: String,
}

/// Runs `cmd` with stdout on a new pseudo-terminal of `cols` x `rows`
/// (0x0 is what `script` and `docker exec -t` often report); stdin is null,
/// stderr a pipe.
pub fn run(mut cmd: Command, cols: u16, rows: u16) -> PtyRun {
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty fills two descriptors we then own.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    // The command holds the only copy of the terminal's slave side now (the
    // Command is dropped with our copy); the master reads EIO once it exits.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut file = std::fs::File::from(master);
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
        bytes
    });
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&reader.join().unwrap()).replace("\r\n", "\n");
    PtyRun {
        code: out.status.code().unwrap_or(-1),
        screen,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
