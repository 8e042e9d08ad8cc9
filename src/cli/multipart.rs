//! A `multipart/form-data` body, written out here: the one form the terminal sends (text
//! fields and a file) does not warrant reqwest's `multipart` feature in every build.

use mxgate::secret::random_hex;

pub struct Form {
    boundary: String,
    body: Vec<u8>,
}

impl Form {
    pub fn new() -> Self {
        // 128 random bits: no text or file holds this line by chance.
        Self { boundary: format!("mxgate-{}", random_hex(16)), body: Vec::new() }
    }

    pub fn text(&mut self, name: &str, value: &str) {
        self.part(&format!("form-data; name=\"{name}\""), None, value.as_bytes());
    }

    pub fn file(&mut self, name: &str, file_name: &str, mime_type: &str, data: &[u8]) {
        let disposition = format!("form-data; name=\"{name}\"; filename=\"{}\"", escape(file_name));
        self.part(&disposition, Some(mime_type), data);
    }

    fn part(&mut self, disposition: &str, mime_type: Option<&str>, data: &[u8]) {
        let mut head = format!("--{}\r\nContent-Disposition: {disposition}\r\n", self.boundary);
        if let Some(mime_type) = mime_type {
            head.push_str(&format!("Content-Type: {mime_type}\r\n"));
        }
        head.push_str("\r\n");
        self.body.extend_from_slice(head.as_bytes());
        self.body.extend_from_slice(data);
        self.body.extend_from_slice(b"\r\n");
    }

    /// The `Content-Type` header and the body.
    pub fn finish(mut self) -> (String, Vec<u8>) {
        self.body.extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (format!("multipart/form-data; boundary={}", self.boundary), self.body)
    }
}

/// A file name inside the quotes of `Content-Disposition`, escaped as browsers do (WHATWG).
fn escape(file_name: &str) -> String {
    file_name.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}
