//! The vendor's AK/SK signer (huaweicloudsdkcore, set up by tests/aksk/setup.sh):
//! where its Python and script are, and its recording proxy.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The Python of the vendor's signer; panics with how to set it up.
pub fn python() -> PathBuf {
    PathBuf::from(std::env::var_os("IMS_PATCH_AKSK_PYTHON").expect(
        "set IMS_PATCH_AKSK_PYTHON=$(bash tests/aksk/setup.sh) to run the vendor signer tests",
    ))
}

/// tests/aksk/vendor_sign.py.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/aksk/vendor_sign.py")
}

/// The vendor's recording proxy (checking signatures of `ak`/`sk`, and
/// forwarding to `target` when given), killed on drop.
pub struct VendorProxy {
    child: Child,
    pub url: String,
    record: tempfile::NamedTempFile,
}

impl VendorProxy {
    pub fn start(ak: &str, sk: &str, target: Option<&str>) -> VendorProxy {
        let record = tempfile::NamedTempFile::new().unwrap();
        let mut command = Command::new(python());
        command
            .arg(script())
            .args(["proxy", "--ak", ak, "--sk", sk]);
        if let Some(target) = target {
            command.args(["--target", target]);
        }
        let mut child = command
            .arg("--record")
            .arg(record.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run vendor_sign.py proxy");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("http://127.0.0.1:"), "proxy said {line:?}");
        VendorProxy {
            child,
            url: line.trim().to_string(),
            record,
        }
    }

    /// What the proxy recorded, one JSON object a request.
    pub fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.record.path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for VendorProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
